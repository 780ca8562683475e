"""Two results replicas collecting one job at once (RabbitMQ; directory store, no Rucio)."""

from __future__ import annotations

import asyncio
import os
import secrets
from collections.abc import AsyncIterator
from pathlib import Path

import aio_pika
import pytest_asyncio

from gridgate.broker import Publisher, connect, declare_topology
from gridgate.contracts import GATEWAY_REPORTS_QUEUE, REPORT_ADAPTER, CollectResults, ResultsStaged
from gridgate.localfacility import LocalFacility
from gridgate.localfacility.layout import task_dir
from gridgate.results.service import ResultsService

TASKS = 2
FILES_PER_TASK = 30


@pytest_asyncio.fixture(loop_scope="session")
async def reports(broker_url: str) -> AsyncIterator[tuple[Publisher, aio_pika.abc.AbstractQueue]]:
    connection = await connect(broker_url)
    channel = await connection.channel()
    await declare_topology(channel)
    queue = await channel.get_queue(GATEWAY_REPORTS_QUEUE)
    await queue.purge()
    publisher = await Publisher.open(connection)
    yield publisher, queue
    await publisher.close()
    await connection.close()


def finished_job(root: Path, job_id: str) -> None:
    """What the local facility leaves behind: many outputs of a few hundred KiB per task."""
    for index in range(TASKS):
        directory = task_dir(root, job_id, index)
        (directory / "work" / "sub").mkdir(parents=True)
        (directory / "stdout.txt").write_text(f"task {index} done\n")
        (directory / "stderr.txt").write_text("")
        for number in range(FILES_PER_TASK):
            (directory / "work" / "sub" / f"f{number:02d}.dat").write_bytes(
                os.urandom(128 * 1024 + number)
            )


async def staged_reports(queue: aio_pika.abc.AbstractQueue) -> list[ResultsStaged]:
    found = []
    while (message := await queue.get(no_ack=True, fail=False, timeout=5)) is not None:
        report = REPORT_ADAPTER.validate_json(message.body)
        assert isinstance(report, ResultsStaged)
        found.append(report)
    return found


async def test_duplicate_collections_at_once_store_every_file_whole(
    tmp_path: Path, reports: tuple[Publisher, aio_pika.abc.AbstractQueue]
) -> None:
    publisher, queue = reports
    facility_root, store = tmp_path / "facility", tmp_path / "results"
    # Two replicas: services of their own over the same facility root and the same store.
    replicas = [ResultsService(publisher, store, LocalFacility(facility_root)) for _ in range(2)]
    for _ in range(3):
        job_id = secrets.token_hex(8)
        finished_job(facility_root, job_id)
        command = CollectResults(
            job_id=job_id,
            owner="alice",
            vo="cta",
            facility="local",
            outputs=["sub/*.dat"],
            task_count=TASKS,
        )
        await asyncio.gather(*(replica.collect(command) for replica in replicas))

        first, second = await staged_reports(queue)
        assert first.job_id == second.job_id == job_id
        assert first.results == second.results
        assert len(first.results) == TASKS * (FILES_PER_TASK + 2)
        for result in first.results:
            index = result.task_index
            assert result.name.startswith(f"task-{index:04d}/")
            source = task_dir(facility_root, job_id, index)
            relative = result.name.removeprefix(f"task-{index:04d}/")
            original = (
                source / relative if relative.startswith("std") else source / "work" / relative
            )
            assert (store / job_id / result.name).read_bytes() == original.read_bytes()
        assert [p for p in (store / job_id).rglob("*") if p.name.endswith(".partial")] == []
