"""Operator choices on a stack of their own: jobs deleted at their destruction time, downloads
answered with a redirect to a signed URL, and no inputs without a data lake."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest
import pytest_asyncio

from gridgate.cli.stack import AUDIENCE, DevStack, dev_issuer
from gridgate.testing.services import free_port, rabbitmq_vhost

PROBLEM = "urn:gridgate:problem:"


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def deleting_stack(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[DevStack]:
    with rabbitmq_vhost() as url:
        stack = DevStack(
            data_dir=tmp_path_factory.mktemp("deleting"),
            port=free_port(),
            broker_url=url,
            gateway_options={
                "retention_policy": "delete",
                "retention_interval_s": 0.3,
                "download_redirect": True,
            },
        )
        await stack.start()
        yield stack
        await stack.stop()


def client(stack: DevStack, user: str | None) -> httpx.AsyncClient:
    headers = {}
    if user is not None:
        token = dev_issuer(stack.data_dir, stack.host, stack.port).mint(
            user, groups=["cta"], audience=AUDIENCE
        )
        headers["Authorization"] = f"Bearer {token}"
    return httpx.AsyncClient(base_url=stack.url, headers=headers, timeout=60)


async def finished(http: httpx.AsyncClient, url: str) -> dict[str, object]:
    job: dict[str, object] = (await http.get(url)).json()
    for _ in range(30):
        if job["phase"] in {"COMPLETED", "ERROR"}:
            break
        job = (await http.get(url, params={"WAIT": 5})).json()
    return job


async def test_redirect_to_a_signed_url_then_deletion_at_the_destruction_time(
    deleting_stack: DevStack,
) -> None:
    destruction = (datetime.now(UTC) + timedelta(seconds=10)).isoformat()
    async with client(deleting_stack, "ret-alice") as http, client(deleting_stack, None) as anon:
        created = await http.post(
            "/api/jobs",
            data={
                "workflow": "hello-world",
                "name": "r",
                "PHASE": "RUN",
                "destruction": destruction,
            },
        )
        job = await finished(http, created.headers["location"])
        assert job["phase"] == "COMPLETED"
        redirect = await http.get(f"{created.headers['location']}/results/hello.txt")
        assert redirect.status_code == 303
        location = redirect.headers["location"]
        assert "?signed=" in location
        download = await anon.get(location)
        assert download.status_code == 200 and download.text == "Hello, r!\n"
        results_dir = deleting_stack.data_dir / "results" / str(job["jobId"])
        assert results_dir.is_dir()

        for _ in range(60):
            gone = await http.get(created.headers["location"])
            if gone.status_code == 404:
                break
            # UWS WAIT answers a COMPLETED job at once, so wait here.
            await asyncio.sleep(0.5)
        assert gone.status_code == 404
        assert gone.json()["type"] == PROBLEM + "job-not-found"
        assert (await anon.get(location)).status_code == 404
        for _ in range(50):
            if not results_dir.exists():
                break
            await asyncio.sleep(0.1)
        assert not results_dir.exists()


async def test_inputs_need_a_data_lake(deleting_stack: DevStack) -> None:
    async with client(deleting_stack, "ret-bob") as http:
        refused = await http.post(
            "/api/jobs", data={"workflow": "input-manifest", "inputs": "cta:some.dataset"}
        )
        assert refused.status_code == 422
        assert refused.json()["type"] == PROBLEM + "invalid-inputs"
        lonely = await http.post(
            "/api/jobs", data={"workflow": "input-manifest", "files_per_job": "2"}
        )
        assert lonely.status_code == 422
        assert lonely.json()["errors"] == [{"field": "files_per_job", "message": "needs inputs"}]
