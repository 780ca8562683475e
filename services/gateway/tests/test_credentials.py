"""Jobs for facilities that run with the owner's proxy: checked at submission, watched after."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path

import aio_pika
import httpx
import pytest_asyncio
import yaml

from gridgate.cli.stack import AUDIENCE, DevStack, dev_issuer
from gridgate.contracts import EVENTS_EXCHANGE
from gridgate.contracts.internal import INTERNAL_TOKEN_HEADER, JOB_PROXY_PATH
from gridgate.testing.services import free_port, rabbitmq_vhost

FACILITIES = {
    "facilities": [
        {
            "id": "grid-site",
            "title": "A DIRAC site",
            "description": "jobs run with the owner's proxy",
            "kind": "dirac",
            "runtime_engine": "singularity",
            "cores": 8,
            "memory_gb": 16,
            "max_walltime_s": 172800,
            "vos": ["*"],
        }
    ]
}


@pytest_asyncio.fixture(loop_scope="session")
async def grid_stack(tmp_path: Path) -> AsyncIterator[DevStack]:
    catalogue = tmp_path / "facilities.yaml"
    catalogue.write_text(yaml.safe_dump(FACILITIES))
    with rabbitmq_vhost() as url:
        stack = DevStack(
            data_dir=tmp_path,
            port=free_port(),
            broker_url=url,
            gateway_options={
                "facilities_file": catalogue,
                "credential_warning_s": 86400,
                "credential_watch_interval_s": 0.3,
            },
        )
        await stack.start()
        yield stack
        await stack.stop()


def client(stack: DevStack, user: str, groups: list[str]) -> httpx.AsyncClient:
    token = dev_issuer(stack.data_dir, stack.host, stack.port).mint(
        user, groups=groups, audience=AUDIENCE
    )
    return httpx.AsyncClient(
        base_url=stack.url, headers={"Authorization": f"Bearer {token}"}, timeout=30
    )


async def test_a_job_gets_its_group_and_its_owner_a_warning(grid_stack: DevStack) -> None:
    connection = await aio_pika.connect(grid_stack.broker_url)
    channel = await connection.channel()
    queue = await channel.declare_queue(exclusive=True)
    await queue.bind(EVENTS_EXCHANGE, routing_key="job.cta.credential_expiring")
    async with client(grid_stack, "grid-alice", ["cta"]) as http:
        created = await http.post(
            "/api/jobs", data={"workflow": "hello-world", "facility": "grid-site"}
        )
        assert created.status_code == 303, created.text
        job = (await http.get(created.headers["location"])).json()
        assert job["jobInfo"]["group"] == "cta_user"
        message = None
        for _ in range(50):
            message = await queue.get(fail=False, no_ack=True)
            if message is not None:
                break
            await asyncio.sleep(0.1)
        assert message is not None, "no credential_expiring event"
        event = json.loads(message.body)
        assert event["type"] == "org.gridgate.job.credential_expiring.v1"
        assert event["data"]["job_id"] == job["jobId"]
        history = (await http.get(created.headers["location"])).json()["jobInfo"]["history"]
        assert any("credential runs out" in (h["detail"] or "") for h in history)
    await connection.close()


async def test_a_credential_too_short_for_the_job_is_refused(grid_stack: DevStack) -> None:
    async with client(grid_stack, "grid-bob", ["cta"]) as http:
        refused = await http.post(
            "/api/jobs",
            data={"workflow": "hello-world", "facility": "grid-site", "executionduration": "86400"},
        )
        assert refused.status_code == 422
        assert refused.headers["content-type"] == "application/problem+json"
        problem = refused.json()
        assert problem["type"] == "urn:gridgate:problem:credential-lifetime-too-short"
        assert problem["needed_s"] == 86400 + 3600
        assert (await http.get("/api/jobs")).json()["total"] == 0


async def test_a_group_the_user_does_not_hold_is_refused(grid_stack: DevStack) -> None:
    async with client(grid_stack, "grid-carol", ["cta"]) as http:
        refused = await http.post(
            "/api/jobs",
            data={"workflow": "hello-world", "facility": "grid-site", "group": "km3net_user"},
        )
        assert refused.status_code == 403
        assert refused.json()["type"] == "urn:gridgate:problem:group-not-held"
    async with client(grid_stack, "grid-dave", ["lofar"]) as http:
        refused = await http.post(
            "/api/jobs", data={"workflow": "hello-world", "facility": "grid-site"}
        )
        assert refused.status_code == 403


async def job_proxy(stack: DevStack, job_id: str, token: str | None) -> httpx.Response:
    headers = {INTERNAL_TOKEN_HEADER: token} if token is not None else {}
    async with httpx.AsyncClient(base_url=stack.url, timeout=30) as http:
        return await http.post("/auth" + JOB_PROXY_PATH, json={"job_id": job_id}, headers=headers)


async def test_workers_get_an_owners_proxy_while_the_job_needs_one(grid_stack: DevStack) -> None:
    async with client(grid_stack, "grid-erin", ["cta"]) as http:
        created = await http.post(
            "/api/jobs", data={"workflow": "hello-world", "facility": "grid-site"}
        )
        url = created.headers["location"]
        job_id = url.rsplit("/", 1)[1]
        issued = await job_proxy(grid_stack, job_id, grid_stack.internal_token)
        assert issued.status_code == 200
        assert issued.headers["x-proxy-identity"].endswith("CN=grid-erin")
        assert (await job_proxy(grid_stack, job_id, None)).status_code == 401
        assert (await job_proxy(grid_stack, job_id, "guess")).status_code == 401
        # Run it: nothing serves grid-site here, so it fails at once; its facility work may
        # still need the owner (kill, collect), and so may a deleted job's, for a grace period.
        await http.post(f"{url}/phase", data={"PHASE": "RUN"})
        failed = (await http.get(url, params={"WAIT": 10, "PHASE": "QUEUED"})).json()
        assert failed["phase"] == "ERROR"
        assert (await job_proxy(grid_stack, job_id, grid_stack.internal_token)).status_code == 200
        assert (await http.delete(url)).status_code in (204, 303)
        assert (await http.get(url)).status_code == 404
        after = await job_proxy(grid_stack, job_id, grid_stack.internal_token)
        assert after.status_code == 200
    unknown = await job_proxy(grid_stack, "0123456789abcdef", grid_stack.internal_token)
    assert unknown.status_code == 404


async def test_no_proxy_once_the_grace_period_is_over(tmp_path: Path) -> None:
    catalogue = tmp_path / "facilities.yaml"
    catalogue.write_text(yaml.safe_dump(FACILITIES))
    with rabbitmq_vhost() as broker:
        stack = DevStack(
            data_dir=tmp_path,
            port=free_port(),
            broker_url=broker,
            gateway_options={"facilities_file": catalogue, "facility_grace_s": 0},
        )
        await stack.start()
        try:
            async with client(stack, "grid-frank", ["cta"]) as http:
                created = await http.post(
                    "/api/jobs",
                    data={"workflow": "hello-world", "facility": "grid-site", "PHASE": "RUN"},
                )
                url = created.headers["location"]
                job = (await http.get(url, params={"WAIT": 10, "PHASE": "QUEUED"})).json()
                assert job["phase"] == "ERROR"
                refused = await job_proxy(stack, job["jobId"], stack.internal_token)
                assert refused.status_code == 404
                assert refused.json()["type"] == "urn:gridgate:problem:job-not-found"
        finally:
            await stack.stop()
