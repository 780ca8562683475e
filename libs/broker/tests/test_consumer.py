"""The consumer runner against a real RabbitMQ: ack after work, retry, usage, dead-letter."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import aio_pika
import pytest
import pytest_asyncio
from aio_pika.abc import AbstractRobustConnection

from gridgate.broker import Consumer, HandlerOutcome, Publisher, connect, declare_topology
from gridgate.broker.connection import BrokerUnreachableError
from gridgate.broker.topology import dead_letter_queue_name
from gridgate.contracts import COMMAND_ADAPTER, RESULTS_QUEUE, Command, PurgeResults
from gridgate.core.errors import FatalError, TransientError, UsageError


@pytest_asyncio.fixture(loop_scope="session")
async def connection(broker_url: str) -> AsyncIterator[AbstractRobustConnection]:
    conn = await connect(broker_url)
    channel = await conn.channel()
    await declare_topology(channel)
    for name in (RESULTS_QUEUE, dead_letter_queue_name(RESULTS_QUEUE)):
        await (await channel.get_queue(name)).purge()
    await channel.close()
    yield conn
    await conn.close()


async def _dead_letters(connection: AbstractRobustConnection) -> list[bytes]:
    channel = await connection.channel()
    queue = await channel.get_queue(dead_letter_queue_name(RESULTS_QUEUE))
    bodies = []
    while (message := await queue.get(fail=False)) is not None:
        bodies.append(message.body)
        await message.ack()
    await channel.close()
    return bodies


async def _run(connection, handler, on_usage_error=None, expect=1, **options):
    outcomes: list[HandlerOutcome] = []
    consumer: Consumer[Command] = Consumer(
        connection,
        RESULTS_QUEUE,
        COMMAND_ADAPTER,
        handler,
        on_usage_error=on_usage_error,
        observer=outcomes.append,
        **options,
    )
    await consumer.start()
    publisher = await Publisher.open(connection)
    await publisher.send(RESULTS_QUEUE, PurgeResults(job_id="job1", owner="alice"))
    for _ in range(200):
        if len(outcomes) >= expect:
            break
        await asyncio.sleep(0.05)
    await consumer.stop()
    await publisher.close()
    return outcomes


async def test_handled_message_is_acked_once(connection) -> None:
    seen: list[Command] = []

    async def handler(message: Command) -> None:
        seen.append(message)

    outcomes = await _run(connection, handler)
    assert outcomes == [HandlerOutcome.DONE]
    assert [m.job_id for m in seen] == ["job1"]
    assert await _dead_letters(connection) == []


async def test_transient_errors_retry_with_back_off_then_succeed(connection) -> None:
    attempts: list[float] = []

    async def handler(message: Command) -> None:
        attempts.append(asyncio.get_running_loop().time())
        if len(attempts) < 3:
            raise TransientError("database briefly away")

    outcomes = await _run(connection, handler, expect=3, base_delay_s=0.2)
    assert outcomes == [HandlerOutcome.RETRIED, HandlerOutcome.RETRIED, HandlerOutcome.DONE]
    # The back-off doubles: 0.2 s before the second attempt, 0.4 s before the third.
    assert attempts[1] - attempts[0] >= 0.15
    assert attempts[2] - attempts[1] >= 0.35


async def test_transient_errors_dead_letter_after_the_last_attempt(connection) -> None:
    async def handler(message: Command) -> None:
        raise TransientError("never comes back")

    outcomes = await _run(connection, handler, expect=3, base_delay_s=0.05, max_attempts=3)
    assert outcomes == [
        HandlerOutcome.RETRIED,
        HandlerOutcome.RETRIED,
        HandlerOutcome.DEAD_LETTERED,
    ]
    assert len(await _dead_letters(connection)) == 1


async def test_usage_errors_tell_the_user_and_are_not_retried(connection) -> None:
    told: list[tuple[str, str]] = []

    async def handler(message: Command) -> None:
        raise UsageError("the dataset does not exist")

    async def on_usage_error(message: Command, reason: str) -> None:
        told.append((message.job_id, reason))

    outcomes = await _run(connection, handler, on_usage_error)
    assert outcomes == [HandlerOutcome.USAGE_ERROR]
    assert told == [("job1", "the dataset does not exist")]
    assert await _dead_letters(connection) == []


async def test_fatal_errors_and_bugs_are_dead_lettered(connection) -> None:
    async def handler(message: Command) -> None:
        raise FatalError("corrupt")

    assert await _run(connection, handler) == [HandlerOutcome.DEAD_LETTERED]

    async def buggy(message: Command) -> None:
        raise KeyError("oops")

    assert await _run(connection, buggy) == [HandlerOutcome.DEAD_LETTERED]
    assert len(await _dead_letters(connection)) == 2


async def test_undecodable_messages_are_dead_lettered(connection) -> None:
    outcomes: list[HandlerOutcome] = []

    async def handler(message: Command) -> None:
        raise AssertionError("must not be called")

    consumer: Consumer[Command] = Consumer(
        connection, RESULTS_QUEUE, COMMAND_ADAPTER, handler, observer=outcomes.append
    )
    await consumer.start()
    channel = await connection.channel()
    exchange = await channel.get_exchange("gridgate.commands")
    await exchange.publish(
        aio_pika.Message(b'{"kind": "no-such-command"}'), routing_key=RESULTS_QUEUE
    )
    for _ in range(100):
        if outcomes:
            break
        await asyncio.sleep(0.05)
    await consumer.stop()
    await channel.close()
    assert outcomes == [HandlerOutcome.DEAD_LETTERED]
    assert await _dead_letters(connection) == [b'{"kind": "no-such-command"}']


async def test_unroutable_command_is_an_error(connection) -> None:
    publisher = await Publisher.open(connection)
    with pytest.raises(Exception):  # noqa: B017 - aio-pika's own DeliveryError
        await publisher.send("no.such.queue", PurgeResults(job_id="x", owner="y"))
    await publisher.close()


async def test_unreachable_broker_fails_fast_with_advice() -> None:
    started = asyncio.get_running_loop().time()
    with pytest.raises(BrokerUnreachableError) as caught:
        await connect("amqp://guest:secret@127.0.0.1:1/", timeout_s=3)
    assert asyncio.get_running_loop().time() - started < 10
    assert "rabbitmq-server" in str(caught.value)
    assert "secret" not in str(caught.value)


async def test_a_stop_hands_a_handler_that_overruns_its_grace_to_another_worker(
    connection, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("gridgate.broker.consumer.STOP_GRACE_S", 0.5)
    started = asyncio.Event()

    async def stuck(message: Command) -> None:
        started.set()
        await asyncio.sleep(3600)

    first: Consumer[Command] = Consumer(connection, RESULTS_QUEUE, COMMAND_ADAPTER, stuck)
    await first.start()
    publisher = await Publisher.open(connection)
    await publisher.send(RESULTS_QUEUE, PurgeResults(job_id="job-late", owner="alice"))
    await asyncio.wait_for(started.wait(), 10)
    loop = asyncio.get_running_loop()
    stopping = loop.time()
    await first.stop()
    assert loop.time() - stopping < 5  # bounded, not the handler's hour

    seen: list[str] = []

    async def handler(message: Command) -> None:
        seen.append(message.job_id)

    second: Consumer[Command] = Consumer(connection, RESULTS_QUEUE, COMMAND_ADAPTER, handler)
    await second.start()
    for _ in range(100):
        if seen:
            break
        await asyncio.sleep(0.05)
    await second.stop()
    await publisher.close()
    assert seen == ["job-late"]  # unacknowledged, so redelivered to the next worker
    assert await _dead_letters(connection) == []
