"""The job callback: a job's wrapper reports its tasks, authenticated by the job's own token.

Polling stays the source of truth: a callback never changes a job's phase. It adds a history
entry, and may tell when a task started before the monitor sees it.
"""

from __future__ import annotations

import hmac

import structlog
from sqlalchemy.ext.asyncio import AsyncConnection

from gridgate.contracts.callback import CallbackUpdate, token_digest
from gridgate.contracts.phases import FINAL_PHASES
from gridgate.core.errors import AuthenticationError, InvalidRequestError, ProblemError
from gridgate.gateway.models.job import Job
from gridgate.gateway.services.notifier import PhaseNotifier
from gridgate.gateway.storage.callbacks import CallbackStore
from gridgate.gateway.storage.jobs import JobStore

log = structlog.get_logger(__name__)

SOURCE = "callback"
MAX_UPDATES_PER_TASK = 200
"""A task's wrapper reports a start, an end and some progress; a job that floods the history
beyond this is refused, and polling still follows it."""


class TooManyCallbacksError(ProblemError):
    """A job's wrapper sent more updates for one task than the gateway keeps."""

    slug, title, status = "too-many-callbacks", "Too many callback updates", 429


class CallbackTokenInvalidError(AuthenticationError):
    """Every refusal of a callback looks alike: no token, a wrong one, a revoked one (the job
    is final) or an unknown job. Nothing tells a caller which jobs exist."""

    slug, title = "callback-token-invalid", "Invalid callback token"


def describe(update: CallbackUpdate) -> str:
    """The history entry of an update: ``task 0 ended with exit code 3``."""
    text = f"task {update.task_index} {update.event}"
    if update.event == "ended" and update.exit_code is not None:
        text += f" with exit code {update.exit_code}"
    if update.message:
        # One line of printable text: the history is also rendered as UWS XML.
        text += ": " + "".join(ch if ch.isprintable() else " " for ch in update.message)
    return text


class CallbackService:
    """Records what the wrappers of jobs report."""

    def __init__(
        self,
        connection: AsyncConnection,
        jobs: JobStore,
        callbacks: CallbackStore,
        notifier: PhaseNotifier,
    ) -> None:
        self.connection = connection
        self.jobs = jobs
        self.callbacks = callbacks
        self.notifier = notifier

    async def record(self, job_id: str, token: str | None, update: CallbackUpdate) -> bool:
        """Record one update of a job's wrapper; ``False`` if it was recorded before.

        Parameters
        ----------
        job_id
            The job the wrapper runs for.
        token
            The bearer token it presented (``None``: none).
        update
            What it reports.
        """
        job = await self._authenticate(job_id, token)
        task = next((t for t in job.tasks if t.index == update.task_index), None)
        if task is None:
            raise InvalidRequestError(
                f"The job has {job.task_count} task(s); there is no task {update.task_index}.",
                errors=[{"field": "task_index", "message": f"must be < {job.task_count}"}],
            )
        if await self.callbacks.count(job.id, update.task_index) >= MAX_UPDATES_PER_TASK:
            await self.connection.rollback()
            raise TooManyCallbacksError(
                f"Task {update.task_index} has sent {MAX_UPDATES_PER_TASK} updates already."
            )
        if not await self.callbacks.add(job.id, update.task_index, update.event, update.at):
            await self.connection.rollback()
            return False
        if update.event == "started" and task.started_at is None:
            await self.jobs.update_task(job.id, task.index, started_at=update.at)
        self.jobs.add_history(job.id, at=update.at, source=SOURCE, detail=describe(update))
        await self.jobs.flush()
        await self.connection.commit()
        self.notifier.notify(job.id)
        log.info(
            "job callback recorded",
            job_id=job.id,
            task_index=update.task_index,
            callback_event=update.event,
        )
        return True

    async def _authenticate(self, job_id: str, token: str | None) -> Job:
        """The job, locked, if ``token`` is its live callback token."""
        presented = token_digest(token) if token else ""
        job = await self.jobs.get(job_id, for_update=True)
        expected = None
        if job is not None and job.phase not in FINAL_PHASES:  # a final job's token is revoked
            expected = job.callback_token_hash
        # Digests of equal length compared in constant time: no timing tells a near miss.
        # SQLite took no lock at the read: the job may have been deleted or ended since. Then
        # the callback is refused like an unknown job's, and writes nothing (a deleted job's
        # rows would fail their foreign key: a 500).
        if (
            job is None
            or not expected
            or not hmac.compare_digest(expected, presented)
            or not await self.jobs.hold_callback_token(job_id, presented)
        ):
            await self.connection.rollback()
            raise CallbackTokenInvalidError(
                "This route takes the callback token of a job that is still running."
            )
        return job


__all__ = [
    "MAX_UPDATES_PER_TASK",
    "CallbackService",
    "CallbackTokenInvalidError",
    "TooManyCallbacksError",
    "describe",
]
