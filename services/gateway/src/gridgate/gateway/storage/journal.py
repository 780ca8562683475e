"""The event journal: recent events of jobs and schedules, read in a resumable order.

A row's *position* is ``(tx, id)``. On PostgreSQL ``tx`` is the id of the transaction that
wrote it, and a reader only reads rows whose transaction is older than every transaction
still running (the horizon, taken from the snapshot in an earlier statement): by then no
transaction that could still add a row at a lower position is alive. Reading "all rows after
position P" is therefore never overtaken by a row committed later at a lower position, the
trap of plain serial ids when two transactions (or two gateway replicas) commit in the
opposite order of their inserts. SQLite lets one transaction write at a time, so its ids are
already in commit order and ``tx`` stays 0.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import and_, delete, func, insert, or_, select, text, update
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql.elements import ColumnElement

from gridgate.gateway.schema import event_journal_pruned_table as pruned
from gridgate.gateway.schema import event_journal_table as journal

TOKEN = re.compile(r"^([0-9]{1,19})-([0-9]{1,19})$")
HORIZON = text("SELECT txid_snapshot_xmin(txid_current_snapshot())")


@dataclass(frozen=True, order=True)
class Position:
    """Where a row sits in the journal's order; :meth:`token` is its resume token."""

    tx: int
    id: int

    def token(self) -> str:
        return f"{self.tx}-{self.id}"

    @classmethod
    def parse(cls, token: str) -> Position | None:
        """The position of a token, or ``None`` if it is not one of ours."""
        match = TOKEN.match(token.strip())
        if match is None:
            return None
        return cls(int(match[1]), int(match[2]))


START = Position(0, 0)
"""Before every row."""


@dataclass(frozen=True)
class JournalEvent:
    position: Position
    event_id: str
    event_type: str
    owner: str
    job_id: str | None
    schedule_id: str | None
    body: str


def _after(position: Position) -> ColumnElement[bool]:
    return or_(
        journal.c.tx > position.tx,
        and_(journal.c.tx == position.tx, journal.c.id > position.id),
    )


async def insert_journal_rows(connection: AsyncConnection, rows: list[dict[str, Any]]) -> None:
    """Write journal rows in the open transaction, stamped with its id on PostgreSQL."""
    if not rows:
        return
    statement = insert(journal)
    if connection.dialect.name == "postgresql":
        statement = statement.values(tx=func.txid_current())
    await connection.execute(statement, rows)


class EventJournalStore:
    """Journal rows; new ones are buffered and written in one statement by :meth:`flush`."""

    def __init__(self, connection: AsyncConnection) -> None:
        self.connection = connection
        self._pending: list[dict[str, Any]] = []

    @property
    def _postgres(self) -> bool:
        return self.connection.dialect.name == "postgresql"

    def add(
        self,
        *,
        event_id: str,
        event_type: str,
        owner: str,
        job_id: str | None,
        schedule_id: str | None,
        body: str,
        created_at: datetime,
    ) -> None:
        self._pending.append(
            {
                "event_id": event_id,
                "event_type": event_type,
                "owner": owner,
                "job_id": job_id,
                "schedule_id": schedule_id,
                "body": body,
                "created_at": created_at,
            }
        )

    def discard(self) -> None:
        self._pending.clear()

    def take(self) -> list[dict[str, Any]]:
        """The buffered rows, no longer buffered (the caller writes them)."""
        rows, self._pending = self._pending, []
        return rows

    async def flush(self) -> None:
        rows, self._pending = self._pending, []
        await insert_journal_rows(self.connection, rows)

    async def _horizon(self) -> int | None:
        """Transactions below this id are all over (committed or not); ``None``: no bound."""
        if not self._postgres:
            return None
        return int((await self.connection.execute(HORIZON)).scalar_one())

    async def read_after(
        self,
        position: Position,
        *,
        limit: int,
        owner: str | None = None,
        job_id: str | None = None,
    ) -> list[JournalEvent]:
        """Rows after ``position`` in order, the whole of every transaction read or none."""
        horizon = await self._horizon()
        query = select(journal).where(_after(position))
        if horizon is not None:
            query = query.where(journal.c.tx < horizon)
        if owner is not None:
            query = query.where(journal.c.owner == owner)
        if job_id is not None:
            query = query.where(journal.c.job_id == job_id)
        rows = await self.connection.execute(
            query.order_by(journal.c.tx, journal.c.id).limit(limit)
        )
        return [
            JournalEvent(
                position=Position(r.tx, r.id),
                event_id=r.event_id,
                event_type=r.event_type,
                owner=r.owner,
                job_id=r.job_id,
                schedule_id=r.schedule_id,
                body=r.body,
            )
            for r in rows
        ]

    async def tail(self) -> Position:
        """The last readable position (every row at or before it can be read now)."""
        horizon = await self._horizon()
        query = select(journal.c.tx, journal.c.id)
        if horizon is not None:
            query = query.where(journal.c.tx < horizon)
        row = (
            await self.connection.execute(
                query.order_by(journal.c.tx.desc(), journal.c.id.desc()).limit(1)
            )
        ).first()
        return START if row is None else Position(row.tx, row.id)

    async def pruned_through(self) -> Position | None:
        """The last position pruned away (every row at or before it is gone), if any."""
        row = (await self.connection.execute(select(pruned.c.tx, pruned.c.row_id))).first()
        return None if row is None else Position(row.tx, row.row_id)

    async def prune(self, before: datetime, batch: int = 10_000) -> int:
        """Delete the rows written before ``before``, a leading run in position order, and
        remember the last position deleted."""
        newest = (
            await self.connection.execute(
                select(journal.c.tx, journal.c.id)
                .where(journal.c.created_at < before)
                .order_by(journal.c.tx.desc(), journal.c.id.desc())
                .limit(1)
            )
        ).first()
        if newest is None:
            return 0
        doomed = (
            await self.connection.execute(
                select(journal.c.tx, journal.c.id)
                .where(~_after(Position(newest.tx, newest.id)))
                # A leading run even when cut by the batch size.
                .order_by(journal.c.tx, journal.c.id)
                .limit(batch)
            )
        ).all()
        if not doomed:
            return 0
        await self.connection.execute(
            delete(journal).where(journal.c.id.in_([r.id for r in doomed]))
        )
        last = Position(doomed[-1].tx, doomed[-1].id)
        moved = await self.connection.execute(
            update(pruned)
            .where(
                or_(pruned.c.tx < last.tx, and_(pruned.c.tx == last.tx, pruned.c.row_id < last.id))
            )
            .values(tx=last.tx, row_id=last.id)
        )
        if not moved.rowcount and await self.pruned_through() is None:
            await self.connection.execute(insert(pruned).values(id=1, tx=last.tx, row_id=last.id))
        return len(doomed)


__all__ = ["START", "EventJournalStore", "JournalEvent", "Position"]
