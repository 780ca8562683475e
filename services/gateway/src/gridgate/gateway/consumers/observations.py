"""Observations of the monitor applied in batches: many jobs in one unit of work.

The reports consumer hands each delivery to its handler in a task of its own, up to its
prefetch at a time. Alone, each observation pays for its own unit of work: about ten
statements, a commit and their round trips, which bounds one gateway process to a few
hundred a second (docs/benchmarks.md). Here the observations being handled at the same time
queue instead; one of their handlers (the *leader*) applies all of them, one per job, in one
unit of work (:meth:`ReportService.record_observations`), and the others wait for its commit.
Meanwhile new deliveries queue, and the next leader takes them. With one delivery at a time
nothing waits: the leader applies its own observation alone, at once.

No handler returns before the commit that holds its observation, and the consumer
acknowledges a message only when its handler returned: a crash at any line leaves every
observation of the batch unacknowledged, to be delivered again and found applied or not.
A batch that fails for another reason than a database outage is not retried as a batch: each
handler then applies its own observation in its own unit of work, as if there were no
batching, and meets its own error (or succeeds).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Literal

import structlog

from gridgate.contracts import JobStateObserved
from gridgate.core.crashpoints import crash_point
from gridgate.core.errors import TransientError
from gridgate.gateway.schema.outages import is_database_outage
from gridgate.gateway.services.turns import LeaderTurns

log = structlog.get_logger(__name__)

Outcome = Literal["applied", "lead", "alone"]

MAX_BATCH = 256
"""Observations in one unit of work at most (the reports consumer's prefetch)."""


class ObservationBatches(LeaderTurns[JobStateObserved, Outcome]):
    """One per reports handler; :meth:`apply` is called by each delivery's handler."""

    def __init__(
        self,
        apply_many: Callable[[Sequence[JobStateObserved]], Awaitable[None]],
        apply_one: Callable[[JobStateObserved], Awaitable[None]],
        max_batch: int = MAX_BATCH,
    ) -> None:
        super().__init__()
        self._apply_many = apply_many
        self._apply_one = apply_one
        self.max_batch = max_batch
        self.batches = 0
        """Batches committed (a figure for the benchmarks and tests)."""
        self.largest = 0
        """The most observations one committed batch held."""
        self.failed = 0
        """Batches that failed, their observations then applied one by one."""

    async def apply(self, report: JobStateObserved) -> None:
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
                "a batch of observations failed; each is applied alone",
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
        crash_point("observations-batch-committed")
        self._release(batch, "applied")
        return "applied"

    def _take(
        self, own: asyncio.Future[Outcome]
    ) -> list[tuple[JobStateObserved, asyncio.Future[Outcome]]]:
        """The leader's own observation, then queued ones of other jobs, up to the limit.

        A second observation of a job already in the batch stays queued for the next one:
        a unit of work claims each job once, and the later observation must see the
        earlier one's writes to be judged new or stale."""
        batch = [(report, turn) for report, turn in self._queue if turn is own]
        jobs = {report.job_id for report, _ in batch}
        left: list[tuple[JobStateObserved, asyncio.Future[Outcome]]] = []
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


__all__ = ["MAX_BATCH", "ObservationBatches"]
