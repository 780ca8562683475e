"""The DiracX facility against the DiracX testbed (testbeds/diracx): real DiracX 0.7.0.

The testbed's jobs are moved by DiracX's dummy executor (Received -> ... -> Done, nothing
runs), so a test that needs an output sandbox uploads and assigns one itself, as the job's
owner, the way a DIRAC 9 job wrapper does at the end of a job.
"""

from __future__ import annotations

import asyncio
import base64
import json
import re
import sqlite3
import time
import uuid
import zlib
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
import pytest_asyncio

from gridgate.contracts.commands import SubmitJob
from gridgate.contracts.images import ImageRequest
from gridgate.contracts.phases import Phase
from gridgate.contracts.tasks import ResourceLimits, TaskSpec
from gridgate.dirac.jdl import job_group
from gridgate.diracx.facility import DiracXFacility, _bearer, pack_sandbox
from gridgate.diracx.testbed import DiracXTestbed
from gridgate.diracx.tokens import (
    DiracXIdentity,
    DiracXTokenRefusedError,
    ExchangeTokens,
    LegacyExchange,
)

pytestmark = [pytest.mark.diracx, pytest.mark.asyncio(loop_scope="session")]


@pytest_asyncio.fixture(loop_scope="session")
async def stack(
    diracx_testbed: DiracXTestbed,
) -> AsyncIterator[tuple[DiracXFacility, ExchangeTokens, DiracXTestbed]]:
    async with httpx.AsyncClient(base_url=diracx_testbed.connection.url, timeout=30) as http:
        exchange = LegacyExchange(http, diracx_testbed.legacy_key())
        tokens = ExchangeTokens(exchange, robot=diracx_testbed.robot)
        facility = DiracXFacility("diracx-testbed", diracx_testbed.connection, tokens)
        yield facility, tokens, diracx_testbed
        await facility.close()


def command(owner: str, tasks: int = 1, job_id: str | None = None) -> SubmitJob:
    return SubmitJob(
        job_id=job_id or f"dx{uuid.uuid4().hex[:12]}",
        owner=owner,
        vo="cta",
        group="cta_user",
        facility="diracx-testbed",
        workflow_id="hello-world",
        workflow_version="1",
        tasks=[TaskSpec(index=i, argv=["echo", f"hello {i}"]) for i in range(tasks)],
        limits=ResourceLimits(execution_duration_s=600),
    )


async def wait_for(
    facility: DiracXFacility, ids: list[str], phases: set[Phase], within: float = 90
) -> dict[str, Phase]:
    deadline = time.monotonic() + within
    while True:
        found = await facility.status(ids)
        seen = {i: found[i].phase for i in ids if i in found}
        if len(seen) == len(ids) and set(seen.values()) <= phases:
            return seen
        if time.monotonic() > deadline:
            raise AssertionError(f"not all in {phases} after {within} s: {seen}")
        await asyncio.sleep(1)


async def test_hello_world_completes_with_its_output_sandbox(stack, tmp_path: Path) -> None:
    facility, tokens, testbed = stack
    job = command("alice")
    tokens.owners[job.job_id] = testbed.users["alice"]

    ids = await facility.submit(job, None)

    assert len(ids) == 1
    assert await wait_for(facility, ids, {Phase.COMPLETED}) == {ids[0]: Phase.COMPLETED}
    # the job wrapper's part: std.out and a result file, as one output sandbox of the job
    token = await tokens.for_job(job.job_id)
    archive = pack_sandbox({"std.out": b"hello 0\n", "result.txt": b"42\n"})
    pfn = await facility.upload_sandbox(archive, token)
    client = await facility.client()
    await client.jobs.assign_sandbox_to_job(int(ids[0]), f'"{pfn}"', headers=_bearer(token))

    found = await facility.outputs(job.job_id, ids, tmp_path)

    assert sorted(name for name, _, _ in found) == ["result.txt", "stdout.txt"]
    assert {name: path.read_bytes() for name, path, _ in found}["stdout.txt"] == b"hello 0\n"


async def test_nineteen_tasks_go_in_one_submission(stack) -> None:
    facility, tokens, testbed = stack
    job = command("alice", tasks=19)
    tokens.owners[job.job_id] = testbed.users["alice"]

    ids = await facility.submit(job, None)

    assert len(ids) == len(set(ids)) == 19
    held = await facility.held_tasks([job.job_id], await tokens.for_job(job.job_id))
    # JobGroup carries our job id, JobName the task: task i is DiracX job ids[i]
    assert held == {job.job_id: {i: ids[i] for i in range(19)}}
    assert set((await wait_for(facility, ids, {Phase.COMPLETED})).values()) == {Phase.COMPLETED}


async def test_redelivered_submission_submits_nothing_twice(stack) -> None:
    facility, tokens, testbed = stack
    job = command("alice", tasks=3)
    tokens.owners[job.job_id] = testbed.users["alice"]

    first = await facility.submit(job, None)
    second = await facility.submit(job, None)

    assert second == first
    rows = await facility._search(
        await tokens.for_job(job.job_id),
        [{"parameter": "JobGroup", "operator": "eq", "value": job_group(job.job_id)}],
        ["JobID"],
    )
    assert len(rows) == 3


async def test_kill_aborts_and_delete_forgets(stack) -> None:
    facility, tokens, testbed = stack
    killed, deleted = command("alice", tasks=2), command("alice")
    for job in (killed, deleted):
        tokens.owners[job.job_id] = testbed.users["alice"]
    ids = await facility.submit(killed, None)
    gone = await facility.submit(deleted, None)

    assert await facility.cancel(killed.job_id) == ids
    assert await facility.purge(deleted.job_id) == gone

    states = await facility.status(ids + gone)
    assert {states[i].phase for i in ids} == {Phase.ABORTED}
    assert {states[i].state for i in ids} == {"Killed"}
    assert states[gone[0]].state == "Deleted"
    # a redelivered submit of the deleted job does not count a Deleted job as held
    assert await facility.held_tasks([deleted.job_id], await tokens.for_job(deleted.job_id)) == {}


async def test_two_users_jobs_land_with_their_own_owners(stack) -> None:
    facility, tokens, testbed = stack
    alices, bobs = command("alice"), command("bob")
    tokens.owners[alices.job_id] = testbed.users["alice"]
    tokens.owners[bobs.job_id] = testbed.users["bob"]

    [alice_id] = await facility.submit(alices, None)
    [bob_id] = await facility.submit(bobs, None)

    token = await facility._robot_token()
    rows = await facility._search(
        token,
        [{"parameter": "JobID", "operator": "in", "values": [int(bob_id)]}],
        ["JobID", "Owner", "OwnerGroup", "VO"],
    )
    assert rows == [{"JobID": int(bob_id), "Owner": "bob", "OwnerGroup": "km3net_user",
                     "VO": "km3net"}]  # fmt: skip
    # alice cannot see bob's job: her search for it finds nothing
    seen_by_alice = await facility._search(
        await tokens.for_job(alices.job_id),
        [{"parameter": "JobID", "operator": "in", "values": [int(alice_id), int(bob_id)]}],
        ["JobID", "Owner"],
    )
    assert seen_by_alice == [{"JobID": int(alice_id), "Owner": "alice"}]


async def test_exchange_refuses_a_group_the_user_lacks(stack) -> None:
    _, tokens, _ = stack
    with pytest.raises(DiracXTokenRefusedError):
        await tokens.exchange.token(DiracXIdentity("alice", "cta", "cta_gridgate"))


def stored_jdl(testbed: DiracXTestbed, diracx_job_id: str) -> str:
    """The JDL DiracX stored for a job (its JobDB, SQLite here): DiracX 0.7.0 has no route
    that reads one back."""
    database = Path(testbed.variables["GRIDGATE_DIRACX_STATE"]) / "db" / "jobdb.db"
    with sqlite3.connect(f"file:{database}?mode=ro", uri=True) as db:
        (packed,) = db.execute(
            "SELECT JDL FROM JobJDLs WHERE JobID = ?", (int(diracx_job_id),)
        ).fetchone()
    return zlib.decompress(base64.b64decode(packed)).decode()


async def test_a_containerised_job_names_its_image_for_the_wrapper(stack, tmp_path: Path) -> None:
    """As on DIRAC 8: the job's own sandbox carries tasks.json with the image, pinned by
    digest as the submitter resolved it; the wrapper runs it with apptainer or docker."""
    facility, tokens, testbed = stack
    digest = "sha256:" + "ab" * 32
    job = command("alice").model_copy(
        update={
            "image": ImageRequest(
                repository="gridgate/corsika",
                recipe_digest="sha256:" + "cd" * 32,
                network=False,
                reference=f"127.0.0.1:5000/gridgate/corsika@{digest}",
            )
        }
    )
    tokens.owners[job.job_id] = testbed.users["alice"]

    ids = await facility.submit(job, None)

    pfn = re.search(r'InputSandbox = "(SB:[^"]+)"', stored_jdl(testbed, ids[0]))
    assert pfn is not None
    names = await facility._download(pfn.group(1), tmp_path, await tokens.for_job(job.job_id))
    assert {"tasks.json", "gridgate_task.py", "gridgate-payload.zip"} <= set(names)
    task = json.loads((tmp_path / "tasks.json").read_text())["task"]
    assert task["image"] == {
        "reference": f"127.0.0.1:5000/gridgate/corsika@{digest}",
        "network": False,
        "memory_mb": job.limits.memory_mb,
        "cores": job.limits.cores,
    }
    assert task["argv"] == ["echo", "hello 0"]
