"""The Rucio REST client and the storage client against the Rucio and WebDAV testbeds."""

from __future__ import annotations

import secrets
import zlib
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio

from gridgate.datalake import (
    Did,
    DidNotFoundError,
    InvalidDidError,
    RucioClient,
    RucioError,
    StorageClient,
    StoredFileMissingError,
)
from gridgate.testing.rucio import RucioTestbed


@pytest_asyncio.fixture(loop_scope="session")
async def rucio(rucio_testbed: RucioTestbed) -> AsyncIterator[RucioClient]:
    client = RucioClient(
        rucio_testbed.url, rucio_testbed.account, rucio_testbed.username, rucio_testbed.password
    )
    yield client
    await client.aclose()


@pytest_asyncio.fixture(loop_scope="session")
async def storage(rucio_testbed: RucioTestbed) -> AsyncIterator[StorageClient]:
    client = StorageClient(ca_file=str(rucio_testbed.storage.ca_file))
    yield client
    await client.aclose()


def test_did_parsing_accepts_scope_and_name_and_refuses_the_rest() -> None:
    did = Did.parse("user.alice:runs/2026/run000001.simtel.json")
    assert (did.scope, did.name, did.file_name) == (
        "user.alice",
        "runs/2026/run000001.simtel.json",
        "run000001.simtel.json",
    )
    assert str(did) == "user.alice:runs/2026/run000001.simtel.json"
    for bad in ("no-colon", "user.alice:", ":name", "user.alice:a/../b", "bad scope:x", "s:a/"):
        with pytest.raises(InvalidDidError):
            Did.parse(bad)


async def test_registration_is_idempotent_and_reads_back(
    rucio: RucioClient, storage: StorageClient, rucio_testbed: RucioTestbed, tmp_path: Path
) -> None:
    run = secrets.token_hex(4)
    dataset = Did("user.alice", f"gridgate.test.{run}")
    files = [Did("user.alice", f"gridgate.test.{run}/f{i}.dat") for i in range(2)]
    payloads = [secrets.token_bytes(1000 + i) for i in range(2)]
    assert await rucio.whoami() == rucio_testbed.account

    pfns = await rucio.lfns2pfns(rucio_testbed.webdav_rse, files, scheme="https")
    assert set(pfns) == set(files)
    for did, payload in zip(files, payloads, strict=True):
        source = tmp_path / did.file_name
        source.write_bytes(payload)
        await storage.upload(source, pfns[did])
        assert await storage.read(pfns[did]) == payload
    replicas = [
        {"scope": d.scope, "name": d.name, "bytes": len(p), "adler32": f"{zlib.adler32(p):08x}"}
        for d, p in zip(files, payloads, strict=True)
    ]
    for _ in range(2):  # everything twice: a redelivered message repeats it all
        await rucio.add_replicas(rucio_testbed.webdav_rse, replicas)
    assert await rucio.add_dataset(dataset) is True
    assert await rucio.add_dataset(dataset) is False
    await rucio.set_json_metadata(dataset, {"gridgate_job_id": f"job{run}", "tasks": [0, 1]})
    assert await rucio.attach(dataset, files[:1]) == 1
    assert await rucio.attach(dataset, files) == 1
    assert await rucio.attach(dataset, files) == 0
    first = await rucio.add_rule([dataset], rucio_testbed.webdav_rse, account="alice")
    again = await rucio.add_rule([dataset], rucio_testbed.webdav_rse, account="alice")
    assert first == again and len(first) == 1
    await rucio.close(dataset)

    listed = {f["name"]: f for f in await rucio.list_files(dataset)}
    assert sorted(listed) == sorted(d.name for d in files)
    assert listed[files[1].name]["adler32"] == replicas[1]["adler32"]
    found = await rucio.list_replicas([dataset], schemes=["https"])
    assert {r["name"] for r in found} == {d.name for d in files}
    assert all(r["states"][rucio_testbed.webdav_rse] == "AVAILABLE" for r in found)
    meta = await rucio.get_json_metadata(dataset)
    assert meta["gridgate_job_id"] == f"job{run}" and meta["tasks"] == [0, 1]
    record = await rucio.get_did(dataset)
    assert record["type"] == "DATASET" and record["open"] is False

    await rucio.set_rule_lifetime(first[0], 3600)
    (rule,) = await rucio.list_rules(dataset)
    assert rule["account"] == "alice" and rule["expires_at"] is not None


async def test_missing_dids_and_refusals_are_told_apart(
    rucio: RucioClient, rucio_testbed: RucioTestbed
) -> None:
    with pytest.raises(DidNotFoundError):
        await rucio.get_did(Did("user.alice", f"missing.{secrets.token_hex(4)}"))
    bob = RucioClient(rucio_testbed.url, "bob", "bob", rucio_testbed.passwords["bob"])
    try:
        with pytest.raises(RucioError) as refused:
            await bob.add_dataset(Did("user.alice", f"bob.{secrets.token_hex(4)}"))
        assert refused.value.status == 401 or refused.value.exception_class == "AccessDenied"
    finally:
        await bob.aclose()


async def test_storage_client_writes_reads_and_deletes_by_url(
    storage: StorageClient, rucio_testbed: RucioTestbed, tmp_path: Path
) -> None:
    source = tmp_path / "x.bin"
    source.write_bytes(b"x" * 3_000_000)
    run = secrets.token_hex(4)
    for base in (rucio_testbed.storage.url, rucio_testbed.storage.https_url, tmp_path.as_uri()):
        url = f"{base.rstrip('/')}/gridgate/test-{run}/a/b/x.bin"
        await storage.upload(source, url)
        assert await storage.read(url) == source.read_bytes()
        assert await storage.delete(url.rsplit("/", 3)[0] + "/") is True
        with pytest.raises(StoredFileMissingError):
            await storage.read(url)
