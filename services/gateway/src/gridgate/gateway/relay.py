"""The outbox relay: publishes committed outbox rows, then deletes them.

A crash after publishing but before deleting publishes a row again on restart: consumers are
idempotent by job state, so at-least-once is safe here, while at-most-once would lose work.
"""

from __future__ import annotations

import contextlib

import structlog
from sqlalchemy.ext.asyncio import AsyncEngine

from gridgate.broker.publisher import Outgoing, Publisher
from gridgate.core.crashpoints import crash_point
from gridgate.core.loops import WakeableLoop
from gridgate.gateway.storage.outbox import COMMAND, OutboxMessage, OutboxStore

log = structlog.get_logger(__name__)


class OutboxRelay(WakeableLoop):
    """Background task; ``wake()`` after a commit shortens the wait to the next round.

    A wake-up that comes while a round publishes is kept for the next pause (it ends at
    once): the relay used to forget it, and rows committed during a round then waited for
    the idle poll, up to a second, in every burst of new jobs."""

    def __init__(
        self,
        engine: AsyncEngine,
        publisher: Publisher,
        *,
        batch: int = 200,
        idle_poll_s: float = 1.0,
    ) -> None:
        super().__init__("outbox-relay")
        self._engine = engine
        self._publisher = publisher
        self._batch = batch
        self._idle_poll_s = idle_poll_s
        self.published = 0

    async def stop(self) -> None:
        await super().stop()
        # Publish what is left so a clean shutdown leaves nothing waiting.
        with contextlib.suppress(Exception):
            while await self.relay_once():
                pass

    async def _run(self) -> None:
        while True:
            try:
                sent = await self.relay_once()
            except Exception:
                log.exception("outbox relay round failed")
                sent = 0
            if sent < self._batch:
                await self._pause(self._idle_poll_s)

    async def relay_once(self) -> int:
        """Publish one batch (in order, confirmed); return how many were sent."""
        async with self._engine.connect() as connection:
            store = OutboxStore(connection)
            messages = await store.claim(self._batch)
            if not messages:
                await connection.rollback()
                return 0
            await self._publisher.publish_many([_outgoing(m) for m in messages])
            crash_point("relay-published")
            await store.remove([m.id for m in messages])
            await connection.commit()
        self.published += len(messages)
        return len(messages)


def _outgoing(message: OutboxMessage) -> Outgoing:
    return Outgoing(
        body=message.body.encode(),
        message_id=message.message_id,
        routing_key=message.routing_key,
        command=message.kind == COMMAND,
        kind=message.message_type,
        job_id=message.job_id,
    )
