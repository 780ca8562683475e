"""Staging to the stores and registering in Rucio (RabbitMQ, Rucio and WebDAV testbeds)."""

from __future__ import annotations

import hashlib
import secrets
import zlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aio_pika
import pytest
import pytest_asyncio

from gridgate.broker import Publisher, connect, declare_topology
from gridgate.contracts import (
    GATEWAY_REPORTS_QUEUE,
    REPORT_ADAPTER,
    CollectResults,
    ImageProvenance,
    PurgeResults,
    ResultsStaged,
)
from gridgate.core.errors import FatalError, UsageError
from gridgate.datalake import Did, DidNotFoundError, RucioClient, StorageClient
from gridgate.localfacility import LocalFacility
from gridgate.localfacility.layout import task_dir
from gridgate.results.config import ResultsSettings
from gridgate.results.factory import DataLake
from gridgate.results.service import ResultsService
from gridgate.testing.rucio import RucioTestbed


class Crash(Exception):
    """Stands for the process dying in the middle of the registration."""


class CrashingRucio(RucioClient):
    """The real client, except that the process 'dies' when it is about to add the rule."""

    async def add_rule(self, *args: Any, **kwargs: Any) -> list[str]:
        raise Crash("killed before the rule was added")


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


async def staged_reports(queue: aio_pika.abc.AbstractQueue) -> list[ResultsStaged]:
    found = []
    while (message := await queue.get(no_ack=True, fail=False, timeout=5)) is not None:
        report = REPORT_ADAPTER.validate_json(message.body)
        assert isinstance(report, ResultsStaged)
        found.append(report)
    return found


def finished_job(root: Path, job_id: str, outputs: dict[str, bytes], tasks: int = 1) -> None:
    """Lay out what the local facility leaves behind when a job's tasks have ended."""
    for index in range(tasks):
        directory = task_dir(root, job_id, index)
        (directory / "work").mkdir(parents=True)
        (directory / "stdout.txt").write_text(f"task {index} done\n")
        (directory / "stderr.txt").write_text("")
        for name, payload in outputs.items():
            (directory / "work" / name).write_bytes(payload + bytes([index]))


def settings_for(testbed: RucioTestbed, tmp_path: Path, **options: Any) -> ResultsSettings:
    return ResultsSettings(
        results_dir=tmp_path / "results",
        local_facility_root=tmp_path / "facility",
        storage_ca_file=testbed.storage.ca_file,
        rucio_url=testbed.url,
        rucio_account=testbed.account,
        rucio_password=testbed.password,
        rucio_rse=testbed.webdav_rse,
        **options,
    )


IMAGE = ImageProvenance(
    reference="127.0.0.1:5000/gridgate/concordia-corsika@sha256:" + "cd" * 32,
    digest="sha256:" + "cd" * 32,
    repository="gridgate/concordia-corsika",
    build_args={"THINNING": "true"},
    base_digest="sha256:" + "ef" * 32,
    recipe_digest="sha256:" + "12" * 32,
)
"""The container image the job's tasks ran in: named in the dataset's provenance."""


def collect_command(job_id: str, tasks: int = 1) -> CollectResults:
    return CollectResults(
        job_id=job_id,
        owner="alice",
        vo="cta",
        facility="local",
        outputs=["*.dat"],
        task_count=tasks,
        workflow_id="hello-world",
        workflow_version="1.0.0",
        parameters_digest="sha256:" + "ab" * 32,
        facility_job_ids=[f"{job_id}/{i}" for i in range(tasks)],
        data_scope="user.alice",
        data_account="alice",
        image=IMAGE,
    )


async def test_a_redelivery_after_a_crash_registers_nothing_twice(
    rucio_testbed: RucioTestbed, tmp_path: Path, reports: Any
) -> None:
    publisher, queue = reports
    settings = settings_for(rucio_testbed, tmp_path)
    job_id = secrets.token_hex(8)
    finished_job(settings.local_facility_root, job_id, {"a.dat": b"A" * 5000, "b.dat": b"B"}, 2)
    local = LocalFacility(settings.local_facility_root)
    lake = DataLake.from_settings(settings)
    assert lake.registrar is not None and lake.rucio is not None
    command = collect_command(job_id, tasks=2)
    crashing = CrashingRucio(
        rucio_testbed.url, rucio_testbed.account, rucio_testbed.username, rucio_testbed.password
    )
    try:
        lake.registrar.rucio = crashing
        with pytest.raises(Crash):
            await ResultsService(publisher, lake.store, local, lake.registrar).collect(command)
        lake.registrar.rucio = lake.rucio
        service = ResultsService(publisher, lake.store, local, lake.registrar)
        await service.collect(command)  # the redelivery after the crash
        await service.collect(command)  # and once more, after a crash after the report
    finally:
        await crashing.aclose()

    first, second = await staged_reports(queue)
    assert first.results == second.results and first.dataset == second.dataset
    dataset = Did("user.alice", f"gridgate.hello-world.{job_id}")
    assert first.dataset == str(dataset)
    by_name = {r.name: r for r in first.results}
    assert set(by_name) == {
        f"task-000{i}/{n}" for i in range(2) for n in ("a.dat", "b.dat", "stdout.txt", "stderr.txt")
    }
    # Outputs are in the data lake; logs stay in gridgate's own store.
    # No '/' in a file's name: Rucio's own download client could not write it.
    assert by_name["task-0001/a.dat"].did == f"{dataset}.task-0001.a.dat"
    assert by_name["task-0001/stdout.txt"].did is None
    assert all(r.location is None for r in first.results)  # served from the results directory

    rucio = lake.rucio
    files = {f["name"]: f for f in await rucio.list_files(dataset)}
    assert sorted(files) == sorted(
        f"{dataset.name}.task-000{i}.{n}" for i in range(2) for n in ("a.dat", "b.dat")
    )
    payload = b"A" * 5000 + bytes([1])
    record = files[f"{dataset.name}.task-0001.a.dat"]
    assert record["adler32"] == f"{zlib.adler32(payload):08x}" == by_name["task-0001/a.dat"].adler32
    assert record["bytes"] == len(payload) == by_name["task-0001/a.dat"].size
    replicas = await rucio.list_replicas([dataset], schemes=["https"])
    assert len(replicas) == 4 and all(len(r["pfns"]) == 1 for r in replicas)
    # Both of Rucio's checksums are registered for every file.
    (replica,) = [r for r in replicas if r["name"] == f"{dataset.name}.task-0001.a.dat"]
    assert replica["md5"] == hashlib.md5(payload, usedforsecurity=False).hexdigest()
    assert replica["adler32"] == record["adler32"]
    assert all(r["md5"] and r["adler32"] for r in replicas)
    rules = await rucio.list_rules(dataset)
    assert [(r["account"], r["rse_expression"]) for r in rules] == [
        ("alice", rucio_testbed.webdav_rse)
    ]
    meta = await rucio.get_json_metadata(dataset)
    assert meta["gridgate_job_id"] == job_id
    assert (meta["workflow_id"], meta["workflow_version"]) == ("hello-world", "1.0.0")
    assert meta["parameters_digest"] == "sha256:" + "ab" * 32
    assert meta["facility"] == "local" and meta["facility_job_ids"] == [
        f"{job_id}/0",
        f"{job_id}/1",
    ]
    assert meta["dirac_job_ids"] == []
    assert meta["image"] == IMAGE.reference and meta["image_digest"] == IMAGE.digest
    assert meta["image_build_args"] == {"THINNING": "true"}
    assert meta["image_base_digest"] == IMAGE.base_digest
    assert (await rucio.get_did(dataset))["open"] is False
    file_meta = await rucio.get_json_metadata(Did("user.alice", f"{dataset.name}.task-0001.a.dat"))
    assert file_meta == {"gridgate_job_id": job_id, "task_index": 1}
    # The bytes at the replica's PFN are the job's.
    async with StorageClient(ca_file=str(rucio_testbed.storage.ca_file)) as storage:
        url = next(iter(next(r for r in replicas if r["name"].endswith("1.a.dat"))["pfns"]))
        assert await storage.read(url) == payload
    assert (settings.results_dir / job_id / "task-0001" / "a.dat").read_bytes() == payload
    await lake.aclose()


async def test_webdav_store_keeps_files_until_purged_and_purge_expires_the_rule(
    rucio_testbed: RucioTestbed, tmp_path: Path, reports: Any
) -> None:
    publisher, queue = reports
    base = f"{rucio_testbed.storage.https_url}gridgate/results-{secrets.token_hex(4)}"
    settings = settings_for(rucio_testbed, tmp_path, store="webdav", webdav_url=base)
    job_id = secrets.token_hex(8)
    finished_job(settings.local_facility_root, job_id, {"out.dat": b"payload"})
    lake = DataLake.from_settings(settings)
    service = ResultsService(
        publisher, lake.store, LocalFacility(settings.local_facility_root), lake.registrar
    )
    await service.collect(collect_command(job_id))
    (report,) = await staged_reports(queue)
    by_name = {r.name: r for r in report.results}

    assert by_name["out.dat"].location == f"{base}/{job_id}/out.dat"
    assert by_name["stdout.txt"].location == f"{base}/{job_id}/stdout.txt"
    assert await lake.storage.read(f"{base}/{job_id}/out.dat") == b"payload\x00"
    assert report.dataset is not None

    await service.purge(
        PurgeResults(
            job_id=job_id,
            owner="alice",
            reason="destroyed",
            dataset=report.dataset,
            rule_lifetime_s=3600,
        )
    )
    assert not await lake.storage.delete(f"{base}/{job_id}/")  # already gone
    assert lake.rucio is not None
    (rule,) = await lake.rucio.list_rules(Did.parse(report.dataset))
    assert rule["expires_at"] is not None
    await lake.aclose()


async def test_with_the_rse_as_the_only_store_logs_are_registered_too(
    rucio_testbed: RucioTestbed, tmp_path: Path, reports: Any
) -> None:
    publisher, queue = reports
    settings = settings_for(rucio_testbed, tmp_path, store="rucio")
    job_id = secrets.token_hex(8)
    finished_job(settings.local_facility_root, job_id, {"out.dat": b"x"})
    lake = DataLake.from_settings(settings)
    service = ResultsService(
        publisher, lake.store, LocalFacility(settings.local_facility_root), lake.registrar
    )
    await service.collect(collect_command(job_id))
    (report,) = await staged_reports(queue)

    assert {r.name for r in report.results} == {"out.dat", "stdout.txt", "stderr.txt"}
    assert all(r.did and r.location and r.location.startswith("https://") for r in report.results)
    stdout = next(r for r in report.results if r.name == "stdout.txt")
    assert stdout.location is not None
    assert await lake.storage.read(stdout.location) == b"task 0 done\n"
    assert not (settings.results_dir / job_id).exists()
    await lake.aclose()


async def test_a_job_registered_with_the_old_names_keeps_them(
    rucio_testbed: RucioTestbed, tmp_path: Path, reports: Any
) -> None:
    """A job staged before file names lost their '/' (a redelivery after the upgrade) keeps its
    DIDs: the dataset is complete and closed under the old names."""
    publisher, queue = reports
    settings = settings_for(rucio_testbed, tmp_path)
    job_id = secrets.token_hex(8)
    payload = b"old payload"
    finished_job(settings.local_facility_root, job_id, {"out.dat": payload})
    lake = DataLake.from_settings(settings)
    assert lake.registrar is not None and lake.rucio is not None
    rucio = lake.rucio
    # What the earlier registrar left: <dataset>/<name>, Adler-32 only, closed, with a rule.
    dataset = Did("user.alice", f"gridgate.hello-world.{job_id}")
    old = Did("user.alice", f"{dataset.name}/out.dat")
    stored = payload + b"\x00"
    (tmp_path / "old.dat").write_bytes(stored)
    pfn = (await rucio.lfns2pfns(rucio_testbed.webdav_rse, [old], scheme="https"))[old]
    await lake.storage.upload(tmp_path / "old.dat", pfn)
    await rucio.add_replicas(
        rucio_testbed.webdav_rse,
        [
            {
                "scope": old.scope,
                "name": old.name,
                "bytes": len(stored),
                "adler32": f"{zlib.adler32(stored):08x}",
            }
        ],
    )
    await rucio.add_dataset(dataset)
    await rucio.attach(dataset, [old])
    await rucio.add_rule([dataset], rucio_testbed.webdav_rse, account="alice")
    await rucio.close(dataset)

    service = ResultsService(
        publisher, lake.store, LocalFacility(settings.local_facility_root), lake.registrar
    )
    await service.collect(collect_command(job_id))
    (report,) = await staged_reports(queue)

    assert {r.name: r.did for r in report.results if r.did} == {"out.dat": str(old)}
    assert [f["name"] for f in await rucio.list_files(dataset)] == [old.name]
    await lake.aclose()


async def test_outputs_whose_names_would_clash_in_rucio_are_a_usage_error(
    rucio_testbed: RucioTestbed, tmp_path: Path, reports: Any
) -> None:
    publisher, queue = reports
    settings = settings_for(rucio_testbed, tmp_path)
    job_id = secrets.token_hex(8)
    finished_job(settings.local_facility_root, job_id, {"out.a.dat": b"1"})
    work = task_dir(settings.local_facility_root, job_id, 0) / "work"
    (work / "out").mkdir()
    (work / "out" / "a.dat").write_bytes(b"2")
    lake = DataLake.from_settings(settings)
    assert lake.rucio is not None
    service = ResultsService(
        publisher, lake.store, LocalFacility(settings.local_facility_root), lake.registrar
    )
    command = collect_command(job_id).model_copy(update={"outputs": ["*.dat", "out/*.dat"]})

    with pytest.raises(UsageError, match="same Rucio name"):
        await service.collect(command)
    # Nothing was registered.
    with pytest.raises(DidNotFoundError):
        await lake.rucio.get_did(Did("user.alice", f"gridgate.hello-world.{job_id}"))
    assert await staged_reports(queue) == []
    await lake.aclose()


async def test_a_file_rucio_holds_with_another_md5_is_dead_lettered(
    rucio_testbed: RucioTestbed, tmp_path: Path, reports: Any
) -> None:
    """Same size and Adler-32, another MD5: not the job's file, whatever Adler-32 says."""
    publisher, queue = reports
    settings = settings_for(rucio_testbed, tmp_path)
    job_id = secrets.token_hex(8)
    payload = b"the job's bytes"
    finished_job(settings.local_facility_root, job_id, {"out.dat": payload})
    stored = payload + b"\x00"
    lake = DataLake.from_settings(settings)
    assert lake.rucio is not None
    name = f"gridgate.hello-world.{job_id}.out.dat"
    await lake.rucio.add_replicas(
        rucio_testbed.webdav_rse,
        [
            {
                "scope": "user.alice",
                "name": name,
                "bytes": len(stored),
                "adler32": f"{zlib.adler32(stored):08x}",
                "md5": "0" * 32,
            }
        ],
    )
    service = ResultsService(
        publisher, lake.store, LocalFacility(settings.local_facility_root), lake.registrar
    )

    with pytest.raises(FatalError, match=r"Rucio holds .* md5 0{32}"):
        await service.collect(collect_command(job_id))
    assert await staged_reports(queue) == []
    await lake.aclose()
