"""The submitter's rules: send a job's tasks to its facility, stop or forget them."""

from __future__ import annotations

import asyncio

import structlog

from gridgate.broker import Publisher
from gridgate.contracts import (
    GATEWAY_REPORTS_QUEUE,
    CancelJob,
    Command,
    JobFailureReported,
    JobSubmitted,
    PurgeJob,
    SubmitJob,
)
from gridgate.core.errors import FatalError, UsageError
from gridgate.localfacility import LocalFacility

log = structlog.get_logger(__name__)


class SubmitterService:
    """Handles submit, cancel and purge commands for the facilities it knows."""

    def __init__(self, publisher: Publisher, local: LocalFacility) -> None:
        self.publisher = publisher
        self.local = local

    def _facility(self, name: str) -> LocalFacility:
        if name != self.local.name:
            raise UsageError(f"This submitter does not serve the facility {name!r}.")
        return self.local

    async def handle(self, command: Command) -> None:
        match command:
            case SubmitJob():
                await self.submit(command)
            case CancelJob():
                await asyncio.to_thread(self._facility(command.facility).cancel, command.job_id)
            case PurgeJob():
                await asyncio.to_thread(self._facility(command.facility).purge, command.job_id)
            case _:
                raise FatalError(f"the submitter does not handle {command.kind!r}")

    async def submit(self, command: SubmitJob) -> None:
        facility = self._facility(command.facility)
        # Idempotent: a redelivered command finds the tasks launched and launches nothing.
        ids = await asyncio.to_thread(
            facility.submit, command.job_id, command.tasks, command.limits
        )
        await self.publisher.send(
            GATEWAY_REPORTS_QUEUE,
            JobSubmitted(job_id=command.job_id, facility=command.facility, facility_job_ids=ids),
        )
        log.info("job submitted", job_id=command.job_id, facility=command.facility, tasks=len(ids))

    async def report_usage_error(self, command: Command, reason: str) -> None:
        await self.publisher.send(
            GATEWAY_REPORTS_QUEUE,
            JobFailureReported(job_id=command.job_id, source="submitter", reason=reason),
        )
