"""Gathering submit commands that can share one bulk DIRAC submission.

Commands arrive one message at a time; those of one owner, group, workflow and set of limits
that arrive within a short linger go to DIRAC together. Each command's handler waits for its
own share of the answer, then reports and acks its message: a crash before that redelivers
the commands, and the facility finds the tasks it already holds.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass, field

from gridgate.contracts import SubmitJob

Flush = Callable[[list[SubmitJob]], Awaitable[dict[str, list[str]]]]


def batch_key(command: SubmitJob) -> Hashable:
    """Commands with equal keys may share a submission: one owner's proxy, one JDL shape.

    Jobs with input data keep to themselves: DIRAC's InputData is one list per submission.
    """
    if any(task.inputs for task in command.tasks):
        return ("alone", command.job_id)
    return (
        command.facility,
        command.owner,
        command.group,
        command.workflow_id,
        command.workflow_version,
        command.limits,
        tuple(command.outputs),
    )


@dataclass
class _Batch:
    commands: list[SubmitJob] = field(default_factory=list)
    waiters: list[asyncio.Future[list[str]]] = field(default_factory=list)
    timer: asyncio.TimerHandle | None = None


class SubmitBatcher:
    """Collects commands per key for ``linger_s`` (or up to ``max_jobs``), then flushes them."""

    def __init__(self, flush: Flush, *, linger_s: float = 0.25, max_jobs: int = 500) -> None:
        self.flush = flush
        self.linger_s = linger_s
        self.max_jobs = max_jobs
        self._open: dict[Hashable, _Batch] = {}
        self._running: set[asyncio.Task[None]] = set()

    async def submit(self, command: SubmitJob) -> list[str]:
        """The command's facility ids, once its batch went through (or its batch's error)."""
        loop = asyncio.get_running_loop()
        key = batch_key(command)
        batch = self._open.get(key)
        if batch is None:
            batch = self._open[key] = _Batch()
            batch.timer = loop.call_later(self.linger_s, self._close, key)
        waiter: asyncio.Future[list[str]] = loop.create_future()
        batch.commands.append(command)
        batch.waiters.append(waiter)
        if len(batch.commands) >= self.max_jobs:
            self._close(key)
        return await waiter

    def _close(self, key: Hashable) -> None:
        batch = self._open.pop(key, None)
        if batch is None:
            return
        if batch.timer is not None:
            batch.timer.cancel()
        task = asyncio.create_task(self._send(batch), name="dirac-bulk-submit")
        self._running.add(task)
        task.add_done_callback(self._running.discard)

    async def _send(self, batch: _Batch) -> None:
        try:
            ids = await self.flush(batch.commands)
        except BaseException as exc:  # every waiter learns the batch's fate
            for waiter in batch.waiters:
                if not waiter.done():
                    waiter.set_exception(exc)
            if isinstance(exc, asyncio.CancelledError):
                raise
            return
        for command, waiter in zip(batch.commands, batch.waiters, strict=True):
            if not waiter.done():
                waiter.set_result(ids[command.job_id])

    async def close(self) -> None:
        for key in list(self._open):
            self._close(key)
        for task in list(self._running):
            with contextlib.suppress(BaseException):
                await task
