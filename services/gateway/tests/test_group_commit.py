"""Group commit: new jobs of concurrent requests share transactions, each job keeps all its rows,
and a group that fails leaves every request to write alone, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path

import pytest
from sqlalchemy import event, func, select

from gridgate.gateway.factory import ProcessContext, unit_of_work
from gridgate.gateway.schema import (
    history_table,
    idempotency_table,
    jobs_table,
    outbox_table,
    tasks_table,
)
from gridgate.gateway.services.group_commit import GroupCommit
from gridgate.gateway.services.jobs import JobRequest
from gridgate.iam.identity import Identity
from gridgate.testing.gateway import offline_gateway

ALICE = Identity(sub="alice", groups=("cta",), vos=("cta",))


@pytest.fixture(params=["sqlite", "postgresql"])
async def context(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[ProcessContext]:
    """A gateway's process context that groups commits, on a fresh database of each kind;
    no broker or relay: the outbox rows stay for the test to count."""
    async with offline_gateway(request.param, tmp_path, group_commit=GroupCommit()) as context:
        yield context


async def create(context: ProcessContext, request: JobRequest) -> str:
    # As POST /api/jobs: the connection is checked out only if this request writes.
    async with unit_of_work(context, on_demand=True) as factory:
        return await factory.job_service().create_job(ALICE, request)


async def rows_per_job(context: ProcessContext, table: object) -> Counter[str]:
    async with context.engine.connect() as connection:
        column = table.c.job_id  # type: ignore[attr-defined]
        rows = await connection.execute(select(column, func.count()).group_by(column))
        return Counter({job_id: count for job_id, count in rows})


async def test_concurrent_new_jobs_share_transactions_and_keep_every_row(
    context: ProcessContext,
) -> None:
    requests = [
        JobRequest(workflow="hello-world", run=i % 2 == 0, parameters={"name": f"n{i}"})
        for i in range(40)
    ]
    ids = await asyncio.gather(*(create(context, r) for r in requests))
    assert len(set(ids)) == 40
    assert context.group_commit is not None
    assert context.group_commit.batches < 40  # some requests were committed together
    async with context.engine.connect() as connection:
        jobs = dict((await connection.execute(select(jobs_table.c.id, jobs_table.c.phase))).all())
    assert jobs == {
        job_id: "QUEUED" if r.run else "PENDING" for job_id, r in zip(ids, requests, strict=True)
    }
    assert await rows_per_job(context, tasks_table) == Counter(dict.fromkeys(ids, 1))
    # A job run at once: two history entries (created, queued), the SubmitJob and one event.
    # A pending job: one of each.
    expected = Counter({job_id: 2 if r.run else 1 for job_id, r in zip(ids, requests, strict=True)})
    assert await rows_per_job(context, history_table) == expected
    assert await rows_per_job(context, outbox_table) == expected


async def test_a_failed_group_leaves_each_request_to_write_alone(
    context: ProcessContext,
) -> None:
    """Twins with one Idempotency-Key in a group make its insert fail: the other requests
    of that group still get their jobs, and the twins one job between them."""
    plain = [JobRequest(workflow="hello-world", parameters={"name": f"p{i}"}) for i in range(6)]
    twin = JobRequest(workflow="hello-world", parameters={"name": "t"}, idempotency_key="k1")
    requests = [plain[0], twin, plain[1], twin, plain[2], plain[3], twin, plain[4], plain[5]]
    group = context.group_commit
    assert group is not None
    # All nine must meet in one group (apart, a later twin would find the first one's key
    # and never fail a group): the lead is held until all have queued, then handed over.
    group._leading = True
    creating = asyncio.gather(*(create(context, r) for r in requests))
    for _ in range(500):
        if len(group._queue) == len(requests):
            break
        await asyncio.sleep(0.01)
    assert len(group._queue) == len(requests)
    group._hand_over()
    ids = await creating
    twins = {job_id for job_id, r in zip(ids, requests, strict=True) if r is twin}
    assert len(twins) == 1
    assert group.failed == 1  # the group of all nine was refused, then each wrote alone
    others = [job_id for job_id, r in zip(ids, requests, strict=True) if r is not twin]
    assert len(set(others)) == 6
    async with context.engine.connect() as connection:
        stored = set((await connection.execute(select(jobs_table.c.id))).scalars())
        keys = (await connection.execute(select(idempotency_table.c.job_id))).scalars().all()
    assert stored == twins | set(others)
    assert keys == list(twins)
    again = await create(context, replace(twin))
    assert again in twins


async def test_only_group_leaders_and_key_lookups_take_a_connection(
    context: ProcessContext,
) -> None:
    """A job another request's group writes costs its request no connection from the pool; a
    request with an Idempotency-Key takes one for the lookup and still finds its twin."""
    checkouts = 0

    def checked_out(*_: object) -> None:
        nonlocal checkouts
        checkouts += 1

    event.listen(context.engine.sync_engine.pool, "checkout", checked_out)
    group = context.group_commit
    assert group is not None
    requests = [JobRequest(workflow="hello-world", parameters={"name": f"n{i}"}) for i in range(30)]
    ids = await asyncio.gather(*(create(context, r) for r in requests))
    assert len(set(ids)) == 30
    assert group.batches < 30
    assert checkouts == group.batches  # one per group, taken by its leader

    keyed = JobRequest(workflow="hello-world", parameters={"name": "k"}, idempotency_key="k2")
    first = await create(context, keyed)
    checkouts = 0
    assert await create(context, replace(keyed)) == first
    assert checkouts == 1  # the lookup, which found the job: nothing written
