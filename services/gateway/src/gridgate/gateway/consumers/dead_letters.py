"""Dead letters -> failed jobs: no job waits for ever on a message nobody will handle.

The broker library's watcher takes each message from a ``<queue>.dead`` queue, calls
:class:`DeadLetterHandler`, then parks the message for an operator (docs/operations.md).
"""

from __future__ import annotations

from typing import Final

from gridgate.broker import DeadLetter
from gridgate.contracts import (
    GATEWAY_REPORTS_QUEUE,
    RESULTS_QUEUE,
    SUBMITTER_QUEUE,
    JobFailureReported,
)
from gridgate.gateway.factory import ProcessContext, unit_of_work

SOURCE: Final = "dead-letter"
"""The history's ``source`` of a job failed for a dead letter."""

WHAT_FAILED: Final = {
    SUBMITTER_QUEUE: "this job could not be handed to its facility",
    RESULTS_QUEUE: "the results of this job could not be collected",
    GATEWAY_REPORTS_QUEUE: "a report on this job could not be recorded",
}


def failure_reason(letter: DeadLetter) -> str:
    """The error message the job's owner reads; what to tell an operator is in the logs."""
    what = WHAT_FAILED.get(letter.queue, "a message of this job could not be handled")
    tries = f"after {letter.attempts} attempts" if letter.attempts > 1 else "at its first attempt"
    return f"internal: {what} {tries} ({letter.type_name} dead-lettered); an operator was alerted"


async def record_failure(context: ProcessContext, report: JobFailureReported) -> None:
    """Fail the job as a worker's failure report would: the one call on the job service here,
    so that moving ``record_failure`` to another service changes this line only."""
    async with unit_of_work(context) as factory:
        await factory.report_service().record_failure(report)


class DeadLetterHandler:
    """Fails the job of each dead letter (a job already final is left as it is)."""

    def __init__(self, context: ProcessContext) -> None:
        self.context = context

    async def __call__(self, letter: DeadLetter) -> None:
        if letter.job_id is None:
            return  # nothing to fail; the watcher still counts, logs and parks it
        report = JobFailureReported(
            job_id=letter.job_id, source=SOURCE, reason=failure_reason(letter)
        )
        await record_failure(self.context, report)
