"""The transactional outbox: messages written with the state change that caused them."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, insert, select
from sqlalchemy.ext.asyncio import AsyncConnection

from gridgate.gateway.schema import outbox_table
from gridgate.gateway.storage.journal import EventJournalStore

COMMAND = "command"
EVENT = "event"


@dataclass(frozen=True)
class OutboxMessage:
    id: int
    kind: str
    routing_key: str
    message_id: str
    message_type: str
    job_id: str
    body: str


INSERT_OUTBOX = insert(outbox_table)


class OutboxStore:
    """Outbox rows; new ones are buffered and written in one statement by :meth:`flush`.

    Events also go to the event journal (live streams resume from it), written by the same
    flush: one more statement in a unit of work that has events.
    """

    def __init__(self, connection: AsyncConnection) -> None:
        self.connection = connection
        self._pending: list[dict[str, object]] = []
        self.journal = EventJournalStore(connection)

    def take(self) -> list[dict[str, object]]:
        """The buffered rows, no longer buffered (the caller writes them)."""
        rows, self._pending = self._pending, []
        return rows

    def discard(self) -> None:
        """Forget buffered rows (the unit of work is rolled back to be retried)."""
        self._pending.clear()
        self.journal.discard()

    def add(
        self,
        *,
        kind: str,
        routing_key: str,
        message_id: str,
        message_type: str,
        job_id: str,
        body: str,
        created_at: datetime,
    ) -> None:
        self._pending.append(
            {
                "kind": kind,
                "routing_key": routing_key,
                "message_id": message_id,
                "message_type": message_type,
                "job_id": job_id,
                "body": body,
                "created_at": created_at,
            }
        )

    async def flush(self) -> None:
        if self._pending:
            rows, self._pending = self._pending, []
            await self.connection.execute(INSERT_OUTBOX, rows)
        await self.journal.flush()

    async def claim(self, limit: int) -> list[OutboxMessage]:
        """The oldest messages, locked so that another gateway replica skips them."""
        query = select(outbox_table).order_by(outbox_table.c.id).limit(limit)
        if self.connection.dialect.name == "postgresql":
            query = query.with_for_update(skip_locked=True)
        rows = await self.connection.execute(query)
        return [
            OutboxMessage(
                id=r.id,
                kind=r.kind,
                routing_key=r.routing_key,
                message_id=r.message_id,
                message_type=r.message_type,
                job_id=r.job_id,
                body=r.body,
            )
            for r in rows
        ]

    async def remove(self, ids: list[int]) -> None:
        await self.connection.execute(delete(outbox_table).where(outbox_table.c.id.in_(ids)))
