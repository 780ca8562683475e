"""The poll loop: fast while jobs change, backing off while nothing happens."""

from __future__ import annotations

import asyncio
import contextlib

import structlog

from gridgate.core.errors import TransientError
from gridgate.monitor.service import MonitorService

log = structlog.get_logger(__name__)


class PollScheduler:
    def __init__(
        self, service: MonitorService, min_interval_s: float, max_interval_s: float
    ) -> None:
        self.service = service
        self.min_interval_s = min_interval_s
        self.max_interval_s = max_interval_s
        self.interval_s = min_interval_s
        self.rounds = 0
        self._task: asyncio.Task[None] | None = None
        self._poked = asyncio.Event()

    def poke(self) -> None:
        """Poll now and at the fast rate: a job was just queued somewhere."""
        self.interval_s = self.min_interval_s
        self._poked.set()

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="monitor-poll")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        while True:
            try:
                changed = await self.service.poll_once()
            except TransientError as exc:
                log.warning("poll round failed; will retry", reason=str(exc))
                changed = 0
            except Exception:
                log.exception("poll round crashed")
                changed = 0
            self.rounds += 1
            # Activity: poll again soon. Quiet: stretch the interval up to the maximum.
            self.interval_s = (
                self.min_interval_s if changed else min(self.max_interval_s, self.interval_s * 1.5)
            )
            self._poked.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._poked.wait(), self.interval_s)
