"""Dead letters against a real RabbitMQ: watched, parked, listed and re-driven."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest_asyncio
from aio_pika.abc import AbstractRobustConnection
from prometheus_client import REGISTRY

from gridgate.broker import (
    Consumer,
    DeadLetter,
    DeadLetterWatcher,
    HandlerOutcome,
    Publisher,
    connect,
    declare_topology,
    list_parked,
    redrive,
)
from gridgate.broker.consumer import ATTEMPT_HEADER
from gridgate.broker.topology import WORK_QUEUES, dead_letter_queue_name, parked_queue_name
from gridgate.contracts import COMMAND_ADAPTER, RESULTS_QUEUE, Command, PurgeResults
from gridgate.core.errors import TransientError


@pytest_asyncio.fixture(loop_scope="session")
async def connection(broker_url: str) -> AsyncIterator[AbstractRobustConnection]:
    conn = await connect(broker_url)
    channel = await conn.channel()
    await declare_topology(channel)
    for name in (
        RESULTS_QUEUE,
        dead_letter_queue_name(RESULTS_QUEUE),
        parked_queue_name(RESULTS_QUEUE),
    ):
        await (await channel.get_queue(name)).purge()
    await channel.close()
    yield conn
    await conn.close()


def _dead_letters_counted(queue: str) -> float:
    return REGISTRY.get_sample_value("gridgate_dead_letters_total", {"queue": queue}) or 0.0


async def _wait_for(condition, timeout_s: float = 20.0) -> None:  # type: ignore[no-untyped-def]
    deadline = asyncio.get_running_loop().time() + timeout_s
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, "condition not met in time"
        await asyncio.sleep(0.05)


async def _dead_letter_through_retries(
    connection: AbstractRobustConnection, job_id: str, attempts: int = 3
) -> None:
    """Dead-letter a command the real way: transient failures past the last attempt."""
    outcomes: list[HandlerOutcome] = []

    async def handler(message: Command) -> None:
        raise TransientError("storage away")

    consumer: Consumer[Command] = Consumer(
        connection,
        RESULTS_QUEUE,
        COMMAND_ADAPTER,
        handler,
        observer=outcomes.append,
        base_delay_s=0.05,
        max_attempts=attempts,
    )
    await consumer.start()
    publisher = await Publisher.open(connection)
    await publisher.send(RESULTS_QUEUE, PurgeResults(job_id=job_id, owner="alice"))
    await _wait_for(lambda: HandlerOutcome.DEAD_LETTERED in outcomes)
    await consumer.stop()
    await publisher.close()


async def test_a_dead_letter_is_reported_counted_and_parked(connection) -> None:
    seen: list[DeadLetter] = []

    async def on_dead_letter(letter: DeadLetter) -> None:
        seen.append(letter)

    before = _dead_letters_counted(RESULTS_QUEUE)
    watcher = DeadLetterWatcher(connection, WORK_QUEUES, on_dead_letter)
    await watcher.start()
    await _dead_letter_through_retries(connection, "dead-1")
    await _wait_for(lambda: _dead_letters_counted(RESULTS_QUEUE) == before + 1)
    await watcher.stop()

    assert seen == [
        DeadLetter(
            queue=RESULTS_QUEUE,
            kind="purge-results",
            job_id="dead-1",
            message_id=seen[0].message_id,
            reason="rejected",
            attempts=3,
        )
    ]
    assert seen[0].type_name == "PurgeResults"
    listing = await list_parked(connection, WORK_QUEUES)
    count, parked = listing[RESULTS_QUEUE]
    assert count == 1
    assert [(p.job_id, p.kind, p.reason, p.attempts) for p in parked] == [
        ("dead-1", "purge-results", "rejected", 3)
    ]
    assert parked[0].dead_at
    # Listing only looks: the message is still parked, the .dead queue is empty.
    assert (await list_parked(connection, [RESULTS_QUEUE]))[RESULTS_QUEUE][0] == 1
    channel = await connection.channel()
    dead = await channel.get_queue(dead_letter_queue_name(RESULTS_QUEUE))
    assert dead.declaration_result.message_count == 0
    await channel.close()


async def test_a_failing_callback_leaves_the_dead_letter_for_later(connection) -> None:
    calls: list[str] = []

    async def on_dead_letter(letter: DeadLetter) -> None:
        calls.append(str(letter.job_id))
        if len(calls) == 1:
            raise ConnectionError("database away")

    watcher = DeadLetterWatcher(connection, [RESULTS_QUEUE], on_dead_letter, retry_delay_s=0.1)
    await watcher.start()
    before = _dead_letters_counted(RESULTS_QUEUE)
    await _dead_letter_through_retries(connection, "dead-2", attempts=1)
    await _wait_for(lambda: _dead_letters_counted(RESULTS_QUEUE) == before + 1)
    await watcher.stop()
    assert calls == ["dead-2", "dead-2"]
    _, parked = (await list_parked(connection, [RESULTS_QUEUE]))[RESULTS_QUEUE]
    assert "dead-2" in [p.job_id for p in parked]


async def test_redrive_puts_parked_messages_back_with_their_attempts_reset(connection) -> None:
    async def on_dead_letter(letter: DeadLetter) -> None:
        return None

    watcher = DeadLetterWatcher(connection, [RESULTS_QUEUE], on_dead_letter)
    await watcher.start()
    channel = await connection.channel()
    for name in (parked_queue_name(RESULTS_QUEUE),):
        await (await channel.get_queue(name)).purge()
    before = _dead_letters_counted(RESULTS_QUEUE)
    await _dead_letter_through_retries(connection, "job-a")
    await _dead_letter_through_retries(connection, "job-b")
    await _wait_for(lambda: _dead_letters_counted(RESULTS_QUEUE) == before + 2)
    await watcher.stop()

    # Only job-b's message, then the rest.
    assert await redrive(connection, RESULTS_QUEUE, job_id="job-b") == 1
    work = await channel.get_queue(RESULTS_QUEUE)
    message = await work.get(timeout=5)
    assert message.headers["job_id"] == "job-b"
    assert ATTEMPT_HEADER not in message.headers
    assert not any(str(key).startswith(("x-death", "x-gridgate-dead")) for key in message.headers)
    assert COMMAND_ADAPTER.validate_json(message.body).job_id == "job-b"
    assert message.type == "purge-results"
    await message.ack()
    count, parked = (await list_parked(connection, [RESULTS_QUEUE]))[RESULTS_QUEUE]
    assert count == 1 and [p.job_id for p in parked] == ["job-a"]

    assert await redrive(connection, RESULTS_QUEUE) == 1
    message = await work.get(timeout=5)
    assert message.headers["job_id"] == "job-a"
    await message.ack()
    assert (await list_parked(connection, [RESULTS_QUEUE]))[RESULTS_QUEUE][0] == 0
    await channel.close()
