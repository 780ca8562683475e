"""Jobs on real DIRAC (testbeds/dirac), through the gateway, submitter, monitor and results.

The auth service runs its production provider, dirac-proxymanager: the testbed's alice is an
IAM subject mapped to a DIRAC user, and every DIRAC call on her jobs carries her proxy.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import re
import subprocess
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio

from gridgate.broker import Publisher
from gridgate.cli.stack import AUDIENCE, DevStack, dev_issuer
from gridgate.contracts import SubmitJob
from gridgate.contracts.callback import CALLBACK_PATH, callback_token
from gridgate.contracts.tasks import ResourceLimits, TaskSpec
from gridgate.dirac.access import DiracAccess
from gridgate.dirac.bridge import DiracBridge
from gridgate.dirac.facility import CallbackTarget, DiracFacility
from gridgate.dirac.jdl import JobDescription, Slot, build_jdl, job_group
from gridgate.dirac.sandbox import INLINE_DOCUMENT_LIMIT, PAYLOAD_ZIP, SlotTask, sandbox_files
from gridgate.dirac.testbed import FACILITY, DiracTestbed
from gridgate.localfacility import LocalFacility
from gridgate.submitter.service import SubmitterService
from gridgate.testing.services import free_port, rabbitmq_vhost
from gridgate.workflows import (
    PYTHON_ON_NODE,
    WorkflowCatalogue,
    render_tasks,
    validate_parameters,
)

pytestmark = pytest.mark.dirac
FINAL = {"COMPLETED", "ERROR", "ABORTED"}


@pytest_asyncio.fixture(loop_scope="session", scope="module")
async def dirac_stack(
    dirac_testbed: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[DevStack]:
    testbed = DiracTestbed.from_variables(dirac_testbed)
    with rabbitmq_vhost() as vhost_url:
        stack = DevStack(
            data_dir=tmp_path_factory.mktemp("dirac-stack"),
            port=free_port(),
            broker_url=vhost_url,
            dirac_facilities={FACILITY: testbed.connection},
            auth_options=testbed.auth_options(),
        )
        await stack.start()
        try:
            yield stack
        finally:
            await stack.stop()


@pytest_asyncio.fixture(loop_scope="session", scope="module")
async def alice(
    dirac_stack: DevStack, dirac_testbed: dict[str, str]
) -> AsyncIterator[httpx.AsyncClient]:
    """The testbed's alice, as the IAM subject her DIRAC registry entry names."""
    issuer = dev_issuer(dirac_stack.data_dir, dirac_stack.host, dirac_stack.port)
    token = issuer.mint(
        dirac_testbed["GRIDGATE_DIRAC_ALICE_SUB"], groups=["cta"], audience=AUDIENCE
    )
    async with httpx.AsyncClient(
        base_url=dirac_stack.url, headers={"Authorization": f"Bearer {token}"}, timeout=90.0
    ) as http:
        yield http


async def submit(http: httpx.AsyncClient, fields: dict[str, Any]) -> str:
    created = await http.post("/api/jobs", data={"PHASE": "RUN", "facility": FACILITY, **fields})
    assert created.status_code == 303, created.text
    return str(created.headers["location"])


async def wait_until(
    http: httpx.AsyncClient, url: str, done: Callable[[dict[str, Any]], bool], timeout_s: float
) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    job = (await http.get(url)).json()
    while not done(job) and time.monotonic() < deadline:
        job = (await http.get(url, params={"WAIT": 5, "PHASE": job["phase"]})).json()
    return job


async def run_to_end(http: httpx.AsyncClient, fields: dict[str, Any], timeout_s: float = 240):
    url = await submit(http, fields)
    return url, await wait_until(http, url, lambda j: j["phase"] in FINAL, timeout_s)


async def dirac_states(dirac_robot: DiracBridge, ids: list[str]) -> dict[str, str]:
    states = await dirac_robot.call("status", {"ids": ids})
    return {i: states[i]["Status"] for i in ids if i in states}


async def test_hello_world_runs_on_dirac_with_hostile_values_kept_literal(
    alice: httpx.AsyncClient, dirac_stack: DevStack, dirac_robot: DiracBridge
) -> None:
    # Quotes, a JDL statement and shell syntax: one argv element, printed as it is.
    hostile = 'x"; Executable = "/bin/sh"; Arguments = "-c reboot"; $(id) `id` {python}'
    url, job = await run_to_end(alice, {"workflow": "hello-world", "name": hostile})

    assert job["phase"] == "COMPLETED", job
    tasks = job["jobInfo"]["tasks"]
    assert len(tasks) == 1 and tasks[0]["facilityStatus"] == "Done"
    results = {r["id"]: r for r in job["results"]}
    # A task that wrote nothing to stderr has an empty stderr.txt, as a local job has.
    assert {"hello.txt", "stdout.txt", "stderr.txt"} <= set(results)
    assert results["stderr.txt"]["size"] == 0
    hello = await alice.get(results["hello.txt"]["href"])
    assert hello.text == f"Hello, {hostile}!\n"
    # The final stdout comes from the output sandbox, through the logs endpoint too.
    stdout = await alice.get(f"{url}/stdout")
    assert stdout.status_code == 200
    assert f"Hello, {hostile}!" in stdout.text
    # One DIRAC job, found by the gridgate id; its JDL runs our wrapper, nothing else.
    dirac_id = tasks[0]["facilityJobId"]
    found = await dirac_robot.call("find", {"conditions": {"JobGroup": job_group(job["jobId"])}})
    assert [str(i) for i in found] == [dirac_id]
    # The monitor recorded DIRAC's own words as the job moved on.
    observed = [h["detail"] or "" for h in job["jobInfo"]["history"] if h["source"] == "monitor"]
    assert any(d.startswith("Done") for d in observed), observed
    # The job's wrapper called back as it started and ended; polling decided the phase.
    callbacks = [h for h in job["jobInfo"]["history"] if h["source"] == "callback"]
    assert any("started" in (h["detail"] or "") for h in callbacks)
    assert any("ended" in (h["detail"] or "") for h in callbacks)
    # Once the job is final its callback token is revoked.
    token = callback_token(dirac_stack.internal_token, job["jobId"])
    refused = await alice.post(
        CALLBACK_PATH.format(job_id=job["jobId"]),
        json={"task_index": 0, "event": "progress", "at": "2026-01-01T00:00:00Z"},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert refused.status_code == 401
    assert refused.json()["type"].endswith("callback-token-invalid")

    # DELETE removes it in DIRAC too.
    assert (await alice.delete(url)).status_code in (204, 303)
    deadline = time.monotonic() + 60
    states = await dirac_states(dirac_robot, [dirac_id])
    while states.get(dirac_id) != "Deleted" and time.monotonic() < deadline:
        await asyncio.sleep(2)
        states = await dirac_states(dirac_robot, [dirac_id])
    assert states.get(dirac_id) == "Deleted"


async def test_a_failing_command_is_an_error_with_its_exit_code(
    alice: httpx.AsyncClient,
) -> None:
    _, job = await run_to_end(alice, {"workflow": "hello-world", "exit_code": "3"})

    assert job["phase"] == "ERROR", job
    assert "exit code 3" in job["errorSummary"]["message"]
    task = job["jobInfo"]["tasks"][0]
    assert task["facilityStatus"] == "Failed"
    assert task["exitCode"] == 3
    results = {r["id"]: r for r in job["results"]}
    assert {"stdout.txt", "stderr.txt"} <= set(results)
    # What the task wrote to stderr comes back from DIRAC's std.err.
    stderr = await alice.get(results["stderr.txt"]["href"])
    assert "exiting with code 3 as asked" in stderr.text


async def test_abort_kills_the_job_in_dirac(
    alice: httpx.AsyncClient, dirac_robot: DiracBridge
) -> None:
    url = await submit(alice, {"workflow": "hello-world", "sleep_s": "300"})
    job = await wait_until(
        alice,
        url,
        lambda j: j["phase"] == "EXECUTING" or j["phase"] in FINAL,
        180,
    )
    assert job["phase"] == "EXECUTING", job
    dirac_id = job["jobInfo"]["tasks"][0]["facilityJobId"]
    # While it runs, its stdout is DIRAC's peek (possibly empty until the first heartbeat).
    live = await alice.get(f"{url}/stdout")
    assert live.status_code == 200
    assert live.headers["x-gridgate-log-source"] == "dirac peek"

    aborted = await alice.post(f"{url}/phase", data={"PHASE": "ABORT"})
    assert aborted.status_code == 303
    assert (await alice.get(f"{url}/phase")).text == "ABORTED"
    # DIRAC marks a running job Killed ("Marked for termination"); once the job's wrapper
    # hears of it, the job ends Failed with "Received Kill signal".
    deadline = time.monotonic() + 90
    killed = {"Killed", "Received Kill signal", "Marked for termination"}
    state: dict[str, str] = {}
    while time.monotonic() < deadline:
        state = (await dirac_robot.call("status", {"ids": [dirac_id]}))[dirac_id]
        if state["MinorStatus"] == "Received Kill signal":
            break
        await asyncio.sleep(2)
    assert {state["Status"], state["MinorStatus"]} & killed, state
    assert state["Status"] in {"Killed", "Failed"}


# About 110 s (the testbed's JobAgents run two jobs at a time); make test keeps the parametric
# submission's proof in test_each_job_of_a_combined_submission_gets_only_its_own_arguments_and_token
# and libs/dirac's, make test-long runs this one.
@pytest.mark.long
async def test_a_sweep_of_19_jobs_is_one_parametric_submission(
    alice: httpx.AsyncClient, dirac_robot: DiracBridge
) -> None:
    _, job = await run_to_end(
        alice,
        {
            "workflow": "cta-mc-production",
            "number_of_jobs": "19",
            "showers_per_job": "10",
            "first_run_number": "1000",
            "he_interaction_model": "EPOS",
            "le_interaction_model": "URQMD",
        },
        timeout_s=900,
    )

    assert job["phase"] == "COMPLETED", [t["facilityStatus"] for t in job["jobInfo"]["tasks"]]
    tasks = job["jobInfo"]["tasks"]
    assert len(tasks) == 19 and all(t["phase"] == "COMPLETED" for t in tasks)
    ids = [t["facilityJobId"] for t in tasks]
    # One submission: 19 DIRAC jobs under one JobGroup, with consecutive ids in task order.
    found = await dirac_robot.call("find", {"conditions": {"JobGroup": job_group(job["jobId"])}})
    assert sorted(int(i) for i in found) == [int(i) for i in ids]
    assert [int(i) for i in ids] == list(range(int(ids[0]), int(ids[0]) + 19))
    submitted = [h for h in job["jobInfo"]["history"] if h["source"] == "submitter"]
    assert len(submitted) == 1
    names = {r["id"] for r in job["results"]}
    assert {f"task-{i:04d}/stdout.txt" for i in range(19)} <= names


async def test_a_redelivered_submit_finds_the_dirac_job_instead_of_submitting_again(
    alice: httpx.AsyncClient, dirac_stack: DevStack, dirac_robot: DiracBridge
) -> None:
    # A job the gateway knows (PENDING: its owner's proxy may be asked for), submitted by a
    # submitter of our own twice over: as after a crash between DIRAC's answer and our ack.
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
    assert dirac_stack.connection is not None
    publisher = await Publisher.open(dirac_stack.connection)
    access = DiracAccess.open(
        dirac_stack.dirac_facilities,
        auth_url=f"{dirac_stack.url}/auth",
        internal_token=dirac_stack.internal_token,
    )
    try:
        facility = access.facilities[FACILITY]
        first = await facility.submit(command, None)
        again = await facility.submit(command, None)
        service = SubmitterService(
            publisher, LocalFacility(dirac_stack.data_dir / "lf"), access.facilities
        )
        await service.submit(command)  # the whole redelivered handling, report included
    finally:
        await access.aclose()
        await publisher.close()

    assert first == again and len(first) == 1
    found = await dirac_robot.call("find", {"conditions": {"JobGroup": job_group(job["jobId"])}})
    assert [str(i) for i in found] == first


async def test_concurrent_users_never_cross_credentials(
    dirac_stack: DevStack, dirac_testbed: dict[str, str], dirac_robot: DiracBridge
) -> None:
    issuer = dev_issuer(dirac_stack.data_dir, dirac_stack.host, dirac_stack.port)
    users = {
        "alice": (dirac_testbed["GRIDGATE_DIRAC_ALICE_SUB"], "cta", "cta_user"),
        "bob": (dirac_testbed["GRIDGATE_DIRAC_BOB_SUB"], "km3net", "km3net_user"),
    }
    clients = {
        name: httpx.AsyncClient(
            base_url=dirac_stack.url,
            headers={"Authorization": "Bearer " + issuer.mint(sub, groups=[vo], audience=AUDIENCE)},
            timeout=90.0,
        )
        for name, (sub, vo, _) in users.items()
    }
    try:
        # Interleaved: both users' commands reach the submitter at the same moment.
        urls = await asyncio.gather(
            *(
                submit(clients[name], {"workflow": "hello-world", "name": f"{name}-{i}"})
                for i in range(4)
                for name in users
            )
        )
        owners = [name for _ in range(4) for name in users]
        jobs = [
            await wait_until(
                clients[owner], url, lambda j: j["jobInfo"]["tasks"][0]["facilityJobId"], 120
            )
            for owner, url in zip(owners, urls, strict=True)
        ]
        ids = [j["jobInfo"]["tasks"][0]["facilityJobId"] for j in jobs]
        attributes = await dirac_robot.call(
            "attributes", {"ids": ids, "names": ["Owner", "OwnerGroup"]}
        )
        for owner, dirac_id in zip(owners, ids, strict=True):
            assert attributes[dirac_id] == {"Owner": owner, "OwnerGroup": users[owner][2]}
        for owner, url in zip(owners, urls, strict=True):
            await clients[owner].post(f"{url}/phase", data={"PHASE": "ABORT"})
    finally:
        for http in clients.values():
            await http.aclose()


def dirac_tool(testbed: dict[str, str], *args: str) -> str:
    """What one of DIRAC's own commands prints, run as the jobs' owner (alice's proxy)."""
    env = {**os.environ, **testbed, "X509_USER_PROXY": testbed["GRIDGATE_DIRAC_ALICE_PROXY"]}
    done = subprocess.run(
        [f"{testbed['GRIDGATE_DIRAC_BIN']}/{args[0]}", *args[1:]],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def dirac_input_sandbox(testbed: dict[str, str], dirac_id: str, directory: Path) -> Path:
    """What DIRAC gives one job as its input sandbox, fetched with DIRAC's own
    ``dirac-wms-job-get-input`` as the job's owner."""
    deadline = time.monotonic() + 120
    attempt = 0
    while True:
        attempt += 1
        target = directory / f"{dirac_id}-{attempt}"
        target.mkdir(parents=True)
        dirac_tool(testbed, "dirac-wms-job-get-input", "-D", str(target), dirac_id)
        unpacked = target / f"InputSandbox{dirac_id}"
        # DIRAC assigns the sandboxes to the job in its optimiser, moments after submission.
        if (unpacked / "gridgate_task.py").is_file():
            return unpacked
        assert time.monotonic() < deadline
        time.sleep(3)


def task_document_in_jdl(testbed: dict[str, str], dirac_id: str) -> dict[str, Any]:
    """The task document in the JDL DIRAC keeps for one job (``dirac-wms-job-get-jdl``), the
    one its JobWrapper puts into the job's environment."""
    jdl = dirac_tool(testbed, "dirac-wms-job-get-jdl", dirac_id)
    (encoded,) = re.findall(r"GRIDGATE_TASK_DOCUMENT=([A-Za-z0-9_-]+)", jdl)
    document: dict[str, Any] = json.loads(
        base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4))
    )
    return document


async def test_each_job_of_a_combined_submission_gets_only_its_own_arguments_and_token(
    alice: httpx.AsyncClient,
    dirac_stack: DevStack,
    dirac_testbed: dict[str, str],
    tmp_path: Path,
) -> None:
    # Two gridgate jobs of alice (PENDING), their tasks sent as ONE parametric submission.
    names = ["first-arg-b1e5", "second-arg-7c0d"]
    urls = []
    for name in names:
        created = await alice.post(
            "/api/jobs",
            data={"workflow": "hello-world", "facility": FACILITY, "name": name, "sleep_s": "20"},
        )
        assert created.status_code == 303, created.text
        urls.append(str(created.headers["location"]))
    jobs = [(await alice.get(url)).json() for url in urls]
    ids = [j["jobId"] for j in jobs]
    workflow = WorkflowCatalogue.shipped().get("hello-world")
    commands = [
        SubmitJob(
            job_id=job["jobId"],
            owner=job["ownerId"],
            vo="cta",
            group=job["jobInfo"]["group"],
            facility=FACILITY,
            workflow_id=workflow.id,
            workflow_version=workflow.version,
            tasks=render_tasks(
                workflow,
                validate_parameters(workflow, {"name": name, "sleep_s": "20"}),
                python=PYTHON_ON_NODE,
            ),
            limits=ResourceLimits(execution_duration_s=600),
            outputs=list(workflow.execution.outputs),
        )
        for job, name in zip(jobs, names, strict=True)
    ]
    tokens = {i: callback_token(dirac_stack.internal_token, i) for i in ids}
    callbacks = {
        i: CallbackTarget(dirac_stack.url + CALLBACK_PATH.format(job_id=i), tokens[i]) for i in ids
    }
    access = DiracAccess.open(
        dirac_stack.dirac_facilities,
        auth_url=f"{dirac_stack.url}/auth",
        internal_token=dirac_stack.internal_token,
    )
    try:
        facility = access.facilities[FACILITY]
        submitted = await facility.submit_many(commands, callbacks)
    finally:
        await access.aclose()
    dirac_ids = [submitted[i][0] for i in ids]

    # The gateway takes these jobs' tokens once they run; each opens its own job only.
    for url in urls:
        assert (await alice.post(f"{url}/phase", data={"PHASE": "RUN"})).status_code == 303
    first, second = ids
    update = {"task_index": 0, "event": "progress", "at": "2026-01-01T00:00:00Z"}
    refused = await alice.post(
        CALLBACK_PATH.format(job_id=second),
        json=update,
        headers={"Authorization": f"Bearer {tokens[first]}"},
    )
    assert refused.status_code == 401
    assert refused.json()["type"].endswith("callback-token-invalid")
    accepted = await alice.post(
        CALLBACK_PATH.format(job_id=first),
        json=update,
        headers={"Authorization": f"Bearer {tokens[first]}"},
    )
    assert accepted.status_code < 300, accepted.text

    # Each DIRAC job's JDL, as DIRAC keeps it for the job: its own task and token only. Its
    # input sandbox, the same for both, holds neither job's.
    documents = [await asyncio.to_thread(task_document_in_jdl, dirac_testbed, i) for i in dirac_ids]
    for own, dirac_id, name, document in zip(ids, dirac_ids, names, documents, strict=True):
        (other,) = set(ids) - {own}
        (other_name,) = set(names) - {name}
        task = document["task"]
        assert any(name in arg for arg in task["argv"]), task["argv"]
        assert not any(other_name in arg for arg in task["argv"]), task["argv"]
        assert task["callback"]["token"] == tokens[own]
        assert tokens[other] not in json.dumps(document)
        sandbox = await asyncio.to_thread(dirac_input_sandbox, dirac_testbed, dirac_id, tmp_path)
        assert not (sandbox / "tasks.json").exists()
        for path in sandbox.rglob("*"):
            if path.is_file():
                content = path.read_bytes()
                assert not any(t.encode() in content for t in tokens.values()), path
                assert not any(n.encode() in content for n in names), path

    # They run to the end from those sandboxes; each wrapper called back for its own job.
    for url, name, dirac_id in zip(urls, names, dirac_ids, strict=True):
        job = await wait_until(alice, url, lambda j: j["phase"] in FINAL, 300)
        assert job["phase"] == "COMPLETED", job
        assert job["jobInfo"]["tasks"][0]["facilityJobId"] == dirac_id
        hello = await alice.get(next(r for r in job["results"] if r["id"] == "hello.txt")["href"])
        assert hello.text == f"Hello, {name}!\n"
        details = [
            h["detail"] or "" for h in job["jobInfo"]["history"] if h["source"] == "callback"
        ]
        assert any("started" in d for d in details), details


@pytest_asyncio.fixture(loop_scope="session")
async def alice_facility(
    dirac_testbed: dict[str, str],
) -> AsyncIterator[tuple[DiracFacility, str]]:
    """The testbed as a DIRAC facility of its own bridges, and alice's proxy to act with."""
    proxy = await asyncio.to_thread(Path(dirac_testbed["GRIDGATE_DIRAC_ALICE_PROXY"]).read_text)
    facility = DiracFacility("alice", DiracTestbed.from_variables(dirac_testbed).connection)
    try:
        yield facility, proxy
    finally:
        await facility.close()


async def test_a_task_document_too_long_for_the_jdl_goes_in_a_sandbox_of_its_own(
    alice_facility: tuple[DiracFacility, str],
) -> None:
    facility, proxy = alice_facility

    def slot(value: str) -> SlotTask:
        return SlotTask(
            TaskSpec(index=0, argv=["echo"], env={"VALUE": value}),
            {"url": "https://gateway.example/api/jobs/j/callback", "token": "t" * 43},
        )

    # Short documents go in the JDL: nothing is uploaded.
    documents, sandboxes = await facility._own_tasks([slot("a"), slot("b")], proxy)
    assert [len(d) < INLINE_DOCUMENT_LIMIT for d in documents] == [True, True]
    assert sandboxes == []
    # One too long for a job's environment: every slot gets a sandbox of its own, in DIRAC.
    long = "x" * INLINE_DOCUMENT_LIMIT
    documents, sandboxes = await facility._own_tasks([slot("a"), slot(long)], proxy)
    assert documents == []
    assert len(sandboxes) == 2 and len(set(sandboxes)) == 2
    assert all(s.startswith("SB:") for s in sandboxes), sandboxes


async def test_submissions_sending_the_same_shared_files_share_one_stored_sandbox(
    alice_facility: tuple[DiracFacility, str], dirac_testbed: dict[str, str]
) -> None:
    facility, proxy = alice_facility
    text, binary = sandbox_files([])  # the wrapper and the payload: what every job receives
    description = JobDescription(
        slots=[Slot("sharedsandbox", 0), Slot("sharedsandbox", 1)],
        cpu_time_s=60,
        input_sandbox=[PAYLOAD_ZIP],
        sites=["LCG.Nowhere.xx"],  # never runs
        slot_documents=["e30", "e30"],
    )
    submitted: list[str] = []
    try:
        for _ in range(2):
            ids = await facility.bridge.call(
                "submit",
                {"jdl": build_jdl(description), "files": text, "binary_files": binary},
                proxy=proxy,
            )
            submitted += [str(i) for i in ids]
        # The second submission's input sandbox is the first's, as DIRAC stored it once.
        jdls = [
            await asyncio.to_thread(dirac_tool, dirac_testbed, "dirac-wms-job-get-jdl", i)
            for i in (submitted[0], submitted[-1])
        ]
        stored = [set(re.findall(r"SB:[^\s\"',]+", jdl)) for jdl in jdls]
        assert stored[0] and stored[0] == stored[1], stored
    finally:
        if submitted:
            await facility.bridge.call("kill", {"ids": submitted}, proxy=proxy)
            await asyncio.sleep(1.5)
            await facility.bridge.call("delete", {"ids": submitted}, proxy=proxy)
