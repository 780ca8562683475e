"""A job's stdout and stderr: the stored files once it has ended, a live peek while it runs."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal, Protocol

from gridgate.contracts.phases import FINAL_PHASES, Phase
from gridgate.contracts.topology import PEEK_METHOD
from gridgate.core.errors import InvalidRequestError, ProblemError, TransientError
from gridgate.gateway.services.downloads import Download, DownloadService
from gridgate.gateway.services.jobs import JobService
from gridgate.iam.identity import Identity

Stream = Literal["stdout", "stderr"]


class LogNotAvailableError(ProblemError):
    """The task wrote no such log yet, or the facility keeps none."""

    slug, title, status = "log-not-available", "Log not available", 404


class PeekUnavailableError(ProblemError):
    """The monitor did not answer for the running task's output; retry later."""

    slug, title, status = "peek-unavailable", "Live output unavailable", 503


class Peeks(Protocol):
    """Request-reply to the monitor (gridgate.broker.RpcClient)."""

    async def call(self, method: str, timeout_s: float = 20.0, **kwargs: Any) -> Any: ...


@dataclass(frozen=True)
class LivePeek:
    text: str
    source: str


def log_name(stream: Stream, task: int, task_count: int) -> str:
    """The result name of a task's log: the results service's naming."""
    return ("" if task_count == 1 else f"task-{task:04d}/") + f"{stream}.txt"


class LogService:
    """Finds what a task wrote: the staged log file, else what the facility shows so far."""

    def __init__(self, jobs: JobService, downloads: DownloadService, peeks: Peeks | None) -> None:
        self.jobs = jobs
        self.downloads = downloads
        self.peeks = peeks

    async def read(
        self, identity: Identity, job_id: str, stream: Stream, task: int
    ) -> Download | LivePeek:
        job = await self.jobs.get_job(identity, job_id)
        if not 0 <= task < job.task_count:
            raise InvalidRequestError(
                f"Job {job_id} has tasks 0 to {job.task_count - 1}; there is no task {task}.",
                errors=[{"field": "task", "message": "out of range"}],
            )
        name = log_name(stream, task, job.task_count)
        if any(r.name == name for r in job.results):
            return await self.downloads.for_owner(identity, job_id, name)
        record = job.tasks[task] if task < len(job.tasks) else None
        if job.phase in FINAL_PHASES or record is None or record.facility_job_id is None:
            raise LogNotAvailableError(self._why_none(job.phase, stream))
        if self.peeks is None:
            raise PeekUnavailableError("This gateway cannot reach the monitor for live output.")
        try:
            answer = await self.peeks.call(
                PEEK_METHOD,
                facility=job.facility,
                facility_job_id=record.facility_job_id,
                stream=stream,
            )
        except TransientError as exc:
            raise PeekUnavailableError(
                "The monitor did not answer with the job's output; try again shortly."
            ) from exc
        return LivePeek(text=str(answer.get("text", "")), source=str(answer.get("source", "")))

    @staticmethod
    def _why_none(phase: Phase, stream: Stream) -> str:
        if phase in (Phase.PENDING, Phase.QUEUED):
            return f"The job is {phase.value}: it has written no {stream} yet."
        if phase in FINAL_PHASES:
            return f"The job is {phase.value} and no {stream} was kept for this task."
        return f"The job's {stream} is not available yet."
