"""Running a worker until SIGTERM or SIGINT, then stopping it cleanly."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Awaitable, Callable

from gridgate.observability import HealthServer, ReadinessCheck


async def run_until_signalled(
    start: Callable[[], Awaitable[None]], stop: Callable[[], Awaitable[None]]
) -> None:
    """Start, wait for SIGTERM/SIGINT, then stop (stop consuming, finish in-flight, close)."""
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stopping.set)
    try:
        await start()
        try:
            await stopping.wait()
        finally:
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
