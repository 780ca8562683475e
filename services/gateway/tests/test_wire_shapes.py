"""The JSON the API answers keeps its field names: a contract for existing clients.

The shapes are the sets of key paths of real answers (lists flattened to ``[]``), written
down before the answers were built from response models, so renaming a field on the wire
fails here.
"""

from __future__ import annotations

import asyncio
from typing import Any

FINAL = {"COMPLETED", "ERROR", "ABORTED"}


def shape(value: Any, prefix: str = "") -> set[str]:
    """Every key path of a JSON value; list items share one ``[]`` path."""
    paths: set[str] = set()
    if isinstance(value, dict):
        for key, item in value.items():
            path = f"{prefix}.{key}" if prefix else key
            paths.add(path)
            paths |= shape(item, path)
    elif isinstance(value, list):
        for item in value:
            paths |= shape(item, f"{prefix}[]")
    return paths


async def completed_job(http) -> str:
    response = await http.post(
        "/api/jobs", data={"workflow": "hello-world", "name": "shapes", "PHASE": "RUN"}
    )
    assert response.status_code == 303, response.text
    url = response.headers["location"]
    for _ in range(60):
        job = (await http.get(url, params={"WAIT": 5})).json()
        if job["phase"] in FINAL:
            break
        await asyncio.sleep(0.2)
    assert job["phase"] == "COMPLETED", job
    return url


JOB_KEYS = {
    "jobId", "runId", "ownerId", "phase", "quote", "creationTime", "startTime", "endTime",
    "executionDuration", "destruction", "parameters", "parameters.name", "parameters.repeat",
    "parameters.sleep_s", "parameters.exit_code", "results", "results[].id", "results[].href",
    "results[].size", "results[].mimeType", "results[].sha256", "results[].adler32",
    "results[].taskIndex", "results[].did", "errorSummary", "jobInfo", "jobInfo.workflow",
    "jobInfo.workflow.id", "jobInfo.workflow.version", "jobInfo.facility", "jobInfo.vo",
    "jobInfo.group", "jobInfo.inputs", "jobInfo.dataset", "jobInfo.schedule",
    "jobInfo.pendingReason", "jobInfo.image", "jobInfo.notificationUrl", "jobInfo.tasks",
    "jobInfo.tasks[].index",
    "jobInfo.tasks[].phase",
    "jobInfo.tasks[].facilityJobId", "jobInfo.tasks[].facilityStatus",
    "jobInfo.tasks[].exitCode", "jobInfo.tasks[].detail", "jobInfo.tasks[].startTime",
    "jobInfo.tasks[].endTime", "jobInfo.tasks[].inputs", "jobInfo.history",
    "jobInfo.history[].at", "jobInfo.history[].from", "jobInfo.history[].to",
    "jobInfo.history[].source", "jobInfo.history[].detail",
}  # fmt: skip
LIST_KEYS = {
    "jobs", "jobs[].jobId", "jobs[].href", "jobs[].phase", "jobs[].runId", "jobs[].ownerId",
    "jobs[].creationTime", "jobs[].workflow", "jobs[].facility", "total", "next",
}  # fmt: skip
RESULTS_KEYS = {
    "results", "results[].id", "results[].href", "results[].size", "results[].mimeType",
    "results[].sha256", "results[].adler32", "results[].taskIndex", "results[].did",
    "results[].signedUrl", "results[].signedUrlExpires", "dataset",
}  # fmt: skip
SCHEDULE_KEYS = {
    "scheduleId", "url", "name", "ownerId", "workflow", "workflow.id", "workflow.version",
    "facility", "vo", "group", "parameters", "parameters.name", "inputs", "executionDuration",
    "trigger", "trigger.kind", "trigger.expression", "trigger.timezone", "start", "end",
    "overlap", "misfire", "misfire.policy", "misfire.max", "misfire.grace_s", "paused",
    "pausedReason", "nextFireTime", "lastJobId", "consecutiveFailures", "creationTime", "runs",
}  # fmt: skip
SCHEDULE_LIST_KEYS = {
    "schedules", "schedules[].scheduleId", "schedules[].url", "schedules[].name",
    "schedules[].workflow", "schedules[].paused", "schedules[].nextFireTime", "total", "next",
}  # fmt: skip
FIRING_KEYS = {"nominalTime", "outcome", "reason", "jobId", "job"}
RUNS_KEYS = {
    "runs", "runs[].runId", "runs[].nominalTime", "runs[].firedAt", "runs[].trigger",
    "runs[].outcome", "runs[].reason", "runs[].jobId", "runs[].job", "next",
}  # fmt: skip
FACILITY_KEYS = {
    "id", "title", "description", "kind", "runtime_engine", "runtimes", "cores", "memory_gb",
    "gpu_count", "gpu_type", "max_walltime_s", "vos",
}  # fmt: skip


async def test_job_answers_keep_their_field_names(api) -> None:
    http = api("wire-shapes")
    url = await completed_job(http)
    job = (await http.get(url)).json()
    assert shape(job) == JOB_KEYS
    assert shape((await http.get("/api/jobs")).json()) == LIST_KEYS
    results = await http.get(f"{url}/results")
    assert shape(results.json()) == RESULTS_KEYS
    assert (await http.get(f"{url}/parameters")).json() == {
        "name": "shapes",
        "repeat": "1",
        "sleep_s": "0",
        "exit_code": "0",
    }
    uws_json = await http.get(url.replace("/api/jobs", "/uws/jobs"), params={"format": "json"})
    assert shape(uws_json.json()) == JOB_KEYS


async def test_catalogue_and_schedule_answers_keep_their_field_names(api) -> None:
    http = api("wire-shapes-catalogue")
    workflow = (await http.get("/api/workflows/hello-world")).json()
    assert set(workflow) == {
        "id", "version", "title", "description", "keywords", "source_ref", "standin",
        "standin_note", "requirements", "parameters", "rules", "execution", "container",
        "versions",
    }  # fmt: skip
    listing = (await http.get("/api/workflows")).json()
    assert set(listing) == {"workflows"}
    assert set(listing["workflows"][0]) == set(workflow)
    facilities = (await http.get("/api/facilities")).json()
    assert set(facilities) == {"facilities"}
    assert set(facilities["facilities"][0]) == FACILITY_KEYS
    assert set((await http.get("/api/facilities/local")).json()) == FACILITY_KEYS

    created = await http.post(
        "/api/schedules",
        json={
            "workflow": "hello-world",
            "parameters": {"name": "shapes"},
            "trigger": {"kind": "cron", "expression": "0 3 * * *"},
            "paused": True,
        },
    )
    assert created.status_code == 201, created.text
    schedule = created.json()
    assert shape(schedule) == SCHEDULE_KEYS
    previewed = (await http.get(schedule["url"], params={"preview": 2})).json()
    assert shape(previewed) == SCHEDULE_KEYS | {"preview"}
    assert shape((await http.get("/api/schedules")).json()) == SCHEDULE_LIST_KEYS
    firing = await http.post(f"{schedule['url']}/run")
    assert firing.status_code == 201, firing.text
    assert set(firing.json()) == FIRING_KEYS
    assert shape((await http.get(f"{schedule['url']}/runs")).json()) == RUNS_KEYS
    changed = await http.patch(schedule["url"], json={"paused": True})
    assert shape(changed.json()) == SCHEDULE_KEYS
