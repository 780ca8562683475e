"""The store of accepted job callback updates."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from gridgate.gateway.schema.tables import callbacks_table
from gridgate.sql import conflict_insert


class CallbackStore:
    """Rows of ``job_callbacks``: the key of each update a job's wrapper sent."""

    def __init__(self, connection: AsyncConnection) -> None:
        self.connection = connection

    async def add(self, job_id: str, task_index: int, event: str, at: datetime) -> bool:
        """Record an update; ``False`` when it was recorded before (nothing is written).

        ``ON CONFLICT DO NOTHING`` rather than a look first: two deliveries of one update
        racing each other cannot both pass, and neither fails.
        """
        statement = (
            conflict_insert(self.connection.dialect, callbacks_table)
            .values(job_id=job_id, task_index=task_index, event=event, at=at)
            .on_conflict_do_nothing()
        )
        done = await self.connection.execute(statement)
        return done.rowcount == 1

    async def count(self, job_id: str, task_index: int) -> int:
        """How many updates a task's wrapper has sent so far."""
        total = await self.connection.execute(
            select(func.count())
            .select_from(callbacks_table)
            .where(callbacks_table.c.job_id == job_id, callbacks_table.c.task_index == task_index)
        )
        return int(total.scalar_one())


__all__ = ["CallbackStore"]
