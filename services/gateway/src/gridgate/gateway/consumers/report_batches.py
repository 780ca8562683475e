"""Reports of one kind applied in batches: many jobs in one unit of work.

The monitor's observations and the submitter's submissions come many at a time (a monitor
cycle, a bulk DIRAC submission). The reports consumer hands each delivery to its handler in
a task of its own, up to its prefetch at a time. Alone, each report pays for its own unit of
work: several statements, a commit and their round trips, which bounds one gateway process
to a few hundred a second (docs/benchmarks.md) and, on SQLite, holds the write lock that
new jobs wait for. Here the reports of one kind being handled at the same time queue
instead; one of their handlers (the *leader*) applies all of them, one per job, in one unit
of work (:meth:`ReportService.record_observations`, :meth:`ReportService.record_submissions`),
and the others wait for its commit. Meanwhile new deliveries queue, and the next leader takes
them. With one delivery at a time nothing waits: the leader applies its own report alone, at
once.

No handler returns before the commit that holds its report, and the consumer acknowledges a
message only when its handler returned: a crash at any line leaves every report of the batch
unacknowledged, to be delivered again and found applied or not. A batch that fails for
another reason than a database outage is not retried as a batch: each handler then applies
its own report in its own unit of work, as if there were no batching, and meets its own error
(or succeeds).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, Literal, Protocol, TypeVar

import structlog

from gridgate.core.crashpoints import crash_point
from gridgate.core.errors import TransientError
from gridgate.gateway.schema.outages import is_database_outage
from gridgate.gateway.services.turns import LeaderTurns

log = structlog.get_logger(__name__)

Outcome = Literal["applied", "lead", "alone"]

MAX_BATCH = 256
"""Reports in one unit of work at most (the reports consumer's prefetch)."""


class JobReport(Protocol):
    @property
    def job_id(self) -> str: ...


R = TypeVar("R", bound=JobReport)


class ReportBatches(LeaderTurns[R, Outcome], Generic[R]):
    """One per kind of report per reports handler; :meth:`apply` is called by each
    delivery's handler. ``kind`` names the batches in the log and their crash point
    (``<kind>-batch-committed``)."""

    def __init__(
        self,
        kind: str,
        apply_many: Callable[[Sequence[R]], Awaitable[None]],
        apply_one: Callable[[R], Awaitable[None]],
        max_batch: int = MAX_BATCH,
    ) -> None:
        super().__init__()
        self.kind = kind
        self._committed_point = f"{kind}-batch-committed"
        self._apply_many = apply_many
        self._apply_one = apply_one
        self.max_batch = max_batch
        self.batches = 0
        """Batches committed (a figure for the benchmarks and tests)."""
        self.largest = 0
        """The most reports one committed batch held."""
        self.failed = 0
        """Batches that failed, their reports then applied one by one."""

    async def apply(self, report: R) -> None:
        """Apply ``report`` (with others, or alone); returns once it is committed."""
        turn, outcome = await self._wait_turn(report)
        if outcome == "applied":
            return
        if outcome == "alone":
            await self._apply_one(report)
            return
        try:
            if await self._lead(turn) == "alone":
                await self._apply_one(report)
        finally:
            self._hand_over()

    async def _lead(self, own: asyncio.Future[Outcome]) -> Outcome:
        # Deliveries read from the socket together are tasks already: let them queue first.
        await asyncio.sleep(0)
        batch = self._take(own)
        try:
            await self._apply_many([report for report, _ in batch])
        except Exception as exc:
            self.failed += 1
            if len(batch) == 1:
                raise  # its own error: alone it would meet it again
            if is_database_outage(exc):
                # Alone, each would meet the same outage: all wait for the retry together.
                for _, turn in batch:
                    if turn is not own and not turn.done():
                        turn.set_exception(
                            TransientError(f"the job database is unreachable: {exc!r}")
                        )
                raise
            log.info(
                "a batch of reports failed; each is applied alone",
                kind=self.kind,
                size=len(batch),
                error=repr(exc),
            )
            self._release(batch, "alone")
            return "alone"
        except BaseException:
            # Cancelled (the consumer stops, or its channel went): nothing was committed,
            # and the others must not wait for a leader that is gone.
            self._release(batch, "alone")
            raise
        self.batches += 1
        self.largest = max(self.largest, len(batch))
        # Committed, and no handler of the batch has returned: a crash here redelivers all.
        crash_point(self._committed_point)
        self._release(batch, "applied")
        return "applied"

    def _take(self, own: asyncio.Future[Outcome]) -> list[tuple[R, asyncio.Future[Outcome]]]:
        """The leader's own report, then queued ones of other jobs, up to the limit.

        A second report of a job already in the batch stays queued for the next one: a unit
        of work claims each job once, and the later report must see the earlier one's writes
        to be judged new or stale."""
        batch = [(report, turn) for report, turn in self._queue if turn is own]
        jobs = {report.job_id for report, _ in batch}
        left: list[tuple[R, asyncio.Future[Outcome]]] = []
        for report, turn in self._queue:
            if turn is own or turn.done():
                continue
            if len(batch) < self.max_batch and report.job_id not in jobs:
                jobs.add(report.job_id)
                batch.append((report, turn))
            else:
                left.append((report, turn))
        self._queue = left
        return batch


__all__ = ["MAX_BATCH", "ReportBatches"]
