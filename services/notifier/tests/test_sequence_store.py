"""The record of taken-in event numbers follows any arrival order, repeats included, and
concurrent intakes of one job, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import random
from datetime import UTC, datetime

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from gridgate.notifier.schema.tables import job_sequences, sequences_ahead
from gridgate.notifier.storage import SequenceStore


async def take_in(engine: AsyncEngine, subject: str, number: int) -> None:
    async with engine.begin() as connection:
        await SequenceStore(connection).take_in(subject, number, datetime.now(UTC))


async def state(engine: AsyncEngine, subject: str) -> tuple[int, int, list[int]]:
    """(contiguous, the row's count of numbers ahead, the numbers ahead)."""
    async with engine.connect() as connection:
        contiguous, ahead = (
            await connection.execute(
                select(job_sequences.c.contiguous, job_sequences.c.ahead).where(
                    job_sequences.c.subject == subject
                )
            )
        ).one()
        rows = await connection.execute(
            select(sequences_ahead.c.sequence)
            .where(sequences_ahead.c.subject == subject)
            .order_by(sequences_ahead.c.sequence)
        )
        return contiguous, ahead, list(rows.scalars())


async def test_any_arrival_order_with_repeats_keeps_an_exact_record(engine: AsyncEngine) -> None:
    numbers = list(range(1, 31))
    arrivals = numbers + random.Random(5).sample(numbers, 12)  # every number, some twice
    random.Random(11).shuffle(arrivals)
    seen: set[int] = set()
    for number in arrivals:
        await take_in(engine, "job:a", number)
        seen.add(number)
        run = 0
        while run + 1 in seen:
            run += 1
        contiguous, ahead, waiting = await state(engine, "job:a")
        assert contiguous == run
        assert waiting == sorted(n for n in seen if n > run)
        assert ahead == len(waiting)
    assert await state(engine, "job:a") == (30, 0, [])


async def test_concurrent_intakes_of_one_job_lose_no_number(engine: AsyncEngine) -> None:
    # As two replicas (and a prefetch) taking in one job's events at once.
    numbers = list(range(1, 41)) * 2
    random.Random(3).shuffle(numbers)
    await asyncio.gather(*(take_in(engine, "job:b", n) for n in numbers))
    assert await state(engine, "job:b") == (40, 0, [])
    async with engine.connect() as connection:
        left = (
            await connection.execute(select(func.count()).select_from(sequences_ahead))
        ).scalar_one()
    assert left == 0
