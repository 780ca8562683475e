"""The monitor's poll loop: a poke (a job was queued) during a round is not lost."""

from __future__ import annotations

import asyncio
from typing import Any, cast

from gridgate.monitor.scheduler import PollScheduler


class Rounds:
    """Stands in for the monitor service: counts poll rounds and holds the first one open
    until released; nothing changes in any round."""

    def __init__(self) -> None:
        self.count = 0
        self.entered = asyncio.Event()
        self.release = asyncio.Event()

    async def poll_once(self) -> int:
        self.count += 1
        self.entered.set()
        await self.release.wait()
        return 0


async def test_a_poke_during_a_round_starts_the_next_round_at_once() -> None:
    rounds = Rounds()
    # Quiet, the next round would come a minute after this one.
    scheduler = PollScheduler(cast(Any, rounds), min_interval_s=60, max_interval_s=600)
    scheduler.start()
    try:
        await asyncio.wait_for(rounds.entered.wait(), 5)
        scheduler.poke()  # a job was queued while the round ran
        rounds.release.set()
        async with asyncio.timeout(5):
            while rounds.count < 2:  # noqa: ASYNC110 - polling a counter
                await asyncio.sleep(0.01)
    finally:
        await scheduler.stop()
    assert not scheduler.running
