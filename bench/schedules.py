"""The scheduler with 10,000 active schedules firing one per second on average.

Usage: ``uv run python bench/schedules.py [--schedules 10000] [--ticks 120] [--real-s 60]
[--databases sqlite,postgresql]``

Seeds a fresh gateway database (SQLite file, PostgreSQL database) with ``--schedules``
interval schedules of hello-world, each every ``--schedules`` seconds, their next fire times
spread at random over one interval: one firing a second on average. No broker, no relay, no
workers: a firing writes its job, SubmitJob and events to the outbox, and they stay there.
Then, per database:

1. **Cost per tick, on an injected clock.** The clock moves one second, the scheduler round
   runs (``fire_due_schedules``, as the gateway's periodic task calls it); ``--ticks`` times.
   Per tick: this process's CPU (``time.process_time``: SQLite works in this process, its
   thread included; PostgreSQL's own CPU is not counted), wall time, SQL statements (a
   ``before_cursor_execute`` listener), firings. Also idle ticks (nothing due), the plan of
   the due query, and rounds with 15 firings due at once (a 15 s interval's worth).
2. **Drift, in real time.** Fresh seed whose first nominal times start 5 s from now; the
   gateway's own ``Periodic`` scheduler task runs on the real clock for ``--real-s`` seconds,
   (a) waking every ``GRIDGATE_GATEWAY_SCHEDULE_INTERVAL_S`` (15 s, the default), (b) every
   1 s, (c) every 15 s but also when the next schedule is due (``until_next``). Drift of a
   firing: ``fired_at - nominal_time`` from ``schedule_runs``, where ``fired_at`` is the
   clock read as the firing's unit of work starts; its commit follows within the firing's
   wall time of part 1. Counted: nominal times from the task's start to the end of the run
   less one interval (each had a round after it); any of those never fired is printed. Also
   this process's CPU and SQL statements per second of the run.

Prints a table per part; nothing is asserted. About 8 minutes with the defaults.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import tempfile
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any

from sqlalchemy import event, func, insert, select, text

from gridgate.core.clock import new_job_id
from gridgate.core.logging import configure_logging
from gridgate.core.periodic import Periodic
from gridgate.gateway.factory import (
    ProcessContext,
    fire_due_schedules,
    seconds_to_next_schedule,
    unit_of_work,
)
from gridgate.gateway.models.schedule import Trigger
from gridgate.gateway.schema import schedule_runs_table, schedules_table
from gridgate.gateway.services.schedules import ScheduleSpec
from gridgate.gateway.storage.schedules import schedule_row
from gridgate.iam.identity import Identity
from gridgate.testing.gateway import gateway_database, offline_context

OWNER = Identity(sub="bench", groups=("cta",), vos=("cta",))
INSERT_BATCH = 1000


class Clock:
    def __init__(self, now: datetime | None = None) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now if self.now is not None else datetime.now(UTC)


@dataclass
class Counter:
    statements: int = 0

    def __call__(self, *args: Any) -> None:
        self.statements += 1


@dataclass
class Tick:
    cpu_ms: float
    wall_ms: float
    statements: int
    fired: int


@dataclass
class Drift:
    mode: str
    drifts: list[float] = field(default_factory=list)
    cpu_s: float = 0.0
    statements: int = 0
    seconds: float = 0.0
    missing: int = 0
    """Nominal times in the window that never fired (should be none)."""


@asynccontextmanager
async def database(kind: str) -> AsyncIterator[str]:
    with tempfile.TemporaryDirectory() as directory:
        async with gateway_database(kind, Path(directory)) as url:
            yield url


def context_for(url: str, clock: Clock) -> ProcessContext:
    return offline_context(url, clock=clock)


async def seed(context: ProcessContext, clock: Clock, count: int, first: datetime) -> None:
    """``count`` schedules every ``count`` s, next fire times at random in one interval."""
    clock.now = first - timedelta(seconds=1)
    spec = ScheduleSpec(workflow="hello-world", trigger=Trigger("interval", interval_s=count))
    async with unit_of_work(context) as factory:
        template = await factory.schedule_service().create_schedule(OWNER, spec)
    row = schedule_row(template)
    rng = random.Random(20261206)
    rows = []
    for index in range(count):
        offset = timedelta(seconds=rng.uniform(0, count))
        rows.append({**row, "id": template.id if index == 0 else new_job_id()})
        rows[-1]["next_fire_at"] = first + offset
        rows[-1]["start"] = first + offset - timedelta(seconds=count)
    async with context.engine.begin() as connection:
        await connection.execute(
            schedules_table.delete().where(schedules_table.c.id == template.id)
        )
        for start in range(0, count, INSERT_BATCH):
            await connection.execute(insert(schedules_table), rows[start : start + INSERT_BATCH])
    clock.now = None


async def due_plan(context: ProcessContext, kind: str) -> str:
    now = "'2026-01-01 00:00:00+00:00'"
    query = (
        "SELECT id FROM schedules WHERE paused = false AND next_fire_at <= "
        f"{now} ORDER BY next_fire_at LIMIT 100"
    )
    prefix = "EXPLAIN QUERY PLAN " if kind == "sqlite" else "EXPLAIN "
    async with context.engine.connect() as connection:
        rows = (await connection.execute(text(prefix + query))).all()
    return " | ".join(str(r[-1]) for r in rows)


async def measure(context: ProcessContext, round_: Callable[[], Any]) -> Tick:
    counter = Counter()
    event.listen(context.engine.sync_engine, "before_cursor_execute", counter)
    cpu, wall = time.process_time(), time.perf_counter()
    fired = await round_()
    tick = Tick(
        (time.process_time() - cpu) * 1000,
        (time.perf_counter() - wall) * 1000,
        counter.statements,
        fired,
    )
    event.remove(context.engine.sync_engine, "before_cursor_execute", counter)
    return tick


async def ticks(kind: str, count: int, rounds: int) -> dict[str, Any]:
    async with database(kind) as url:
        clock = Clock()
        context = context_for(url, clock)
        first = datetime(2026, 6, 1, tzinfo=UTC)
        await seed(context, clock, count, first)
        clock.now = first - timedelta(seconds=1)
        idle = [await measure(context, partial(fire_due_schedules, context)) for _ in range(30)]
        clock.now = first
        busy = []
        for _ in range(rounds):
            clock.now += timedelta(seconds=1)
            busy.append(await measure(context, partial(fire_due_schedules, context)))
        burst = []
        for _ in range(10):
            clock.now += timedelta(seconds=15)
            burst.append(await measure(context, partial(fire_due_schedules, context)))
        plan = await due_plan(context, kind)
        await context.engine.dispose()
    return {"idle": idle, "busy": busy, "burst": burst, "plan": plan}


async def drift(kind: str, count: int, seconds: float, mode: str) -> Drift:
    async with database(kind) as url:
        clock = Clock()
        context = context_for(url, clock)
        started = datetime.now(UTC)
        await seed(context, clock, count, started + timedelta(seconds=5))
        interval = 1.0 if mode == "every 1 s" else 15.0
        until_next = partial(seconds_to_next_schedule, context) if mode == "wake" else None
        task = Periodic(
            "scheduler",
            partial(fire_due_schedules, context),
            interval,
            done="schedules fired",
            until_next=until_next,
        )
        counter = Counter()
        event.listen(context.engine.sync_engine, "before_cursor_execute", counter)
        cpu, wall = time.process_time(), time.perf_counter()
        begun = datetime.now(UTC)
        task.start()
        await asyncio.sleep(seconds)
        await task.stop()
        result = Drift(
            mode,
            cpu_s=time.process_time() - cpu,
            statements=counter.statements,
            seconds=time.perf_counter() - wall,
        )
        event.remove(context.engine.sync_engine, "before_cursor_execute", counter)
        async with context.engine.connect() as connection:
            # Nominal times from the task's start (not those passed while seeding), up to
            # the stop less an interval: those the task had its chance to fire.
            margin = 1.0 if mode == "wake" else interval
            last = begun + timedelta(seconds=seconds - margin)
            rows = await connection.execute(
                select(schedule_runs_table.c.nominal_time, schedule_runs_table.c.fired_at).where(
                    schedule_runs_table.c.nominal_time >= begun,
                    schedule_runs_table.c.nominal_time <= last,
                )
            )
            result.drifts = [(r.fired_at - r.nominal_time).total_seconds() for r in rows]
            result.missing = (
                await connection.execute(
                    select(func.count())
                    .select_from(schedules_table)
                    .where(
                        schedules_table.c.next_fire_at >= begun,
                        schedules_table.c.next_fire_at <= last,
                    )
                )
            ).scalar_one()
        await context.engine.dispose()
    return result


def quantile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def summary(label: str, measured: list[Tick]) -> str:
    fired = sum(t.fired for t in measured)
    cpu = [t.cpu_ms for t in measured]
    wall = [t.wall_ms for t in measured]
    statements = [t.statements for t in measured]
    per_firing = sum(cpu) / fired if fired else float("nan")
    return (
        f"  {label:34} {len(measured):4} ticks  fired {fired:4}  "
        f"CPU ms/tick p50 {statistics.median(cpu):6.1f} max {max(cpu):6.1f}  "
        f"wall ms p50 {statistics.median(wall):6.1f} max {max(wall):6.1f}  "
        f"SQL/tick p50 {statistics.median(statements):4.0f} max {max(statements):4}  "
        f"CPU ms/firing {per_firing:5.1f}"
    )


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--schedules", type=int, default=10_000)
    parser.add_argument("--ticks", type=int, default=120)
    parser.add_argument("--real-s", type=float, default=60.0)
    parser.add_argument("--databases", default="sqlite,postgresql")
    parser.add_argument("--modes", default="every 15 s,every 1 s,wake")
    args = parser.parse_args()
    configure_logging(level="WARNING")
    for kind in args.databases.split(","):
        print(f"\n== {kind}: {args.schedules} schedules, one firing a second on average")
        result = await ticks(kind, args.schedules, args.ticks)
        print(f"  due query plan: {result['plan']}")
        print(summary("idle (nothing due)", result["idle"]))
        print(summary("1 s ticks (~1 due each)", result["busy"]))
        print(summary("15 s ticks (~15 due each)", result["burst"]))
        for mode in args.modes.split(","):
            measured = await drift(kind, args.schedules, args.real_s, mode)
            rate = measured.seconds or 1.0
            p50, p99 = quantile(measured.drifts, 0.5), quantile(measured.drifts, 0.99)
            print(
                f"  real time, {mode:10} {len(measured.drifts):4} firings  drift s "
                f"p50 {p50:6.3f} p99 {p99:6.3f}"
                f" max {max(measured.drifts, default=float('nan')):6.3f}  "
                f"CPU {measured.cpu_s / rate * 1000:6.1f} ms/s  "
                f"SQL {measured.statements / rate:6.1f}/s  not fired {measured.missing}"
            )


if __name__ == "__main__":
    asyncio.run(main())
