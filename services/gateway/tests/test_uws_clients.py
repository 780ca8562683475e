"""Third-party UWS clients, unchanged, with only a bearer token, against a running stack:
pyvo (``AsyncTAPJob``'s UWS job handling) and the AIP uws-client 1.1.11 (Python 2.7)."""

from __future__ import annotations

import asyncio
import json
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import requests
from pyvo.dal import DALQueryError
from pyvo.dal.tap import AsyncTAPJob

ROOT = Path(__file__).resolve().parents[3]
UWS_CLIENT = ROOT / "testbeds" / "uwsclient"


def pyvo_lifecycle(base_url: str, token: str) -> dict[str, object]:
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {token}"
    # Created as any UWS client does: a POST to the job list, following the 303.
    created = session.post(f"{base_url}/uws/jobs", data={"workflow": "hello-world", "name": "pyvo"})
    created.raise_for_status()
    job = AsyncTAPJob(created.url, session=session)
    seen: dict[str, object] = {"created": job.phase, "owner": job.owner}
    job.execution_duration = 600
    job.destruction = datetime.now(UTC) + timedelta(days=2)
    seen["execution_duration"] = round(float(job.execution_duration.to_value("s")))
    job.run()
    job.wait(timeout=120)
    job.raise_if_error()
    seen["phase"] = job.phase
    seen["results"] = sorted(r.id_ for r in job.results)
    hello = next(uri for uri in job.result_uris if uri.endswith("/hello.txt"))
    seen["hello"] = session.get(hello).text
    failing = session.post(
        f"{base_url}/uws/jobs", data={"workflow": "hello-world", "exit_code": "3", "PHASE": "RUN"}
    )
    failed = AsyncTAPJob(failing.url, session=session)
    failed.wait(timeout=120)
    try:
        failed.raise_if_error()
    except DALQueryError as exc:
        seen["error"] = str(exc)
    failed.delete()
    job.delete()
    seen["after_delete"] = session.get(created.url).status_code
    return seen


async def test_pyvo_runs_a_job_through_its_whole_life(stack, token_for) -> None:
    seen = await asyncio.to_thread(pyvo_lifecycle, stack.url, token_for("pyvo-user"))
    assert seen["created"] == "PENDING" and seen["owner"] == "pyvo-user"
    assert seen["execution_duration"] == 600
    assert seen["phase"] == "COMPLETED"
    assert "hello.txt" in seen["results"]  # type: ignore[operator]
    assert seen["hello"] == "Hello, pyvo!\n"
    assert "exit" in str(seen["error"]).lower()
    assert seen["after_delete"] == 404


@pytest.fixture(scope="session")
def uws_client_dir() -> Path:
    """The AIP uws-client installed from PyPI for Python 2.7 (testbeds/uwsclient/up.sh)."""
    done = subprocess.run(
        [str(UWS_CLIENT / "up.sh")], capture_output=True, text=True, timeout=600, check=False
    )
    assert done.returncode == 0, done.stderr
    return Path(done.stdout.strip())


async def test_the_aip_uws_client_runs_a_job_through_its_whole_life(
    stack, token_for, uws_client_dir: Path
) -> None:
    python = "/root/.pyenv/versions/2.7.18/bin/python"
    process = await asyncio.create_subprocess_exec(
        python,
        str(UWS_CLIENT / "lifecycle.py"),
        f"{stack.url}/uws/jobs",
        token_for("py27-user"),
        env={"PYTHONPATH": str(uws_client_dir)},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), 300)
    assert process.returncode == 0, err.decode()
    seen = json.loads(out.decode().strip().splitlines()[-1])
    assert seen["created_phase"] == "PENDING"
    assert seen["parameters"]["repeat"] == "2" and seen["parameters"]["name"] == "py27"
    assert seen["phase"] == "COMPLETED"
    assert "hello.txt" in seen["results"]
    assert all(href.startswith(f"{stack.url}/uws/jobs/") for href in seen["result_hrefs"])
    assert seen["job_id"] in seen["listed"]
    assert seen["aborted_phase"] == "ABORTED"
    assert seen["after_delete"] == []
