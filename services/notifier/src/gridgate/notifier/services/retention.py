"""Retention: the notifier's tables stay bounded by time, not by how many events ever passed.

Deliveries are kept ``retention_s`` after they finished (delivered, or given up), so the
delivery log shows a month of history by default. A job hook goes once its last delivery
is that old; a job's numbering state once no event of the job came for that long. An event
of such a job that still comes later is not lost: with no numbering state it waits at most
``order_hold_s`` for predecessors that are gone, then goes out (counted as released), and
a pruned hook is made again from the event's URL. Replicas may prune at the same time: each
batch is its own short transaction of plain deletes, which the other's deletes do not
disturb.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncEngine

from gridgate.notifier.retention_store import RetentionStore

PRUNE_BATCH = 1000
PRUNE_INTERVAL_S = 3600.0


class Retention:
    def __init__(self, engine: AsyncEngine, retention_s: float, batch: int = PRUNE_BATCH) -> None:
        self._engine = engine
        self._keep = timedelta(seconds=retention_s)
        self._batch = batch

    async def prune(self, now: datetime | None = None) -> int:
        """Delete everything past the retention, batch by batch; returns how many rows."""
        before = (now or datetime.now(UTC)) - self._keep
        total = 0
        # Hooks before deliveries: a hook's own deliveries say whether it is spent.
        for step in (
            RetentionStore.delete_spent_hooks,
            RetentionStore.delete_finished_deliveries,
            RetentionStore.delete_idle_sequences,
        ):
            total += await self._repeat(step, before)
        return total

    async def _repeat(
        self, step: Callable[[RetentionStore, datetime, int], Awaitable[int]], before: datetime
    ) -> int:
        total = 0
        while True:
            async with self._engine.begin() as connection:
                deleted = await step(RetentionStore(connection), before, self._batch)
            total += deleted
            if deleted < self._batch:
                return total
