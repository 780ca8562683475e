"""Concurrent submit commands of one owner and workflow share one bulk submission."""

from __future__ import annotations

import asyncio

from gridgate.contracts import SubmitJob
from gridgate.contracts.tasks import InputFile, ResourceLimits, TaskSpec
from gridgate.submitter.batching import SubmitBatcher, batch_key


def command(job_id: str, owner: str = "alice", inputs: bool = False) -> SubmitJob:
    files = [InputFile(scope="user.alice", name="a.dat", lfn="/a.dat")] if inputs else []
    return SubmitJob(
        job_id=job_id,
        owner=owner,
        vo="cta",
        group="cta_user",
        facility="dirac-testbed",
        workflow_id="hello-world",
        workflow_version="1.0.0",
        tasks=[TaskSpec(index=0, argv=["{python}"], inputs=files)],
        limits=ResourceLimits(execution_duration_s=600),
    )


async def test_commands_arriving_together_share_a_flush_per_owner() -> None:
    flushed: list[list[str]] = []

    async def flush(commands: list[SubmitJob]) -> dict[str, list[str]]:
        flushed.append([c.job_id for c in commands])
        return {c.job_id: [f"dirac-{c.job_id}"] for c in commands}

    batcher = SubmitBatcher(flush, linger_s=0.05)
    ids = await asyncio.gather(
        *(batcher.submit(command(f"a{i}")) for i in range(5)),
        batcher.submit(command("b0", owner="bob")),
    )
    assert ids == [[f"dirac-a{i}"] for i in range(5)] + [["dirac-b0"]]
    assert sorted(flushed) == [[f"a{i}" for i in range(5)], ["b0"]]


async def test_a_full_batch_goes_at_once_and_errors_reach_every_waiter() -> None:
    async def refuse(commands: list[SubmitJob]) -> dict[str, list[str]]:
        raise RuntimeError(f"refused {len(commands)}")

    batcher = SubmitBatcher(refuse, linger_s=60, max_jobs=3)
    outcomes = await asyncio.wait_for(
        asyncio.gather(
            *(batcher.submit(command(f"c{i}")) for i in range(3)), return_exceptions=True
        ),
        5,
    )
    assert [str(o) for o in outcomes] == ["refused 3"] * 3


def test_jobs_with_input_data_never_share() -> None:
    assert batch_key(command("x")) == batch_key(command("y"))
    assert batch_key(command("x", inputs=True)) != batch_key(command("y", inputs=True))
    assert batch_key(command("x")) != batch_key(command("y", owner="bob"))
