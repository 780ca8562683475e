"""Observations handled at the same time are applied in batches, one unit of work for many
jobs, with the guarantees of one unit of work per observation, on SQLite and PostgreSQL: each
applied once, its events staged once, a failing observation failing alone, and a SIGKILL
inside a batch losing nothing and applying nothing twice once the broker redelivers."""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select, update

from gridgate.contracts import JobStateObserved, JobStatesObserved, JobSubmitted, TaskState
from gridgate.contracts.events import SEQUENCE_EXTENSION
from gridgate.contracts.phases import Phase
from gridgate.gateway.consumers.reports import ReportHandler
from gridgate.gateway.factory import ProcessContext, unit_of_work
from gridgate.gateway.schema import history_table, jobs_table, outbox_table
from gridgate.gateway.schema.tables import event_journal_table
from gridgate.gateway.services.jobs import JobRequest
from gridgate.iam.identity import Identity
from gridgate.testing.gateway import offline_gateway

from .report_children import killed_handling

ALICE = Identity(sub="alice", groups=("cta",), vos=("cta",))
EXECUTING_EVENT = "org.gridgate.job.executing.v1"


@pytest.fixture(params=["sqlite", "postgresql"])
async def context(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[ProcessContext]:
    async with offline_gateway(request.param, tmp_path) as process:
        yield process


async def submitted_jobs(context: ProcessContext, count: int) -> list[str]:
    """``count`` jobs created with PHASE=RUN and submitted to the local facility."""
    ids = []
    for _ in range(count):
        async with unit_of_work(context) as factory:
            ids.append(
                await factory.job_service().create_job(
                    ALICE, JobRequest(workflow="hello-world", run=True)
                )
            )
    handler = ReportHandler(context)
    for job_id in ids:
        await handler(
            JobSubmitted(job_id=job_id, facility="local", facility_job_ids=["f." + job_id])
        )
    return ids


def observed(job_id: str, at: datetime, phase: Phase, state: str) -> JobStateObserved:
    task = TaskState(
        index=0,
        facility_job_id="f." + job_id,
        phase=phase,
        facility_status=state,
        exit_code=0 if phase == Phase.COMPLETED else None,
    )
    return JobStateObserved(job_id=job_id, observed_at=at, tasks=[task])


async def state_of(context: ProcessContext, ids: list[str]) -> dict[str, dict[str, object]]:
    """Per job: its phase and outcome, its monitor history entries, and how many outbox and
    journal rows each event type or command kind has."""
    async with context.engine.connect() as connection:
        jobs = {
            r.id: r
            for r in await connection.execute(
                select(jobs_table.c.id, jobs_table.c.phase, jobs_table.c.finished_outcome).where(
                    jobs_table.c.id.in_(ids)
                )
            )
        }
        history = Counter(
            (r.job_id, r.detail, r.to_phase)
            for r in await connection.execute(
                select(history_table).where(
                    history_table.c.job_id.in_(ids), history_table.c.source == "monitor"
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
        journal = Counter(
            tuple(r)
            for r in await connection.execute(
                select(event_journal_table.c.job_id, event_journal_table.c.event_type).where(
                    event_journal_table.c.job_id.in_(ids)
                )
            )
        )
    return {
        job_id: {
            "phase": jobs[job_id].phase,
            "outcome": jobs[job_id].finished_outcome,
            "history": {k[1:]: n for k, n in history.items() if k[0] == job_id},
            "outbox": {k[1]: n for k, n in outbox.items() if k[0] == job_id},
            "journal": {k[1]: n for k, n in journal.items() if k[0] == job_id},
        }
        for job_id in ids
    }


async def event_sequences(
    context: ProcessContext, ids: list[str]
) -> dict[str, tuple[list[int], int]]:
    """Per job: the sequence numbers of its outbox events in order, and its row's counter."""
    async with context.engine.connect() as connection:
        counters = dict(
            (
                await connection.execute(
                    select(jobs_table.c.id, jobs_table.c.event_sequence).where(
                        jobs_table.c.id.in_(ids)
                    )
                )
            ).all()
        )
        rows = await connection.execute(
            select(outbox_table.c.job_id, outbox_table.c.body)
            .where(outbox_table.c.job_id.in_(ids), outbox_table.c.kind == "event")
            .order_by(outbox_table.c.id)
        )
        numbers: dict[str, list[int]] = {job_id: [] for job_id in ids}
        for job_id, body in rows:
            numbers[job_id].append(json.loads(body)[SEQUENCE_EXTENSION])
    return {job_id: (numbers[job_id], counters[job_id]) for job_id in ids}


def assert_executing_once(state: dict[str, object]) -> None:
    assert state["phase"] == Phase.EXECUTING.value, state
    history = state["history"]
    assert isinstance(history, dict)
    assert history == {("running", None): 1, (None, Phase.EXECUTING.value): 1}, state
    for rows in (state["outbox"], state["journal"]):
        assert isinstance(rows, dict)
        assert rows.get(EXECUTING_EVENT) == 1, state


async def test_observations_at_once_are_applied_in_batches_once_each(
    context: ProcessContext,
) -> None:
    ids = await submitted_jobs(context, 40)
    handler = ReportHandler(context)
    start = datetime.now(UTC)
    running = [observed(j, start, Phase.EXECUTING, "running") for j in ids]
    # Like the consumer with its prefetch: all in flight at once, one of them twice.
    await asyncio.gather(*(handler(r) for r in [*running, running[0]]))
    assert handler.observations.batches >= 1
    assert handler.observations.largest > 1
    assert handler.observations.failed == 0
    for state in (await state_of(context, ids)).values():
        assert_executing_once(state)
    # Each job's events stay numbered without a gap through a batch: queued 1, executing 2.
    assert await event_sequences(context, ids) == {job_id: ([1, 2], 2) for job_id in ids}

    done = [observed(j, start + timedelta(seconds=1), Phase.COMPLETED, "done") for j in ids]
    await asyncio.gather(*(handler(r) for r in done))
    # Redelivered, all of them (as after a crash before the acks): nothing changes.
    await asyncio.gather(*(handler(r) for r in [*running, *done]))
    for state in (await state_of(context, ids)).values():
        assert state["outcome"] == Phase.COMPLETED.value, state
        assert state["outbox"] == {
            "submit-job": 1,
            "org.gridgate.job.queued.v1": 1,
            EXECUTING_EVENT: 1,
            "collect-results": 1,
        }, state


async def test_an_observation_that_fails_fails_alone(context: ProcessContext) -> None:
    ids = await submitted_jobs(context, 12)
    broken = ids[5]
    # Its workflow version is gone: collecting its results cannot be asked for.
    async with context.engine.begin() as connection:
        await connection.execute(
            update(jobs_table).where(jobs_table.c.id == broken).values(workflow_version="9.9.9")
        )
    handler = ReportHandler(context)
    at = datetime.now(UTC)
    outcomes = await asyncio.gather(
        *(handler(observed(j, at, Phase.COMPLETED, "done")) for j in ids),
        return_exceptions=True,
    )
    assert [isinstance(o, Exception) for o in outcomes] == [j == broken for j in ids], outcomes
    assert handler.observations.failed >= 1
    states = await state_of(context, ids)
    for job_id in ids:
        expected = None if job_id == broken else Phase.COMPLETED.value
        assert states[job_id]["outcome"] == expected, states[job_id]


@pytest.mark.parametrize("crash", ["observations-batch-written", "observations-batch-committed"])
async def test_a_sigkill_inside_a_batch_loses_nothing_and_applies_nothing_twice(
    context: ProcessContext, tmp_path: Path, crash: str
) -> None:
    ids = await submitted_jobs(context, 30)
    at = datetime.now(UTC)
    reports = [observed(j, at, Phase.EXECUTING, "running") for j in ids]
    url = context.settings.database_url.get_secret_value()
    await asyncio.to_thread(killed_handling, url, reports, tmp_path, crash)
    before = await state_of(context, ids)
    applied = [j for j in ids if before[j]["phase"] == Phase.EXECUTING.value]
    if crash == "observations-batch-written":
        assert applied == []  # killed before its commit: nothing of the batch was written
    else:
        assert len(applied) > 1  # a whole batch committed, none of its messages acknowledged
        for job_id in applied:
            assert_executing_once(before[job_id])
    # The broker delivers every unacknowledged message again, all at once.
    handler = ReportHandler(context)
    await asyncio.gather(*(handler(r) for r in reports))
    for state in (await state_of(context, ids)).values():
        assert_executing_once(state)
    assert await event_sequences(context, ids) == {job_id: ([1, 2], 2) for job_id in ids}


# One message carrying many observations (what the monitor sends): the same guarantees.


def carried(reports: list[JobStateObserved]) -> JobStatesObserved:
    return JobStatesObserved(observations=reports)


async def test_a_message_of_many_observations_applies_each_once(context: ProcessContext) -> None:
    ids = await submitted_jobs(context, 40)
    handler = ReportHandler(context)
    start = datetime.now(UTC)
    running = [observed(j, start, Phase.EXECUTING, "running") for j in ids]
    # A job twice in one message: its second observation goes in a unit of work of its own.
    await handler(carried([*running, running[0]]))
    for state in (await state_of(context, ids)).values():
        assert_executing_once(state)
    assert await event_sequences(context, ids) == {job_id: ([1, 2], 2) for job_id in ids}
    done = carried(
        [observed(j, start + timedelta(seconds=1), Phase.COMPLETED, "done") for j in ids]
    )
    await handler(done)
    await handler(carried(running))  # late and redelivered: nothing changes
    await handler(done)
    for state in (await state_of(context, ids)).values():
        assert state["outcome"] == Phase.COMPLETED.value, state
        assert state["outbox"] == {
            "submit-job": 1,
            "org.gridgate.job.queued.v1": 1,
            EXECUTING_EVENT: 1,
            "collect-results": 1,
        }, state


async def test_an_observation_that_fails_in_a_message_fails_its_job_alone(
    context: ProcessContext,
) -> None:
    ids = await submitted_jobs(context, 12)
    broken = ids[5]
    async with context.engine.begin() as connection:
        await connection.execute(
            update(jobs_table).where(jobs_table.c.id == broken).values(workflow_version="9.9.9")
        )
    handler = ReportHandler(context)
    at = datetime.now(UTC)
    # The message is handled (acknowledged): dead-lettered, it would take the others along.
    await handler(carried([observed(j, at, Phase.COMPLETED, "done") for j in ids]))
    states = await state_of(context, ids)
    for job_id in ids:
        if job_id == broken:
            # Failed, as a dead letter of its own observation would have failed it.
            assert states[job_id]["phase"] == Phase.ERROR.value, states[job_id]
        else:
            assert states[job_id]["outcome"] == Phase.COMPLETED.value, states[job_id]


@pytest.mark.parametrize("crash", ["observations-batch-written", "observations-run-committed"])
async def test_a_sigkill_inside_a_message_of_observations_loses_nothing_and_repeats_nothing(
    context: ProcessContext, tmp_path: Path, crash: str
) -> None:
    ids = await submitted_jobs(context, 30)
    at = datetime.now(UTC)
    # The first job twice: two runs, so that the kill after the first run's commit leaves
    # the second one unapplied.
    reports = [observed(j, at, Phase.EXECUTING, "running") for j in ids]
    later = at + timedelta(seconds=1)
    message = carried([*reports, observed(ids[0], later, Phase.COMPLETED, "done")])
    url = context.settings.database_url.get_secret_value()
    await asyncio.to_thread(killed_handling, url, [message], tmp_path, crash)
    before = await state_of(context, ids)
    applied = [j for j in ids if before[j]["phase"] == Phase.EXECUTING.value]
    if crash == "observations-batch-written":
        assert applied == []  # killed before the first commit
    else:
        assert applied == ids  # the first run committed, the second (ids[0] done) not
        for job_id in ids:
            assert_executing_once(before[job_id])
    # The broker delivers the unacknowledged message again.
    await ReportHandler(context)(message)
    after = await state_of(context, ids)
    for job_id in ids[1:]:
        assert_executing_once(after[job_id])
    assert after[ids[0]]["outcome"] == Phase.COMPLETED.value, after[ids[0]]
    assert await event_sequences(context, ids[1:]) == {job_id: ([1, 2], 2) for job_id in ids[1:]}
