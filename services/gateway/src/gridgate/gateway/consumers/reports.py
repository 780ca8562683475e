"""Worker reports -> job state. The gateway is the only writer of job state."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence

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
from gridgate.gateway.consumers.observations import MAX_BATCH, ObservationBatches
from gridgate.gateway.exceptions import JobBusyError
from gridgate.gateway.factory import ProcessContext, unit_of_work
from gridgate.gateway.schema.outages import is_database_outage


class ReportHandler:
    """The reports consumer's handler. Observations handled at the same time are applied in
    batches (:mod:`gridgate.gateway.consumers.observations`); other reports one by one."""

    def __init__(self, context: ProcessContext, *, max_batch: int = MAX_BATCH) -> None:
        self.context = context
        self.observations = ObservationBatches(self._apply_observations, self._apply, max_batch)

    async def __call__(self, report: Report) -> None:
        if isinstance(report, JobStateObserved):
            await self._guarded(lambda: self.observations.apply(report))
        else:
            await self._guarded(lambda: self._apply(report))

    async def _apply_observations(self, reports: Sequence[JobStateObserved]) -> None:
        if len(reports) == 1:
            await self._apply(reports[0])  # alone: the unit of work of one job
            return
        async with unit_of_work(self.context) as factory:
            await factory.report_service().record_observations(reports)

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
