"""A background task that repeats one round of work at a fixed interval."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable

import structlog

log = structlog.get_logger(__name__)


class Periodic:
    """Runs ``round_`` every ``interval_s`` until stopped; a failing round is logged and the
    next one still runs (a database hiccup must not end the task for good).

    ``round_`` returns how many things it did; a non-zero count is logged as ``done``.
    ``until_next``, if given, says after a successful round how many seconds until work is
    due: the next round starts then if that is sooner than ``interval_s`` (but no sooner
    than ``min_wait_s``, so that a round which leaves work due cannot spin).
    """

    def __init__(
        self,
        name: str,
        round_: Callable[[], Awaitable[int]],
        interval_s: float,
        done: str,
        *,
        until_next: Callable[[], Awaitable[float | None]] | None = None,
        min_wait_s: float = 0.05,
    ) -> None:
        self.name = name
        self._round = round_
        self._interval_s = interval_s
        self._done = done
        self._until_next = until_next
        self._min_wait_s = min_wait_s
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=self.name)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        while True:
            wait = self._interval_s
            try:
                count = await self._round()
                if count:
                    log.info(self._done, task=self.name, count=count)
                if self._until_next is not None:
                    due_in = await self._until_next()
                    if due_in is not None:
                        wait = min(wait, max(due_in, self._min_wait_s))
            except Exception:
                # A failing round waits the full interval: retrying at once would only spin.
                log.exception("periodic round failed", task=self.name)
            await asyncio.sleep(wait)
