"""Confirmed, persistent publishing of commands, reports and CloudEvents.

Every failure to get a message into RabbitMQ is raised as
:class:`~gridgate.broker.errors.BrokerUnavailableError` (a transient error), whatever aio-pika
raised: consumers then let the message come back instead of dead-lettering it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import aio_pika
import aiormq
from aio_pika.abc import (
    AbstractChannel,
    AbstractConnection,
    AbstractExchange,
    AbstractMessage,
    AbstractRobustChannel,
    AbstractRobustConnection,
)
from cloudevents.core.bindings import rabbitmq as ce_rabbitmq
from cloudevents.core.formats.json import JSONFormat
from cloudevents.core.v1.event import CloudEvent

from gridgate.broker.errors import BROKER_ERRORS, BrokerUnavailableError
from gridgate.broker.stopping import stop_step
from gridgate.contracts.messages import Message
from gridgate.contracts.topology import COMMANDS_EXCHANGE, EVENTS_EXCHANGE, RETRY_EXCHANGE

JSON = "application/json"
PUBLISH_FAILURES: tuple[type[BaseException], ...] = (*BROKER_ERRORS, OSError, TimeoutError)
"""Everything a publish raises when the broker did not take the message (OSError: sockets)."""


@dataclass(frozen=True)
class Outgoing:
    """One already-serialised message of a batch (:meth:`Publisher.publish_many`)."""

    body: bytes
    message_id: str
    routing_key: str
    command: bool
    """A command or report to a work queue (mandatory, carries its kind and job), else a
    CloudEvent on the events exchange."""
    kind: str = ""
    job_id: str = ""


class Publisher:
    """Publishes with publisher confirms: ``await`` returns once the broker has the message.

    A publish attempted while the robust connection reconnects waits for the channel to be
    back, up to ``ready_timeout_s``: most outages are a broker restart of a few seconds, and
    waiting lets a handler that already did its work report it rather than be redelivered and
    redo it. The wait is bounded so that a broker that stays away ends in
    :class:`BrokerUnavailableError` (the message comes back later) rather than in handlers
    stuck for ever and a shutdown that never ends. A publish is never replayed here: a lost
    confirm does not mean a lost message, and the caller's redelivery is the one retry.

    Parameters
    ----------
    channel
        A channel in confirm mode (robust, to wait for reconnections).
    ready_timeout_s
        How long a publish waits for a reconnecting channel.
    confirm_timeout_s
        How long a publish waits for the broker's confirm.
    """

    def __init__(
        self,
        channel: AbstractChannel,
        *,
        ready_timeout_s: float = 15.0,
        confirm_timeout_s: float = 30.0,
        connection: AbstractConnection | None = None,
    ) -> None:
        self._channel = channel
        self._connection = connection
        self._ready_timeout_s = ready_timeout_s
        self._confirm_timeout_s = confirm_timeout_s
        self._exchanges: dict[str, AbstractExchange] = {}
        self.on_event_published: Callable[[str], None] | None = None
        """Called with the routing key of each confirmed event (the gateway counts them)."""

    @classmethod
    async def open(
        cls,
        connection: AbstractRobustConnection,
        *,
        ready_timeout_s: float = 15.0,
        confirm_timeout_s: float = 30.0,
    ) -> Publisher:
        # on_return_raises: a command no queue takes (mandatory) fails the publish loudly.
        channel = await connection.channel(publisher_confirms=True, on_return_raises=True)
        return cls(
            channel,
            ready_timeout_s=ready_timeout_s,
            confirm_timeout_s=confirm_timeout_s,
            connection=connection,
        )

    async def close(self) -> None:
        """Close the channel; bounded in time (during an outage a robust channel would wait
        for the broker for ever)."""
        await stop_step(
            "publishing channel not closed", self._channel.close(), connection=self._connection
        )

    async def _ready(self) -> None:
        if not isinstance(self._channel, AbstractRobustChannel):
            if self._channel.is_closed:
                raise BrokerUnavailableError("the publishing channel is closed")
            return
        # Always asked, not only when the channel looks closed: between the connection's loss
        # and the channel's restoration the channel may look open, and a publish then goes to
        # the dead channel and hangs until the confirm timeout. Returns at once when ready.
        try:
            async with asyncio.timeout(self._ready_timeout_s):
                await self._channel.ready()
        except TimeoutError as exc:
            raise BrokerUnavailableError(
                f"the broker connection was not back within {self._ready_timeout_s} s"
            ) from exc

    async def _publish(
        self, exchange: str, message: AbstractMessage, routing_key: str, *, mandatory: bool
    ) -> None:
        await self._ready()
        try:
            target = await self._exchange(exchange)
            await target.publish(
                message,
                routing_key=routing_key,
                mandatory=mandatory,
                timeout=self._confirm_timeout_s,
            )
        except PUBLISH_FAILURES as exc:
            # TimeoutError: no confirm in time. Whether the broker has the message is unknown;
            # the caller's redelivery may publish it twice, which consumers tolerate.
            raise BrokerUnavailableError(
                f"publishing to {exchange or 'the default exchange'} ({routing_key}) "
                f"failed: {exc!r}"
            ) from exc

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
        # mandatory: an unroutable command is an error, not a silent drop.
        await self._publish(exchange, amqp, queue, mandatory=True)

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

    async def publish_many(self, messages: Sequence[Outgoing]) -> None:
        """Publish a batch, each message persistent and confirmed, as :meth:`send_raw` and
        :meth:`publish_event_bytes` would one by one; returns once the broker confirmed all.

        For the outbox relay's volume: one readiness check for the batch, properties built
        straight for the AMQP client, and no waiting for each frame to reach the socket
        before the next is queued (the confirms are what is awaited).
        """
        if not messages:
            return
        await self._ready()
        try:
            channel = await self._channel.get_underlay_channel()
            assert isinstance(channel, aiormq.Channel)  # its basic_publish takes wait=
            confirms = [
                channel.basic_publish(
                    m.body,
                    exchange=COMMANDS_EXCHANGE if m.command else EVENTS_EXCHANGE,
                    routing_key=m.routing_key,
                    properties=_properties(m),
                    mandatory=m.command,
                    timeout=self._confirm_timeout_s,
                    wait=False,
                )
                for m in messages
            ]
            await asyncio.gather(*confirms)
        except PUBLISH_FAILURES as exc:
            raise BrokerUnavailableError(
                f"publishing a batch of {len(messages)} failed: {exc!r}"
            ) from exc
        if self.on_event_published is not None:
            for m in messages:
                if not m.command:
                    self.on_event_published(m.routing_key)

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
        # Not mandatory: an event nobody subscribed to is fine, unlike a lost command.
        await self._publish(EVENTS_EXCHANGE, amqp, routing_key, mandatory=False)
        if self.on_event_published is not None:
            self.on_event_published(routing_key)


def _properties(message: Outgoing) -> aiormq.spec.Basic.Properties:
    if message.command:
        return aiormq.spec.Basic.Properties(
            content_type=JSON,
            delivery_mode=aio_pika.DeliveryMode.PERSISTENT.value,
            message_id=message.message_id,
            message_type=message.kind,
            headers={"job_id": message.job_id},
        )
    return aiormq.spec.Basic.Properties(
        content_type=JSONFormat.CONTENT_TYPE,
        delivery_mode=aio_pika.DeliveryMode.PERSISTENT.value,
        message_id=message.message_id,
    )


def cloud_event(
    *,
    event_type: str,
    source: str,
    subject: str,
    data: dict[str, Any],
    extensions: dict[str, str | int] | None = None,
) -> CloudEvent:
    """Build a CloudEvents 1.0 event carrying JSON data, with extension attributes if any."""
    return CloudEvent(
        attributes={
            "type": event_type,
            "source": source,
            "subject": subject,
            "datacontenttype": JSON,
            **(extensions or {}),
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
