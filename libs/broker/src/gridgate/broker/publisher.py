"""Confirmed, persistent publishing of commands, reports and CloudEvents."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import aio_pika
from aio_pika.abc import AbstractChannel, AbstractExchange, AbstractRobustConnection
from cloudevents.core.bindings import rabbitmq as ce_rabbitmq
from cloudevents.core.formats.json import JSONFormat
from cloudevents.core.v1.event import CloudEvent

from gridgate.contracts.messages import Message
from gridgate.contracts.topology import COMMANDS_EXCHANGE, EVENTS_EXCHANGE, RETRY_EXCHANGE

JSON = "application/json"


class Publisher:
    """Publishes with publisher confirms: ``await`` returns once the broker has the message."""

    def __init__(self, channel: AbstractChannel) -> None:
        self._channel = channel
        self._exchanges: dict[str, AbstractExchange] = {}
        self.on_event_published: Callable[[str], None] | None = None
        """Called with the routing key of each confirmed event (the gateway counts them)."""

    @classmethod
    async def open(cls, connection: AbstractRobustConnection) -> Publisher:
        # on_return_raises: a command no queue takes (mandatory) fails the publish loudly.
        channel = await connection.channel(publisher_confirms=True, on_return_raises=True)
        return cls(channel)

    async def close(self) -> None:
        await self._channel.close()

    async def _exchange(self, name: str) -> AbstractExchange:
        if name not in self._exchanges:
            self._exchanges[name] = await self._channel.get_exchange(name, ensure=False)
        return self._exchanges[name]

    async def send(self, queue: str, message: Message) -> None:
        """Send a command or report to a work queue."""
        kind = getattr(message, "kind", type(message).__name__)
        await self.send_raw(
            queue,
            message.model_dump_json().encode(),
            message_id=message.message_id,
            kind=str(kind),
            job_id=message.job_id,
        )

    async def send_raw(
        self,
        queue: str,
        body: bytes,
        *,
        message_id: str,
        kind: str,
        job_id: str,
        headers: dict[str, Any] | None = None,
        exchange: str = COMMANDS_EXCHANGE,
        expiration_s: float | None = None,
    ) -> None:
        """Send already-serialised bytes (the outbox relay and retries use this)."""
        amqp = aio_pika.Message(
            body,
            content_type=JSON,
            delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
            message_id=message_id,
            type=kind,
            headers={"job_id": job_id, **(headers or {})},
            expiration=expiration_s,
        )
        target = await self._exchange(exchange)
        # mandatory: an unroutable command is an error, not a silent drop.
        await target.publish(amqp, routing_key=queue, mandatory=True)

    async def retry_later(
        self,
        queue: str,
        body: bytes,
        *,
        message_id: str,
        kind: str,
        job_id: str,
        attempt: int,
        delay_s: float,
    ) -> None:
        """Park a message in the queue's retry queue for ``delay_s`` seconds."""
        await self.send_raw(
            queue,
            body,
            message_id=message_id,
            kind=kind,
            job_id=job_id,
            headers={"x-gridgate-attempt": attempt},
            exchange=RETRY_EXCHANGE,
            expiration_s=delay_s,
        )

    async def publish_event(self, routing_key: str, event: CloudEvent) -> None:
        """Publish a CloudEvent (structured JSON mode) on the events topic exchange."""
        structured = ce_rabbitmq.to_structured(event, JSONFormat())
        await self.publish_event_bytes(routing_key, structured.body, event_id=event.get_id())

    async def publish_event_bytes(self, routing_key: str, body: bytes, *, event_id: str) -> None:
        amqp = aio_pika.Message(
            body,
            content_type=JSONFormat.CONTENT_TYPE,
            delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
            message_id=event_id,
        )
        target = await self._exchange(EVENTS_EXCHANGE)
        # Not mandatory: an event nobody subscribed to is fine, unlike a lost command.
        await target.publish(amqp, routing_key=routing_key, mandatory=False)
        if self.on_event_published is not None:
            self.on_event_published(routing_key)


def cloud_event(*, event_type: str, source: str, subject: str, data: dict[str, Any]) -> CloudEvent:
    """Build a CloudEvents 1.0 event carrying JSON data."""
    return CloudEvent(
        attributes={
            "type": event_type,
            "source": source,
            "subject": subject,
            "datacontenttype": JSON,
        },
        data=data,
    )


def decode_event(body: bytes) -> CloudEvent:
    """Parse a structured-mode CloudEvent body."""
    message = ce_rabbitmq.RabbitMQMessage(
        headers={}, content_type=JSONFormat.CONTENT_TYPE, body=body
    )
    event = ce_rabbitmq.from_structured(message, JSONFormat())
    assert isinstance(event, CloudEvent)
    return event
