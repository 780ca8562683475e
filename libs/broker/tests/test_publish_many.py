"""Publisher.publish_many (the outbox relay's path) against a real RabbitMQ: every message of a
batch arrives, persistent and with the same properties as one by one; an unroutable command
fails the batch."""

from __future__ import annotations

import asyncio

import aio_pika
import pytest

from gridgate.broker import BrokerUnavailableError, Publisher, connect, declare_topology
from gridgate.broker.publisher import Outgoing
from gridgate.contracts.topology import COMMANDS_EXCHANGE, EVENTS_EXCHANGE


async def test_a_batch_arrives_whole_with_its_properties(broker_url: str) -> None:
    connection = await connect(broker_url)
    try:
        channel = await connection.channel()
        await declare_topology(channel)
        commands = await channel.declare_queue("test.publish-many.commands", auto_delete=True)
        await commands.bind(COMMANDS_EXCHANGE, routing_key="test.publish-many.commands")
        events = await channel.declare_queue("test.publish-many.events", auto_delete=True)
        await events.bind(EVENTS_EXCHANGE, routing_key="test.many.#")
        publisher = await Publisher.open(connection)
        seen: list[str] = []
        publisher.on_event_published = seen.append
        batch = [
            Outgoing(
                body=f'{{"n": {i}}}'.encode(),
                message_id=f"m{i}",
                routing_key="test.publish-many.commands" if i % 2 else f"test.many.{i}",
                command=i % 2 == 1,
                kind="SubmitJob" if i % 2 else "",
                job_id=f"job{i}" if i % 2 else "",
            )
            for i in range(60)
        ]
        await publisher.publish_many(batch)
        assert seen == [f"test.many.{i}" for i in range(0, 60, 2)]

        async def drain(
            queue: aio_pika.abc.AbstractQueue,
        ) -> list[aio_pika.abc.AbstractIncomingMessage]:
            got = []
            while (message := await queue.get(no_ack=True, fail=False)) is not None:
                got.append(message)
            return got

        got_commands, got_events = await drain(commands), await drain(events)
        assert [m.message_id for m in got_commands] == [f"m{i}" for i in range(1, 60, 2)]
        assert [m.message_id for m in got_events] == [f"m{i}" for i in range(0, 60, 2)]
        first = got_commands[0]
        assert first.body == b'{"n": 1}'
        assert first.type == "SubmitJob"
        assert first.headers == {"job_id": "job1"}
        assert first.content_type == "application/json"
        assert first.delivery_mode == aio_pika.DeliveryMode.PERSISTENT
        assert got_events[0].content_type == "application/cloudevents+json"
        assert got_events[0].delivery_mode == aio_pika.DeliveryMode.PERSISTENT

        # A command that no queue takes is refused (mandatory), not dropped.
        lost = Outgoing(body=b"{}", message_id="x", routing_key="nobody", command=True)
        with pytest.raises(BrokerUnavailableError):
            await asyncio.wait_for(publisher.publish_many([lost]), 30)
        await publisher.close()
    finally:
        await connection.close()
