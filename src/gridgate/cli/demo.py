"""``gridgate demo``: submit hello-world through the HTTP API, wait, print what happened."""

from __future__ import annotations

import asyncio
import uuid
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
            **(parameters or {"name": "gridgate"}),
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
        return 0 if job["phase"] == "COMPLETED" else 1
