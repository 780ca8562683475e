"""Each job's events are numbered 1, 2, 3, ... with no gap and no repeat, in the order of
``(job_version, ordinal)``, whatever units of work emit them and however concurrently, on
SQLite and PostgreSQL (docs/adr/0014-job-event-sequence.md)."""

from __future__ import annotations

import asyncio
import random
from collections import defaultdict
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
import pytest
from sqlalchemy import select, update

from gridgate.contracts import (
    JobStateObserved,
    JobSubmitted,
    Report,
    ResultFile,
    ResultsStaged,
    TaskState,
)
from gridgate.contracts.events import SEQUENCE_EXTENSION
from gridgate.contracts.phases import Phase
from gridgate.gateway.consumers.reports import ReportHandler
from gridgate.gateway.factory import ProcessContext, unit_of_work
from gridgate.gateway.schema import event_journal_table, jobs_table, outbox_table
from gridgate.gateway.services.jobs import JobRequest
from gridgate.iam.identity import Identity
from gridgate.testing.gateway import offline_gateway

ALICE = Identity(sub="alice", groups=("cta",), vos=("cta",))
JOBS = 8


@pytest.fixture(params=["sqlite", "postgresql"])
async def context(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[ProcessContext]:
    async with offline_gateway(request.param, tmp_path) as context:
        yield context


def reports_of(job_id: str) -> tuple[list[Report], list[Report]]:
    """A job's reports, each three times: its run, then its collection."""
    start = datetime.now(UTC)

    def seen(seconds: int, phase: Phase, state: str) -> JobStateObserved:
        task = TaskState(
            index=0,
            facility_job_id=f"{job_id}.0",
            phase=phase,
            facility_status=state,
            exit_code=0 if phase == Phase.COMPLETED else None,
        )
        return JobStateObserved(
            job_id=job_id, observed_at=start + timedelta(seconds=seconds), tasks=[task]
        )

    run: list[Report] = [
        JobSubmitted(job_id=job_id, facility="local", facility_job_ids=[f"{job_id}.0"]),
        seen(0, Phase.QUEUED, "submitted"),
        seen(1, Phase.EXECUTING, "running"),
        seen(2, Phase.COMPLETED, "done"),
    ]
    staged = ResultFile(
        name="stdout.txt", size=6, media_type="text/plain", sha256="0" * 64, adler32="0" * 8
    )
    return [r for r in run for _ in range(3)], [ResultsStaged(job_id=job_id, results=[staged])] * 3


async def test_concurrent_units_of_work_number_a_jobs_events_without_gap(
    context: ProcessContext,
) -> None:
    jobs = []
    for run in (True, False):  # created queued (one event), or pending and then started
        for _ in range(JOBS // 2):
            async with unit_of_work(context) as factory:
                jobs.append(
                    await factory.job_service().create_job(
                        ALICE, JobRequest(workflow="hello-world", run=run)
                    )
                )
    for job_id in jobs[JOBS // 2 :]:
        async with unit_of_work(context) as factory:
            await factory.job_service().start_job(ALICE, job_id)
    # A credential about to run out: housekeeping's warning is an event of its own.
    async with context.engine.begin() as connection:
        await connection.execute(
            update(jobs_table).values(credential_expires_at=datetime.now(UTC) + timedelta(hours=1))
        )
    handler = ReportHandler(context)
    lives = [reports_of(job_id) for job_id in jobs]
    for stage in (0, 1):
        reports = [report for life in lives for report in life[stage]]
        random.Random(13).shuffle(reports)
        warn = _warn_expiring(context) if stage == 0 else asyncio.sleep(0)
        await asyncio.gather(warn, *(handler(report) for report in reports))

    async with context.engine.connect() as connection:
        outbox = (
            await connection.execute(
                select(outbox_table.c.job_id, outbox_table.c.body).where(
                    outbox_table.c.kind == "event"
                )
            )
        ).all()
        journal = (
            await connection.execute(
                select(event_journal_table.c.job_id, event_journal_table.c.body)
            )
        ).all()
        counters = dict(
            (await connection.execute(select(jobs_table.c.id, jobs_table.c.event_sequence))).all()
        )
    assert len(journal) == len(outbox)
    events: dict[str, list[dict[str, object]]] = defaultdict(list)
    for job_id, body in outbox:
        envelope = orjson.loads(body)
        # The extension attribute repeats the data's number.
        assert envelope[SEQUENCE_EXTENSION] == envelope["data"]["sequence"]
        events[job_id].append(envelope["data"])
    warned = 0
    for job_id in jobs:
        mine = events[job_id]
        numbers = sorted(e["sequence"] for e in mine)  # type: ignore[misc]
        assert numbers == list(range(1, len(mine) + 1)), (job_id, numbers)
        assert counters[job_id] == len(mine)
        # The numbers follow the job's true order.
        by_number = sorted(mine, key=lambda e: e["sequence"])  # type: ignore[arg-type,return-value]
        keys = [(e["job_version"], e["ordinal"]) for e in by_number]
        assert keys == sorted(keys), (job_id, keys)  # type: ignore[type-var]
        phases = [e["phase"] for e in by_number]
        assert phases[-1] == Phase.COMPLETED.value and "EXECUTING" in phases
        warned += any(e["source"] == "gateway" for e in mine)
    assert warned == JOBS


async def _warn_expiring(context: ProcessContext) -> None:
    async with unit_of_work(context) as factory:
        await factory.housekeeping().warn_expiring_credentials(timedelta(hours=2))
