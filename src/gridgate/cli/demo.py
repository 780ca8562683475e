"""``gridgate demo``: submit hello-world through the HTTP API, wait, print what happened."""

from __future__ import annotations

from typing import Any

import httpx

FINAL = {"COMPLETED", "ERROR", "ABORTED", "ARCHIVED"}


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
        created = await http.post("/api/jobs", data=fields)
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
