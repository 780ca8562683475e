"""``gridgate demo``: submit hello-world through the HTTP API, wait, print what happened."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

FINAL = {"COMPLETED", "ERROR", "ABORTED", "ARCHIVED"}


async def submit_with_retries(
    http: httpx.AsyncClient, fields: dict[str, Any], headers: dict[str, str], tries: int = 3
) -> httpx.Response:
    """POST a job, again on a transport error or a 503: the idempotency key in ``headers``
    makes a repeat answer with the job the first attempt may have created."""
    for attempt in range(1, tries):
        try:
            answer = await http.post("/api/jobs", data=fields, headers=headers)
        except httpx.TransportError:
            await asyncio.sleep(attempt)
            continue
        if answer.status_code != 503:
            return answer
        await asyncio.sleep(attempt)
    return await http.post("/api/jobs", data=fields, headers=headers)


async def run_demo(
    base_url: str,
    token: str,
    *,
    workflow: str = "hello-world",
    parameters: dict[str, Any] | None = None,
    facility: str = "local",
    timeout_s: float = 120.0,
) -> int:
    """Run one job end to end and print its phase history and results; return an exit code."""
    headers = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(base_url=base_url, headers=headers, timeout=90.0) as http:
        fields = {
            "workflow": workflow,
            "facility": facility,
            "PHASE": "RUN",
            **(parameters if parameters is not None else {"name": "gridgate"}),
        }
        # One key for this submission: a retry after a lost answer finds the same job.
        key = {"Idempotency-Key": uuid.uuid4().hex}
        created = await submit_with_retries(http, fields, key)
        if created.status_code != 303:
            print(f"submission refused ({created.status_code}): {created.text}")
            return 1
        job_url = created.headers["location"]
        print(f"submitted {workflow} as {job_url}")
        job = (await http.get(job_url)).json()
        waited = 0.0
        while job["phase"] not in FINAL and waited < timeout_s:
            print(f"  phase {job['phase']}")
            job = (await http.get(job_url, params={"WAIT": 30, "PHASE": job["phase"]})).json()
            waited += 1.0
        print(f"\njob {job['jobId']} finished: {job['phase']}")
        if job.get("errorSummary"):
            print(f"error: {job['errorSummary']['message']}")
        print("\nphase history:")
        for entry in job["jobInfo"]["history"]:
            change = f"{entry['from'] or '-'} -> {entry['to']}" if entry["to"] else "          "
            print(f"  {entry['at']}  {change:24} [{entry['source']}] {entry['detail'] or ''}")
        image = job["jobInfo"].get("image")
        if image:
            verb = "built for this job" if image["built"] else "selected (it existed)"
            print(f"\ncontainer image, {verb}:\n  {image['reference']}")
            args = " ".join(f"{k}={v}" for k, v in sorted(image["buildArgs"].items()))
            print(f"  build arguments: {args}\n  base image: {image['baseDigest']}")
        print("\nresults:")
        for result in job["results"]:
            print(
                f"  {result['id']}  {result['size']} bytes  {result['mimeType']}  "
                f"sha256:{result['sha256'][:16]}...  adler32:{result['adler32']}"
            )
        for result in job["results"]:
            if result["mimeType"].startswith("text/") and result["size"] < 4096:
                body = (await http.get(result["href"])).text
                print(f"\n--- {result['id']} ---\n{body.rstrip()}")
            elif image and result["mimeType"] == "application/json":
                document = (await http.get(result["href"])).json()
                if isinstance(document, dict) and "image" in document:
                    print(f"\n--- {result['id']} names its image ---\n  {document['image']}")
        return 0 if job["phase"] == "COMPLETED" else 1


async def run_schedule_demo(
    base_url: str, token: str, *, every_s: int = 60, timeout_s: float = 300.0
) -> int:
    """Make an interval schedule of hello-world, watch it fire twice, show both jobs, delete
    it; return an exit code (0: two jobs, both COMPLETED)."""
    headers = {"Authorization": f"Bearer {token}"}
    unit = {"minutes": every_s // 60} if every_s % 60 == 0 else {"seconds": every_s}
    body = {
        "name": f"demo: hello-world every {every_s} s",
        "workflow": "hello-world",
        "parameters": {"name": "the run of {nominal_time}"},
        "trigger": {"kind": "interval", **unit},
        # From a whole second shortly after now: round nominal times, the first soon.
        "start": (datetime.now(UTC) + timedelta(seconds=2)).replace(microsecond=0).isoformat(),
        "overlap": "allow",
    }
    async with httpx.AsyncClient(base_url=base_url, headers=headers, timeout=90.0) as http:
        created = await http.post("/api/schedules", json=body)
        if created.status_code != 201:
            print(f"schedule refused ({created.status_code}): {created.text}")
            return 1
        schedule = created.json()
        url = schedule["url"]
        try:
            preview = (await http.get(url, params={"preview": 2})).json()["preview"]
            print(f"created schedule {schedule['scheduleId']}: {body['name']}")
            print(f"  next fire times: {', '.join(preview)}")
            runs = await _first_runs(http, url, 2, timeout_s)
            print(f"\nfired {len(runs)} time(s):")
            phases = []
            for run in runs:
                job = await _finished(http, run["job"], timeout_s) if run["job"] else None
                phases.append(job["phase"] if job else run["outcome"])
                print(
                    f"  nominal {run['nominalTime']}  fired {run['firedAt']}  "
                    f"job {run['jobId'] or '-'}  {phases[-1]}"
                )
                if job is not None:
                    print(f"    parameters: {job['parameters']}")
        finally:
            await http.delete(url)
        gone = (await http.get(url)).status_code == 404
        print(f"\ndeleted schedule {schedule['scheduleId']} ({'gone' if gone else 'still there!'})")
        return 0 if gone and phases == ["COMPLETED", "COMPLETED"] else 1


async def _first_runs(
    http: httpx.AsyncClient, url: str, count: int, timeout_s: float
) -> list[dict[str, Any]]:
    """The schedule's first ``count`` runs, oldest first, once it has had them."""
    waited = 0.0
    runs: list[dict[str, Any]] = []
    while waited < timeout_s:
        runs = (await http.get(f"{url}/runs")).json()["runs"]
        if len(runs) >= count:
            break
        await asyncio.sleep(0.5)
        waited += 0.5
    return list(reversed(runs))[:count]


async def _finished(http: httpx.AsyncClient, job_url: str, timeout_s: float) -> dict[str, Any]:
    job: dict[str, Any] = (await http.get(job_url)).json()
    started = asyncio.get_running_loop().time()
    while job["phase"] not in FINAL and asyncio.get_running_loop().time() - started < timeout_s:
        job = (await http.get(job_url, params={"WAIT": 30, "PHASE": job["phase"]})).json()
    return job
