"""new-data schedules against the real Rucio testbed, on SQLite and PostgreSQL: a job per full
batch of new files, each file handed to exactly one job across rounds, restarts and a crash
before the commit (docs/schedules.md). The clock is the test's."""

from __future__ import annotations

import asyncio
import secrets
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from sqlalchemy import select, update

from gridgate.contracts.phases import Phase
from gridgate.datalake import Did, RucioClient
from gridgate.gateway.exceptions import InputNotReadableError, InvalidScheduleError
from gridgate.gateway.factory import (
    ProcessContext,
    fire_due_schedules,
    unit_of_work,
)
from gridgate.gateway.models.schedule import Schedule, Trigger
from gridgate.gateway.schema import jobs_table, schedule_files_table, schedule_runs_table
from gridgate.gateway.services.datalake import DataLakePolicy, InputResolver
from gridgate.gateway.services.schedules import ScheduleSpec
from gridgate.iam.identity import Identity
from gridgate.testing.gateway import gateway_database, offline_context
from gridgate.testing.rucio import RucioTestbed

ALICE = Identity(sub="alice", groups=("cta",), vos=("cta",))
SCOPE = "cta"  # alice reads it as a member of the VO cta


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


@pytest.fixture(params=["sqlite", "postgresql"])
async def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    async with gateway_database(request.param, tmp_path) as url:
        yield url


def rucio_client(url: str, account: str, username: str, password: str) -> RucioClient:
    return RucioClient(url, account, username, password)


def make_context(url: str, clock: Clock, rucio: RucioClient) -> ProcessContext:
    """A gateway's process context reading the data lake as the gateway's Rucio account."""
    return offline_context(
        url,
        settings={"min_schedule_interval_s": 60},
        clock=clock,
        inputs=InputResolver(rucio, DataLakePolicy(accounts={"alice": "alice"})),
    )


@pytest_asyncio.fixture(loop_scope="session")
async def rucio(rucio_testbed: RucioTestbed) -> AsyncIterator[RucioClient]:
    async with rucio_client(
        rucio_testbed.url, rucio_testbed.account, rucio_testbed.username, rucio_testbed.password
    ) as client:
        yield client


@pytest.fixture
async def clock() -> Clock:
    return Clock(datetime(2026, 6, 1, 12, 0, tzinfo=UTC))


@pytest.fixture
async def dataset(rucio: RucioClient) -> Did:
    did = Did(SCOPE, f"new-data-{secrets.token_hex(4)}")
    await rucio.add_dataset(did)
    return did


async def arrive(
    rucio: RucioClient, testbed: RucioTestbed, dataset: Did, names: list[str]
) -> list[str]:
    """Register files on the posix RSE and attach them to ``dataset``: new data."""
    dids = [Did(dataset.scope, f"{dataset.name}.{n}") for n in names]
    await rucio.add_replicas(
        testbed.posix_rse,
        [{"scope": d.scope, "name": d.name, "bytes": 4, "adler32": "0000000f"} for d in dids],
    )
    await rucio.attach(dataset, dids)
    return [str(d) for d in dids]


async def create(context: ProcessContext, dataset: Did, **fields: object) -> Schedule:
    trigger = Trigger("new-data", did=str(dataset), files_per_job=2)
    given: dict[str, Any] = {"overlap": "allow", **fields}
    spec = ScheduleSpec(workflow="hello-world", trigger=trigger, **given)
    async with unit_of_work(context) as factory:
        return await factory.schedule_service().create_schedule(ALICE, spec)


async def batches(context: ProcessContext, schedule_id: str) -> list[list[str]]:
    """The input files of each job the schedule made, in the order they were made."""
    async with context.engine.connect() as connection:
        rows = await connection.execute(
            select(jobs_table.c.inputs)
            .where(jobs_table.c.schedule_id == schedule_id)
            .order_by(jobs_table.c.nominal_time)
        )
        return [[f"{f['scope']}:{f['name']}" for f in r.inputs["files"]] for r in rows]


async def handed_out(context: ProcessContext, schedule_id: str) -> list[tuple[str, str]]:
    async with context.engine.connect() as connection:
        rows = await connection.execute(
            select(schedule_files_table.c.did, schedule_files_table.c.job_id)
            .where(schedule_files_table.c.schedule_id == schedule_id)
            .order_by(schedule_files_table.c.did)
        )
        return [(r.did, r.job_id) for r in rows]


async def test_each_new_file_goes_to_one_job_across_rounds_and_restarts(
    database_url: str,
    clock: Clock,
    rucio: RucioClient,
    rucio_testbed: RucioTestbed,
    dataset: Did,
) -> None:
    context = make_context(database_url, clock, rucio)
    try:
        schedule = await create(context, dataset)
        assert schedule.interval_s == 60  # looks as often as schedules may fire
        files = await arrive(rucio, rucio_testbed, dataset, ["a", "b", "c", "d", "e"])
        clock.advance(seconds=61)
        # Two full batches of two; e waits for a partner.
        assert await fire_due_schedules(context) == 2
        assert await batches(context, schedule.id) == [files[0:2], files[2:4]]
        files += await arrive(rucio, rucio_testbed, dataset, ["f", "g"])
        clock.advance(seconds=60)
        assert await fire_due_schedules(context) == 1
        assert (await batches(context, schedule.id))[2] == files[4:6]
        async with context.engine.connect() as connection:
            notes = (
                await connection.execute(
                    select(schedule_runs_table.c.reason)
                    .where(schedule_runs_table.c.schedule_id == schedule.id)
                    .order_by(schedule_runs_table.c.nominal_time)
                )
            ).scalars()
            expected = [
                f"2 new file(s) of {dataset}: {', '.join(files[i : i + 2])}" for i in (0, 2, 4)
            ]
            assert list(notes) == expected
    finally:
        await context.engine.dispose()

    # A restart: a new process context, the same database. Nothing is handed out twice.
    context = make_context(database_url, clock, rucio)
    try:
        clock.advance(seconds=60)
        assert await fire_due_schedules(context) == 0
        files += await arrive(rucio, rucio_testbed, dataset, ["h"])
        clock.advance(seconds=60)
        assert await fire_due_schedules(context) == 1
        # "Run now" makes a job of whatever is new, a partial batch too; then nothing is.
        files += await arrive(rucio, rucio_testbed, dataset, ["i"])
        clock.advance(seconds=1)
        async with unit_of_work(context) as factory:
            firing = await factory.schedule_service().run_now(ALICE, schedule.id)
            assert firing.outcome == "created"
            clock.advance(seconds=1)
            again = await factory.schedule_service().run_now(ALICE, schedule.id)
            assert again.outcome == "skipped" and again.reason == f"no new files in {dataset}"
        made = await batches(context, schedule.id)
        assert made[-2:] == [files[6:8], files[8:9]]
        every = [f for batch in made for f in batch]
        assert sorted(every) == sorted(files) and len(every) == len(set(every)) == 9
        assert [did for did, _ in await handed_out(context, schedule.id)] == sorted(files)
    finally:
        await context.engine.dispose()


async def test_with_overlap_forbid_a_batch_waits_for_the_previous_job(
    database_url: str,
    clock: Clock,
    rucio: RucioClient,
    rucio_testbed: RucioTestbed,
    dataset: Did,
) -> None:
    context = make_context(database_url, clock, rucio)
    try:
        schedule = await create(context, dataset, overlap="forbid")
        files = await arrive(rucio, rucio_testbed, dataset, ["a", "b", "c", "d"])
        clock.advance(seconds=61)
        assert await fire_due_schedules(context) == 1
        clock.advance(seconds=60)
        assert await fire_due_schedules(context) == 0  # the first job is still QUEUED
        async with unit_of_work(context) as factory:
            firing = await factory.schedule_service().run_now(ALICE, schedule.id)
        assert firing.outcome == "skipped" and "overlap policy forbid" in (firing.reason or "")
        [[job_id, _]] = [[j, d] for d, j in (await handed_out(context, schedule.id))[:1]]
        async with context.engine.begin() as connection:
            await connection.execute(
                update(jobs_table)
                .where(jobs_table.c.id == job_id)
                .values(phase=Phase.COMPLETED.value)
            )
        clock.advance(seconds=60)
        assert await fire_due_schedules(context) == 1
        assert await batches(context, schedule.id) == [files[0:2], files[2:4]]
    finally:
        await context.engine.dispose()


async def test_the_owner_must_be_allowed_to_read_the_watched_did(
    database_url: str, clock: Clock, rucio: RucioClient
) -> None:
    context = make_context(database_url, clock, rucio)
    try:
        with pytest.raises(InputNotReadableError):
            await create(context, Did("user.bob", "private"))
        with pytest.raises(InvalidScheduleError):
            await create(context, Did(SCOPE, "whatever"), overlap="replace")
    finally:
        await context.engine.dispose()


# ----- a crash between the firing and its commit, in a child process ----------------------

CHILD = """
import asyncio, sys
from datetime import datetime
from new_data_child import run
asyncio.run(run(*sys.argv[1:]))
"""

CHILD_MODULE = """
from datetime import datetime
from gridgate.gateway.factory import fire_due_schedules
from test_schedules_new_data import Clock, make_context, rucio_client

async def run(url, now, rucio_url, account, username, password):
    async with rucio_client(rucio_url, account, username, password) as rucio:
        context = make_context(url, Clock(datetime.fromisoformat(now)), rucio)
        try:
            print("created", await fire_due_schedules(context), flush=True)
        finally:
            await context.engine.dispose()
"""


def scheduler_process(
    tmp_path: Path, url: str, now: datetime, testbed: RucioTestbed, crash: str | None = None
) -> subprocess.Popen[str]:
    (tmp_path / "new_data_child.py").write_text(CHILD_MODULE)
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": f"{tmp_path}:{Path(__file__).parent}"}
    if crash:
        env["GRIDGATE_CRASH_POINTS"] = crash
    rucio = [testbed.url, testbed.account, testbed.username, testbed.password]
    return subprocess.Popen(
        [sys.executable, "-c", CHILD, url, now.isoformat(), *rucio],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


async def wait(process: subprocess.Popen[str]) -> int:
    return await asyncio.to_thread(process.wait, 120)


async def test_a_crash_before_the_commit_hands_each_file_out_once(
    database_url: str,
    clock: Clock,
    rucio: RucioClient,
    rucio_testbed: RucioTestbed,
    dataset: Did,
    tmp_path: Path,
) -> None:
    context = make_context(database_url, clock, rucio)
    try:
        schedule = await create(context, dataset)
        files = await arrive(rucio, rucio_testbed, dataset, ["a", "b", "c", "d"])
        clock.advance(seconds=61)
        crashed = scheduler_process(
            tmp_path, database_url, clock.now, rucio_testbed, "schedule-fired-before-commit"
        )
        assert await wait(crashed) == -signal.SIGKILL, (
            crashed.stderr.read() if crashed.stderr else ""
        )
        assert await batches(context, schedule.id) == []
        assert await handed_out(context, schedule.id) == []
        again = scheduler_process(tmp_path, database_url, clock.now, rucio_testbed)
        assert await wait(again) == 0, again.stderr.read() if again.stderr else ""
        assert again.stdout is not None
        assert again.stdout.read().strip().splitlines()[-1] == "created 2"
        assert await batches(context, schedule.id) == [files[0:2], files[2:4]]
        clock.advance(seconds=60)
        assert await fire_due_schedules(context) == 0
        assert len(await handed_out(context, schedule.id)) == 4
    finally:
        await context.engine.dispose()


# ----- over HTTP ---------------------------------------------------------------------------


async def test_the_api_takes_a_new_data_trigger_and_needs_a_data_lake(api: Any) -> None:
    http = api("new-data-owner")
    trigger = {"kind": "new-data", "did": "cta:raw", "files_per_job": 5, "minutes": 10}
    answer = await http.post("/api/schedules", json={"workflow": "hello-world", "trigger": trigger})
    assert answer.status_code == 422, answer.text
    assert answer.json()["type"].endswith("invalid-inputs")
    assert "no data lake" in answer.text
    bad = {**trigger, "files_per_job": 0}
    answer = await http.post("/api/schedules", json={"workflow": "hello-world", "trigger": bad})
    assert answer.status_code == 422
