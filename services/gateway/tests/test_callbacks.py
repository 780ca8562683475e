"""The job callback against a running stack: the job's token, idempotent updates, revocation,
and the real wrapper calling back over HTTP."""

from __future__ import annotations

import asyncio
import json
import sys
from datetime import UTC, datetime, timedelta
from importlib.resources import files
from pathlib import Path
from typing import Any

import httpx

from gridgate.contracts.callback import CALLBACK_PATH, callback_token
from gridgate.gateway.services.callbacks import MAX_UPDATES_PER_TASK

INVALID_TOKEN = "urn:gridgate:problem:callback-token-invalid"
INVALID_REQUEST = "urn:gridgate:problem:invalid-request"
PROBLEM = "application/problem+json"
FINAL = {"COMPLETED", "ERROR", "ABORTED"}
WRAPPER = Path(str(files("gridgate.dirac") / "payload" / "gridgate_task.py"))


async def run_job(http: httpx.AsyncClient, **fields: str) -> str:
    """A hello-world job sent to the local facility at once; its id."""
    created = await http.post(
        "/api/jobs", data={"workflow": "hello-world", "PHASE": "RUN", **fields}
    )
    assert created.status_code == 303, created.text
    return str(created.headers["location"]).rsplit("/", 1)[1]


async def wait_final(http: httpx.AsyncClient, job_id: str) -> dict[str, Any]:
    job: dict[str, Any] = (await http.get(f"/api/jobs/{job_id}")).json()
    for _ in range(60):
        if job["phase"] in FINAL:
            break
        params = {"WAIT": 10, "PHASE": job["phase"]}
        job = (await http.get(f"/api/jobs/{job_id}", params=params)).json()
    return job


async def callback_entries(http: httpx.AsyncClient, job_id: str) -> list[str]:
    job = (await http.get(f"/api/jobs/{job_id}")).json()
    return [h["detail"] for h in job["jobInfo"]["history"] if h["source"] == "callback"]


def update(event: str = "started", task_index: int = 0, **extra: Any) -> dict[str, Any]:
    at = extra.pop("at", datetime.now(UTC))
    return {"task_index": task_index, "event": event, "at": at.isoformat(), **extra}


async def call_back(
    stack: Any, job_id: str, body: dict[str, Any], token: str | None
) -> httpx.Response:
    """POST as a job's wrapper does: no IAM token, only the job's own (if any)."""
    headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
    async with httpx.AsyncClient(base_url=stack.url, timeout=30) as wrapper:
        return await wrapper.post(CALLBACK_PATH.format(job_id=job_id), json=body, headers=headers)


async def test_an_update_is_recorded_once(api, stack) -> None:
    http = api("cb-alice")
    job_id = await run_job(http, sleep_s="60")
    token = callback_token(stack.internal_token, job_id)
    started = update("started", at=datetime(2030, 1, 2, 3, 4, 5, 678901, tzinfo=UTC))

    accepted = await call_back(stack, job_id, started, token)
    assert accepted.status_code == 204, accepted.text
    assert accepted.content == b""
    repeated = await call_back(stack, job_id, started, token)
    assert repeated.status_code == 204
    # The same instant in another offset is the same update.
    shifted = dict(started, at="2030-01-02T04:04:05.678901+01:00")
    assert (await call_back(stack, job_id, shifted, token)).status_code == 204
    progress = update("progress", message="half way")
    assert (await call_back(stack, job_id, progress, token)).status_code == 204
    ended = update("ended", exit_code=3)
    assert (await call_back(stack, job_id, ended, token)).status_code == 204

    assert await callback_entries(http, job_id) == [
        "task 0 started",
        "task 0 progress: half way",
        "task 0 ended with exit code 3",
    ]
    job = (await http.get(f"/api/jobs/{job_id}")).json()
    entry = next(h for h in job["jobInfo"]["history"] if h["source"] == "callback")
    assert entry["at"].startswith("2030-01-02T03:04:05")
    # A callback never moves the phase: the job still runs until the monitor says otherwise.
    assert job["phase"] in {"QUEUED", "EXECUTING"}
    assert (
        await http.post(f"/api/jobs/{job_id}/phase", data={"PHASE": "ABORT"})
    ).status_code == 303


async def test_every_refusal_is_the_same_401_problem(api, stack) -> None:
    http = api("cb-bob")
    job_id = await run_job(http, sleep_s="60")
    other_id = await run_job(http, sleep_s="60")
    token = callback_token(stack.internal_token, job_id)
    body = update()

    refusals = [
        await call_back(stack, job_id, body, None),
        await call_back(stack, job_id, body, "not-the-token"),
        await call_back(stack, job_id, body, callback_token(stack.internal_token, other_id)),
        await call_back(stack, job_id, body, callback_token("another secret", job_id)),
        await call_back(stack, "no-such-job", body, token),
    ]
    for refused in refusals:
        assert refused.status_code == 401, refused.text
        assert refused.headers["content-type"] == PROBLEM
        assert refused.json()["type"] == INVALID_TOKEN
        assert token not in refused.text
    # A user's IAM token is not a job token either.
    as_user = await http.post(CALLBACK_PATH.format(job_id=job_id), json=body)
    assert as_user.status_code == 401
    assert as_user.json()["type"] == INVALID_TOKEN
    assert await callback_entries(http, job_id) == []
    for job in (job_id, other_id):
        await http.post(f"/api/jobs/{job}/phase", data={"PHASE": "ABORT"})


async def test_the_token_is_revoked_when_the_job_is_final(api, stack) -> None:
    http = api("cb-carol")
    job_id = await run_job(http)
    token = callback_token(stack.internal_token, job_id)
    assert (await call_back(stack, job_id, update(), token)).status_code == 204

    job = await wait_final(http, job_id)
    assert job["phase"] == "COMPLETED"
    refused = await call_back(stack, job_id, update("ended", exit_code=0), token)
    assert refused.status_code == 401
    assert refused.json()["type"] == INVALID_TOKEN
    assert await callback_entries(http, job_id) == ["task 0 started"]


async def test_bad_bodies_are_the_validation_problem(api, stack) -> None:
    http = api("cb-dave")
    job_id = await run_job(http, sleep_s="60")
    token = callback_token(stack.internal_token, job_id)
    naive = datetime.now(UTC).replace(tzinfo=None)
    bodies = [
        update(task_index=1),  # a job of one task
        update(task_index=-1),
        update("finished"),
        update(at=naive),
        update(message="x" * 1001),
        update(unknown="field"),
        {"task_index": 0, "event": "started"},
    ]
    for body in bodies:
        refused = await call_back(stack, job_id, body, token)
        assert refused.status_code == 422, (body, refused.text)
        assert refused.headers["content-type"] == PROBLEM
        assert refused.json()["type"] == INVALID_REQUEST
    async with httpx.AsyncClient(base_url=stack.url) as wrapper:
        garbage = await wrapper.post(
            CALLBACK_PATH.format(job_id=job_id),
            content=b"{not json",
            headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
        )
    assert garbage.status_code == 422
    assert await callback_entries(http, job_id) == []
    await http.post(f"/api/jobs/{job_id}/phase", data={"PHASE": "ABORT"})


async def run_wrapper(directory: Path, job_url: str, token: str, exit_code: int) -> tuple[int, str]:
    """Run the real wrapper on one task that exits with ``exit_code``; its code and output."""
    document = {
        "tasks": [{"argv": ["{python}", "-c", f"import sys; sys.exit({exit_code})"], "env": {}}],
        "callback": {"url": job_url + "/callback", "token": token},
    }
    (directory / "tasks.json").write_text(json.dumps(document))
    # Not subprocess.run: the gateway answering the wrapper runs on this event loop.
    wrapper = await asyncio.create_subprocess_exec(
        sys.executable,
        str(WRAPPER),
        "0",
        cwd=directory,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await asyncio.wait_for(wrapper.communicate(), 60)
    assert wrapper.returncode is not None
    return wrapper.returncode, output.decode()


async def test_the_wrapper_reports_start_and_end_to_the_gateway(api, stack, tmp_path: Path) -> None:
    http = api("cb-erin")
    job_id = await run_job(http, sleep_s="60")
    token = callback_token(stack.internal_token, job_id)

    code, output = await run_wrapper(tmp_path, f"{stack.url}/api/jobs/{job_id}", token, 3)

    assert code == 3
    assert "not delivered" not in output, output
    assert token not in output
    assert await callback_entries(http, job_id) == [
        "task 0 started",
        "task 0 ended with exit code 3",
    ]
    job = (await http.get(f"/api/jobs/{job_id}")).json()
    at = [h["at"] for h in job["jobInfo"]["history"] if h["source"] == "callback"]
    now = datetime.now(UTC)
    assert all(now - timedelta(minutes=1) < datetime.fromisoformat(a) <= now for a in at)
    await http.post(f"/api/jobs/{job_id}/phase", data={"PHASE": "ABORT"})


async def test_a_refused_callback_leaves_the_exit_code_alone(api, stack, tmp_path: Path) -> None:
    http = api("cb-frank")
    job_id = await run_job(http, sleep_s="60")
    wrong = callback_token("not the gateway's secret", job_id)

    code, output = await run_wrapper(tmp_path, f"{stack.url}/api/jobs/{job_id}", wrong, 4)

    assert code == 4
    assert "callback 'started' not delivered (HTTP 401)" in output
    assert "callback 'ended' not delivered (HTTP 401)" in output
    assert wrong not in output
    assert await callback_entries(http, job_id) == []
    await http.post(f"/api/jobs/{job_id}/phase", data={"PHASE": "ABORT"})


async def test_a_job_gets_its_token_when_it_is_queued(api, stack) -> None:
    http = api("cb-grace")
    created = await http.post("/api/jobs", data={"workflow": "hello-world", "sleep_s": "60"})
    job_id = str(created.headers["location"]).rsplit("/", 1)[1]
    token = callback_token(stack.internal_token, job_id)

    pending = await call_back(stack, job_id, update(), token)
    assert pending.status_code == 401
    assert pending.json()["type"] == INVALID_TOKEN
    assert (await http.post(f"/api/jobs/{job_id}/phase", data={"PHASE": "RUN"})).status_code == 303
    assert (await call_back(stack, job_id, update(), token)).status_code == 204
    assert await callback_entries(http, job_id) == ["task 0 started"]
    await http.post(f"/api/jobs/{job_id}/phase", data={"PHASE": "ABORT"})


async def test_a_flood_of_updates_is_refused(api, stack) -> None:
    http = api("cb-flood")
    job_id = await run_job(http, sleep_s="60")
    token = callback_token(stack.internal_token, job_id)
    start = datetime(2030, 1, 1, tzinfo=UTC)
    async with httpx.AsyncClient(base_url=stack.url, timeout=30) as wrapper:
        for second in range(MAX_UPDATES_PER_TASK):
            body = update("progress", at=start + timedelta(seconds=second))
            sent = await wrapper.post(
                CALLBACK_PATH.format(job_id=job_id),
                json=body,
                headers={"Authorization": f"Bearer {token}"},
            )
            assert sent.status_code == 204
        refused = await wrapper.post(
            CALLBACK_PATH.format(job_id=job_id),
            json=update("ended", exit_code=0),
            headers={"Authorization": f"Bearer {token}"},
        )
    assert refused.status_code == 429
    assert refused.json()["type"] == "urn:gridgate:problem:too-many-callbacks"
    assert len(await callback_entries(http, job_id)) == MAX_UPDATES_PER_TASK
    await http.post(f"/api/jobs/{job_id}/phase", data={"PHASE": "ABORT"})
