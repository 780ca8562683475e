"""Warns job owners before their credential runs out (a periodic task of the gateway)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from datetime import timedelta

import structlog

log = structlog.get_logger(__name__)


class CredentialWatch:
    """Every ``interval_s``, runs the service method that warns expiring credentials."""

    def __init__(
        self,
        warn: Callable[[timedelta], Awaitable[int]],
        warning: timedelta,
        interval_s: float = 60.0,
    ) -> None:
        self._warn = warn
        self._warning = warning
        self._interval_s = interval_s
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="credential-watch")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        while True:
            try:
                warned = await self._warn(self._warning)
                if warned:
                    log.info("owners warned of expiring credentials", jobs=warned)
            except Exception:
                log.exception("credential watch round failed")
            await asyncio.sleep(self._interval_s)
