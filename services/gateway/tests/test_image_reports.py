"""Image reports of a containerised job, duplicated, concurrent and out of order, on SQLite
and PostgreSQL: the job shows "building image" while it waits, then the image pinned by
digest; the SubmitJob carries the image request; collection carries the provenance."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import select

from gridgate.contracts import (
    ImageBuildStarted,
    ImageProvenance,
    ImageResolved,
    JobSubmitted,
    SubmitJob,
)
from gridgate.contracts.commands import COMMAND_ADAPTER
from gridgate.gateway.consumers.reports import ReportHandler
from gridgate.gateway.factory import ProcessContext, unit_of_work
from gridgate.gateway.handlers.representations import job_summary
from gridgate.gateway.schema import outbox_table
from gridgate.gateway.schema.migrate import upgrade_schema
from gridgate.gateway.services.jobs import JobRequest
from gridgate.testing.services import create_postgres_database, drop_postgres_database

from .test_report_concurrency import ALICE, make_context, stale_by, watch

DIGEST = "sha256:" + "ab" * 32


@pytest.fixture(params=["sqlite", "postgresql"])
async def context(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[ProcessContext]:
    name = None
    if request.param == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp_path}/gateway.db"
    else:
        name, url = await create_postgres_database()
    context = make_context(url)
    await upgrade_schema(context.engine)
    try:
        yield context
    finally:
        await context.engine.dispose()
        if name is not None:
            await drop_postgres_database(name)


TAG = "r-" + "0" * 32


async def _create(context: ProcessContext, parameters: dict[str, object]) -> str:
    async with unit_of_work(context) as factory:
        return await factory.job_service().create_job(
            ALICE,
            JobRequest(workflow="concordia-corsika", parameters=parameters, run=True),
        )


async def _job(context: ProcessContext, job_id: str):  # type: ignore[no-untyped-def]
    async with unit_of_work(context) as factory:
        return await factory.job_service().get_job(ALICE, job_id)


async def _commands(context: ProcessContext, job_id: str) -> list[SubmitJob]:
    async with context.engine.connect() as connection:
        rows = await connection.execute(
            select(outbox_table.c.body).where(
                outbox_table.c.job_id == job_id, outbox_table.c.message_type == "submit-job"
            )
        )
        return [COMMAND_ADAPTER.validate_json(body) for (body,) in rows]  # type: ignore[misc]


def _provenance(built: bool) -> ImageProvenance:
    return ImageProvenance(
        reference=f"127.0.0.1:5000/gridgate/concordia-corsika@{DIGEST}",
        digest=DIGEST,
        repository="gridgate/concordia-corsika",
        tag=TAG,
        recipe_digest="sha256:" + "cd" * 32,
        build_args={"THINNING": "true"},
        base_digest="sha256:" + "ef" * 32,
        built=built,
    )


async def test_a_job_waits_for_its_build_then_shows_its_image(context: ProcessContext) -> None:
    job_id = await _create(context, {"thinning": True})
    (command,) = await _commands(context, job_id)
    assert command.image is not None and command.image.digest is None
    assert command.image.build_args["THINNING"] == "true"
    assert command.image.repository == "gridgate/concordia-corsika"
    assert command.tasks[0].argv[0] == "/usr/bin/python3"  # {python} inside the image
    handler = ReportHandler(context)
    started = ImageBuildStarted(job_id=job_id, repository="gridgate/concordia-corsika", tag=TAG)
    await asyncio.gather(*(handler(started) for _ in range(3)))  # redelivered, concurrently
    job = await _job(context, job_id)
    shown = job_summary(job, "http://x/jobs/" + job_id).job_info
    assert shown.pending_reason is not None
    assert shown.pending_reason.startswith(f"Building image gridgate/concordia-corsika:{TAG}")
    building = [h for h in job.history if (h.detail or "").startswith("building image")]
    assert len(building) == 1

    resolved = ImageResolved(job_id=job_id, image=_provenance(built=True))
    await asyncio.gather(*(handler(resolved) for _ in range(3)))
    await handler(started)  # a late, out-of-order duplicate changes nothing
    # A redelivered SubmitJob selects the image its first delivery built: still "built".
    await handler(ImageResolved(job_id=job_id, image=_provenance(built=False)))
    job = await _job(context, job_id)
    shown = job_summary(job, "http://x/jobs/" + job_id).job_info
    assert shown.pending_reason is None
    assert shown.image is not None and shown.image.digest == DIGEST and shown.image.built
    assert shown.image.wire()["buildArgs"] == {"THINNING": "true"}
    details = [h.detail or "" for h in job.history]
    assert details.count(f"image built: 127.0.0.1:5000/gridgate/concordia-corsika@{DIGEST}") == 1
    assert sum(d.startswith("building image") for d in details) == 1

    await handler(JobSubmitted(job_id=job_id, facility="local", facility_job_ids=["x"]))
    async with unit_of_work(context) as factory:
        ledger = factory.ledger()
        stored = await ledger.jobs.get(job_id)
        assert stored is not None
        collect = ledger.collect_command(stored)
    # The results service gets the image's provenance (Rucio metadata, docs/containers.md).
    assert collect.image is not None and collect.image.digest == DIGEST
    assert collect.image.build_args == {"THINNING": "true"}


async def test_a_named_digest_travels_in_the_submit_command(context: ProcessContext) -> None:
    job_id = await _create(context, {"image_digest": DIGEST})
    (command,) = await _commands(context, job_id)
    assert command.image is not None and command.image.digest == DIGEST
    assert json.loads(command.model_dump_json())["image"]["digest"] == DIGEST


async def test_the_stall_watch_leaves_a_job_waiting_on_a_live_build_alone(
    context: ProcessContext,
) -> None:
    """A long build repeats its report (the submitter's heartbeat): the stall watch neither
    sends the job again nor overwrites its "building image" reason. Once the beats stop
    (every builder gone), the job is sent again as any lost submission."""
    job_id = await _create(context, {"curved_atmosphere": True})
    handler = ReportHandler(context)
    started = ImageBuildStarted(job_id=job_id, repository="gridgate/concordia-corsika", tag=TAG)
    await handler(started)
    stall_after = context.policy.stall_after_s
    for _ in range(3):  # three rounds of a build longer than the stall bound
        await stale_by(context, job_id, stall_after + 60)
        await handler(started)  # the heartbeat
        assert await watch(context) == 0
        job = await _job(context, job_id)
        shown = job_summary(job, "http://x/jobs/" + job_id).job_info
        assert shown.pending_reason is not None
        assert shown.pending_reason.startswith(f"Building image gridgate/concordia-corsika:{TAG}")
        assert job.redrives == 0
    assert len(await _commands(context, job_id)) == 1  # never sent again
    details = [h.detail or "" for h in job.history]
    assert sum(d.startswith("building image") for d in details) == 1  # beats add no history

    # No beat for longer than the bound: the build died with its builder; send it again.
    await stale_by(context, job_id, stall_after + 60)
    assert await watch(context) == 1
    job = await _job(context, job_id)
    assert job.redrives == 1 and job.stall_reason is not None
    assert "sent again" in job.stall_reason
    assert len(await _commands(context, job_id)) == 2
