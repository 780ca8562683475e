"""A job's stdout and stderr: live from the facility while it runs, stored once it ends."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import httpx

from gridgate.contracts.phases import Phase
from gridgate.gateway.handlers.representations import pending_reason
from gridgate.gateway.models.job import HistoryRecord, Job, TaskRecord

PROBLEM = "application/problem+json"


async def create(http: httpx.AsyncClient, **fields: str) -> str:
    created = await http.post("/api/jobs", data={"workflow": "hello-world", **fields})
    assert created.status_code == 303, created.text
    return str(created.headers["location"])


async def wait_phase(http: httpx.AsyncClient, url: str, phases: set[str]) -> dict:
    job = (await http.get(url)).json()
    for _ in range(30):
        if job["phase"] in phases:
            break
        job = (await http.get(url, params={"WAIT": 5, "PHASE": job["phase"]})).json()
    return job


async def test_a_running_task_shows_its_output_so_far(api) -> None:
    http = api("logs-alice")
    url = await create(http, name="live", sleep_s="60", PHASE="RUN")
    await wait_phase(http, url, {"EXECUTING"})
    live = await http.get(f"{url}/stdout")
    for _ in range(20):  # the runner has started; the greeting is printed before the sleep
        if "Hello, live!" in live.text:
            break
        await asyncio.sleep(0.25)
        live = await http.get(f"{url}/stdout")
    assert live.status_code == 200
    assert "Hello, live!" in live.text
    assert live.headers["x-gridgate-log-source"] == "local"
    assert live.headers["cache-control"] == "no-store"
    stderr = await http.get(f"{url}/stderr")
    assert stderr.status_code == 200
    assert (await http.post(f"{url}/phase", data={"PHASE": "ABORT"})).status_code == 303


async def test_an_ended_job_serves_its_stored_logs(api) -> None:
    http = api("logs-bob")
    url = await create(http, name="stored", exit_code="2", PHASE="RUN")
    job = await wait_phase(http, url, {"ERROR"})
    assert job["phase"] == "ERROR"
    stdout = await http.get(f"{url}/stdout")
    assert stdout.status_code == 200
    assert stdout.text == "Hello, stored!\ntask 0: wrote hello.txt\n"
    assert "x-gridgate-log-source" not in stdout.headers
    assert "repr-digest" in stdout.headers
    stderr = await http.get(f"{url}/stderr")
    assert "exiting with code 2" in stderr.text
    beyond = await http.get(f"{url}/stdout", params={"task": 1})
    assert beyond.status_code == 422
    assert beyond.headers["content-type"] == PROBLEM


async def test_a_pending_job_has_no_log_yet_and_others_see_nothing(api) -> None:
    http = api("logs-carol")
    url = await create(http, name="later")
    missing = await http.get(f"{url}/stdout")
    assert missing.status_code == 404
    assert missing.json()["type"] == "urn:gridgate:problem:log-not-available"
    assert "PENDING" in missing.json()["detail"]
    other = await api("logs-mallory").get(f"{url}/stdout")
    assert other.status_code == 404
    assert other.json()["type"] == "urn:gridgate:problem:job-not-found"


def _queued_job(queued_for: timedelta, now: datetime) -> Job:
    job = Job(
        id="j1",
        owner="u",
        vo="cta",
        group_name="cta_user",
        run_id=None,
        workflow_id="hello-world",
        workflow_version="1.0.0",
        facility="dirac-testbed",
        phase=Phase.QUEUED,
        parameters={},
        creation_time=now - queued_for,
        start_time=None,
        end_time=None,
        execution_duration=600,
        destruction=None,
        quote=None,
        error_type=None,
        error_message=None,
        task_count=3,
        finished_outcome=None,
        finished_detail=None,
        updated_at=now,
    )
    job.history = [HistoryRecord(now - queued_for, Phase.PENDING, Phase.QUEUED, "user", None)]
    job.tasks = [
        TaskRecord(0, Phase.QUEUED, "1", "Waiting", None, "Pilot Agent Submission"),
        TaskRecord(1, Phase.QUEUED, "2", "Waiting", None, "Pilot Agent Submission"),
        TaskRecord(2, Phase.EXECUTING, "3", "Running", None, "Application"),
    ]
    return job


def test_a_job_waiting_unusually_long_says_why() -> None:
    now = datetime.now(UTC)
    assert pending_reason(_queued_job(timedelta(minutes=1), now), now) is None
    reason = pending_reason(_queued_job(timedelta(minutes=12), now), now)
    assert reason == (
        "Queued at dirac-testbed for 12 min: 2 task(s) Waiting (Pilot Agent Submission)."
    )
