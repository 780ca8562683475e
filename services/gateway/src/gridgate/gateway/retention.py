"""Honours destruction times: a periodic task of the gateway (docs/data-lake.md)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable

import structlog

log = structlog.get_logger(__name__)


class RetentionSweep:
    """Every ``interval_s``, runs the service method that destroys jobs past their time."""

    def __init__(self, destroy: Callable[[], Awaitable[int]], interval_s: float = 60.0) -> None:
        self._destroy = destroy
        self._interval_s = interval_s
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="retention-sweep")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        while True:
            try:
                destroyed = await self._destroy()
                if destroyed:
                    log.info("jobs past their destruction time destroyed", jobs=destroyed)
            except Exception:
                log.exception("retention round failed")
            await asyncio.sleep(self._interval_s)
