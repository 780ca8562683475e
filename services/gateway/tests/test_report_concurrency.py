"""Job state stays right when reports of one job are handled concurrently, duplicated and out
of order, on SQLite and on PostgreSQL: no lost update, an unbroken history, one final event
and one collection per job (docs/adr/0007-job-state-concurrency.md)."""

from __future__ import annotations

import asyncio
import itertools
import random
import sys
from collections import Counter
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from pydantic import SecretStr
from sqlalchemy import select, update

from gridgate.contracts import (
    JobStateObserved,
    JobSubmitted,
    Report,
    ResultFile,
    ResultsStaged,
    TaskState,
)
from gridgate.contracts.phases import Phase
from gridgate.core.errors import TransientError
from gridgate.gateway.config import GatewaySettings
from gridgate.gateway.consumers.reports import ReportHandler
from gridgate.gateway.factory import ProcessContext, job_policy, unit_of_work
from gridgate.gateway.schema import history_table, jobs_table, outbox_table
from gridgate.gateway.schema.engine import create_engine
from gridgate.gateway.schema.migrate import upgrade_schema
from gridgate.gateway.services.facilities import FacilityCatalogue
from gridgate.gateway.services.jobs import JobRequest
from gridgate.gateway.services.notifier import PhaseNotifier
from gridgate.iam.identity import Identity
from gridgate.testing.services import create_postgres_database, drop_postgres_database, free_port
from gridgate.workflows import WorkflowCatalogue

ALICE = Identity(sub="alice", groups=("cta",), vos=("cta",))
FINAL = {Phase.COMPLETED.value, Phase.ERROR.value, Phase.ABORTED.value}


def make_context(url: str, **settings: object) -> ProcessContext:
    """A gateway's process context on ``url``, without broker or relay: the outbox rows stay
    in their table for the test to count."""
    gateway = GatewaySettings(database_url=SecretStr(url), **settings)  # type: ignore[arg-type]
    return ProcessContext(
        settings=gateway,
        engine=create_engine(url),
        workflows=WorkflowCatalogue.shipped(),
        facilities=FacilityCatalogue.load(),
        notifier=PhaseNotifier(),
        relay=None,
        policy=job_policy(gateway, sys.executable),
    )


@pytest.fixture(params=["sqlite", "postgresql"])
async def context(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[ProcessContext]:
    """A gateway's process context on a fresh database of each kind."""
    name = None
    if request.param == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp_path}/gateway.db"
    else:
        name, url = await create_postgres_database()
    context = make_context(url, stall_after_s=60, max_redrives=2)
    await upgrade_schema(context.engine)
    try:
        yield context
    finally:
        await context.engine.dispose()
        if name is not None:
            await drop_postgres_database(name)


async def create_job(context: ProcessContext) -> str:
    async with unit_of_work(context) as factory:
        return await factory.job_service().create_job(
            ALICE, JobRequest(workflow="hello-world", run=True)
        )


def observation(job_id: str, at: datetime, phase: Phase, state: str) -> JobStateObserved:
    task = TaskState(
        index=0,
        facility_job_id=f"{job_id}.0",
        phase=phase,
        facility_status=state,
        exit_code=0 if phase == Phase.COMPLETED else None,
    )
    return JobStateObserved(job_id=job_id, observed_at=at, tasks=[task])


def life_of(job_id: str) -> tuple[list[Report], list[Report]]:
    """Every report a job gets, each sent three times, as a lagging gateway sees them: those
    of its run, then those of its collection (sent only once the run's end is recorded)."""
    start = datetime.now(UTC)
    staged = ResultFile(
        name="stdout.txt", size=6, media_type="text/plain", sha256="0" * 64, adler32="0" * 8
    )
    once: list[Report] = [
        JobSubmitted(job_id=job_id, facility="local", facility_job_ids=[f"{job_id}.0"]),
        observation(job_id, start, Phase.QUEUED, "submitted"),
        observation(job_id, start + timedelta(seconds=1), Phase.EXECUTING, "running"),
        observation(job_id, start + timedelta(seconds=2), Phase.COMPLETED, "done"),
    ]
    collected = ResultsStaged(job_id=job_id, results=[staged])
    return [report for report in once for _ in range(3)], [collected] * 3


async def history_chain(context: ProcessContext, job_id: str) -> tuple[str, list[tuple]]:
    async with context.engine.connect() as connection:
        phase = (
            await connection.execute(select(jobs_table.c.phase).where(jobs_table.c.id == job_id))
        ).scalar_one()
        rows = await connection.execute(
            select(history_table.c.from_phase, history_table.c.to_phase)
            .where(history_table.c.job_id == job_id, history_table.c.to_phase.is_not(None))
            .order_by(history_table.c.id)
        )
        return phase, [tuple(r) for r in rows]


async def outbox_counts(context: ProcessContext) -> Counter[tuple[str, str]]:
    """(job id, command kind or event type) of every outbox row."""
    async with context.engine.connect() as connection:
        rows = await connection.execute(select(outbox_table.c.job_id, outbox_table.c.message_type))
        return Counter((job_id, message_type) for job_id, message_type in rows)


async def test_concurrent_duplicated_reports_lose_no_update(context: ProcessContext) -> None:
    jobs = [await create_job(context) for _ in range(12)]
    handler = ReportHandler(context)
    lives = [life_of(job_id) for job_id in jobs]
    for stage in (0, 1):
        reports = [report for life in lives for report in life[stage]]
        random.Random(7).shuffle(reports)
        # Like the gateway's consumer with its prefetch: many reports in flight at once.
        await asyncio.gather(*(handler(report) for report in reports))
        # A report that came before the job could take it (a late observation of the start)
        # is dropped; handled again, as after any redelivery, it changes nothing.
        for report in reports:
            await handler(report)

    counts = await outbox_counts(context)
    for job_id in jobs:
        phase, chain = await history_chain(context, job_id)
        assert phase == Phase.COMPLETED.value, (job_id, chain)
        assert chain[0] == (None, Phase.PENDING.value)
        for previous, current in itertools.pairwise(chain):
            assert current[0] == previous[1], chain  # each step starts where the last ended
        assert chain[-1][1] == phase
        assert [to for _, to in chain].count(Phase.COMPLETED.value) == 1
        assert counts[(job_id, "collect-results")] == 1
        assert counts[(job_id, "org.gridgate.job.completed.v1")] == 1
        assert counts[(job_id, "org.gridgate.job.results_staged.v1")] == 1


async def test_an_older_observation_arriving_late_is_dropped(context: ProcessContext) -> None:
    job_id = await create_job(context)
    handler = ReportHandler(context)
    now = datetime.now(UTC)
    await handler(observation(job_id, now, Phase.EXECUTING, "running"))
    await handler(observation(job_id, now - timedelta(seconds=5), Phase.QUEUED, "submitted"))
    phase, chain = await history_chain(context, job_id)
    assert phase == Phase.EXECUTING.value
    assert chain[-1] == (Phase.QUEUED.value, Phase.EXECUTING.value)
    async with unit_of_work(context) as factory:
        job = await factory.job_service().get_job(ALICE, job_id)
    assert job.tasks[0].facility_status == "running"


async def stale_by(context: ProcessContext, job_id: str, seconds: int) -> None:
    async with context.engine.begin() as connection:
        await connection.execute(
            update(jobs_table)
            .where(jobs_table.c.id == job_id)
            .values(updated_at=datetime.now(UTC) - timedelta(seconds=seconds))
        )


async def watch(context: ProcessContext) -> int:
    async with unit_of_work(context) as factory:
        return await factory.housekeeping().watch_stalled()


async def test_a_submission_that_never_came_back_is_sent_again_then_fails(
    context: ProcessContext,
) -> None:
    job_id = await create_job(context)
    assert await watch(context) == 0  # fresh: nothing to do
    for attempt in (1, 2):
        await stale_by(context, job_id, 120)
        assert await watch(context) == 1
        async with unit_of_work(context) as factory:
            job = await factory.job_service().get_job(ALICE, job_id)
        assert job.phase == Phase.QUEUED
        assert job.redrives == attempt
        assert job.stall_reason is not None and "submission" in job.stall_reason
        counts = await outbox_counts(context)
        assert counts[(job_id, "submit-job")] == 1 + attempt
    await stale_by(context, job_id, 120)
    assert await watch(context) == 1
    async with unit_of_work(context) as factory:
        job = await factory.job_service().get_job(ALICE, job_id)
    assert job.phase == Phase.ERROR
    assert job.error_message is not None and "did not come back after 3 attempts" in (
        job.error_message
    )
    assert (await outbox_counts(context))[(job_id, "submit-job")] == 3


async def test_a_job_waiting_on_its_facility_gets_a_reason_once(context: ProcessContext) -> None:
    job_id = await create_job(context)
    handler = ReportHandler(context)
    await handler(JobSubmitted(job_id=job_id, facility="local", facility_job_ids=["x.0"]))
    await handler(observation(job_id, datetime.now(UTC), Phase.EXECUTING, "running"))
    await stale_by(context, job_id, 120)
    assert await watch(context) == 1
    assert await watch(context) == 0  # told once, not every round
    async with unit_of_work(context) as factory:
        job = await factory.job_service().get_job(ALICE, job_id)
    assert job.phase == Phase.EXECUTING
    assert job.stall_reason is not None and "no change reported" in job.stall_reason
    assert (await outbox_counts(context))[(job_id, "submit-job")] == 1
    # Progress clears the reason.
    await handler(observation(job_id, datetime.now(UTC), Phase.COMPLETED, "done"))
    async with unit_of_work(context) as factory:
        job = await factory.job_service().get_job(ALICE, job_id)
    assert job.stall_reason is None


async def test_a_database_outage_makes_a_report_wait_not_die(tmp_path: Path) -> None:
    url = f"postgresql+asyncpg://postgres@127.0.0.1:{free_port()}/nowhere"
    context = make_context(url)
    report = JobSubmitted(job_id="0" * 16, facility="local", facility_job_ids=["x.0"])
    try:
        # Transient: the consumer parks it for a retry instead of dead-lettering it.
        with pytest.raises(TransientError, match="database is unreachable"):
            await ReportHandler(context)(report)
    finally:
        await context.engine.dispose()
