"""Schemathesis fuzzes every operation of the OpenAPI document against the running stack:
whatever it sends, the gateway answers without a server error (no 5xx)."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio
from cryptography.fernet import Fernet
from pydantic import SecretStr

from gridgate.cli.stack import AUDIENCE, DevStack, dev_issuer
from gridgate.diracx.testbed import FACILITY, DiracXTestbed
from gridgate.testing.services import free_port, rabbitmq_vhost

MAX_EXAMPLES = 20
"""Cases per operation and phase: enough to find the shapes that break a handler, while the
whole run stays near a minute per database."""
MAX_TIME_S = 50

EXCLUDED = "|".join(
    [
        # The job callback takes the job's own token, which no user holds: every fuzzed call
        # is refused at the token check before its body is read (test_callbacks covers it).
        r"/callback$",
        # Liveness and readiness read nothing a client sends: probes, not an API.
        r"^/(healthz|readyz)$",
        # Event streams stay open until the client leaves, so every fuzzed call would wait
        # out the request timeout; their refusals (401, 404, 410, 422) are tested in
        # tests/test_event_streams.py.
        r"/events$",
    ]
)
"""The routes under /internal and /metrics are not in the document: workers and Prometheus
call them with their own credentials."""
PHASES = "examples,fuzzing"
"""Schemathesis's coverage phase crashes inside Hypothesis on this Python (3.11.7: "AST
constructor recursion depth mismatch" while it describes a filter), so it is left out."""


async def seed(http) -> tuple[list[str], list[str]]:
    """Jobs in several phases and schedules of the fuzzing user, so that cases about one job
    or schedule reach the services' logic instead of a 404."""
    jobs = []
    for fields in (
        {"name": "pending"},
        {"name": "pending two", "RUNID": "fuzz"},
        {"name": "done", "PHASE": "RUN"},
        {"name": "failed", "exit_code": "3", "PHASE": "RUN"},
        {"name": "aborted"},
    ):
        response = await http.post("/api/jobs", data={"workflow": "hello-world", **fields})
        assert response.status_code == 303, response.text
        jobs.append(response.headers["location"].rsplit("/", 1)[1])
    aborted = await http.post(f"/api/jobs/{jobs[4]}/phase", data={"PHASE": "ABORT"})
    assert aborted.status_code == 303, aborted.text
    for job_id in jobs[2:4]:
        for _ in range(30):
            job = (await http.get(f"/api/jobs/{job_id}", params={"WAIT": 5})).json()
            if job["phase"] in {"COMPLETED", "ERROR"}:
                break
    schedules = []
    for trigger in (
        {"kind": "cron", "expression": "0 3 * * *", "timezone": "Europe/Paris"},
        {"kind": "interval", "hours": 6},
    ):
        response = await http.post(
            "/api/schedules",
            json={"workflow": "hello-world", "trigger": trigger, "paused": True},
        )
        assert response.status_code == 201, response.text
        schedules.append(response.json()["scheduleId"])
    return jobs, schedules


def config(jobs: list[str], schedules: list[str]) -> str:
    """schemathesis.toml: real identifiers most of the time, random ones otherwise."""
    dictionaries = {
        "jobs": jobs,
        "schedules": schedules,
        "workflows": ["hello-world", "cta-mc-production"],
        "facilities": ["local"],
        "results": ["task-0000/stdout.txt", "task-0000/hello.txt"],
        # A WAIT on a pending job blocks up to the cap (60 s) by design, longer than a fuzzed
        # request may take; the long-poll has its own tests (test_uws_api).
        "waits": [0, 1, 2],
    }
    lines = []
    for name, values in dictionaries.items():
        lines += [f"[dictionaries.{name}]", f"values = {json.dumps(values)}", ""]
    lines.append("[parameters]")
    for parameter, dictionary in (
        ("job_id", "jobs"),
        ("schedule_id", "schedules"),
        ("workflow_id", "workflows"),
        ("facility_id", "facilities"),
        ("name", "results"),
    ):
        lines.append(f'"path.{parameter}" = {{ dictionary = "{dictionary}", probability = 0.8 }}')
    lines.append('"query.WAIT" = { dictionary = "waits", probability = 1.0 }')
    return "\n".join(lines) + "\n"


async def run_schemathesis(url: str, token: str, tmp_path: Path, toml: str, only: list[str]) -> str:
    """Schemathesis over ``url``'s document as the holder of ``token``; its output."""
    (tmp_path / "schemathesis.toml").write_text(toml)
    command = [
        str(Path(sys.executable).with_name("schemathesis")),
        "--config-file",
        str(tmp_path / "schemathesis.toml"),
        "--no-color",
        "run",
        f"{url}/openapi.json",
        "--header",
        f"Authorization: Bearer {token}",
        "--checks",
        "not_a_server_error",
        "--phases",
        PHASES,
        "--max-examples",
        str(MAX_EXAMPLES),
        "--max-time",
        str(MAX_TIME_S),
        # Above the WAIT cap (60 s): a fuzzed WAIT the dictionary did not replace blocks on a
        # pending job until the cap, then is answered; that is not an error.
        "--request-timeout",
        "75",
        # Two at a time: the stack is the session's, and other tests' timings share it.
        "--workers",
        "2",
        "--seed",
        "20260601",
        "--generation-database",
        "none",
        "--suppress-health-check",
        "all",
        "--exclude-path-regex",
        EXCLUDED,
        *only,
    ]
    # A subprocess: the stack serves from this test's event loop, which must keep running.
    # In tmp_path: schemathesis keeps a cache of crashes in its working directory.
    process = await asyncio.create_subprocess_exec(
        *command, cwd=tmp_path, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
    )
    output, _ = await asyncio.wait_for(process.communicate(), timeout=MAX_TIME_S * 3)
    text = output.decode(errors="replace")
    assert process.returncode == 0, text[-20_000:]
    return text


async def test_no_request_of_any_operation_is_answered_with_a_server_error(
    stack, api, token_for, tmp_path: Path
) -> None:
    jobs, schedules = await seed(api("fuzzer"))
    text = await run_schemathesis(
        stack.url, token_for("fuzzer"), tmp_path, config(jobs, schedules), []
    )
    # Every operation but the excluded ones (callback, probes, the two event streams;
    # with the notifier's subscriptions and job-hook secret).
    assert "Selected: 62/67" in text, text[-5_000:]
    print(text[-3_000:])  # the run's summary, for -s and the CI log


@pytest_asyncio.fixture(loop_scope="session")
async def linking_stack(diracx_testbed: DiracXTestbed, tmp_path: Path) -> AsyncIterator[DevStack]:
    """A stack with /api/diracx-links switched on, its auth service in diracx-user-link mode
    against the DiracX testbed (SQLite link store, a fresh sealing key)."""
    options = diracx_testbed.auth_options() | {
        "diracx_mode": "user-link",
        "diracx_users": {},
        "database_url": SecretStr(f"sqlite+aiosqlite:///{tmp_path / 'auth-links.db'}"),
        "diracx_link_keys": SecretStr(Fernet.generate_key().decode()),
    }
    (tmp_path / "stack").mkdir()
    with rabbitmq_vhost() as vhost_url:
        linking = DevStack(
            data_dir=tmp_path / "stack",
            port=free_port(),
            broker_url=vhost_url,
            diracx_facilities={FACILITY: diracx_testbed.connection},
            auth_options=options,
            gateway_options={"diracx_links": True},
        )
        await linking.start()
        try:
            yield linking
        finally:
            await linking.stop()


@pytest.mark.diracx
@pytest.mark.asyncio(loop_scope="session")
async def test_the_diracx_link_routes_switched_on_never_answer_a_server_error(
    linking_stack: DevStack, tmp_path: Path
) -> None:
    """The link routes exist only with GRIDGATE_GATEWAY_DIRACX_LINKS on, so the run above
    never reaches them. Here they relay to a real auth service and DiracX: a VO the user is
    not in, a login never started or refused by DiracX are documented problems, never a
    5xx. The user's own VOs are likely values, so cases reach DiracX's device flow."""
    token = dev_issuer(linking_stack.data_dir, linking_stack.host, linking_stack.port).mint(
        "fuzzer", groups=["cta", "km3net"], audience=AUDIENCE
    )
    toml = "\n".join(
        [
            "[dictionaries.vos]",
            'values = ["cta", "km3net"]',
            "[dictionaries.groups]",
            'values = ["cta_user", "km3net_user"]',
            "[parameters]",
            '"path.vo" = { dictionary = "vos", probability = 0.8 }',
            '"path.group" = { dictionary = "groups", probability = 0.8 }',
            "",
        ]
    )
    text = await run_schemathesis(
        linking_stack.url, token, tmp_path, toml, ["--include-path-regex", "^/api/diracx-links"]
    )
    # start, complete, list and unlink (of 71 operations with the routes on: the 67 above
    # and these 4); about 2,400 cases in the 50 s
    assert "Selected: 4/71" in text, text[-5_000:]
    print(text[-3_000:])


async def test_schedules_at_the_edges_of_the_calendar_are_refused_not_failed(api) -> None:
    """Found by probing the document's bounds: each of these was a 500 (an OverflowError
    while the first fire time was computed)."""
    http = api("fuzz-edges")
    cron = {"kind": "cron", "expression": "0 3 * * *"}
    for extra in (
        {"trigger": {"kind": "interval", "hours": 10**30}},
        {"trigger": {"kind": "interval", "minutes": 2**62}},
        {"trigger": cron, "start": "9999-12-31T23:59:59Z"},
        {"trigger": {"kind": "interval", "hours": 1}, "start": "9999-12-31T00:00:00Z"},
    ):
        response = await http.post("/api/schedules", json={"workflow": "hello-world", **extra})
        assert response.status_code == 422, (extra, response.text)
        assert response.headers["content-type"] == "application/problem+json"
    made = await http.post(
        "/api/schedules", json={"workflow": "hello-world", "trigger": cron, "paused": True}
    )
    assert made.status_code == 201, made.text
    changed = await http.patch(made.json()["url"], json={"start": "9999-01-01T00:00:00Z"})
    assert changed.status_code == 422, changed.text
    assert (await http.get("/api/schedules")).json()["total"] == 1
