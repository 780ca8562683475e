"""Broker outages against a real RabbitMQ: nothing in flight is dead-lettered or lost.

The outage is RabbitMQ closing every connection of the test's vhost (``rabbitmqctl
close_all_connections``), as a broker restart does; the robust connections come back by
themselves. The machine's broker itself is never stopped: other sessions use it.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import subprocess
from collections.abc import AsyncIterator
from urllib.parse import unquote, urlsplit

import aio_pika
import pytest
import pytest_asyncio
from aio_pika.abc import AbstractRobustConnection

from gridgate.broker import (
    BrokerUnavailableError,
    Consumer,
    HandlerOutcome,
    Publisher,
    connect,
    declare_topology,
)
from gridgate.broker.topology import dead_letter_queue_name
from gridgate.contracts import (
    COMMAND_ADAPTER,
    GATEWAY_REPORTS_QUEUE,
    RESULTS_QUEUE,
    Command,
    JobFailureReported,
    PurgeResults,
)
from gridgate.testing.proxy import ProxyMode, TcpProxy

pytestmark = pytest.mark.skipif(shutil.which("rabbitmqctl") is None, reason="needs rabbitmqctl")


def _close_all_connections(broker_url: str) -> None:
    vhost = unquote(urlsplit(broker_url).path.lstrip("/"))
    subprocess.run(
        ["rabbitmqctl", "-q", "close_all_connections", "--vhost", vhost, "test: broker outage"],
        check=True,
        capture_output=True,
        timeout=60,
    )


async def _outage(broker_url: str, *connections: AbstractRobustConnection) -> None:
    """Close every connection of the vhost; return once all are closed (not yet back)."""
    await asyncio.to_thread(_close_all_connections, broker_url)
    for connection in connections:
        for _ in range(200):
            if connection.is_closed or not connection.connected.is_set():
                break
            await asyncio.sleep(0.02)


async def _wait_for(condition, timeout_s: float = 30.0) -> None:  # type: ignore[no-untyped-def]
    deadline = asyncio.get_running_loop().time() + timeout_s
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, "condition not met in time"
        await asyncio.sleep(0.05)


async def _drain(connection: AbstractRobustConnection, queue_name: str) -> list[bytes]:
    channel = await connection.channel()
    queue = await channel.get_queue(queue_name)
    bodies = []
    while (message := await queue.get(fail=False)) is not None:
        bodies.append(message.body)
        await message.ack()
    await channel.close()
    return bodies


def _reconnecting(broker_url: str, after_s: float) -> str:
    return f"{broker_url}?reconnect_interval={after_s}"


@pytest_asyncio.fixture(loop_scope="session")
async def fast_url(broker_url: str) -> AsyncIterator[str]:
    # Reconnect after half a second rather than aio-pika's default five.
    url = _reconnecting(broker_url, 0.5)
    connection = await connect(url)
    channel = await connection.channel()
    await declare_topology(channel)
    for name in (RESULTS_QUEUE, dead_letter_queue_name(RESULTS_QUEUE), GATEWAY_REPORTS_QUEUE):
        await (await channel.get_queue(name)).purge()
    await channel.close()
    await connection.close()
    yield url


async def test_a_report_whose_publish_fails_is_redelivered_not_dead_lettered(
    fast_url: str, broker_url: str
) -> None:
    """The measured fault: the handler did its work, then publishing its report failed on a
    lost connection. The command comes back, and is handled once the connection is back.

    The reports' connection goes through a proxy that the test cuts, and keeps cut until the
    command has come back at least once, however slowly a loaded machine runs."""
    upstream = urlsplit(broker_url)
    proxy = TcpProxy(upstream.hostname or "127.0.0.1", upstream.port or 5672)
    await proxy.start()
    connection = await connect(fast_url)
    reporting = await aio_pika.connect_robust(
        _reconnecting(
            broker_url.replace(upstream.netloc, f"guest:guest@127.0.0.1:{proxy.port}"), 0.5
        )
    )
    # A short wait for the reconnection, so that the publish fails rather than waits.
    reports = await Publisher.open(reporting, ready_timeout_s=0.05)
    handled: list[str] = []
    outcomes: list[HandlerOutcome] = []

    async def handler(command: Command) -> None:
        handled.append(command.job_id)
        if len(handled) == 1:
            await proxy.set_mode(ProxyMode.REFUSE)
        await reports.send(
            GATEWAY_REPORTS_QUEUE,
            JobFailureReported(job_id=command.job_id, source="test", reason="done"),
        )

    consumer: Consumer[Command] = Consumer(
        connection,
        RESULTS_QUEUE,
        COMMAND_ADAPTER,
        handler,
        observer=outcomes.append,
        requeue_delay_s=0.2,
    )
    await consumer.start()
    sender = await Publisher.open(connection)
    await sender.send(RESULTS_QUEUE, PurgeResults(job_id="outage-1", owner="alice"))
    await _wait_for(lambda: HandlerOutcome.REQUEUED in outcomes)
    await proxy.set_mode(ProxyMode.FORWARD)
    await _wait_for(lambda: HandlerOutcome.DONE in outcomes)
    await consumer.stop()
    await sender.close()
    await reports.close()
    await reporting.close()
    await proxy.close()

    # Requeued while the reports' connection was away, then done.
    assert outcomes[-1] == HandlerOutcome.DONE
    assert set(outcomes[:-1]) == {HandlerOutcome.REQUEUED}
    assert set(handled) == {"outage-1"} and len(handled) == len(outcomes)
    assert await _drain(connection, dead_letter_queue_name(RESULTS_QUEUE)) == []
    assert len(await _drain(connection, GATEWAY_REPORTS_QUEUE)) == 1
    await connection.close()


async def test_a_message_in_flight_during_an_outage_comes_back(broker_url: str) -> None:
    """The whole connection goes: the delivery in flight is abandoned (its channel closed)
    and requeued by the broker; the restored consumer handles it."""
    connection = await connect(_reconnecting(broker_url, 1))
    channel = await connection.channel()
    await declare_topology(channel)
    await channel.close()
    handled: list[str] = []
    outcomes: list[HandlerOutcome] = []
    first_delivery = asyncio.Event()

    async def handler(command: Command) -> None:
        handled.append(command.job_id)
        if len(handled) == 1:
            first_delivery.set()
            await asyncio.sleep(60)

    consumer: Consumer[Command] = Consumer(
        connection, RESULTS_QUEUE, COMMAND_ADAPTER, handler, observer=outcomes.append
    )
    await consumer.start()
    sender = await Publisher.open(connection)
    await sender.send(RESULTS_QUEUE, PurgeResults(job_id="outage-2", owner="alice"))
    await asyncio.wait_for(first_delivery.wait(), 10)
    await _outage(broker_url, connection)
    await _wait_for(lambda: HandlerOutcome.DONE in outcomes)
    await consumer.stop()
    await sender.close()

    assert outcomes == [HandlerOutcome.REQUEUED, HandlerOutcome.DONE]
    assert handled == ["outage-2", "outage-2"]
    assert await _drain(connection, dead_letter_queue_name(RESULTS_QUEUE)) == []
    await connection.close()


async def test_a_publish_during_a_reconnection_waits_for_it(fast_url: str, broker_url: str) -> None:
    connection = await connect(fast_url)
    publisher = await Publisher.open(connection, ready_timeout_s=20)
    await _outage(broker_url, connection)
    await publisher.send(
        GATEWAY_REPORTS_QUEUE, JobFailureReported(job_id="j", source="test", reason="r")
    )
    assert len(await _drain(connection, GATEWAY_REPORTS_QUEUE)) == 1

    await publisher.close()
    await connection.close()

    # Away for 3 s, longer than this publisher waits: the publish fails, as transient.
    slow = await connect(_reconnecting(broker_url, 3))
    impatient = await Publisher.open(slow, ready_timeout_s=0.01)
    await _outage(broker_url, slow)
    with pytest.raises(BrokerUnavailableError):
        await impatient.send(
            GATEWAY_REPORTS_QUEUE, JobFailureReported(job_id="j", source="test", reason="r")
        )
    await impatient.close()
    await slow.close()


async def test_the_consumer_comes_back_after_an_outage(fast_url: str, broker_url: str) -> None:
    connection = await connect(fast_url)
    seen: list[str] = []

    async def handler(command: Command) -> None:
        seen.append(command.job_id)

    consumer: Consumer[Command] = Consumer(connection, RESULTS_QUEUE, COMMAND_ADAPTER, handler)
    await consumer.start()
    publisher = await Publisher.open(connection, ready_timeout_s=20)
    await publisher.send(RESULTS_QUEUE, PurgeResults(job_id="before", owner="alice"))
    await _wait_for(lambda: seen == ["before"])

    await _outage(broker_url, connection)
    # The publish waits for the reconnection; the restored channel re-registers the consumer.
    await publisher.send(RESULTS_QUEUE, PurgeResults(job_id="after", owner="alice"))
    await _wait_for(lambda: seen == ["before", "after"])
    assert consumer.running
    await consumer.stop()
    await publisher.close()
    await connection.close()


async def test_a_worker_whose_start_meets_an_outage_starts_again(fast_url: str) -> None:
    """The broker going away between the connection and the consumer (a restart while a
    service starts) leaves the service running and ready, not exited."""
    from gridgate.broker import serve_connected

    starts: list[str] = []
    ready = asyncio.Event()

    class FirstStartMeetsAnOutage:
        def __init__(self, connection: AbstractRobustConnection) -> None:
            self.connection = connection
            self.started = False

        async def start(self) -> None:
            if not starts:
                starts.append("outage")
                await _outage(fast_url, self.connection)
            channel = await self.connection.channel()
            await declare_topology(channel)
            await channel.close()
            starts.append("started")
            self.started = True
            ready.set()

        async def stop(self) -> None:
            self.started = False

        def readiness(self) -> dict[str, bool]:
            return {"worker": self.started}

    serving = asyncio.create_task(serve_connected(fast_url, FirstStartMeetsAnOutage))
    try:
        async with asyncio.timeout(60):
            await ready.wait()
        assert starts == ["outage", "started"]
        assert not serving.done()
    finally:
        serving.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await serving
