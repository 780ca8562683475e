"""The Dockerfile's images on a real dockerd: non-root, no toolchain, gateway and notifier ready
against the machine's RabbitMQ and PostgreSQL, workers consume and stop at once on SIGTERM."""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from cryptography.fernet import Fernet

from gridgate.broker import Publisher, connect, declare_topology
from gridgate.contracts import (
    GATEWAY_REPORTS_QUEUE,
    REPORT_ADAPTER,
    SUBMITTER_QUEUE,
    JobSubmitted,
    SubmitJob,
)
from gridgate.contracts.tasks import ResourceLimits, TaskSpec
from gridgate.testing.docker import SERVICES
from gridgate.testing.services import (
    create_postgres_database,
    drop_postgres_database,
    free_port,
    rabbitmq_vhost,
)

pytestmark = pytest.mark.docker

VENV_PYTHON = "/opt/gridgate/venv/bin/python"
FIND_STDOUT = ["find", "/var/lib/gridgate/facility", "-name", "stdout*", "-exec", "cat", "{}", "+"]
HARDENED: dict[str, Any] = {
    "network_mode": "host",  # the machine's RabbitMQ and PostgreSQL listen on 127.0.0.1
    "read_only": True,
    "tmpfs": {"/tmp": ""},
    "cap_drop": ["ALL"],
    "security_opt": ["no-new-privileges"],
}


@pytest.fixture
def vhost() -> Iterator[str]:
    with rabbitmq_vhost() as url:
        yield url


def _wait_ready(url: str, timeout_s: float = 60) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    last: object = None
    while time.monotonic() < deadline:
        try:
            response = httpx.get(url, timeout=2)
            if response.status_code == 200:
                return dict(response.json())
            last = response.text
        except httpx.TransportError as exc:
            last = exc
        time.sleep(0.2)
    raise AssertionError(f"{url} never became ready: {last}")


def _stop(container: Any) -> tuple[int, float]:
    """SIGTERM (docker stop), then the exit code and how long stopping took."""
    started = time.monotonic()
    container.stop(timeout=30)
    code = container.wait(timeout=60)["StatusCode"]
    return int(code), time.monotonic() - started


def test_images_run_as_non_root_with_the_venv_and_no_build_toolchain(service_images) -> None:
    for service in SERVICES:
        image = service_images.docker.images.get(service_images.image(service))
        config = image.attrs["Config"]
        assert config["User"] == "10001:10001"
        assert f"GRIDGATE_SERVICE={service}" in config["Env"]
        assert any(e.startswith("PATH=/opt/gridgate/venv/bin:") for e in config["Env"])
        assert 'exec "gridgate-$GRIDGATE_SERVICE" "$@"' in " ".join(config["Entrypoint"])
        probe = service_images.docker.containers.run(
            image.id,
            entrypoint=["/bin/sh", "-c"],
            command=[
                f"id -u; command -v gridgate-{service}; "
                "for t in uv pip gcc cc make; do command -v $t && echo HAS-$t; done; "
                "test -e /src && echo HAS-source; true"
            ],
            remove=True,
            **HARDENED,
        ).decode()
        lines = probe.split()
        assert lines[0] == "10001", probe
        assert lines[1] == f"/opt/gridgate/venv/bin/gridgate-{service}", probe
        assert "HAS-" not in probe, f"{service} image carries build tools: {probe}"


def _web_service_environment(service: str, database_url: str, vhost: str) -> dict[str, str]:
    """What the gateway or the notifier needs to start: its database, broker and issuer."""
    prefix = f"GRIDGATE_{service.upper()}_"
    env = {
        "DATABASE_URL": database_url,
        "BROKER_URL": vhost,
        "OIDC_ISSUER": "https://iam.example.org/",
        "LOG_JSON": "true",
    }
    if service == "gateway":
        env["RESULTS_DIR"] = "/tmp/results"
    else:
        env["SECRET_KEYS"] = Fernet.generate_key().decode()
    return {prefix + name: value for name, value in env.items()}


@pytest.mark.parametrize(
    ("service", "metric"),
    [
        ("gateway", "gridgate_job_transitions_total"),
        ("notifier", "gridgate_webhook_attempts_total"),
    ],
)
async def test_a_web_service_container_migrates_then_serves_ready_and_metrics(
    service_images, vhost: str, service: str, metric: str
) -> None:
    docker = service_images.docker
    name, database_url = await create_postgres_database()
    port = free_port()
    env = _web_service_environment(service, database_url, vhost)
    try:
        migrate = docker.containers.run(
            service_images.image(service), ["migrate"], environment=env, detach=True, **HARDENED
        )
        assert migrate.wait(timeout=120)["StatusCode"] == 0, migrate.logs().decode()
        migrate.remove()
        server = docker.containers.run(
            service_images.image(service),
            ["serve", "--host", "127.0.0.1", "--port", str(port)],
            environment={**env, f"GRIDGATE_{service.upper()}_RUN_MIGRATIONS": "false"},
            detach=True,
            **HARDENED,
        )
        try:
            ready = await asyncio.to_thread(_wait_ready, f"http://127.0.0.1:{port}/readyz")
            assert ready["ready"] is True, ready
            assert {"database", "broker"} <= set(ready["checks"]), ready
            assert set(ready["checks"].values()) == {"ok"}, ready
            async with httpx.AsyncClient() as http:
                metrics = await http.get(f"http://127.0.0.1:{port}/metrics", timeout=5)
            assert metrics.status_code == 200
            assert metric in metrics.text
            code, seconds = _stop(server)
            logs = server.logs().decode()
            assert code == 0, logs
            assert seconds < 10, f"the {service} took {seconds:.1f} s to stop"
            assert "Application shutdown complete" in logs
        finally:
            server.remove(force=True)
    finally:
        await drop_postgres_database(name)


async def test_submitter_container_runs_a_task_reports_it_and_stops_on_sigterm(
    service_images, vhost: str
) -> None:
    docker = service_images.docker
    health = free_port()
    volume = docker.volumes.create()
    setup = await connect(vhost)
    channel = await setup.channel()
    await declare_topology(channel)
    submitter = docker.containers.run(
        service_images.image("submitter"),
        environment={
            "GRIDGATE_SUBMITTER_BROKER_URL": vhost,
            "GRIDGATE_SUBMITTER_LOCAL_FACILITY_ROOT": "/var/lib/gridgate/facility",
            "GRIDGATE_SUBMITTER_HEALTH_HOST": "127.0.0.1",
            "GRIDGATE_SUBMITTER_HEALTH_PORT": str(health),
            "GRIDGATE_SUBMITTER_LOG_JSON": "true",
        },
        volumes={volume.name: {"bind": "/var/lib/gridgate/facility", "mode": "rw"}},
        init=True,  # reaps the detached task runners, as compose does
        detach=True,
        **HARDENED,
    )
    try:
        ready = await asyncio.to_thread(_wait_ready, f"http://127.0.0.1:{health}/readyz")
        assert ready["checks"] == {"broker": "ok", "consumer": "ok"}

        job_id = secrets.token_hex(8)
        command = SubmitJob(
            job_id=job_id,
            owner="alice",
            vo="cta",
            facility="local",
            workflow_id="hello-world",
            workflow_version="1.0.0",
            tasks=[TaskSpec(index=0, argv=[VENV_PYTHON, "-c", "print('hello from a container')"])],
            limits=ResourceLimits(execution_duration_s=60),
        )
        publisher = await Publisher.open(setup)
        await publisher.send(SUBMITTER_QUEUE, command)
        await publisher.close()

        reports = await channel.get_queue(GATEWAY_REPORTS_QUEUE)
        report = None
        for _ in range(200):
            message = await reports.get(fail=False)
            if message is not None:
                await message.ack()
                report = REPORT_ADAPTER.validate_json(message.body)
                break
            await asyncio.sleep(0.1)
        assert isinstance(report, JobSubmitted), submitter.logs().decode()
        assert report.job_id == job_id
        assert report.facility == "local"
        assert (await channel.get_queue(SUBMITTER_QUEUE)).declaration_result.message_count == 0

        stdout = ""
        for _ in range(100):
            found = submitter.exec_run(FIND_STDOUT)
            stdout = found.output.decode()
            if "hello from a container" in stdout:
                break
            await asyncio.sleep(0.1)
        assert "hello from a container" in stdout

        async with httpx.AsyncClient() as http:
            metrics = (await http.get(f"http://127.0.0.1:{health}/metrics", timeout=5)).text
        assert 'gridgate_submissions_total{facility="local",outcome="ok"} 1.0' in metrics
        assert f'gridgate_messages_total{{outcome="done",queue="{SUBMITTER_QUEUE}"}} 1.0' in metrics

        code, seconds = _stop(submitter)
        logs = submitter.logs().decode()
        assert code == 0, logs
        assert seconds < 10, f"the submitter took {seconds:.1f} s to stop"
        assert "Traceback" not in logs
    finally:
        submitter.remove(force=True)
        volume.remove(force=True)
        await setup.close()


@pytest.mark.parametrize("service", ["monitor", "results"])
async def test_worker_container_is_ready_then_stops_cleanly_on_sigterm(
    service_images, vhost: str, service: str
) -> None:
    prefix = f"GRIDGATE_{service.upper()}_"
    health = free_port()
    container = service_images.docker.containers.run(
        service_images.image(service),
        environment={
            f"{prefix}BROKER_URL": vhost,
            f"{prefix}LOCAL_FACILITY_ROOT": "/tmp/facility",
            f"{prefix}RESULTS_DIR": "/tmp/results",
            f"{prefix}GATEWAY_URL": "http://127.0.0.1:9",  # nothing there: polls fail, softly
            f"{prefix}HEALTH_HOST": "127.0.0.1",
            f"{prefix}HEALTH_PORT": str(health),
        },
        detach=True,
        **HARDENED,
    )
    try:
        ready = await asyncio.to_thread(_wait_ready, f"http://127.0.0.1:{health}/readyz")
        assert ready["ready"] is True
        code, seconds = _stop(container)
        assert code == 0, container.logs().decode()
        assert seconds < 10, f"{service} took {seconds:.1f} s to stop"
    finally:
        container.remove(force=True)
