"""The submitter's reports of a bulk submission, handled at the same time, are applied in
batches (one unit of work for many jobs) with the guarantees of one unit of work per report,
on SQLite and PostgreSQL: each applied once, an aborted job's cancellation sent again, and a
SIGKILL inside a batch losing nothing and applying nothing twice once the broker redelivers."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import select

from gridgate.contracts import JobSubmitted
from gridgate.contracts.phases import Phase
from gridgate.gateway.consumers.reports import ReportHandler
from gridgate.gateway.factory import ProcessContext, unit_of_work
from gridgate.gateway.schema import history_table, outbox_table, tasks_table
from gridgate.gateway.services.jobs import JobRequest
from gridgate.iam.identity import Identity
from gridgate.testing.gateway import offline_gateway

from .report_children import killed_handling

ALICE = Identity(sub="alice", groups=("cta",), vos=("cta",))


@pytest.fixture(params=["sqlite", "postgresql"])
async def context(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[ProcessContext]:
    async with offline_gateway(request.param, tmp_path) as process:
        yield process


async def queued_jobs(context: ProcessContext, count: int) -> list[str]:
    """``count`` jobs created with PHASE=RUN: their SubmitJob is out, no answer yet."""
    ids = []
    for _ in range(count):
        async with unit_of_work(context) as factory:
            ids.append(
                await factory.job_service().create_job(
                    ALICE, JobRequest(workflow="hello-world", run=True)
                )
            )
    return ids


def submitted(job_id: str) -> JobSubmitted:
    return JobSubmitted(job_id=job_id, facility="dirac-x", facility_job_ids=["d." + job_id])


async def state_of(context: ProcessContext, ids: list[str]) -> dict[str, dict[str, object]]:
    """Per job: its task's facility id, its submitter history lines, its outbox rows by kind."""
    async with context.engine.connect() as connection:
        tasks = {
            r.job_id: r.facility_job_id
            for r in await connection.execute(
                select(tasks_table.c.job_id, tasks_table.c.facility_job_id).where(
                    tasks_table.c.job_id.in_(ids)
                )
            )
        }
        history = Counter(
            (r.job_id, r.detail)
            for r in await connection.execute(
                select(history_table.c.job_id, history_table.c.detail).where(
                    history_table.c.job_id.in_(ids), history_table.c.source == "submitter"
                )
            )
        )
        outbox = Counter(
            tuple(r)
            for r in await connection.execute(
                select(outbox_table.c.job_id, outbox_table.c.message_type).where(
                    outbox_table.c.job_id.in_(ids)
                )
            )
        )
    return {
        job_id: {
            "facility_job_id": tasks[job_id],
            "history": {k[1]: n for k, n in history.items() if k[0] == job_id},
            "outbox": {k[1]: n for k, n in outbox.items() if k[0] == job_id},
        }
        for job_id in ids
    }


def assert_submitted_once(job_id: str, state: dict[str, object]) -> None:
    assert state["facility_job_id"] == "d." + job_id, state
    assert state["history"] == {f"submitted to dirac-x as d.{job_id}": 1}, state


async def test_submissions_at_once_are_applied_in_batches_once_each(
    context: ProcessContext,
) -> None:
    ids = await queued_jobs(context, 40)
    handler = ReportHandler(context)
    reports = [submitted(j) for j in ids]
    # Like the consumer with its prefetch: all in flight at once, one of them twice.
    await asyncio.gather(*(handler(r) for r in [*reports, reports[0]]))
    assert handler.submissions.batches >= 1
    assert handler.submissions.largest > 1
    assert handler.submissions.failed == 0
    for job_id, state in (await state_of(context, ids)).items():
        assert_submitted_once(job_id, state)
    # Redelivered, all of them (as after a crash before the acks): nothing changes.
    await asyncio.gather(*(handler(r) for r in reports))
    for job_id, state in (await state_of(context, ids)).items():
        assert_submitted_once(job_id, state)
        assert state["outbox"] == {"submit-job": 1, "org.gridgate.job.queued.v1": 1}, state


async def test_an_aborted_job_in_a_batch_is_cancelled_at_the_facility(
    context: ProcessContext,
) -> None:
    ids = await queued_jobs(context, 10)
    aborted = ids[3]
    async with unit_of_work(context) as factory:
        await factory.job_service().abort_job(ALICE, aborted)
    handler = ReportHandler(context)
    await asyncio.gather(*(handler(submitted(j)) for j in ids))
    assert handler.submissions.largest > 1
    states = await state_of(context, ids)
    # The abort sent one cancellation; it overtook the submission, so the facility is told
    # again to stop what it took.
    assert states[aborted]["outbox"].get("cancel-job") == 2, states[aborted]  # type: ignore[union-attr]
    for job_id in ids:
        assert_submitted_once(job_id, states[job_id])
        if job_id != aborted:
            assert "cancel-job" not in states[job_id]["outbox"], states[job_id]  # type: ignore[operator]


@pytest.mark.parametrize("crash", ["submissions-batch-written", "submissions-batch-committed"])
async def test_a_sigkill_inside_a_batch_of_submissions_loses_nothing_and_repeats_nothing(
    context: ProcessContext, tmp_path: Path, crash: str
) -> None:
    ids = await queued_jobs(context, 30)
    reports = [submitted(j) for j in ids]
    url = context.settings.database_url.get_secret_value()
    await asyncio.to_thread(killed_handling, url, reports, tmp_path, crash)
    before = await state_of(context, ids)
    applied = [j for j in ids if before[j]["facility_job_id"] is not None]
    if crash == "submissions-batch-written":
        assert applied == []  # killed before its commit: nothing of the batch was written
    else:
        assert len(applied) > 1  # a whole batch committed, none of its messages acknowledged
        for job_id in applied:
            assert_submitted_once(job_id, before[job_id])
    # The broker delivers every unacknowledged message again, all at once.
    handler = ReportHandler(context)
    await asyncio.gather(*(handler(r) for r in reports))
    for job_id, state in (await state_of(context, ids)).items():
        assert_submitted_once(job_id, state)


async def test_a_job_still_pending_takes_its_submission_in_a_batch(
    context: ProcessContext,
) -> None:
    # Phase guard: the batch leaves a job's phase alone, as one report at a time does.
    ids = await queued_jobs(context, 5)
    handler = ReportHandler(context)
    await asyncio.gather(*(handler(submitted(j)) for j in ids))
    async with unit_of_work(context) as factory:
        for job_id in ids:
            job = await factory.job_service().get_job(ALICE, job_id)
            assert job.phase == Phase.QUEUED, job
