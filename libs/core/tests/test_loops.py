"""WakeableLoop: a wake-up ends a pause at once, and one that comes during a round is kept."""

from __future__ import annotations

import asyncio

from gridgate.core.loops import WakeableLoop


class Counting(WakeableLoop):
    def __init__(self) -> None:
        super().__init__("counting")
        self.rounds = 0
        self.in_round = asyncio.Event()
        self.finish_round = asyncio.Event()
        self.finish_round.set()

    async def _run(self) -> None:
        while True:
            self.rounds += 1
            self.in_round.set()
            await self.finish_round.wait()
            self.in_round.clear()
            await self._pause(60)


async def wait_for_rounds(loop: Counting, count: int) -> None:
    async with asyncio.timeout(5):
        while loop.rounds < count:  # noqa: ASYNC110 - polling a counter
            await asyncio.sleep(0.01)


async def test_a_wake_up_ends_the_pause() -> None:
    loop = Counting()
    loop.start()
    try:
        await wait_for_rounds(loop, 1)
        await asyncio.sleep(0.1)
        assert loop.rounds == 1 and loop.running
        loop.wake()
        await wait_for_rounds(loop, 2)
    finally:
        await loop.stop()
    assert not loop.running


async def test_a_wake_up_during_a_round_is_not_lost() -> None:
    loop = Counting()
    loop.finish_round.clear()
    loop.start()
    try:
        await asyncio.wait_for(loop.in_round.wait(), 5)
        loop.wake()
        loop.finish_round.set()
        await wait_for_rounds(loop, 2)
    finally:
        await loop.stop()
