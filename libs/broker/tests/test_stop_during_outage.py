"""Consumers and RPC ends stop at once while their broker is gone: a service asked to stop
during an outage must not wait for a reconnection that may never come (it did, until killed;
then RPC still waited out its 5 s bound)."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
from aio_pika.abc import AbstractRobustConnection
from pydantic import TypeAdapter

from gridgate.broker import Consumer, RpcClient, RpcServer, connect, is_connected
from gridgate.broker.stopping import BROKER_STEP_TIMEOUT_S
from gridgate.testing.services import rabbitmq_vhost

QUEUE = "stop-during-outage"


async def ignore(_: dict[str, Any]) -> None:
    return None


async def answer(**_: Any) -> str:
    return "answer"


async def consumer_on(connection: AbstractRobustConnection) -> Consumer[dict[str, Any]]:
    channel = await connection.channel()
    await channel.declare_queue(QUEUE, durable=True)
    consumer = Consumer(connection, QUEUE, TypeAdapter(dict[str, Any]), ignore)
    await consumer.start()
    assert consumer.running
    return consumer


async def rpc_client_on(connection: AbstractRobustConnection) -> RpcClient:
    return await RpcClient.open(connection)


async def rpc_server_on(connection: AbstractRobustConnection) -> RpcServer:
    return await RpcServer.open(connection, {"answer": answer})


@pytest.mark.parametrize("opened", [consumer_on, rpc_client_on, rpc_server_on])
async def test_a_broker_user_stops_at_once_while_its_broker_is_gone(opened: Any) -> None:
    vhost = rabbitmq_vhost()
    url = vhost.__enter__()
    try:
        connection = await connect(url)
        user = await opened(connection)
    finally:
        # The vhost deleted: the broker closes the connection and refuses every reconnection.
        vhost.__exit__(None, None, None)
    async with asyncio.timeout(10):
        while is_connected(connection):  # noqa: ASYNC110 - a connection's state, no event
            await asyncio.sleep(0.05)
    started = time.monotonic()
    # Before, a consumer's stop waited for the reconnection for ever, and RPC's close for
    # its bound of 5 s per step.
    await asyncio.wait_for(user.stop() if isinstance(user, Consumer) else user.close(), 15)
    # No step waited out its bound: each was skipped, the connection being down.
    assert time.monotonic() - started < BROKER_STEP_TIMEOUT_S
    await connection.close()
    if isinstance(user, Consumer):
        assert not user.running
