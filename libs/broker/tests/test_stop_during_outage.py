"""A consumer stops at once while its broker is gone: a service asked to stop during an
outage must not wait for a reconnection that may never come (it did, until killed)."""

from __future__ import annotations

import asyncio
from typing import Any

from pydantic import TypeAdapter

from gridgate.broker import Consumer, connect, is_connected
from gridgate.testing.services import rabbitmq_vhost

QUEUE = "stop-during-outage"


async def ignore(_: dict[str, Any]) -> None:
    return None


async def test_a_consumer_stops_at_once_while_its_broker_is_gone() -> None:
    vhost = rabbitmq_vhost()
    url = vhost.__enter__()
    try:
        connection = await connect(url)
        channel = await connection.channel()
        await channel.declare_queue(QUEUE, durable=True)
        consumer = Consumer(connection, QUEUE, TypeAdapter(dict[str, Any]), ignore)
        await consumer.start()
        assert consumer.running
    finally:
        # The vhost deleted: the broker closes the connection and refuses every reconnection.
        vhost.__exit__(None, None, None)
    async with asyncio.timeout(10):
        while is_connected(connection):  # noqa: ASYNC110 - a connection's state, no event
            await asyncio.sleep(0.05)
    # Before, stop() waited for the reconnection for ever: this timed out.
    await asyncio.wait_for(consumer.stop(), timeout=15)
    await connection.close()
    assert not consumer.running
