"""A queue worker run as a process runs it: health endpoint, metrics, stop on SIGTERM."""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import Callable

import httpx
from aio_pika.abc import AbstractRobustConnection

from gridgate.broker import Publisher, QueueWorker, connect, declare_topology, serve_worker
from gridgate.contracts import COMMAND_ADAPTER, RESULTS_QUEUE, Command, PurgeResults
from gridgate.testing.services import drop_broker_connections, free_port, rabbitmq_vhost


async def _get(http: httpx.AsyncClient, path: str, want: int, timeout_s: float = 10) -> None:
    for _ in range(int(timeout_s / 0.05)):
        try:
            if (await http.get(path)).status_code == want:
                return
        except httpx.TransportError:
            pass
        await asyncio.sleep(0.05)
    raise AssertionError(f"{path} never answered {want}")


async def test_worker_serves_readiness_and_metrics_and_stops_on_sigterm(broker_url: str) -> None:
    setup = await connect(broker_url)
    channel = await setup.channel()
    await declare_topology(channel)
    await (await channel.get_queue(RESULTS_QUEUE)).purge()
    await channel.close()
    handled: list[Command] = []

    async def handle(command: Command) -> None:
        handled.append(command)

    async def report(command: Command, reason: str) -> None:
        raise AssertionError(reason)

    def make(connection: AbstractRobustConnection) -> QueueWorker[Command]:
        return QueueWorker(connection, RESULTS_QUEUE, COMMAND_ADAPTER, lambda _p: (handle, report))

    port = free_port()
    worker = asyncio.create_task(
        serve_worker(broker_url, make, health_host="127.0.0.1", health_port=port)
    )
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=5) as http:
        await _get(http, "/readyz", 200)
        assert (await http.get("/readyz")).json()["checks"] == {"broker": "ok", "consumer": "ok"}

        publisher = await Publisher.open(setup)
        await publisher.send(RESULTS_QUEUE, PurgeResults(job_id="health-job", owner="alice"))
        await publisher.close()
        for _ in range(200):
            if handled:
                break
            await asyncio.sleep(0.05)
        assert [c.job_id for c in handled] == ["health-job"]
        metrics = (await http.get("/metrics")).text
        assert f'gridgate_messages_total{{outcome="done",queue="{RESULTS_QUEUE}"}}' in metrics
        assert f'gridgate_message_lag_seconds_count{{queue="{RESULTS_QUEUE}"}}' in metrics

        os.kill(os.getpid(), signal.SIGTERM)  # caught by the worker's handler, not pytest
        await asyncio.wait_for(worker, 10)
        try:
            await http.get("/healthz")
            raise AssertionError("the health endpoint outlived the worker")
        except httpx.TransportError:
            pass
    await setup.close()


async def _until(check: Callable[[], bool], timeout_s: float) -> None:
    for _ in range(int(timeout_s / 0.05)):
        if check():
            return
        await asyncio.sleep(0.05)
    raise AssertionError("condition never held")


async def test_readiness_is_false_while_the_connection_reconnects() -> None:
    async def handle(_command: Command) -> None:
        pass

    async def report(_command: Command, reason: str) -> None:
        raise AssertionError(reason)

    with rabbitmq_vhost() as url:
        connection = await connect(url + "?reconnect_interval=2")
        worker = QueueWorker(
            connection, RESULTS_QUEUE, COMMAND_ADAPTER, lambda _p: (handle, report)
        )
        await worker.start()
        try:
            assert worker.readiness() == {"broker": True, "consumer": True}
            await asyncio.to_thread(drop_broker_connections, url)
            await _until(lambda: not worker.readiness()["broker"], 5)
            # A robust connection is not closed while it reconnects: is_closed would say ready.
            assert not connection.is_closed
            await _until(lambda: worker.ready, 20)
        finally:
            await worker.stop()
            await connection.close()


async def test_stop_finishes_in_flight_messages_and_leaves_the_rest_queued() -> None:
    started: list[str] = []
    release = asyncio.Event()

    async def handle(command: Command) -> None:
        started.append(command.job_id)
        await release.wait()

    async def report(_command: Command, reason: str) -> None:
        raise AssertionError(reason)

    with rabbitmq_vhost() as url:
        connection = await connect(url)
        worker = QueueWorker(
            connection, RESULTS_QUEUE, COMMAND_ADAPTER, lambda _p: (handle, report), prefetch=2
        )
        await worker.start()
        publisher = await Publisher.open(connection)
        for n in range(5):
            await publisher.send(RESULTS_QUEUE, PurgeResults(job_id=f"job-{n}", owner="alice"))
        await publisher.close()
        await _until(lambda: len(started) == 2, 10)
        stopping = asyncio.create_task(worker.stop())
        await asyncio.sleep(0.3)
        assert not stopping.done(), "stop() must wait for the in-flight handlers"
        release.set()
        await asyncio.wait_for(stopping, 10)

        channel = await connection.channel()
        queue = await channel.declare_queue(RESULTS_QUEUE, passive=True)
        # The two in flight were acked; the three never started are still queued, none lost.
        assert queue.declaration_result.message_count == 3
        assert sorted(started) == ["job-0", "job-1"]
        await channel.close()
        await connection.close()
