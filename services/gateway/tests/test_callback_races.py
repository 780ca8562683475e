"""A job's callback racing its deletion or its end, on SQLite and PostgreSQL: the callback is
refused like an unknown job's (401 ``callback-token-invalid``) or recorded before the job
goes, never a database error (a 500). A DELETE of a running DIRAC job while its wrapper
reported its end answered the wrapper with a 500 once (bench/dirac_submission.py, under load).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Coroutine
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from gridgate.contracts.callback import CallbackUpdate, callback_token
from gridgate.contracts.phases import Phase
from gridgate.gateway.factory import ProcessContext, unit_of_work
from gridgate.gateway.models.job import Job
from gridgate.gateway.schema import history_table, jobs_table
from gridgate.gateway.services.callbacks import CallbackService, CallbackTokenInvalidError
from gridgate.gateway.services.jobs import JobRequest
from gridgate.gateway.storage.callbacks import CallbackStore
from gridgate.gateway.storage.jobs import JobStore
from gridgate.iam.identity import Identity
from gridgate.testing.gateway import offline_gateway

ALICE = Identity(sub="alice", groups=("cta",), vos=("cta",))
SECRET = "callback-race-secret"
# Long enough for a write that does not wait on the callback to finish; one that waits for
# the callback's row lock (PostgreSQL) is left waiting and finishes after it.
UNBLOCKED_S = 2.0


@pytest.fixture(params=["sqlite", "postgresql"])
async def context(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[ProcessContext]:
    # A gateway without broker or relay; its internal token is the callback tokens' secret.
    async with offline_gateway(
        request.param, tmp_path, settings={"internal_token": SecretStr(SECRET)}
    ) as context:
        yield context


class MeanwhileJobs(JobStore):
    """Runs ``meanwhile`` (another unit of work) once the callback has read the job, before it
    writes anything: the window a loaded gateway leaves open."""

    def __init__(
        self, connection: AsyncConnection, meanwhile: Callable[[], Coroutine[Any, Any, None]]
    ) -> None:
        super().__init__(connection)
        self.meanwhile = meanwhile
        self.other: asyncio.Task[None] | None = None

    async def get(self, job_id: str, *, for_update: bool = False) -> Job | None:
        job = await super().get(job_id, for_update=for_update)
        if self.other is None:
            self.other = asyncio.create_task(self.meanwhile())
            # Done at once where the read took no lock (SQLite); blocked on the callback's
            # row lock otherwise (PostgreSQL), and then finished after it.
            await asyncio.wait({self.other}, timeout=UNBLOCKED_S)
        return job


async def running_job(context: ProcessContext) -> str:
    async with unit_of_work(context) as factory:
        return await factory.job_service().create_job(
            ALICE, JobRequest(workflow="hello-world", run=True)
        )


async def callback_meanwhile(
    context: ProcessContext, job_id: str, meanwhile: Callable[[], Coroutine[Any, Any, None]]
) -> bool | None:
    """The job's wrapper reports its end while ``meanwhile`` runs; whether it was recorded
    (``None``: refused as for an unknown job)."""
    ended = CallbackUpdate(task_index=0, event="ended", at=datetime.now(UTC), exit_code=0)
    async with unit_of_work(context) as factory:
        jobs = MeanwhileJobs(factory.connection, meanwhile)
        service = CallbackService(
            factory.connection, jobs, CallbackStore(factory.connection), context.notifier
        )
        try:
            recorded: bool | None = await service.record(
                job_id, callback_token(SECRET, job_id), ended
            )
        except CallbackTokenInvalidError:
            recorded = None
    assert jobs.other is not None
    await asyncio.wait_for(jobs.other, 30)
    return recorded


async def test_a_callback_racing_the_jobs_deletion_is_refused_or_recorded_first(
    context: ProcessContext,
) -> None:
    job_id = await running_job(context)

    async def delete() -> None:
        async with unit_of_work(context) as factory:
            await factory.job_service().delete_job(ALICE, job_id)

    recorded = await callback_meanwhile(context, job_id, delete)

    # SQLite: the job went before the callback wrote, so it is refused as an unknown job's;
    # PostgreSQL: the callback held the job's row, was recorded, and the job went after it.
    assert recorded is (None if context.engine.dialect.name == "sqlite" else True)
    async with context.engine.connect() as connection:
        left = await connection.execute(select(jobs_table.c.id).where(jobs_table.c.id == job_id))
        assert left.first() is None
        history = await connection.execute(
            select(history_table.c.id).where(history_table.c.job_id == job_id)
        )
        assert history.first() is None  # nothing of the deleted job written after it


async def test_a_callback_racing_the_jobs_end_is_not_recorded_after_it(
    context: ProcessContext,
) -> None:
    job_id = await running_job(context)

    async def finish() -> None:
        # What the final transition does to the token: it dies with the job (ledger).
        async with context.engine.connect() as connection:
            await connection.execute(
                update(jobs_table)
                .where(jobs_table.c.id == job_id)
                .values(phase=Phase.COMPLETED.value, callback_token_hash=None)
            )
            await connection.commit()

    recorded = await callback_meanwhile(context, job_id, finish)

    assert recorded is (None if context.engine.dialect.name == "sqlite" else True)
    async with context.engine.connect() as connection:
        details = (
            await connection.execute(
                select(history_table.c.detail).where(
                    history_table.c.job_id == job_id, history_table.c.source == "callback"
                )
            )
        ).scalars()
        expected = [] if recorded is None else ["task 0 ended with exit code 0"]
        assert list(details) == expected
