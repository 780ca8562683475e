"""A queue worker run as a process runs it: health endpoint, metrics, stop on SIGTERM."""

from __future__ import annotations

import asyncio
import os
import signal

import httpx
from aio_pika.abc import AbstractRobustConnection

from gridgate.broker import Publisher, QueueWorker, connect, declare_topology, serve_worker
from gridgate.contracts import COMMAND_ADAPTER, RESULTS_QUEUE, Command, PurgeResults
from gridgate.testing.services import free_port


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
