"""A background task that loops until stopped and that a wake-up hurries along."""

from __future__ import annotations

import asyncio
import contextlib


class WakeableLoop:
    """Runs :meth:`_run` as the task ``name`` from :meth:`start` to :meth:`stop`.

    A subclass's loop does a round, then :meth:`_pause` s; :meth:`wake` (new work has come)
    ends the pause early. A wake-up during a round is not lost: the next pause returns at
    once.
    """

    def __init__(self, name: str) -> None:
        self._name = name
        self._wakeup = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    def wake(self) -> None:
        self._wakeup.set()

    @property
    def woken(self) -> bool:
        """Whether a wake-up came since the last pause (the next one will not wait)."""
        return self._wakeup.is_set()

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=self._name)

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _pause(self, seconds: float) -> None:
        """Wait up to ``seconds``, less if woken; then forget the wake-up."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wakeup.wait(), timeout=seconds)
        self._wakeup.clear()

    async def _run(self) -> None:
        raise NotImplementedError
