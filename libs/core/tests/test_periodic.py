"""The periodic task: a fixed interval, or sooner when told when work is next due."""

from __future__ import annotations

import asyncio
import time

from gridgate.core.periodic import Periodic


async def rounds_in(seconds: float, **options: object) -> tuple[int, list[float]]:
    started = time.monotonic()
    at: list[float] = []

    async def round_() -> int:
        at.append(time.monotonic() - started)
        return 0

    task = Periodic("test", round_, 10.0, done="done", **options)  # type: ignore[arg-type]
    task.start()
    await asyncio.sleep(seconds)
    await task.stop()
    return len(at), at


async def test_a_round_every_interval_without_a_due_time() -> None:
    count, _ = await rounds_in(0.5)
    assert count == 1


async def test_the_next_round_starts_when_work_is_due() -> None:
    async def due_in_a_tenth() -> float:
        return 0.1

    count, at = await rounds_in(0.55, until_next=due_in_a_tenth)
    assert 4 <= count <= 6
    assert at[1] - at[0] >= 0.1


async def test_work_due_already_does_not_make_it_spin() -> None:
    async def overdue() -> float:
        return -5.0

    count, _ = await rounds_in(0.5, until_next=overdue, min_wait_s=0.1)
    assert 4 <= count <= 6


async def test_nothing_due_waits_the_interval() -> None:
    async def never() -> float | None:
        return None

    count, _ = await rounds_in(0.5, until_next=never)
    assert count == 1
