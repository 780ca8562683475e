"""Taking events in: one delivery row per matching subscription, committed before the ack."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import structlog
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.ext.asyncio import AsyncEngine

from gridgate.core.crashpoints import crash_point
from gridgate.core.errors import FatalError, TransientError
from gridgate.notifier.models import DeliveryStatus, IncomingEvent
from gridgate.notifier.services.hooks import JobHooks
from gridgate.notifier.storage import DeliveryStore, SequenceStore, SubscriptionStore
from gridgate.observability import observe_webhook_out_of_order

log = structlog.get_logger(__name__)


class EventIntake:
    """Fans an event out to its owner's matching subscriptions.

    Only the event's owner's subscriptions are looked at: a user never receives another
    user's events. The same event twice (the relay publishes at least once) adds nothing: a
    delivery is unique per (subscription, event id).

    A numbered job event is also recorded as taken in, whether or not a subscription wants
    it: a later event of the job waits for its predecessors' numbers, not for deliveries
    (docs/adr/0014-job-event-sequence.md). Its deliveries are due at once; events without a
    number wait ``order_window_s`` instead.

    A job event carrying the job's notification URL first makes the job's hook, in the same
    transaction, so the hook receives that event and every later one
    (docs/adr/0018-job-notification-url.md).
    """

    def __init__(
        self,
        engine: AsyncEngine,
        *,
        order_window_s: float,
        on_added: Callable[[], None] | None = None,
        hooks: JobHooks | None = None,
    ) -> None:
        self._engine = engine
        self._window = timedelta(seconds=order_window_s)
        self._on_added = on_added
        self._hooks = hooks

    async def __call__(self, envelope: dict[str, Any]) -> None:
        try:
            event = IncomingEvent.parse(envelope, orjson.dumps(envelope).decode())
        except (KeyError, TypeError, ValueError) as exc:
            raise FatalError(f"not a gridgate event: {exc!r}") from exc
        now = datetime.now(UTC)
        try:
            async with self._engine.begin() as connection:
                if event.sequence is not None:
                    await SequenceStore(connection).take_in(event.subject, event.sequence, now)
                if event.hook_url is not None and self._hooks is not None:
                    # Before the fan-out below, in its transaction: the hook gets this event.
                    await self._hooks.ensure(connection, event, now)
                subscriptions = SubscriptionStore(connection)
                matching = [
                    record
                    for record in await subscriptions.enabled_for_owner(event.owner, event.job_id)
                    if record.view.matches(event)
                ]
                store = DeliveryStore(connection)
                late = await store.overtaken(
                    [record.view.id for record in matching],
                    event.subject,
                    event.order_major,
                    event.order_minor,
                )
                added = await store.add(
                    [
                        {
                            "id": str(uuid.uuid4()),
                            "subscription_id": record.view.id,
                            "event_id": event.id,
                            "event_type": event.type,
                            "subject": event.subject,
                            "order_major": event.order_major,
                            "order_minor": event.order_minor,
                            "sequence": event.sequence,
                            "body": event.body,
                            "status": DeliveryStatus.PENDING,
                            "attempts": 0,
                            "next_attempt_at": now
                            if event.sequence is not None
                            else now + self._window,
                            "created_at": now,
                            "retry_from": now,
                        }
                        for record in matching
                    ]
                )
        except (OperationalError, DBAPIError, OSError, TimeoutError) as exc:
            raise TransientError(f"database: {exc.__class__.__name__}") from exc
        crash_point("notifier-intake-committed")
        if late:
            # Delivered anyway (receivers can sort by job_version and ordinal); counted so
            # an operator sees when order_window_s is too short for the broker's delays.
            observe_webhook_out_of_order(late)
            log.warning("event arrived after later ones were delivered", event_id=event.id)
        if added:
            log.debug("event queued for delivery", event_id=event.id, deliveries=added)
        # A numbered event may release deliveries of later ones, even when it adds none.
        if (added or event.sequence is not None) and self._on_added is not None:
            self._on_added()
