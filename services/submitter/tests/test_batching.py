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


async def test_a_batch_gathers_while_the_previous_one_of_its_key_is_on_its_way() -> None:
    """A burst spread over a slow submission becomes two flushes, not one per linger."""
    flushed: list[list[str]] = []
    first_started = asyncio.Event()
    release_first = asyncio.Event()

    async def flush(commands: list[SubmitJob]) -> dict[str, list[str]]:
        flushed.append([c.job_id for c in commands])
        if len(flushed) == 1:
            first_started.set()
            await release_first.wait()
        return {c.job_id: [f"dirac-{c.job_id}"] for c in commands}

    batcher = SubmitBatcher(flush, linger_s=0.02)
    first = asyncio.create_task(batcher.submit(command("first")))
    await first_started.wait()
    # Many lingers pass while the first submission is on its way.
    later = []
    for i in range(6):
        later.append(asyncio.create_task(batcher.submit(command(f"later{i}"))))
        await asyncio.sleep(0.05)
    other_owner = await asyncio.wait_for(batcher.submit(command("b0", owner="bob")), 5)
    assert flushed == [["first"], ["b0"]]
    release_first.set()
    assert await first == ["dirac-first"]
    assert await asyncio.gather(*later) == [[f"dirac-later{i}"] for i in range(6)]
    assert other_owner == ["dirac-b0"]
    assert flushed == [["first"], ["b0"], [f"later{i}" for i in range(6)]]


async def test_a_failed_submission_lets_the_next_batch_go() -> None:
    flushed: list[list[str]] = []
    first_started = asyncio.Event()
    fail_first = asyncio.Event()

    async def flush(commands: list[SubmitJob]) -> dict[str, list[str]]:
        flushed.append([c.job_id for c in commands])
        if len(flushed) == 1:
            first_started.set()
            await fail_first.wait()
            raise RuntimeError("DIRAC said no")
        return {c.job_id: [f"dirac-{c.job_id}"] for c in commands}

    batcher = SubmitBatcher(flush, linger_s=0.02)
    first = asyncio.create_task(batcher.submit(command("first")))
    await first_started.wait()
    second = asyncio.create_task(batcher.submit(command("second")))
    await asyncio.sleep(0.1)
    fail_first.set()
    assert await asyncio.wait_for(second, 5) == ["dirac-second"]
    assert isinstance((await asyncio.gather(first, return_exceptions=True))[0], RuntimeError)
