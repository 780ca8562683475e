"""Listens to job events so that WAIT wakes on changes written by other gateway replicas."""

from __future__ import annotations

import contextlib

import orjson
from aio_pika.abc import AbstractChannel, AbstractIncomingMessage, AbstractRobustConnection

from gridgate.contracts import EVENTS_EXCHANGE
from gridgate.gateway.services.notifier import PhaseNotifier


class EventListener:
    def __init__(self, connection: AbstractRobustConnection, notifier: PhaseNotifier) -> None:
        self._connection = connection
        self._notifier = notifier
        self._channel: AbstractChannel | None = None

    async def start(self) -> None:
        self._channel = await self._connection.channel()
        # Exclusive, auto-deleted: wake-ups are a hint, never work that must survive.
        queue = await self._channel.declare_queue(exclusive=True, auto_delete=True)
        await queue.bind(EVENTS_EXCHANGE, routing_key="job.#")
        await queue.consume(self._on_event, no_ack=True)

    async def stop(self) -> None:
        if self._channel is not None:
            with contextlib.suppress(Exception):
                await self._channel.close()

    async def _on_event(self, message: AbstractIncomingMessage) -> None:
        with contextlib.suppress(ValueError, KeyError, TypeError):
            job_id = orjson.loads(message.body)["data"]["job_id"]
            self._notifier.notify(str(job_id))
