"""Results and inputs through the data lake: all five services against the Rucio and WebDAV
testbeds (outputs registered with provenance, inputs read and split, signed downloads,
idempotent staging, destruction)."""

from __future__ import annotations

import asyncio
import hashlib
import os
import secrets
import subprocess
import time
import zlib
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio
from prometheus_client import REGISTRY

from gridgate.broker import Publisher, connect
from gridgate.cli.stack import AUDIENCE, DevStack, dev_issuer
from gridgate.contracts import (
    EVENTS_EXCHANGE,
    GATEWAY_REPORTS_QUEUE,
    RESULTS_QUEUE,
    CollectResults,
)
from gridgate.datalake import Did, RucioClient, StorageClient
from gridgate.gateway.services.downloads import UrlSigner
from gridgate.testing.rucio import RucioTestbed
from gridgate.testing.services import free_port, rabbitmq_vhost
from gridgate.workflows import WorkflowCatalogue, parameters_digest, validate_parameters

from .test_end_to_end import run_to_end

SIGNING_KEY = "data-lake-test-signing-key-0123456789"
PROBLEM = "urn:gridgate:problem:"


@pytest.fixture(scope="module")
def runner_trusts_the_storage(rucio_testbed: RucioTestbed) -> Iterator[None]:
    """Local-facility runners (children of this process) verify the WebDAV testbed's TLS."""
    name = "GRIDGATE_LOCALFACILITY_CA_FILE"
    before = os.environ.get(name)
    os.environ[name] = str(rucio_testbed.storage.ca_file)
    yield
    if before is None:
        os.environ.pop(name, None)
    else:
        os.environ[name] = before


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def lake(
    rucio_testbed: RucioTestbed,
    runner_trusts_the_storage: None,
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[DevStack]:
    """The five services with inputs from Rucio and outputs registered on WEBDAV-LOCAL."""
    rucio = {
        "rucio_url": rucio_testbed.url,
        "rucio_account": rucio_testbed.account,
        "rucio_password": rucio_testbed.password,
    }
    with rabbitmq_vhost() as url:
        stack = DevStack(
            data_dir=tmp_path_factory.mktemp("lake"),
            port=free_port(),
            broker_url=url,
            gateway_options={
                **rucio,
                "rucio_accounts": {"alice": "alice", "bob": "bob"},
                "signing_key": SIGNING_KEY,
                "storage_ca_file": rucio_testbed.storage.ca_file,
                "retention_interval_s": 0.3,
                "retention_rule_lifetime_s": 3600,
            },
            results_options={
                **rucio,
                "rucio_rse": rucio_testbed.webdav_rse,
                "storage_ca_file": rucio_testbed.storage.ca_file,
            },
        )
        await stack.start()
        yield stack
        await stack.stop()


@pytest_asyncio.fixture(loop_scope="session")
async def rucio(rucio_testbed: RucioTestbed) -> AsyncIterator[RucioClient]:
    async with RucioClient(
        rucio_testbed.url, rucio_testbed.account, rucio_testbed.username, rucio_testbed.password
    ) as client:
        yield client


@pytest_asyncio.fixture(loop_scope="session")
async def storage(rucio_testbed: RucioTestbed) -> AsyncIterator[StorageClient]:
    async with StorageClient(ca_file=str(rucio_testbed.storage.ca_file)) as client:
        yield client


def user(stack: DevStack, name: str, *, authenticated: bool = True) -> httpx.AsyncClient:
    headers = {}
    if authenticated:
        token = dev_issuer(stack.data_dir, stack.host, stack.port).mint(
            name, groups=["cta"], audience=AUDIENCE
        )
        headers["Authorization"] = f"Bearer {token}"
    return httpx.AsyncClient(base_url=stack.url, headers=headers, timeout=90)


def adler32(data: bytes) -> str:
    return f"{zlib.adler32(data):08x}"


async def put_in_rucio(
    rucio: RucioClient,
    storage: StorageClient,
    testbed: RucioTestbed,
    tmp_path: Path,
    dataset: Did,
    files: dict[str, bytes],
) -> list[Did]:
    """Upload files to WEBDAV-LOCAL, register them and attach them to a new dataset."""
    dids = [Did(dataset.scope, f"{dataset.name}/{name}") for name in files]
    pfns = await rucio.lfns2pfns(testbed.webdav_rse, dids, scheme="https")
    for did, payload in zip(dids, files.values(), strict=True):
        source = tmp_path / did.file_name
        source.write_bytes(payload)
        await storage.upload(source, pfns[did])
    await rucio.add_replicas(
        testbed.webdav_rse,
        [
            {"scope": d.scope, "name": d.name, "bytes": len(p), "adler32": adler32(p)}
            for d, p in zip(dids, files.values(), strict=True)
        ],
    )
    await rucio.add_dataset(dataset)
    await rucio.attach(dataset, dids)
    owner = dataset.scope.removeprefix("user.") if dataset.scope.startswith("user.") else None
    await rucio.add_rule([dataset], testbed.webdav_rse, account=owner)
    return dids


async def check_outputs_in_rucio(
    http: httpx.AsyncClient,
    rucio: RucioClient,
    storage: StorageClient,
    job: dict[str, Any],
    *,
    scope: str,
    account: str,
    raw_parameters: dict[str, Any],
) -> dict[str, dict[str, Any]]:
    """The declared outputs are in Rucio with provenance; they download back intact."""
    job_id, workflow = job["jobId"], job["jobInfo"]["workflow"]
    listing = (await http.get(f"/api/jobs/{job_id}/results")).json()
    dataset = Did(scope, f"gridgate.{workflow['id']}.{job_id}")
    assert listing["dataset"] == str(dataset) == job["jobInfo"]["dataset"]
    results = {r["id"]: r for r in listing["results"]}
    outputs = {name: r for name, r in results.items() if r["did"]}
    assert outputs and all("stdout.txt" not in name for name in outputs)
    held = {f["name"]: f for f in await rucio.list_files(dataset)}
    assert sorted(held) == sorted(f"{dataset.name}.{name.replace('/', '.')}" for name in outputs)
    replicas = {r["name"]: r for r in await rucio.list_replicas([dataset], schemes=["https"])}
    async with httpx.AsyncClient(timeout=30) as anonymous:
        for name, result in outputs.items():
            did = Did.parse(result["did"])
            assert did == Did(scope, f"{dataset.name}.{name.replace('/', '.')}")
            assert (result["size"], result["adler32"]) == (
                held[did.name]["bytes"],
                held[did.name]["adler32"],
            )
            # Back through the gateway, without a token, with the signed URL...
            download = await anonymous.get(result["signedUrl"])
            assert download.status_code == 200, download.text
            assert adler32(download.content) == held[did.name]["adler32"]
            assert download.headers["x-checksum-adler32"] == result["adler32"]
            # ... and straight from the storage element, at the replica Rucio names.
            (pfn,) = replicas[did.name]["pfns"]
            assert adler32(await storage.read(pfn)) == held[did.name]["adler32"]
    meta = await rucio.get_json_metadata(dataset)
    definition = WorkflowCatalogue.shipped().get(workflow["id"], workflow["version"])
    assert meta["gridgate_job_id"] == job_id
    assert (meta["workflow_id"], meta["workflow_version"]) == (workflow["id"], workflow["version"])
    assert meta["parameters_digest"] == parameters_digest(
        validate_parameters(definition, raw_parameters)
    )
    assert meta["facility"] == "local"
    assert meta["facility_job_ids"] == [t["facilityJobId"] for t in job["jobInfo"]["tasks"]]
    (rule,) = await rucio.list_rules(dataset)
    assert rule["account"] == account and rule["state"] == "OK"
    return outputs


async def test_hello_world_outputs_land_in_rucio_and_download_back(
    lake: DevStack, rucio: RucioClient, storage: StorageClient
) -> None:
    async with user(lake, "alice") as http:
        job = await run_to_end(http, {"workflow": "hello-world", "name": "lake"})
        assert job["phase"] == "COMPLETED", job.get("errorSummary")
        outputs = await check_outputs_in_rucio(
            http,
            rucio,
            storage,
            job,
            scope="user.alice",
            account="alice",
            raw_parameters={"name": "lake"},
        )
        assert set(outputs) == {"hello.txt"}
        download = await http.get(f"/api/jobs/{job['jobId']}/results/hello.txt")
        assert download.text == "Hello, lake!\n"


async def test_cta_outputs_go_to_the_vo_scope_for_a_user_without_an_account(
    lake: DevStack, rucio: RucioClient, storage: StorageClient
) -> None:
    parameters = {"number_of_jobs": "2", "showers_per_job": "20", "first_run_number": "300"}
    async with user(lake, "carol") as http:
        job = await run_to_end(http, {"workflow": "cta-mc-production", **parameters})
        assert job["phase"] == "COMPLETED", job.get("errorSummary")
        outputs = await check_outputs_in_rucio(
            http,
            rucio,
            storage,
            job,
            scope="cta",
            account="gridgate",
            raw_parameters=parameters,
        )
    assert sorted(outputs) == ["task-0000/run000300.simtel.json", "task-0001/run000301.simtel.json"]
    file_meta = await rucio.get_json_metadata(
        Did.parse(outputs["task-0001/run000301.simtel.json"]["did"])
    )
    assert file_meta == {"gridgate_job_id": job["jobId"], "task_index": 1}


async def test_a_dataset_of_six_files_runs_as_three_tasks_of_two(
    lake: DevStack,
    rucio: RucioClient,
    storage: StorageClient,
    rucio_testbed: RucioTestbed,
    tmp_path: Path,
) -> None:
    dataset = Did("user.alice", f"inputs.{secrets.token_hex(4)}")
    payloads = {f"part{i}.dat": secrets.token_bytes(100 + i) for i in range(6)}
    dids = await put_in_rucio(rucio, storage, rucio_testbed, tmp_path, dataset, payloads)

    async with user(lake, "alice") as http:
        job = await run_to_end(
            http,
            {"workflow": "input-manifest", "inputs": str(dataset), "files_per_job": "2"},
        )
        assert job["phase"] == "COMPLETED", job.get("errorSummary")
        tasks = job["jobInfo"]["tasks"]
        assert len(tasks) == 3
        assert job["jobInfo"]["inputs"] == {"dids": [str(dataset)], "filesPerJob": 2, "files": 6}
        ordered = sorted(dids)
        assert [t["inputs"] for t in tasks] == [
            [str(d) for d in ordered[i : i + 2]] for i in range(0, 6, 2)
        ]
        for index, task in enumerate(tasks):
            manifest = (
                await http.get(f"/api/jobs/{job['jobId']}/results/task-{index:04d}/manifest.json")
            ).json()
            assert manifest["task_index"] == index
            seen = {(f["name"], f["size"], f["adler32"]) for f in manifest["files"]}
            assert seen == {
                (
                    Did.parse(d).file_name,
                    len(payloads[Did.parse(d).file_name]),
                    adler32(payloads[Did.parse(d).file_name]),
                )
                for d in task["inputs"]
            }


async def test_a_single_file_and_a_vo_dataset_are_readable_inputs(
    lake: DevStack,
    rucio: RucioClient,
    storage: StorageClient,
    rucio_testbed: RucioTestbed,
    tmp_path: Path,
) -> None:
    vo_dataset = Did("cta", f"shared.{secrets.token_hex(4)}")
    await put_in_rucio(rucio, storage, rucio_testbed, tmp_path, vo_dataset, {"s.dat": b"s"})
    mine = Did("user.bob", f"own.{secrets.token_hex(4)}")
    (own,) = await put_in_rucio(rucio, storage, rucio_testbed, tmp_path, mine, {"b.dat": b"bb"})
    async with user(lake, "bob") as http:
        job = await run_to_end(
            http, {"workflow": "input-manifest", "inputs": f"{own}, {vo_dataset}"}
        )
        assert job["phase"] == "COMPLETED", job.get("errorSummary")
        manifest = (await http.get(f"/api/jobs/{job['jobId']}/results/manifest.json")).json()
        assert [(f["name"], f["size"]) for f in manifest["files"]] == [("b.dat", 2), ("s.dat", 1)]


async def test_another_users_private_did_cannot_be_an_input(
    lake: DevStack,
    rucio: RucioClient,
    storage: StorageClient,
    rucio_testbed: RucioTestbed,
    tmp_path: Path,
) -> None:
    private = Did("user.alice", f"private.{secrets.token_hex(4)}")
    (secret,) = await put_in_rucio(
        rucio, storage, rucio_testbed, tmp_path, private, {"x.dat": b"x"}
    )
    async with user(lake, "bob") as http:
        jobs_before = (await http.get("/api/jobs")).json()["total"]
        for did in (private, secret, Did("user.alice", "does-not-exist")):
            refused = await http.post(
                "/api/jobs", data={"workflow": "input-manifest", "inputs": str(did)}
            )
            assert refused.status_code == 403, refused.text
            assert refused.headers["content-type"] == "application/problem+json"
            assert refused.json()["type"] == PROBLEM + "input-not-readable"
        missing = await http.post(
            "/api/jobs", data={"workflow": "input-manifest", "inputs": "user.bob:nothing.here"}
        )
        assert missing.status_code == 422 and missing.json()["type"] == PROBLEM + "unknown-input"
        bad = await http.post("/api/jobs", data={"workflow": "input-manifest", "inputs": "nocolon"})
        assert bad.status_code == 422 and bad.json()["type"] == PROBLEM + "invalid-inputs"
        split = await http.post(
            "/api/jobs",
            data={"workflow": "cta-mc-production", "inputs": "user.bob:x", "files_per_job": "1"},
        )
        assert split.status_code == 422 and split.json()["type"] == PROBLEM + "invalid-inputs"
        assert (await http.get("/api/jobs")).json()["total"] == jobs_before


async def test_signed_urls_expire_and_refuse_any_change(lake: DevStack) -> None:
    async with user(lake, "alice") as http:
        job = await run_to_end(http, {"workflow": "hello-world", "name": "signed"})
        listing = (await http.get(f"/api/jobs/{job['jobId']}/results")).json()
    hello = next(r for r in listing["results"] if r["id"] == "hello.txt")
    url = hello["signedUrl"]
    assert url.startswith(hello["href"] + "?signed=")
    token = url.split("?signed=", 1)[1]
    expires, signature = token.split(".")
    assert datetime.fromisoformat(hello["signedUrlExpires"]) > datetime.now(UTC)

    def with_token(value: str, href: str = hello["href"]) -> str:
        return f"{href}?signed={value}"

    changed = signature[:5] + ("A" if signature[5] != "A" else "B") + signature[6:]
    later = str(int(expires) + 3600)
    stale, _ = UrlSigner(SIGNING_KEY.encode()).sign(
        job["jobId"], "hello.txt", datetime.now(UTC) - timedelta(hours=1)
    )
    async with user(lake, "anonymous", authenticated=False) as anonymous:
        assert (await anonymous.get(url)).text == "Hello, signed!\n"
        assert (await anonymous.get(hello["href"])).status_code == 401
        for bad, kind in [
            (with_token(f"{expires}.{changed}"), "signed-url-invalid"),
            (with_token(f"{later}.{signature}"), "signed-url-invalid"),
            (
                with_token(token, hello["href"].replace("hello.txt", "stdout.txt")),
                "signed-url-invalid",
            ),
            (with_token("garbage"), "signed-url-invalid"),
            (with_token(stale), "signed-url-expired"),
        ]:
            refused = await anonymous.get(bad)
            assert refused.status_code == 403, (bad, refused.text)
            assert refused.json()["type"] == PROBLEM + kind


def handled(queue: str) -> float:
    """Deliveries of ``queue`` handled to the end in this process (the stack runs here)."""
    value = REGISTRY.get_sample_value(
        "gridgate_messages_total", {"queue": queue, "outcome": "done"}
    )
    return value or 0.0


async def until_handled(queue: str, count: float) -> None:
    for _ in range(300):
        if handled(queue) >= count:
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"{queue}: {handled(queue)} deliveries handled, not {count}")


async def test_staging_a_job_again_after_a_crash_changes_nothing(
    lake: DevStack, rucio: RucioClient
) -> None:
    async with user(lake, "alice") as http:
        job = await run_to_end(http, {"workflow": "hello-world", "name": "again"})
        assert job["phase"] == "COMPLETED"
        before = (await http.get(f"/api/jobs/{job['jobId']}/results")).json()
        # The results service crashed after staging and before its ack: the command comes back.
        definition = WorkflowCatalogue.shipped().get("hello-world")
        redelivery = CollectResults(
            job_id=job["jobId"],
            owner="alice",
            vo="cta",
            facility="local",
            outputs=["hello.txt"],
            workflow_id="hello-world",
            workflow_version="1.0.0",
            parameters_digest=parameters_digest(validate_parameters(definition, {"name": "again"})),
            facility_job_ids=[job["jobInfo"]["tasks"][0]["facilityJobId"]],
            data_scope="user.alice",
            data_account="alice",
        )
        connection = await connect(lake.broker_url)
        channel = await connection.channel()
        events = await channel.declare_queue(exclusive=True)
        await events.bind(EVENTS_EXCHANGE, routing_key="job.*.results_staged")
        collected = handled(RESULTS_QUEUE)
        reported = handled(GATEWAY_REPORTS_QUEUE)
        publisher = await Publisher.open(connection)
        await publisher.send(RESULTS_QUEUE, redelivery)
        # The collection runs again and reports again; the gateway finds nothing new in it.
        await until_handled(RESULTS_QUEUE, collected + 1)
        await until_handled(GATEWAY_REPORTS_QUEUE, reported + 1)
        await asyncio.sleep(1)  # an event would leave through the outbox relay by now
        assert await events.get(fail=False, no_ack=True) is None
        await publisher.close()
        await connection.close()
        after = (await http.get(f"/api/jobs/{job['jobId']}/results")).json()
        job_after = (await http.get(f"/api/jobs/{job['jobId']}")).json()

    strip = [
        {k: v for k, v in r.items() if not k.startswith("signedUrl")} for r in before["results"]
    ]
    assert strip == [
        {k: v for k, v in r.items() if not k.startswith("signedUrl")} for r in after["results"]
    ]
    assert job_after["phase"] == "COMPLETED"
    assert not any(h["to"] == "ERROR" for h in job_after["jobInfo"]["history"])
    stored = [h for h in job_after["jobInfo"]["history"] if h["source"] == "results"]
    assert len(stored) == 2  # "3 result files stored", then the transition: once
    dataset = Did.parse(before["dataset"])
    assert [f["name"] for f in await rucio.list_files(dataset)] == [f"{dataset.name}.hello.txt"]
    assert len(await rucio.list_rules(dataset)) == 1
    (replica,) = await rucio.list_replicas([dataset])
    assert len(replica["pfns"]) == 1


async def test_a_job_past_its_destruction_time_is_archived_and_its_rule_expires(
    lake: DevStack, rucio: RucioClient
) -> None:
    destruction = (datetime.now(UTC) + timedelta(seconds=10)).isoformat()
    async with user(lake, "alice") as http:
        job = await run_to_end(
            http, {"workflow": "hello-world", "name": "brief", "destruction": destruction}
        )
        assert job["phase"] == "COMPLETED"
        job_id = job["jobId"]
        results_dir = lake.data_dir / "results" / job_id
        assert (results_dir / "hello.txt").is_file()
        dataset = Did.parse(job["jobInfo"]["dataset"])
        (rule,) = await rucio.list_rules(dataset)
        assert rule["expires_at"] is None
        # UWS WAIT answers a COMPLETED job at once: poll until the retention sweep ran.
        for _ in range(80):
            job = (await http.get(f"/api/jobs/{job_id}")).json()
            if job["phase"] != "COMPLETED":
                break
            await asyncio.sleep(0.5)
        assert job["phase"] == "ARCHIVED"
        assert (
            job["jobInfo"]["history"][-1]["detail"] == "destruction time reached: results removed"
        )
        gone = await http.get(f"/api/jobs/{job_id}/results/hello.txt")
        assert gone.status_code == 410
        assert gone.json()["type"] == PROBLEM + "result-removed"
        assert gone.json()["did"] == f"{dataset}.hello.txt"
        assert job_id not in {j["jobId"] for j in (await http.get("/api/jobs")).json()["jobs"]}
        archived = (await http.get("/api/jobs", params={"PHASE": "ARCHIVED"})).json()["jobs"]
        assert job_id in {j["jobId"] for j in archived}
    for _ in range(50):
        (rule,) = await rucio.list_rules(dataset)
        if rule["expires_at"] is not None and not results_dir.exists():
            break
        await asyncio.sleep(0.2)
    assert not results_dir.exists()
    assert rule["expires_at"] is not None


def official_download(testbed: RucioTestbed, account: str, did: str, target: Path) -> float:
    """``rucio download --dir target did`` with the official client; the seconds it took."""
    started = time.monotonic()
    done = subprocess.run(
        [str(testbed.client_venv / "bin" / "rucio"), "download", "--dir", str(target), did],
        env=testbed.client_environment(account),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return time.monotonic() - started


def file_digests(path: Path) -> tuple[str, str, str]:
    data = path.read_bytes()
    return (
        adler32(data),
        hashlib.md5(data, usedforsecurity=False).hexdigest(),
        hashlib.sha256(data).hexdigest(),
    )


@pytest.mark.parametrize(
    ("workflow", "parameters", "expected"),
    [
        ("hello-world", {"name": "official"}, ["hello.txt"]),
        (
            "cta-mc-production",
            {"number_of_jobs": "3", "showers_per_job": "10", "first_run_number": "700"},
            [f"task-000{i}/run00070{i}.simtel.json" for i in range(3)],
        ),
    ],
    ids=["job", "sweep"],
)
async def test_the_official_rucio_client_downloads_a_jobs_outputs_with_both_checksums(
    lake: DevStack,
    rucio: RucioClient,
    rucio_testbed: RucioTestbed,
    tmp_path: Path,
    workflow: str,
    parameters: dict[str, str],
    expected: list[str],
) -> None:
    async with user(lake, "alice") as http:
        job = await run_to_end(http, {"workflow": workflow, **parameters})
        assert job["phase"] == "COMPLETED", job.get("errorSummary")
        listing = (await http.get(f"/api/jobs/{job['jobId']}/results")).json()
    outputs = {r["id"]: r for r in listing["results"] if r["did"]}
    assert sorted(outputs) == expected
    dataset = Did.parse(listing["dataset"])

    # The whole dataset, as any Rucio user fetches it: `rucio download scope:dataset`.
    seconds = await asyncio.to_thread(
        official_download, rucio_testbed, "alice", str(dataset), tmp_path / "dataset"
    )
    replicas = {r["name"]: r for r in await rucio.list_replicas([dataset])}
    for result in outputs.values():
        did = Did.parse(result["did"])
        assert "/" not in did.name
        # The client names the file after its DID, in a folder named after the dataset.
        downloaded = tmp_path / "dataset" / dataset.name / did.name
        assert downloaded.is_file(), sorted(p.name for p in (tmp_path / "dataset").rglob("*"))
        held = replicas[did.name]
        assert file_digests(downloaded) == (held["adler32"], held["md5"], result["sha256"])
        assert (held["adler32"], held["bytes"]) == (result["adler32"], result["size"])
    # One file alone, by its DID, comes down the same.
    first = Did.parse(outputs[expected[0]]["did"])
    await asyncio.to_thread(official_download, rucio_testbed, "alice", str(first), tmp_path / "one")
    assert (
        file_digests(tmp_path / "one" / first.scope / first.name)[1]
        == (replicas[first.name]["md5"])
    )
    print(f"official client: {len(outputs)} outputs of {workflow} in {seconds:.2f} s")
