"""Running a worker until SIGTERM or SIGINT, then stopping it cleanly."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Awaitable, Callable


async def run_until_signalled(
    start: Callable[[], Awaitable[None]], stop: Callable[[], Awaitable[None]]
) -> None:
    """Start, wait for SIGTERM/SIGINT, then stop (stop consuming, finish in-flight, close)."""
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stopping.set)
    await start()
    try:
        await stopping.wait()
    finally:
        await stop()
