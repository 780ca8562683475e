"""Jobs on DiracX (testbeds/diracx), through the gateway, submitter, monitor and results.

The auth service runs diracx-exchange: it holds the testbed's legacy-exchange key and mints,
for a live job, a token of the DiracX user the owner's IAM sub maps to. The testbed's jobs
are moved by DiracX's dummy executor (nothing runs, no output sandbox).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
import pytest_asyncio

from gridgate.broker import Publisher
from gridgate.cli.stack import AUDIENCE, DevStack, dev_issuer
from gridgate.contracts import SubmitJob
from gridgate.contracts.internal import DIRACX_TOKEN_PATH, INTERNAL_TOKEN_HEADER
from gridgate.contracts.tasks import ResourceLimits
from gridgate.dirac.jdl import job_group
from gridgate.diracx.access import DiracXAccess
from gridgate.diracx.facility import DiracXFacility
from gridgate.diracx.testbed import FACILITY, DiracXTestbed
from gridgate.diracx.tokens import ExchangeTokens, LegacyExchange
from gridgate.localfacility import LocalFacility
from gridgate.submitter.service import SubmitterService
from gridgate.testing.services import free_port, rabbitmq_vhost
from gridgate.workflows import PYTHON_ON_NODE, WorkflowCatalogue, render_tasks, validate_parameters

pytestmark = [pytest.mark.diracx, pytest.mark.asyncio(loop_scope="session")]
FINAL = {"COMPLETED", "ERROR", "ABORTED"}


@pytest_asyncio.fixture(loop_scope="session", scope="module")
async def diracx_stack(
    diracx_testbed: DiracXTestbed, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[DevStack]:
    with rabbitmq_vhost() as vhost_url:
        stack = DevStack(
            data_dir=tmp_path_factory.mktemp("diracx-stack"),
            port=free_port(),
            broker_url=vhost_url,
            diracx_facilities={FACILITY: diracx_testbed.connection},
            auth_options=diracx_testbed.auth_options(),
        )
        await stack.start()
        try:
            yield stack
        finally:
            await stack.stop()


@pytest_asyncio.fixture(loop_scope="session", scope="module")
async def users(
    diracx_stack: DevStack, diracx_testbed: DiracXTestbed
) -> AsyncIterator[dict[str, httpx.AsyncClient]]:
    """The testbed's alice (cta) and bob (km3net), as the IAM subjects DiracX knows."""
    issuer = dev_issuer(diracx_stack.data_dir, diracx_stack.host, diracx_stack.port)
    clients = {}
    for name, vo in (("alice", "cta"), ("bob", "km3net"), ("carol", "cta")):
        sub = diracx_testbed.subs.get(name, "no-diracx-account")
        token = issuer.mint(sub, groups=[vo], audience=AUDIENCE)
        clients[name] = httpx.AsyncClient(
            base_url=diracx_stack.url, headers={"Authorization": f"Bearer {token}"}, timeout=90
        )
    yield clients
    for client in clients.values():
        await client.aclose()


@pytest_asyncio.fixture(loop_scope="session", scope="module")
async def robot_view(diracx_testbed: DiracXTestbed) -> AsyncIterator[DiracXFacility]:
    """The tests' own look at DiracX, as gridgate's robot."""
    async with httpx.AsyncClient(base_url=diracx_testbed.connection.url) as http:
        tokens = ExchangeTokens(
            LegacyExchange(http, diracx_testbed.legacy_key()), robot=diracx_testbed.robot
        )
        facility = DiracXFacility("view", diracx_testbed.connection, tokens)
        yield facility
        await facility.close()


async def submit(http: httpx.AsyncClient, fields: dict[str, Any]) -> str:
    created = await http.post("/api/jobs", data={"PHASE": "RUN", "facility": FACILITY, **fields})
    assert created.status_code == 303, created.text
    return str(created.headers["location"])


async def wait_until(
    http: httpx.AsyncClient, url: str, done: Callable[[dict[str, Any]], bool], within_s: float
) -> dict[str, Any]:
    deadline = time.monotonic() + within_s
    job = (await http.get(url)).json()
    while not done(job) and time.monotonic() < deadline:
        job = (await http.get(url, params={"WAIT": 5, "PHASE": job["phase"]})).json()
    return job


async def owners(robot_view: DiracXFacility, ids: list[str]) -> set[tuple[str, str]]:
    rows = await robot_view._search(
        await robot_view.tokens.robot(),
        [{"parameter": "JobID", "operator": "in", "values": [int(i) for i in ids]}],
        ["JobID", "Owner", "VO"],
    )
    return {(row["Owner"], row["VO"]) for row in rows}


async def test_hello_world_completes_as_its_owner(users, robot_view) -> None:
    alice = users["alice"]
    url = await submit(alice, {"workflow": "hello-world"})
    job = await wait_until(alice, url, lambda j: j["phase"] in FINAL, 180)

    assert job["phase"] == "COMPLETED", job
    [task] = job["jobInfo"]["tasks"]
    assert await owners(robot_view, [task["facilityJobId"]]) == {("alice", "cta")}
    monitor = [h["detail"] for h in job["jobInfo"]["history"] if h["source"] == "monitor"]
    assert any(d and d.startswith("Done") for d in monitor), monitor


async def test_two_users_jobs_land_with_their_own_owners(users, robot_view) -> None:
    urls = {
        name: await submit(users[name], {"workflow": "hello-world"}) for name in ("alice", "bob")
    }
    ids = {}
    for name, url in urls.items():
        job = await wait_until(users[name], url, lambda j: j["phase"] != "PENDING" and all(
            t.get("facilityJobId") for t in j["jobInfo"]["tasks"]), 120)  # fmt: skip
        ids[name] = [t["facilityJobId"] for t in job["jobInfo"]["tasks"]]

    assert await owners(robot_view, ids["alice"]) == {("alice", "cta")}
    assert await owners(robot_view, ids["bob"]) == {("bob", "km3net")}


async def test_abort_kills_the_job_in_diracx(users, robot_view) -> None:
    alice = users["alice"]
    url = await submit(alice, {"workflow": "hello-world"})
    job = await wait_until(
        alice, url, lambda j: any(t.get("facilityJobId") for t in j["jobInfo"]["tasks"]), 60
    )
    diracx_id = job["jobInfo"]["tasks"][0]["facilityJobId"]

    asked = datetime.now(UTC)
    aborted = await alice.post(f"{url}/phase", data={"PHASE": "ABORT"})

    assert aborted.status_code == 303
    assert (await alice.get(f"{url}/phase")).text == "ABORTED"
    # DiracX's dummy executor writes Matched, Running and Done with future time stamps when
    # it picks a job up, so a kill may land between them and the job still ends Done: what
    # counts is that DiracX recorded our kill, as the owner.
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        [row] = await robot_view._search(
            await robot_view.tokens.robot(),
            [{"parameter": "JobID", "operator": "eq", "value": int(diracx_id)}],
            ["JobID", "LoggingInfo"],
        )
        kills = [r for r in row["LoggingInfo"] if r["Status"] == "Killed"]
        if kills:
            break
        await asyncio.sleep(1)
    picked = [
        datetime.fromisoformat(r["StatusTime"].replace("Z", "+00:00"))
        for r in row["LoggingInfo"]
        if r["Status"] == "Waiting"
    ]
    if not kills:
        # DiracX refuses Killed after Done: only if the executor picked the job up first
        assert picked and picked[0] < asked, row["LoggingInfo"]
    else:
        assert [r["Source"] for r in kills] == ["gridgate"], row["LoggingInfo"]


async def test_a_user_without_a_diracx_account_gets_a_clear_problem(users) -> None:
    carol = users["carol"]
    refused = await carol.post(
        "/api/jobs", data={"PHASE": "RUN", "facility": FACILITY, "workflow": "hello-world"}
    )

    # refused at submission (the credential check asks auth for a DiracX identity), not ERROR
    assert refused.status_code == 403, refused.text
    assert refused.headers["content-type"].startswith("application/problem+json")
    assert refused.json()["type"] == "urn:gridgate:problem:diracx-user-unknown"
    assert "no DiracX account" in refused.json()["detail"]


async def test_diracx_tokens_go_only_to_our_services_for_live_jobs(
    diracx_stack: DevStack, users
) -> None:
    alice = users["alice"]
    url = await submit(alice, {"workflow": "hello-world"})
    job_id = url.rsplit("/", 1)[1]
    async with httpx.AsyncClient(base_url=f"{diracx_stack.url}/auth") as http:
        nobody = await http.post(DIRACX_TOKEN_PATH, json={"job_id": job_id})
        assert nobody.status_code == 401
        headers = {INTERNAL_TOKEN_HEADER: diracx_stack.internal_token}
        unknown = await http.post(DIRACX_TOKEN_PATH, json={"job_id": "feedbeef"}, headers=headers)
        assert unknown.status_code == 404
        both = await http.post(
            DIRACX_TOKEN_PATH, json={"job_id": job_id, "robot": True}, headers=headers
        )
        assert both.status_code == 422
        robot = await http.post(DIRACX_TOKEN_PATH, json={"robot": True}, headers=headers)
        assert robot.status_code == 200
        assert robot.headers["cache-control"] == "no-store"
        assert robot.json()["expires_at"] > time.time()


async def test_a_redelivered_submit_finds_the_diracx_job_instead_of_submitting_again(
    users, diracx_stack: DevStack, robot_view
) -> None:
    # A job the gateway knows (PENDING: auth mints its owner's token), submitted by a
    # submitter of our own twice over: as after a crash between DiracX's answer and our ack.
    alice = users["alice"]
    created = await alice.post("/api/jobs", data={"workflow": "hello-world", "facility": FACILITY})
    assert created.status_code == 303, created.text
    job = (await alice.get(created.headers["location"])).json()
    workflow = WorkflowCatalogue.shipped().get("hello-world")
    command = SubmitJob(
        job_id=job["jobId"],
        owner=job["ownerId"],
        vo="cta",
        group=job["jobInfo"]["group"],
        facility=FACILITY,
        workflow_id=workflow.id,
        workflow_version=workflow.version,
        tasks=render_tasks(
            workflow, validate_parameters(workflow, {"name": "twice"}), python=PYTHON_ON_NODE
        ),
        limits=ResourceLimits(execution_duration_s=600),
    )
    assert diracx_stack.connection is not None
    publisher = await Publisher.open(diracx_stack.connection)
    access = DiracXAccess.open(
        diracx_stack.diracx_facilities,
        auth_url=f"{diracx_stack.url}/auth",
        internal_token=diracx_stack.internal_token,
    )
    try:
        facility = access.facilities[FACILITY]
        first = await facility.submit(command, None)
        again = await facility.submit(command, None)
        service = SubmitterService(
            publisher, LocalFacility(diracx_stack.data_dir / "lf"), access.facilities
        )
        await service.submit(command)  # the whole redelivered handling, report included
    finally:
        await access.aclose()
        await publisher.close()

    assert first == again and len(first) == 1
    rows = await robot_view._search(
        await robot_view.tokens.robot(),
        [{"parameter": "JobGroup", "operator": "eq", "value": job_group(job["jobId"])}],
        ["JobID"],
    )
    assert [str(r["JobID"]) for r in rows] == first
