"""Worker reports -> job state. The gateway is the only writer of job state."""

from __future__ import annotations

import structlog
from sqlalchemy.exc import IntegrityError

from gridgate.contracts import (
    JobFailureReported,
    JobStateObserved,
    JobSubmitted,
    Report,
    ResultsStaged,
)
from gridgate.gateway.factory import ProcessContext, unit_of_work

log = structlog.get_logger(__name__)


class ReportHandler:
    def __init__(self, context: ProcessContext) -> None:
        self.context = context

    async def __call__(self, report: Report) -> None:
        try:
            await self._handle(report)
        except IntegrityError:
            # The job was deleted between our read and our write (SQLite takes no row lock):
            # handled again, the report meets a job that is gone, as after any deletion.
            log.info(
                "job deleted while its report was handled; handling again", job_id=report.job_id
            )
            await self._handle(report)

    async def _handle(self, report: Report) -> None:
        async with unit_of_work(self.context) as factory:
            service = factory.job_service()
            match report:
                case JobSubmitted():
                    await service.record_submission(report)
                case JobStateObserved():
                    await service.record_observation(report)
                case ResultsStaged():
                    await service.record_results(report)
                case JobFailureReported():
                    await service.record_failure(report)
