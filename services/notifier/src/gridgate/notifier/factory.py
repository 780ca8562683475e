"""The notifier's process context: database, broker consumer, delivery loop, services."""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field
from typing import Any

import httpx
import structlog
from aio_pika.abc import AbstractRobustConnection
from pydantic import TypeAdapter
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from gridgate.broker import Consumer, Publisher, declare_topology, is_connected
from gridgate.broker.topology import dead_letter_queue_name, retry_queue_name
from gridgate.contracts.topology import (
    COMMANDS_EXCHANGE,
    DEAD_LETTER_EXCHANGE,
    EVENTS_EXCHANGE,
    NOTIFIER_QUEUE,
    RETRY_EXCHANGE,
)
from gridgate.core.periodic import Periodic
from gridgate.notifier.config import NotifierSettings
from gridgate.notifier.guard import OutboundPolicy, guarded_client
from gridgate.notifier.schema.engine import create_engine
from gridgate.notifier.sealing import SecretBox
from gridgate.notifier.services.announcements import OutboxRelay
from gridgate.notifier.services.delivery import Deliverer, DeliveryLoop, RetryPolicy
from gridgate.notifier.services.hooks import JobHooks
from gridgate.notifier.services.intake import EventIntake
from gridgate.notifier.services.retention import PRUNE_INTERVAL_S, Retention
from gridgate.notifier.services.subscriptions import SubscriptionService

log = structlog.get_logger(__name__)

EVENT_BINDINGS = ("job.#", "schedule.#")
DATABASE_CHECK_TIMEOUT_S = 2.0


async def declare_notifier_queue(connection: AbstractRobustConnection) -> None:
    """The notifier's durable queue on the events exchange, with its retry and dead letters.

    Declared here, not in the shared topology: a deployment without a notifier must not
    collect every event in a queue nobody reads.
    """
    channel = await connection.channel()
    try:
        await declare_topology(channel)
        queue = await channel.declare_queue(
            NOTIFIER_QUEUE,
            durable=True,
            arguments={
                "x-dead-letter-exchange": DEAD_LETTER_EXCHANGE,
                "x-dead-letter-routing-key": NOTIFIER_QUEUE,
            },
        )
        for key in EVENT_BINDINGS:
            await queue.bind(EVENTS_EXCHANGE, routing_key=key)
        # Retried messages come back through the commands exchange, as for work queues.
        await queue.bind(COMMANDS_EXCHANGE, routing_key=NOTIFIER_QUEUE)
        dead = await channel.declare_queue(dead_letter_queue_name(NOTIFIER_QUEUE), durable=True)
        await dead.bind(DEAD_LETTER_EXCHANGE, routing_key=NOTIFIER_QUEUE)
        waiting = await channel.declare_queue(
            retry_queue_name(NOTIFIER_QUEUE),
            durable=True,
            arguments={
                "x-dead-letter-exchange": COMMANDS_EXCHANGE,
                "x-dead-letter-routing-key": NOTIFIER_QUEUE,
            },
        )
        await waiting.bind(RETRY_EXCHANGE, routing_key=NOTIFIER_QUEUE)
    finally:
        await channel.close()


@dataclass
class NotifierContext:
    """Everything one notifier process runs; ``start`` and ``stop`` bracket its life."""

    settings: NotifierSettings
    connection: AbstractRobustConnection
    engine: AsyncEngine = field(init=False)
    subscriptions: SubscriptionService = field(init=False)
    loop: DeliveryLoop = field(init=False)
    consumer: Consumer[dict[str, Any]] | None = None
    publisher: Publisher | None = None
    http: httpx.AsyncClient | None = None
    relay: OutboxRelay | None = None
    pruner: Periodic | None = None

    def __post_init__(self) -> None:
        settings = self.settings
        self.engine = create_engine(settings.database_url.get_secret_value())
        self.policy = OutboundPolicy.build(settings.allow_http, settings.allowed_networks)
        self.box = SecretBox(settings.secret_keys.get_secret_value())
        self.subscriptions = SubscriptionService(
            self.engine,
            self.policy,
            self.box,
            max_per_owner=settings.max_subscriptions_per_owner,
        )

    async def start(self) -> None:
        settings = self.settings
        if settings.run_migrations:
            from gridgate.notifier.schema.migrate import upgrade_schema

            await upgrade_schema(self.engine)
        await declare_notifier_queue(self.connection)
        self.publisher = await Publisher.open(self.connection)
        self.relay = OutboxRelay(self.engine, self.publisher, idle_poll_s=settings.poll_interval_s)
        self.relay.start()
        self.http = guarded_client(
            self.policy, settings.timeout_s, max_connections=settings.concurrency
        )
        deliverer = Deliverer(
            self.engine,
            self.http,
            self.box,
            RetryPolicy(settings.retry_base_s, settings.retry_max_s, settings.give_up_after_s),
            lease_s=settings.lease_s,
            batch=settings.batch,
            concurrency=settings.concurrency,
            max_response_bytes=settings.max_response_bytes,
            on_disabled=self._announce_disabled,
            order_hold_s=settings.order_hold_s,
        )
        self.loop = DeliveryLoop(deliverer, settings.poll_interval_s)
        self.loop.start()
        self.consumer = Consumer(
            self.connection,
            NOTIFIER_QUEUE,
            TypeAdapter(dict[str, Any]),
            EventIntake(
                self.engine,
                order_window_s=settings.order_window_s,
                on_added=self.loop.wake,
                hooks=JobHooks(self.box),
            ),
            prefetch=settings.intake_prefetch,
            # A database outage: retried with back-off for about a quarter of an hour.
            max_attempts=20,
        )
        await self.consumer.start()
        retention = Retention(self.engine, settings.retention_s)
        self.pruner = Periodic(
            "notifier-retention", retention.prune, PRUNE_INTERVAL_S, "notifier rows pruned"
        )
        self.pruner.start()

    async def stop(self) -> None:
        if self.pruner is not None:
            await self.pruner.stop()
        if self.consumer is not None:
            await self.consumer.stop()
        if hasattr(self, "loop"):
            await self.loop.stop()
        if self.relay is not None:
            await self.relay.stop()
        if self.http is not None:
            await self.http.aclose()
        if self.publisher is not None:
            with contextlib.suppress(Exception):
                await self.publisher.close()
        await self.engine.dispose()

    async def readiness(self) -> dict[str, str]:
        checks: dict[str, str] = {}
        try:
            async with asyncio.timeout(DATABASE_CHECK_TIMEOUT_S):
                async with self.engine.connect() as connection:
                    await connection.execute(text("SELECT 1"))
            checks["database"] = "ok"
        except Exception as exc:
            checks["database"] = f"failed: {type(exc).__name__}"
        checks["broker"] = "ok" if is_connected(self.connection) else "down"
        checks["consumer"] = "ok" if self.consumer is not None and self.consumer.running else "down"
        checks["deliveries"] = "ok" if hasattr(self, "loop") and self.loop.running else "down"
        checks["outbox"] = "ok" if self.relay is not None and self.relay.running else "down"
        return checks

    async def _announce_disabled(self, subscription_id: str, owner: str, reason: str) -> None:
        # The event is in the outbox, committed with the disabling: the relay sends it.
        if self.relay is not None:
            self.relay.wake()
