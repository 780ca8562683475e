"""The notifier's own events: written to its outbox in the transaction of the change they
announce, then published by :class:`OutboxRelay` (at least once: a crash between publishing
and deleting publishes again; consumers de-duplicate on the CloudEvent id)."""

from __future__ import annotations

from datetime import datetime

import structlog
from cloudevents.core.bindings import rabbitmq as ce_rabbitmq
from cloudevents.core.formats.json import JSONFormat
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from gridgate.broker.publisher import Outgoing, Publisher, cloud_event
from gridgate.contracts.subscriptions import (
    SUBSCRIPTION_DISABLED_KEY,
    SUBSCRIPTION_DISABLED_TYPE,
    SUBSCRIPTION_EVENT_SOURCE,
    SubscriptionEvent,
)
from gridgate.core.crashpoints import crash_point
from gridgate.core.loops import WakeableLoop
from gridgate.notifier.models import OutboxEvent
from gridgate.notifier.storage import NotifierOutboxStore

log = structlog.get_logger(__name__)


async def stage_subscription_disabled(
    connection: AsyncConnection, subscription_id: str, owner: str, reason: str, at: datetime
) -> None:
    """Put ``subscription.disabled`` in the outbox, in the caller's transaction."""
    data = SubscriptionEvent(
        subscription_id=subscription_id, owner=owner, reason=reason, occurred_at=at
    )
    event = cloud_event(
        event_type=SUBSCRIPTION_DISABLED_TYPE,
        source=SUBSCRIPTION_EVENT_SOURCE,
        subject=subscription_id,
        data=data.model_dump(mode="json"),
    )
    body = ce_rabbitmq.to_structured(event, JSONFormat()).body.decode()
    await NotifierOutboxStore(connection).add(
        OutboxEvent(event.get_id(), event.get_type(), SUBSCRIPTION_DISABLED_KEY, body), at
    )


class OutboxRelay(WakeableLoop):
    """Publishes the outbox's rows (confirmed), then deletes them, in one transaction.

    Runs in the background; ``wake()`` after a commit that staged an event. On PostgreSQL two
    replicas skip each other's locked rows; on SQLite the transaction holds the write lock
    while it publishes, which is short and rare (the outbox is nearly always empty).
    """

    def __init__(
        self, engine: AsyncEngine, publisher: Publisher, *, idle_poll_s: float, batch: int = 100
    ) -> None:
        super().__init__("notifier-outbox-relay")
        self._engine = engine
        self._publisher = publisher
        self._idle_poll_s = idle_poll_s
        self._batch = batch

    async def _run(self) -> None:
        while True:
            try:
                sent = await self.relay_once()
            except Exception:
                log.exception("notifier outbox relay round failed; trying again")
                sent = 0
            if sent < self._batch:
                await self._pause(self._idle_poll_s)

    async def relay_once(self) -> int:
        """Publish one batch; how many rows went out."""
        async with self._engine.begin() as connection:
            store = NotifierOutboxStore(connection)
            rows = await store.oldest(self._batch)
            if not rows:
                return 0
            await self._publisher.publish_many(
                [
                    Outgoing(
                        body=event.body.encode(),
                        message_id=event.message_id,
                        routing_key=event.routing_key,
                        command=False,
                        kind=event.message_type,
                    )
                    for _, event in rows
                ]
            )
            crash_point("notifier-outbox-published")
            await store.remove([row_id for row_id, _ in rows])
        return len(rows)
