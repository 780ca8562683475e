"""From POST to downloaded result, through all five services, on both databases."""

from __future__ import annotations

import base64
import hashlib
import zlib
from typing import Any

import httpx

FINAL = {"COMPLETED", "ERROR", "ABORTED"}


async def run_to_end(http: httpx.AsyncClient, fields: dict[str, Any]) -> dict[str, Any]:
    created = await http.post("/api/jobs", data={"PHASE": "RUN", **fields})
    assert created.status_code == 303, created.text
    url = created.headers["location"]
    job = (await http.get(url)).json()
    for _ in range(60):
        if job["phase"] in FINAL:
            break
        job = (await http.get(url, params={"WAIT": 10, "PHASE": job["phase"]})).json()
    return job


async def test_hello_world_result_downloads_with_its_checksum(api) -> None:
    http = api("e2e-alice")
    job = await run_to_end(http, {"workflow": "hello-world", "name": "grid"})

    assert job["phase"] == "COMPLETED"
    results = {r["id"]: r for r in job["results"]}
    assert set(results) == {"hello.txt", "stdout.txt", "stderr.txt"}
    download = await http.get(results["hello.txt"]["href"])
    assert download.status_code == 200
    assert download.text == "Hello, grid!\n"
    assert hashlib.sha256(download.content).hexdigest() == results["hello.txt"]["sha256"]
    assert f"{zlib.adler32(download.content):08x}" == results["hello.txt"]["adler32"]
    assert results["hello.txt"]["size"] == len(download.content)
    digest = base64.b64encode(hashlib.sha256(download.content).digest()).decode()
    assert download.headers["repr-digest"] == f"sha-256=:{digest}:"
    assert download.headers["x-checksum-adler32"] == results["hello.txt"]["adler32"]
    phases = [h["to"] for h in job["jobInfo"]["history"] if h["to"]]
    assert phases == ["PENDING", "QUEUED", "EXECUTING", "COMPLETED"]
    assert job["startTime"] and job["endTime"]


async def test_cta_mc_production_runs_one_task_per_job(api) -> None:
    http = api("e2e-bob")
    job = await run_to_end(
        http,
        {
            "workflow": "cta-mc-production",
            "number_of_jobs": "4",
            "showers_per_job": "50",
            "first_run_number": "100",
            "he_interaction_model": "EPOS",
            "le_interaction_model": "URQMD",
        },
    )

    assert job["phase"] == "COMPLETED", job.get("errorSummary")
    tasks = job["jobInfo"]["tasks"]
    assert [t["phase"] for t in tasks] == ["COMPLETED"] * 4
    outputs = sorted(r["id"] for r in job["results"] if r["id"].endswith(".simtel.json"))
    assert outputs == [f"task-{i:04d}/run{100 + i:06d}.simtel.json" for i in range(4)]
    body = (await http.get(next(r["href"] for r in job["results"] if r["id"] == outputs[2]))).json()
    assert body["run_number"] == 102
    assert body["he_interaction_model"] == "EPOS"


async def test_failing_command_ends_in_error_with_its_exit_code(api) -> None:
    http = api("e2e-carol")
    job = await run_to_end(http, {"workflow": "hello-world", "exit_code": "7"})

    assert job["phase"] == "ERROR"
    assert "exit code 7" in job["errorSummary"]["message"]
    error = await http.get(f"/api/jobs/{job['jobId']}/error")
    assert "exit code 7" in error.text
    # The logs of a failed job are kept for the user to read.
    assert {"stdout.txt", "stderr.txt"} <= {r["id"] for r in job["results"]}


async def test_execution_duration_is_a_hard_limit(api) -> None:
    http = api("e2e-dave")
    job = await run_to_end(
        http, {"workflow": "hello-world", "sleep_s": "60", "executionduration": "2"}
    )

    assert job["phase"] == "ERROR"
    assert "execution duration of 2 s" in job["errorSummary"]["message"]


async def test_abort_kills_a_running_job(api, stack) -> None:
    http = api("e2e-erin")
    created = await http.post(
        "/api/jobs", data={"workflow": "hello-world", "sleep_s": "120", "PHASE": "RUN"}
    )
    url = created.headers["location"]
    job = (await http.get(url)).json()
    for _ in range(30):
        if job["jobInfo"]["tasks"][0]["phase"] == "EXECUTING":
            break
        job = (await http.get(url, params={"WAIT": 5})).json()
    assert job["phase"] == "EXECUTING"

    aborted = await http.post(f"{url}/phase", data={"PHASE": "ABORT"})
    assert aborted.status_code == 303
    assert (await http.get(f"{url}/phase")).text == "ABORTED"
    status_file = stack.data_dir / "local-facility" / job["jobId"] / "task-0000" / "status.json"
    import asyncio
    import json

    for _ in range(100):
        if json.loads(status_file.read_text())["state"] == "cancelled":
            break
        await asyncio.sleep(0.1)
    assert json.loads(status_file.read_text())["state"] == "cancelled"
