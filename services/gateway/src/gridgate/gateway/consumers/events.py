"""Listens to job and schedule events so that WAIT and the live event streams wake on
changes written by other gateway replicas (and by this one)."""

from __future__ import annotations

import contextlib
from collections.abc import Callable

import orjson
from aio_pika.abc import AbstractChannel, AbstractIncomingMessage, AbstractRobustConnection

from gridgate.broker import stop_step
from gridgate.contracts import EVENTS_EXCHANGE
from gridgate.gateway.services.notifier import PhaseNotifier


class EventListener:
    def __init__(
        self,
        connection: AbstractRobustConnection,
        notifier: PhaseNotifier,
        on_event: Callable[[str | None], None] | None = None,
    ) -> None:
        self._connection = connection
        self._notifier = notifier
        self._wake_streams = on_event
        self._channel: AbstractChannel | None = None

    async def start(self) -> None:
        self._channel = await self._connection.channel()
        # Exclusive, auto-deleted: wake-ups are a hint, never work that must survive.
        queue = await self._channel.declare_queue(exclusive=True, auto_delete=True)
        await queue.bind(EVENTS_EXCHANGE, routing_key="job.#")
        if self._wake_streams is not None:
            await queue.bind(EVENTS_EXCHANGE, routing_key="schedule.#")
        await queue.consume(self._on_event, no_ack=True)

    async def stop(self) -> None:
        if self._channel is not None:
            await stop_step(
                "event wake-up channel not closed",
                self._channel.close(),
                connection=self._connection,
            )

    async def _on_event(self, message: AbstractIncomingMessage) -> None:
        if self._wake_streams is not None:
            self._wake_streams(message.message_id)
        with contextlib.suppress(ValueError, KeyError, TypeError):
            job_id = orjson.loads(message.body)["data"]["job_id"]
            self._notifier.notify(str(job_id))
