"""Worker reports -> job state. The gateway is the only writer of job state."""

from __future__ import annotations

from gridgate.contracts import (
    ImageBuildStarted,
    ImageResolved,
    JobFailureReported,
    JobStateObserved,
    JobSubmitted,
    Report,
    ResultsStaged,
)
from gridgate.core.errors import TransientError
from gridgate.gateway.exceptions import JobBusyError
from gridgate.gateway.factory import ProcessContext, unit_of_work
from gridgate.gateway.schema.outages import is_database_outage


class ReportHandler:
    def __init__(self, context: ProcessContext) -> None:
        self.context = context

    async def __call__(self, report: Report) -> None:
        try:
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
        except JobBusyError as exc:
            raise TransientError(str(exc)) from exc
        except Exception as exc:
            # A database outage is a reason to wait, never to dead-letter a report: its job
            # would be left where it stands.
            if is_database_outage(exc):
                raise TransientError(f"the job database is unreachable: {exc!r}") from exc
            raise
