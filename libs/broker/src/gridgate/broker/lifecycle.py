"""Running a worker until SIGTERM or SIGINT, then stopping it cleanly."""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Awaitable, Callable
from typing import Protocol

import structlog
from aio_pika.abc import AbstractRobustConnection

from gridgate.broker.connection import connect_when_up, is_connected
from gridgate.broker.errors import is_broker_error, is_network_error
from gridgate.observability import HealthServer, ReadinessCheck

log = structlog.get_logger(__name__)

MAX_START_DELAY_S = 10.0


async def run_until_signalled(
    start: Callable[[], Awaitable[None]], stop: Callable[[], Awaitable[None]]
) -> None:
    """Start, wait for SIGTERM/SIGINT, then stop (stop consuming, finish in-flight, close)."""
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stopping.set)
    try:
        # A start may wait (on a broker that is down): a signal meanwhile must still stop it.
        starting = asyncio.ensure_future(start())
        signalled = asyncio.ensure_future(stopping.wait())
        try:
            await asyncio.wait({starting, signalled}, return_when=asyncio.FIRST_COMPLETED)
            if starting.done():
                starting.result()
                await signalled
        finally:
            for task in (starting, signalled):
                task.cancel()
            await asyncio.gather(starting, signalled, return_exceptions=True)
            await stop()
    finally:
        # Give the signals back: a process that goes on (a test, an embedding) keeps control.
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(signum)


async def run_with_health(
    start: Callable[[], Awaitable[None]],
    stop: Callable[[], Awaitable[None]],
    readiness: ReadinessCheck,
    *,
    health_host: str = "0.0.0.0",  # noqa: S104 - probes and scrapes come from outside the pod
    health_port: int = 0,
) -> None:
    """:func:`run_until_signalled`, with ``/healthz``, ``/readyz`` and ``/metrics`` served on
    ``health_port`` for as long as the worker runs (``health_port=0``: no endpoint).

    The endpoint starts first, so liveness answers while the worker connects, and readiness
    turns false as soon as stopping begins.
    """
    health = HealthServer(readiness, host=health_host, port=health_port) if health_port else None
    if health is not None:
        await health.start()
    try:
        await run_until_signalled(start, stop)
    finally:
        if health is not None:
            await health.stop()


class Worker(Protocol):
    """What :func:`serve_connected` runs: a service's worker over one broker connection."""

    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    def readiness(self) -> dict[str, bool]: ...


async def serve_connected(
    broker_url: str,
    make: Callable[[AbstractRobustConnection], Worker],
    *,
    health_host: str = "0.0.0.0",  # noqa: S104 - probes and scrapes come from outside the pod
    health_port: int = 0,
) -> None:
    """Connect (waiting for the broker if it is down), run the worker until SIGTERM/SIGINT,
    stop it, disconnect. Health answers from the start; readiness is false until the worker
    runs."""
    connection: AbstractRobustConnection | None = None
    worker: Worker | None = None

    async def start() -> None:
        nonlocal connection, worker
        delay = 1.0
        while True:
            connection = await connect_when_up(broker_url)
            worker = make(connection)
            try:
                await worker.start()
                return
            except Exception as exc:
                # The broker restarting between the connection and the consumer (declaring
                # the topology, opening a channel) is an outage like any other: ride it out
                # from a new connection rather than exit and wait for a supervisor. aio-pika
                # says "Connection was not opened" with a bare RuntimeError, hence the
                # connection's own state as the test.
                outage = is_broker_error(exc) or is_network_error(exc)
                if is_connected(connection) and not outage:
                    raise
                log.warning(
                    "the broker went away while the worker started; starting again",
                    error=repr(exc),
                    retry_in_s=delay,
                )
            with contextlib.suppress(Exception):
                await worker.stop()
            with contextlib.suppress(Exception):
                await connection.close()
            worker = connection = None
            await asyncio.sleep(delay)
            delay = min(MAX_START_DELAY_S, delay * 2)

    async def stop() -> None:
        if worker is not None:
            await worker.stop()
        if connection is not None:
            await connection.close()

    def readiness() -> dict[str, bool]:
        return worker.readiness() if worker is not None else {"broker": False}

    await run_with_health(start, stop, readiness, health_host=health_host, health_port=health_port)
