"""Schedules fire exactly once per nominal time, on SQLite and PostgreSQL: DST nights, misfire
and overlap policies, pause and resume, credentials, concurrent rounds and a crash before
the commit (docs/schedules.md, docs/adr/0009-schedules.md). The clock is the test's."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select, update

from gridgate.contracts import SUBMITTER_QUEUE
from gridgate.contracts.phases import Phase
from gridgate.gateway.factory import (
    ProcessContext,
    fire_due_schedules,
    unit_of_work,
)
from gridgate.gateway.models.schedule import Schedule, Trigger
from gridgate.gateway.schema import jobs_table, outbox_table, schedule_runs_table
from gridgate.gateway.services.credentials import CredentialCheck, CredentialUnavailableError
from gridgate.gateway.services.schedules import ScheduleSpec
from gridgate.gateway.services.triggers import fire_times
from gridgate.iam.identity import Identity
from gridgate.testing.gateway import gateway_database, offline_context

ALICE = Identity(sub="alice", groups=("cta",), vos=("cta",))
PARIS = ZoneInfo("Europe/Paris")
EVERY_30_MIN = Trigger("interval", interval_s=1800)


class Clock:
    """A clock the test moves."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


class Credentials:
    """The auth service's answer, as the test sets it (a fake of the remote call only)."""

    def __init__(self) -> None:
        self.available = True

    async def check(
        self,
        identity: Identity,
        vo: str,
        group: str | None,
        min_lifetime_s: int,
        kind: str = "dirac",
    ) -> CredentialCheck:
        if not self.available:
            raise CredentialUnavailableError("The credential service did not answer.")
        return CredentialCheck(vo=vo, group=group or vo, obtainable_s=min_lifetime_s + 60)


@pytest.fixture(params=["sqlite", "postgresql"])
async def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    async with gateway_database(request.param, tmp_path) as url:
        yield url


def make_context(url: str, clock: Clock) -> ProcessContext:
    """A gateway's process context without broker or relay: outbox rows stay to be counted."""
    return offline_context(
        url, settings={"min_schedule_interval_s": 60}, clock=clock, credentials=Credentials()
    )


@pytest.fixture
async def clock() -> Clock:
    return Clock(datetime(2026, 6, 1, 12, 0, tzinfo=UTC))


@pytest.fixture
async def context(database_url: str, clock: Clock) -> AsyncIterator[ProcessContext]:
    context = make_context(database_url, clock)
    try:
        yield context
    finally:
        await context.engine.dispose()


async def create(context: ProcessContext, **fields: object) -> Schedule:
    spec = ScheduleSpec(**{"workflow": "hello-world", "trigger": EVERY_30_MIN, **fields})  # type: ignore[arg-type]
    async with unit_of_work(context) as factory:
        return await factory.schedule_service().create_schedule(ALICE, spec)


async def runs(context: ProcessContext, schedule_id: str) -> list[tuple[datetime, str, str | None]]:
    async with context.engine.connect() as connection:
        rows = await connection.execute(
            select(
                schedule_runs_table.c.nominal_time,
                schedule_runs_table.c.outcome,
                schedule_runs_table.c.reason,
            )
            .where(schedule_runs_table.c.schedule_id == schedule_id)
            .order_by(schedule_runs_table.c.nominal_time)
        )
        return [(r.nominal_time, r.outcome, r.reason) for r in rows]


async def jobs_of(context: ProcessContext, schedule_id: str) -> list[dict[str, object]]:
    async with context.engine.connect() as connection:
        rows = await connection.execute(
            select(jobs_table)
            .where(jobs_table.c.schedule_id == schedule_id)
            .order_by(jobs_table.c.nominal_time)
        )
        return [dict(r._mapping) for r in rows]


async def outbox(context: ProcessContext) -> list[tuple[str, str]]:
    async with context.engine.connect() as connection:
        rows = await connection.execute(
            select(outbox_table.c.routing_key, outbox_table.c.message_type).order_by(
                outbox_table.c.id
            )
        )
        return [(r.routing_key, r.message_type) for r in rows]


async def set_phase(context: ProcessContext, job_id: str, phase: Phase) -> None:
    async with context.engine.begin() as connection:
        await connection.execute(
            update(jobs_table).where(jobs_table.c.id == job_id).values(phase=phase.value)
        )


# ----- triggers, without a database -------------------------------------------------------


def local_times(expression: str, day: datetime) -> list[str]:
    """Local fire times of ``expression`` in Paris over six hours from 22:00 UTC the eve."""
    start = day.replace(hour=0, tzinfo=UTC) - timedelta(hours=2)
    out = []
    for t in fire_times(Trigger("cron", expression, "Europe/Paris"), start, start):
        if t >= start + timedelta(hours=6):
            return out
        out.append(t.astimezone(PARIS).strftime("%H:%M%z"))
    return out


def test_a_0230_job_runs_once_on_both_dst_nights_in_paris() -> None:
    spring, autumn = datetime(2026, 3, 29), datetime(2026, 10, 25)
    # 02:30 does not exist on the spring-forward night: it fires once, as the clocks jump.
    assert local_times("30 2 * * *", spring) == ["03:00+0200"]
    # 02:30 happens twice on the fall-back night: it fires at the first only.
    assert local_times("30 2 * * *", autumn) == ["02:30+0200"]
    # A schedule at several times of the night: each wall-clock time once.
    assert local_times("*/30 1-3 * * *", autumn) == [
        "01:00+0200",
        "01:30+0200",
        "02:00+0200",
        "02:30+0200",
        "03:00+0100",
        "03:30+0100",
    ]
    # An hourly job keeps running every hour, in elapsed time: both 02:30 on fall-back.
    assert local_times("30 * * * *", autumn)[:5] == [
        "00:30+0200",
        "01:30+0200",
        "02:30+0200",
        "02:30+0100",
        "03:30+0100",
    ]


# ----- firing, on both databases ----------------------------------------------------------


@pytest.mark.parametrize("night", [datetime(2026, 3, 28, 20), datetime(2026, 10, 24, 20)])
async def test_rounds_through_a_dst_night_create_one_job(
    context: ProcessContext, clock: Clock, night: datetime
) -> None:
    clock.now = night.replace(tzinfo=UTC)
    schedule = await create(
        context, trigger=Trigger("cron", "30 2 * * *", "Europe/Paris"), overlap="allow"
    )
    for _ in range(12 * 6):  # every 5 minutes for six hours
        clock.advance(minutes=5)
        await fire_due_schedules(context)
    jobs = await jobs_of(context, schedule.id)
    assert len(jobs) == 1
    local = jobs[0]["nominal_time"].astimezone(PARIS)  # type: ignore[attr-defined]
    assert local.strftime("%H:%M") == ("03:00" if night.month == 3 else "02:30")
    assert [outcome for _, outcome, _ in await runs(context, schedule.id)] == ["created"]


async def test_a_firing_creates_a_queued_job_that_links_back(
    context: ProcessContext, clock: Clock
) -> None:
    schedule = await create(
        context,
        parameters={"name": "at {nominal_time} after {previous_success_time}", "repeat": 1},
    )
    assert schedule.next_fire_at == clock.now + timedelta(minutes=30)
    clock.advance(minutes=31)
    assert await fire_due_schedules(context) == 1
    assert await fire_due_schedules(context) == 0
    [job] = await jobs_of(context, schedule.id)
    nominal = schedule.next_fire_at
    assert job["phase"] == Phase.QUEUED.value
    assert job["run_id"] == f"schedule:{schedule.id}@{nominal.isoformat()}"
    assert job["nominal_time"] == nominal
    assert job["parameters"]["name"] == f"at {nominal.isoformat()} after "  # type: ignore[index]
    assert await outbox(context) == [
        ("job.cta.queued", "org.gridgate.job.queued.v1"),
        (SUBMITTER_QUEUE, "submit-job"),
        ("schedule.cta.fired", "org.gridgate.schedule.fired.v1"),
    ]

    # Its success is what the next firing's {previous_success_time} says.
    await set_phase(context, str(job["id"]), Phase.COMPLETED)
    clock.advance(minutes=30)
    assert await fire_due_schedules(context) == 1
    second = (await jobs_of(context, schedule.id))[1]
    assert second["parameters"]["name"].endswith(f"after {nominal.isoformat()}")  # type: ignore[index]


@pytest.mark.parametrize(
    ("policy", "created", "skipped"), [("skip", 0, 6), ("run-once", 1, 5), ("catch-up", 3, 3)]
)
async def test_misfire_policies_after_three_hours_of_downtime(
    context: ProcessContext, clock: Clock, policy: str, created: int, skipped: int
) -> None:
    schedule = await create(context, misfire=policy, catch_up_max=3, overlap="allow")
    clock.advance(hours=3, minutes=10)  # the gateway was down: six firings are late
    await fire_due_schedules(context)
    outcomes = [outcome for _, outcome, _ in await runs(context, schedule.id)]
    assert outcomes.count("created") == created
    assert outcomes.count("skipped") == skipped
    assert len(await jobs_of(context, schedule.id)) == created
    # The late firings kept are the latest ones; nothing is left due.
    if created:
        kept = [t for t, outcome, _ in await runs(context, schedule.id) if outcome == "created"]
        assert kept[-1] == schedule.next_fire_at + timedelta(hours=2, minutes=30)  # type: ignore[operator]
    assert await fire_due_schedules(context) == 0


async def test_overlap_forbid_skips_while_the_previous_job_runs(
    context: ProcessContext, clock: Clock
) -> None:
    schedule = await create(context, overlap="forbid")
    clock.advance(minutes=30)
    assert await fire_due_schedules(context) == 1
    clock.advance(minutes=30)
    assert await fire_due_schedules(context) == 0  # the first job is still QUEUED
    [(_, first, _), (_, second, reason)] = await runs(context, schedule.id)
    assert (first, second) == ("created", "skipped")
    assert reason is not None and "overlap policy forbid" in reason
    assert ("schedule.cta.skipped", "org.gridgate.schedule.skipped.v1") in await outbox(context)


async def test_overlap_replace_aborts_the_previous_job(
    context: ProcessContext, clock: Clock
) -> None:
    schedule = await create(context, overlap="replace")
    clock.advance(minutes=30)
    await fire_due_schedules(context)
    clock.advance(minutes=30)
    assert await fire_due_schedules(context) == 1
    first, second = await jobs_of(context, schedule.id)
    assert first["phase"] == Phase.ABORTED.value
    assert second["phase"] == Phase.QUEUED.value
    assert (SUBMITTER_QUEUE, "cancel-job") in await outbox(context)


async def test_pause_and_resume(context: ProcessContext, clock: Clock) -> None:
    schedule = await create(context)
    async with unit_of_work(context) as factory:
        await factory.schedule_service().change_schedule(ALICE, schedule.id, {"paused": True})
    assert ("schedule.cta.paused", "org.gridgate.schedule.paused.v1") in await outbox(context)
    clock.advance(hours=2)
    assert await fire_due_schedules(context) == 0
    async with unit_of_work(context) as factory:
        resumed = await factory.schedule_service().change_schedule(
            ALICE, schedule.id, {"paused": False}
        )
    # Firings missed while paused are not run: the next is the first after the resume.
    assert resumed.next_fire_at == schedule.next_fire_at + timedelta(hours=2)  # type: ignore[operator]
    assert await fire_due_schedules(context) == 0
    clock.advance(minutes=30)
    assert await fire_due_schedules(context) == 1
    assert len(await runs(context, schedule.id)) == 1


async def test_run_now_and_preview(context: ProcessContext, clock: Clock) -> None:
    schedule = await create(context, paused=True)
    async with unit_of_work(context) as factory:
        service = factory.schedule_service()
        firing = await service.run_now(ALICE, schedule.id)
        assert firing.outcome == "created"
        clock.advance(seconds=1)
        again = await service.run_now(ALICE, schedule.id)
        assert again.outcome == "skipped"  # overlap forbid: the first is still QUEUED
        assert service.preview(schedule, 3) == [
            schedule.created_at + timedelta(minutes=30 * k) for k in (1, 2, 3)
        ]


async def test_firings_without_a_credential_are_skipped_then_the_schedule_pauses(
    context: ProcessContext, clock: Clock
) -> None:
    schedule = await create(context, facility="dirac-testbed", overlap="allow")
    assert isinstance(context.credentials, Credentials)
    context.credentials.available = False
    for _ in range(3):
        clock.advance(minutes=30)
        assert await fire_due_schedules(context) == 0
    recorded = await runs(context, schedule.id)
    assert [outcome for _, outcome, _ in recorded] == ["skipped"] * 3
    assert all("Credential" in (reason or "") for _, _, reason in recorded)
    async with unit_of_work(context) as factory:
        paused = await factory.schedule_service().get_schedule(ALICE, schedule.id)
    assert paused.paused and paused.paused_reason and "3 firings" in paused.paused_reason
    assert ("schedule.cta.paused", "org.gridgate.schedule.paused.v1") in await outbox(context)
    clock.advance(hours=1)
    assert await fire_due_schedules(context) == 0
    assert len(await runs(context, schedule.id)) == 3


async def test_concurrent_rounds_create_one_job_per_nominal_time(
    context: ProcessContext, clock: Clock
) -> None:
    schedules = [await create(context, overlap="allow") for _ in range(5)]
    for _ in range(4):
        clock.advance(minutes=30)
        await asyncio.gather(*(fire_due_schedules(context) for _ in range(4)))
    for schedule in schedules:
        nominal = [j["nominal_time"] for j in await jobs_of(context, schedule.id)]
        assert len(nominal) == 4 and len(set(nominal)) == 4
        assert len(await runs(context, schedule.id)) == 4


# ----- separate processes -----------------------------------------------------------------

CHILD = """
import asyncio, sys
from datetime import datetime
from tests_child import run
asyncio.run(run(sys.argv[1], datetime.fromisoformat(sys.argv[2])))
"""

CHILD_MODULE = """
from gridgate.gateway.factory import fire_due_schedules
from test_schedules import make_context, Clock

async def run(url, now):
    context = make_context(url, Clock(now))
    try:
        print("created", await fire_due_schedules(context), flush=True)
    finally:
        await context.engine.dispose()
"""


def scheduler_process(
    tmp_path: Path, url: str, now: datetime, crash: str | None = None
) -> subprocess.Popen[str]:
    (tmp_path / "tests_child.py").write_text(CHILD_MODULE)
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": f"{tmp_path}:{Path(__file__).parent}"}
    if crash:
        env["GRIDGATE_CRASH_POINTS"] = crash
    return subprocess.Popen(
        [sys.executable, "-c", CHILD, url, now.isoformat()],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


async def wait(process: subprocess.Popen[str]) -> int:
    return await asyncio.to_thread(process.wait, 120)


async def test_a_crash_before_the_commit_leaves_the_firing_to_the_next_round(
    context: ProcessContext, database_url: str, clock: Clock, tmp_path: Path
) -> None:
    schedule = await create(context)
    clock.advance(minutes=31)
    crashed = scheduler_process(tmp_path, database_url, clock.now, "schedule-fired-before-commit")
    assert await wait(crashed) == -signal.SIGKILL, crashed.stderr.read() if crashed.stderr else ""
    assert await jobs_of(context, schedule.id) == []
    assert await runs(context, schedule.id) == []
    again = scheduler_process(tmp_path, database_url, clock.now)
    assert await wait(again) == 0, again.stderr.read() if again.stderr else ""
    [job] = await jobs_of(context, schedule.id)
    assert job["nominal_time"] == schedule.next_fire_at
    assert [outcome for _, outcome, _ in await runs(context, schedule.id)] == ["created"]
    async with context.engine.connect() as connection:
        submits = (
            await connection.execute(
                select(func.count()).where(
                    outbox_table.c.job_id == job["id"], outbox_table.c.kind == "command"
                )
            )
        ).scalar_one()
    assert submits == 1


async def test_two_scheduler_processes_create_one_job_per_nominal_time(
    context: ProcessContext, database_url: str, clock: Clock, tmp_path: Path
) -> None:
    schedules = [await create(context, overlap="allow", misfire_grace_s=3600) for _ in range(6)]
    clock.advance(hours=1, minutes=1)  # two firings due each, both within the grace period
    processes = [scheduler_process(tmp_path, database_url, clock.now) for _ in range(2)]
    codes = [await wait(p) for p in processes]
    assert codes == [0, 0], [p.stderr.read() if p.stderr else "" for p in processes]
    created = 0
    for process in processes:
        assert process.stdout is not None
        created += int(process.stdout.read().strip().splitlines()[-1].split()[-1])
    total = 0
    for schedule in schedules:
        nominal = [j["nominal_time"] for j in await jobs_of(context, schedule.id)]
        assert len(nominal) == len(set(nominal)) == 2
        assert len(await runs(context, schedule.id)) == 2
        total += len(nominal)
    assert created == total
