"""Worker reports -> job state. The gateway is the only writer of job state."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import TypeVar

import structlog

from gridgate.contracts import (
    GATEWAY_REPORTS_QUEUE,
    ImageBuildStarted,
    ImageResolved,
    JobFailureReported,
    JobStateObserved,
    JobStatesObserved,
    JobSubmitted,
    Report,
    ResultsStaged,
)
from gridgate.core.crashpoints import crash_point
from gridgate.core.errors import TransientError
from gridgate.gateway.consumers.dead_letters import SOURCE, WHAT_FAILED, record_failure
from gridgate.gateway.consumers.report_batches import MAX_BATCH, ReportBatches
from gridgate.gateway.exceptions import JobBusyError
from gridgate.gateway.factory import ProcessContext, unit_of_work
from gridgate.gateway.schema.outages import is_database_outage
from gridgate.gateway.services.reports import ReportService

log = structlog.get_logger(__name__)

R = TypeVar("R", JobStateObserved, JobSubmitted)
"""The reports applied in batches."""


class ReportHandler:
    """The reports consumer's handler. Observations and submissions handled at the same time
    are applied in batches (:mod:`gridgate.gateway.consumers.report_batches`); other reports
    one by one."""

    def __init__(self, context: ProcessContext, *, max_batch: int = MAX_BATCH) -> None:
        self.context = context
        self.observations = ReportBatches[JobStateObserved](
            "observations", self._apply_observations, self._apply, max_batch
        )
        self.submissions = ReportBatches[JobSubmitted](
            "submissions", self._apply_submissions, self._apply, max_batch
        )

    async def __call__(self, report: Report) -> None:
        if isinstance(report, JobStateObserved):
            await self._guarded(lambda: self.observations.apply(report))
        elif isinstance(report, JobSubmitted):
            await self._guarded(lambda: self.submissions.apply(report))
        elif isinstance(report, JobStatesObserved):
            await self._guarded(lambda: self._apply_carried(report.observations))
        else:
            await self._guarded(lambda: self._apply(report))

    async def _apply_carried(self, observations: Sequence[JobStateObserved]) -> None:
        """The observations of one message: one unit of work per run of distinct jobs (a
        unit of work claims each job once; a monitor cycle observes each job once anyway).

        A run that fails for another reason than an outage is applied one by one. An
        observation that fails alone too fails its job, as the dead letter of a message of
        its own would (the message carries others, so it is not the one to dead-letter).
        """
        for run in _distinct_job_runs(observations):
            try:
                await self._apply_observations(run)
            except Exception as exc:
                if is_database_outage(exc) or isinstance(exc, JobBusyError):
                    raise
                log.info(
                    "a message's observations failed together; each is applied alone",
                    size=len(run),
                    error=repr(exc),
                )
                for observation in run:
                    await self._apply_alone_or_fail(observation)
            # Committed, the message not acknowledged: a crash here delivers it again, and
            # what this run applied is then found applied.
            crash_point("observations-run-committed")

    async def _apply_alone_or_fail(self, observation: JobStateObserved) -> None:
        try:
            await self._apply(observation)
        except Exception as exc:
            if is_database_outage(exc) or isinstance(exc, JobBusyError):
                raise
            log.exception(
                "an observation could not be applied; its job fails", job_id=observation.job_id
            )
            await record_failure(
                self.context,
                JobFailureReported(
                    job_id=observation.job_id,
                    source=SOURCE,
                    reason=f"internal: {WHAT_FAILED[GATEWAY_REPORTS_QUEUE]} (JobStateObserved "
                    "could not be applied); an operator was alerted",
                ),
            )

    async def _apply_observations(self, reports: Sequence[JobStateObserved]) -> None:
        await self._apply_together(reports, ReportService.record_observations)

    async def _apply_submissions(self, reports: Sequence[JobSubmitted]) -> None:
        await self._apply_together(reports, ReportService.record_submissions)

    async def _apply_together(
        self,
        reports: Sequence[R],
        record_many: Callable[[ReportService, Sequence[R]], Awaitable[None]],
    ) -> None:
        """Reports of distinct jobs in one unit of work (``record_many``); one alone in the
        unit of work of its job."""
        if len(reports) == 1:
            await self._apply(reports[0])
            return
        async with unit_of_work(self.context) as factory:
            await record_many(factory.report_service(), reports)

    async def _apply(self, report: Report) -> None:
        async with unit_of_work(self.context) as factory:
            service = factory.report_service()
            match report:
                case JobSubmitted():
                    await service.record_submission(report)
                case JobStateObserved():
                    await service.record_observation(report)
                case ResultsStaged():
                    await service.record_results(report)
                case JobFailureReported():
                    await service.record_failure(report)
                case ImageBuildStarted() | ImageResolved():
                    await service.record_image(report)

    @staticmethod
    async def _guarded(work: Callable[[], Awaitable[None]]) -> None:
        try:
            await work()
        except JobBusyError as exc:
            raise TransientError(str(exc)) from exc
        except Exception as exc:
            # A database outage is a reason to wait, never to dead-letter a report: its job
            # would be left where it stands.
            if is_database_outage(exc):
                raise TransientError(f"the job database is unreachable: {exc!r}") from exc
            raise


def _distinct_job_runs(
    observations: Sequence[JobStateObserved],
) -> list[list[JobStateObserved]]:
    """``observations`` cut, in order, into runs in which no job comes twice."""
    runs: list[list[JobStateObserved]] = [[]]
    jobs: set[str] = set()
    for observation in observations:
        if observation.job_id in jobs:
            runs.append([])
            jobs.clear()
        runs[-1].append(observation)
        jobs.add(observation.job_id)
    return [run for run in runs if run]
