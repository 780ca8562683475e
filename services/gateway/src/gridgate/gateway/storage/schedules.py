"""The schedule store: rows of ``schedules`` and ``schedule_runs`` as models, and the files
new-data schedules have handed to jobs (``schedule_files``)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import and_, delete, func, insert, or_, select, update
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncConnection

from gridgate.contracts.phases import Phase
from gridgate.gateway.models.schedule import Schedule, ScheduleRun
from gridgate.gateway.schema import (
    jobs_table,
    schedule_files_table,
    schedule_runs_table,
    schedules_table,
)
from gridgate.gateway.storage.jobs import StaleJobError

SCHEDULE_FIELDS = [c.name for c in schedules_table.columns]


class StaleScheduleError(StaleJobError):
    """Another unit of work changed the schedule since it was read: read it again and retry.

    A kind of :class:`StaleJobError`, so that the ledger's retry loop runs the unit of work
    again whichever of the two it claimed lost the race."""


def schedule_row(schedule: Schedule) -> dict[str, Any]:
    """The ``schedules`` row of a schedule model."""
    return {name: getattr(schedule, name) for name in SCHEDULE_FIELDS}


def _schedule(row: Row[Any]) -> Schedule:
    return Schedule(**dict(row._mapping))


def _run(row: Row[Any]) -> ScheduleRun:
    return ScheduleRun(**dict(row._mapping))


class ScheduleStore:
    """Schedules and their runs; never commits."""

    def __init__(self, connection: AsyncConnection) -> None:
        self.connection = connection

    async def add(self, schedule: Schedule) -> None:
        await self.connection.execute(insert(schedules_table).values(schedule_row(schedule)))

    async def get(self, schedule_id: str, *, for_update: bool = False) -> Schedule | None:
        query = select(schedules_table).where(schedules_table.c.id == schedule_id)
        if for_update:
            query = query.with_for_update()
        row = (await self.connection.execute(query)).first()
        return _schedule(row) if row is not None else None

    async def claim(self, schedule: Schedule) -> None:
        """Take the schedule for this unit of work: bump its version if nobody changed it
        since it was read, else raise :class:`StaleScheduleError` (as for jobs, ADR 0007)."""
        done = await self.connection.execute(
            update(schedules_table)
            .where(
                schedules_table.c.id == schedule.id,
                schedules_table.c.version == schedule.version,
            )
            .values(version=schedules_table.c.version + 1)
        )
        if done.rowcount != 1:
            raise StaleScheduleError(schedule.id)
        schedule.version += 1

    async def update(self, schedule_id: str, **values: Any) -> None:
        await self.connection.execute(
            update(schedules_table).where(schedules_table.c.id == schedule_id).values(**values)
        )

    async def delete(self, schedule_id: str) -> None:
        await self.connection.execute(
            delete(schedule_files_table).where(schedule_files_table.c.schedule_id == schedule_id)
        )
        await self.connection.execute(
            delete(schedule_runs_table).where(schedule_runs_table.c.schedule_id == schedule_id)
        )
        await self.connection.execute(
            delete(schedules_table).where(schedules_table.c.id == schedule_id)
        )

    async def count_owned(self, owner: str) -> int:
        query = select(func.count()).where(schedules_table.c.owner == owner)
        return int((await self.connection.execute(query)).scalar_one())

    async def list_owned(
        self,
        owner: str,
        *,
        paused: bool | None,
        workflow: str | None,
        after: tuple[datetime, str] | None,
        limit: int,
    ) -> tuple[list[Schedule], int]:
        """The owner's schedules, newest first, past the cursor ``after``; and how many match
        the filters in all."""
        conditions = [schedules_table.c.owner == owner]
        if paused is not None:
            conditions.append(schedules_table.c.paused == paused)
        if workflow is not None:
            conditions.append(schedules_table.c.workflow_id == workflow)
        total = int(
            (
                await self.connection.execute(select(func.count()).where(and_(*conditions)))
            ).scalar_one()
        )
        if after is not None:
            created, schedule_id = after
            conditions.append(
                or_(
                    schedules_table.c.created_at < created,
                    and_(
                        schedules_table.c.created_at == created,
                        schedules_table.c.id < schedule_id,
                    ),
                )
            )
        rows = await self.connection.execute(
            select(schedules_table)
            .where(and_(*conditions))
            .order_by(schedules_table.c.created_at.desc(), schedules_table.c.id.desc())
            .limit(limit)
        )
        return [_schedule(r) for r in rows], total

    async def due(self, now: datetime, limit: int) -> list[str]:
        """Ids of schedules whose next firing is at or before ``now``, the most overdue first."""
        rows = await self.connection.execute(
            select(schedules_table.c.id)
            .where(
                schedules_table.c.paused == False,  # noqa: E712 - SQL, not Python
                schedules_table.c.next_fire_at <= now,
            )
            .order_by(schedules_table.c.next_fire_at)
            .limit(limit)
        )
        return [r.id for r in rows]

    async def next_due(self) -> datetime | None:
        """The earliest next fire time of the schedules not paused (an index seek)."""
        query = select(func.min(schedules_table.c.next_fire_at)).where(
            schedules_table.c.paused == False  # noqa: E712 - SQL, not Python
        )
        value: datetime | None = (await self.connection.execute(query)).scalar_one_or_none()
        return value

    async def add_run(
        self,
        *,
        schedule_id: str,
        nominal_time: datetime,
        fired_at: datetime,
        trigger: str,
        outcome: str,
        reason: str | None,
        job_id: str | None,
    ) -> None:
        """Record a firing; ``IntegrityError`` if this nominal time was recorded already."""
        await self.connection.execute(
            insert(schedule_runs_table).values(
                schedule_id=schedule_id,
                nominal_time=nominal_time,
                fired_at=fired_at,
                trigger=trigger,
                outcome=outcome,
                reason=reason,
                job_id=job_id,
            )
        )

    async def handed_out(self, schedule_id: str) -> set[str]:
        """The file DIDs a new-data schedule has given to its jobs."""
        rows = await self.connection.execute(
            select(schedule_files_table.c.did).where(
                schedule_files_table.c.schedule_id == schedule_id
            )
        )
        return {r.did for r in rows}

    async def hand_out(
        self, schedule_id: str, dids: list[str], nominal_time: datetime, job_id: str
    ) -> None:
        """Record files as given to ``job_id``; ``IntegrityError`` if one was given already."""
        await self.connection.execute(
            insert(schedule_files_table),
            [
                {
                    "schedule_id": schedule_id,
                    "did": did,
                    "nominal_time": nominal_time,
                    "job_id": job_id,
                }
                for did in dids
            ],
        )

    async def runs(self, schedule_id: str, before: int | None, limit: int) -> list[ScheduleRun]:
        """The schedule's runs, newest first, with ids below ``before``."""
        query = select(schedule_runs_table).where(schedule_runs_table.c.schedule_id == schedule_id)
        if before is not None:
            query = query.where(schedule_runs_table.c.id < before)
        rows = await self.connection.execute(
            query.order_by(schedule_runs_table.c.id.desc()).limit(limit)
        )
        return [_run(r) for r in rows]

    async def previous_success(self, schedule_id: str) -> datetime | None:
        """The latest nominal time whose job completed."""
        query = (
            select(schedule_runs_table.c.nominal_time)
            .select_from(
                schedule_runs_table.join(
                    jobs_table, jobs_table.c.id == schedule_runs_table.c.job_id
                )
            )
            .where(
                schedule_runs_table.c.schedule_id == schedule_id,
                jobs_table.c.phase == Phase.COMPLETED.value,
            )
            .order_by(schedule_runs_table.c.nominal_time.desc())
            .limit(1)
        )
        value: datetime | None = (await self.connection.execute(query)).scalar_one_or_none()
        return value


__all__ = ["ScheduleStore", "StaleScheduleError", "schedule_row"]
