"""The warning of an expiring credential racing the job's deletion, its end or another
replica's warning, on SQLite and PostgreSQL: it is written once, before the job goes or ends,
or not at all; never a foreign-key failure (a write to a deleted job) or a warning of a job
that has ended (docs/adr/0007-job-state-concurrency.md: every writer claims the job first).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Coroutine
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from gridgate.contracts.events import CREDENTIAL_EXPIRING
from gridgate.contracts.phases import Phase
from gridgate.core.clock import utcnow
from gridgate.gateway.factory import ProcessContext, unit_of_work
from gridgate.gateway.models.job import Job
from gridgate.gateway.schema import history_table, jobs_table, outbox_table
from gridgate.gateway.services.housekeeping import Housekeeping
from gridgate.gateway.services.jobs import JobRequest
from gridgate.gateway.storage.idempotency import IdempotencyStore
from gridgate.gateway.storage.jobs import JobStore
from gridgate.iam.identity import Identity
from gridgate.testing.gateway import offline_gateway

ALICE = Identity(sub="alice", groups=("cta",), vos=("cta",))
WARNING = timedelta(hours=1)
# Long enough for a write that does not wait on the warning's row lock to finish; one that
# waits for it (PostgreSQL) is left waiting and finishes after the warning's commit.
UNBLOCKED_S = 2.0


@pytest.fixture(params=["sqlite", "postgresql"])
async def gateway(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[ProcessContext]:
    async with offline_gateway(request.param, tmp_path) as context:
        yield context


class MeanwhileJobs(JobStore):
    """Runs ``meanwhile`` (another unit of work) just before this unit of work's first write
    to a job, after everything it decided on was read: the window a loaded gateway leaves
    open."""

    def __init__(
        self, connection: AsyncConnection, meanwhile: Callable[[], Coroutine[Any, Any, None]]
    ) -> None:
        super().__init__(connection)
        self.meanwhile = meanwhile
        self.other: asyncio.Task[None] | None = None

    async def _before_write(self) -> None:
        if self.other is None:
            self.other = asyncio.create_task(self.meanwhile())
            # Done at once where nothing is locked (SQLite); blocked on this unit's row lock
            # otherwise (PostgreSQL's FOR UPDATE read), and then finished after its commit.
            await asyncio.wait({self.other}, timeout=UNBLOCKED_S)

    async def claim(self, job: Job) -> None:
        await self._before_write()
        await super().claim(job)

    async def update(self, job_id: str, **values: Any) -> None:
        await self._before_write()
        await super().update(job_id, **values)


async def expiring_job(context: ProcessContext) -> str:
    """A queued job whose credential runs out within the warning."""
    async with unit_of_work(context) as factory:
        job_id = await factory.job_service().create_job(
            ALICE, JobRequest(workflow="hello-world", run=True)
        )
    async with context.engine.connect() as connection:
        await connection.execute(
            update(jobs_table)
            .where(jobs_table.c.id == job_id)
            .values(credential_expires_at=utcnow() + WARNING / 2)
        )
        await connection.commit()
    return job_id


async def warn_meanwhile(
    context: ProcessContext, meanwhile: Callable[[], Coroutine[Any, Any, None]]
) -> int:
    """One round of warnings while ``meanwhile`` runs; how many jobs it warned."""
    async with unit_of_work(context) as factory:
        ledger = factory.ledger()
        ledger.jobs = jobs = MeanwhileJobs(factory.connection, meanwhile)
        housekeeping = Housekeeping(ledger, IdempotencyStore(factory.connection))
        warned = await housekeeping.warn_expiring_credentials(WARNING)
    assert jobs.other is not None
    await asyncio.wait_for(jobs.other, 30)
    return warned


async def warnings_of(context: ProcessContext, job_id: str) -> tuple[int, int]:
    """The job's warning history lines and warning events."""
    async with context.engine.connect() as connection:
        lines = (
            await connection.execute(
                select(history_table.c.detail).where(
                    history_table.c.job_id == job_id,
                    history_table.c.detail.like("the job's credential runs out%"),
                )
            )
        ).all()
        events = (
            await connection.execute(
                select(outbox_table.c.id).where(
                    outbox_table.c.job_id == job_id,
                    outbox_table.c.routing_key.like(f"%{CREDENTIAL_EXPIRING}%"),
                )
            )
        ).all()
    return len(lines), len(events)


async def test_a_warning_racing_the_jobs_deletion_writes_nothing_after_it(
    gateway: ProcessContext,
) -> None:
    job_id = await expiring_job(gateway)

    async def delete() -> None:
        async with unit_of_work(gateway) as factory:
            await factory.job_service().delete_job(ALICE, job_id)

    warned = await warn_meanwhile(gateway, delete)

    # SQLite: the job went before the warning's claim, which fails, and the job is gone on
    # the next read; PostgreSQL: the warning held the row, so the job went after it.
    assert warned == (0 if gateway.engine.dialect.name == "sqlite" else 1)
    async with gateway.engine.connect() as connection:
        left = await connection.execute(select(jobs_table.c.id).where(jobs_table.c.id == job_id))
        assert left.first() is None
        history = await connection.execute(
            select(history_table.c.id).where(history_table.c.job_id == job_id)
        )
        assert history.first() is None


async def test_a_warning_racing_the_jobs_end_is_not_written_after_it(
    gateway: ProcessContext,
) -> None:
    job_id = await expiring_job(gateway)

    async def abort() -> None:
        async with unit_of_work(gateway) as factory:
            await factory.job_service().abort_job(ALICE, job_id)

    warned = await warn_meanwhile(gateway, abort)

    sqlite = gateway.engine.dialect.name == "sqlite"
    assert warned == (0 if sqlite else 1)
    assert await warnings_of(gateway, job_id) == ((0, 0) if sqlite else (1, 1))
    async with gateway.engine.connect() as connection:
        phase = await connection.scalar(select(jobs_table.c.phase).where(jobs_table.c.id == job_id))
        history = (
            await connection.execute(
                select(history_table.c.to_phase, history_table.c.detail)
                .where(history_table.c.job_id == job_id)
                .order_by(history_table.c.id)
            )
        ).all()
    assert phase == Phase.ABORTED.value
    # Whatever was warned was warned while the job ran: nothing follows its end.
    assert history[-1].to_phase == Phase.ABORTED.value


async def test_two_replicas_warn_of_a_credential_once(gateway: ProcessContext) -> None:
    job_id = await expiring_job(gateway)

    async def other_replica() -> None:
        async with unit_of_work(gateway) as factory:
            await factory.housekeeping().warn_expiring_credentials(WARNING)

    warned = await warn_meanwhile(gateway, other_replica)

    # SQLite: the other replica warned first and this one's claim fails; PostgreSQL: this
    # one held the row and the other finds the job warned.
    assert warned == (0 if gateway.engine.dialect.name == "sqlite" else 1)
    assert await warnings_of(gateway, job_id) == (1, 1)
