"""The deployment shape: five services as five processes, configured only by environment."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from gridgate.auth.proxies.dev_ca import ensure_dev_ca
from gridgate.iam import DevIssuer
from gridgate.testing.services import free_port

from .test_end_to_end import run_to_end

BIN = Path(sys.executable).parent


@pytest.fixture
def services(tmp_path: Path, broker_url: str) -> Iterator[dict[str, object]]:
    gateway_port, auth_port = free_port(), free_port()
    issuer_url = f"http://127.0.0.1:{auth_port}/dev-issuer"
    key_file = tmp_path / "issuer-key.json"
    shared = {
        "facility": str(tmp_path / "facility"),
        "results": str(tmp_path / "results"),
    }
    env = {
        **os.environ,
        "GRIDGATE_GATEWAY_BROKER_URL": broker_url,
        "GRIDGATE_GATEWAY_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/gateway.db",
        "GRIDGATE_GATEWAY_OIDC_ISSUER": issuer_url,
        "GRIDGATE_GATEWAY_RESULTS_DIR": shared["results"],
        "GRIDGATE_GATEWAY_INTERNAL_TOKEN": "s3cret-for-tests",
        "GRIDGATE_AUTH_DEV_ISSUER": "true",
        "GRIDGATE_AUTH_DEV_ISSUER_URL": issuer_url,
        "GRIDGATE_AUTH_DEV_ISSUER_KEY_FILE": str(key_file),
        "GRIDGATE_SUBMITTER_BROKER_URL": broker_url,
        "GRIDGATE_SUBMITTER_LOCAL_FACILITY_ROOT": shared["facility"],
        "GRIDGATE_MONITOR_BROKER_URL": broker_url,
        "GRIDGATE_MONITOR_GATEWAY_URL": f"http://127.0.0.1:{gateway_port}",
        "GRIDGATE_MONITOR_INTERNAL_TOKEN": "s3cret-for-tests",
        "GRIDGATE_MONITOR_LOCAL_FACILITY_ROOT": shared["facility"],
        "GRIDGATE_RESULTS_BROKER_URL": broker_url,
        "GRIDGATE_RESULTS_RESULTS_DIR": shared["results"],
        "GRIDGATE_RESULTS_LOCAL_FACILITY_ROOT": shared["facility"],
    }
    issuer = DevIssuer(issuer_url, key_file)  # creates the key the auth service will serve
    ca_cert, ca_key = ensure_dev_ca(tmp_path / "ca")
    env["GRIDGATE_AUTH_CA_CERT_FILE"] = str(ca_cert)
    env["GRIDGATE_AUTH_CA_KEY_FILE"] = str(ca_key)
    env["GRIDGATE_AUTH_OIDC_ISSUER"] = issuer_url
    env["GRIDGATE_AUTH_INTERNAL_TOKEN"] = "s3cret-for-tests"
    env["GRIDGATE_AUTH_GATEWAY_URL"] = f"http://127.0.0.1:{gateway_port}"
    env["GRIDGATE_GATEWAY_AUTH_URL"] = f"http://127.0.0.1:{auth_port}"
    commands = {
        "auth": [str(BIN / "gridgate-auth"), "--port", str(auth_port)],
        "gateway": [str(BIN / "gridgate-gateway"), "--port", str(gateway_port)],
        "submitter": [str(BIN / "gridgate-submitter")],
        "monitor": [str(BIN / "gridgate-monitor")],
        "results": [str(BIN / "gridgate-results")],
    }
    processes = {
        name: subprocess.Popen(
            argv, env=env, stdout=subprocess.DEVNULL, stderr=(tmp_path / f"{name}.log").open("wb")
        )
        for name, argv in commands.items()
    }
    try:
        yield {
            "url": f"http://127.0.0.1:{gateway_port}",
            "issuer": issuer,
            "processes": processes,
            "logs": tmp_path,
        }
    finally:
        for process in processes.values():
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in processes.values():
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()


async def _ready(url: str) -> None:
    async with httpx.AsyncClient() as http:
        for _ in range(200):
            try:
                if (await http.get(f"{url}/readyz")).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.1)
    raise AssertionError("the gateway did not become ready")


async def test_five_processes_run_a_job_and_stop_cleanly_on_sigterm(services) -> None:
    await _ready(services["url"])
    token = services["issuer"].mint("proc-user", groups=["km3net"], audience="gridgate")
    async with httpx.AsyncClient(
        base_url=services["url"], timeout=60, headers={"Authorization": f"Bearer {token}"}
    ) as http:
        job = await run_to_end(http, {"workflow": "hello-world", "name": "processes"})
        assert job["phase"] == "COMPLETED", job
        hello = next(r for r in job["results"] if r["id"] == "hello.txt")
        assert (await http.get(hello["href"])).text == "Hello, processes!\n"
    for name, process in services["processes"].items():
        log = (services["logs"] / f"{name}.log").read_text()
        assert process.poll() is None, f"{name} died: {log}"
        process.send_signal(signal.SIGTERM)
    for name, process in services["processes"].items():
        code = process.wait(timeout=20)
        log = (services["logs"] / f"{name}.log").read_text()
        if name in {"gateway", "auth"}:
            # uvicorn shuts down gracefully, then re-raises the signal it caught.
            assert code in (0, -signal.SIGTERM), log
            assert "Application shutdown complete" in log
        else:
            assert code == 0, log
    logs = "".join((services["logs"] / f"{n}.log").read_text() for n in services["processes"])
    assert token not in logs
    assert "s3cret-for-tests" not in logs
