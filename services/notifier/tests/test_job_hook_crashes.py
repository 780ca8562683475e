"""A job's hook across crashes, with the gateway and the notifier as real processes on SQLite
and PostgreSQL: a SIGKILL just before or just after the job's commit, or after the notifier
committed the hook and before it acknowledged the event, neither loses the hook nor makes it
twice, and the hook receives the job's events in order, each once
(docs/adr/0018-job-notification-url.md)."""

from __future__ import annotations

import asyncio
import subprocess
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.fernet import Fernet
from receiver import Receiver, verified
from replicas import replica_environment, start_replica, wait_ready
from sqlalchemy import text

from gridgate.notifier.guard import OutboundPolicy
from gridgate.notifier.schema.engine import create_engine
from gridgate.notifier.schema.migrate import upgrade_schema
from gridgate.notifier.sealing import SecretBox
from gridgate.notifier.services.subscriptions import SubscriptionService
from gridgate.testing.processes import AUDIENCE, GatewayProcess, gateway_env, serve_dev_issuer
from gridgate.testing.services import (
    create_postgres_database,
    drop_postgres_database,
    rabbitmq_vhost,
)

NO_CRASH = ""


def _stop_all(processes: list[Any]) -> None:
    for process in processes:
        if isinstance(process, GatewayProcess):
            process.stop()
        elif process.poll() is None:
            process.kill()  # its clean stop is not what this test is about
            process.wait(timeout=15)


def _exited(process: subprocess.Popen[bytes], timeout_s: float = 30) -> int:
    return process.wait(timeout=timeout_s)


@pytest.mark.parametrize(
    ("service", "crash"),
    [
        # The gateway's windows around a new job's commit (its background rounds pass the
        # general gateway-before-commit and gateway-after-commit too, at start).
        pytest.param("gateway", "new-job-before-commit", marks=pytest.mark.long),
        ("gateway", "new-job-committed"),
        ("notifier", "notifier-intake-committed"),
    ],
)
async def test_a_crash_neither_loses_a_job_hook_nor_makes_it_twice(
    database_kind: str, tmp_path: Path, service: str, crash: str
) -> None:
    database_name = None
    if database_kind == "postgresql":
        database_name, database_url = await create_postgres_database()
        gateway_db = notifier_db = database_url
    else:
        gateway_db = f"sqlite+aiosqlite:///{tmp_path / 'gateway.db'}"
        notifier_db = f"sqlite+aiosqlite:///{tmp_path / 'notifier.db'}"
    key = Fernet.generate_key().decode()
    owner = f"crash-{uuid.uuid4().hex[:6]}"
    receiver = Receiver()
    await receiver.start()
    processes: list[Any] = []
    engine = create_engine(notifier_db)
    try:
        with rabbitmq_vhost() as broker_url, serve_dev_issuer(tmp_path / "key.json") as issuer:
            try:
                # The owner asks for their job-hook secret first (straight through the service).
                await upgrade_schema(engine)
                subscriptions = SubscriptionService(
                    engine,
                    OutboundPolicy.build(True, ["127.0.0.1/32"]),
                    SecretBox(key),
                    max_per_owner=9,
                )
                secret = (await subscriptions.rotate_job_hook_secret(owner)).secret
                notifier_env = replica_environment(
                    notifier_db, broker_url, key, timeout_s="2", poll_interval_s="0.2"
                )
                # First the notifier: its queue must exist before the job's events are published.
                notifier, port = start_replica(
                    notifier_env, crash if service == "notifier" else None
                )
                processes.append(notifier)
                await wait_ready(port, notifier)

                env = {
                    **gateway_env(tmp_path, broker_url, gateway_db, issuer),
                    "GRIDGATE_GATEWAY_NOTIFICATION_ALLOW_HTTP": "true",
                    "GRIDGATE_GATEWAY_NOTIFICATION_ALLOWED_NETWORKS": '["127.0.0.1/32"]',
                }

                def start_gateway(crash_points: str) -> GatewayProcess:
                    gateway = GatewayProcess(
                        {**env, "GRIDGATE_CRASH_POINTS": crash_points}, tmp_path / "gateway.log"
                    )
                    processes.append(gateway)
                    return gateway

                gateway = start_gateway(crash if service == "gateway" else NO_CRASH)
                await asyncio.to_thread(gateway.wait_ready)
                token = issuer.mint(owner, groups=["cta"], audience=AUDIENCE)
                headers = {"Authorization": f"Bearer {token}"}
                fields = {
                    "workflow": "hello-world",
                    "PHASE": "RUN",
                    "notification_url": receiver.url(owner),
                }
                async with httpx.AsyncClient(headers=headers, timeout=30) as http:
                    try:
                        response = await http.post(f"{gateway.url}/api/jobs", json=fields)
                        answered = response.status_code
                    except httpx.TransportError:
                        answered = None  # killed before it answered
                    if service == "gateway":
                        assert answered is None
                        assert await asyncio.to_thread(_exited, gateway.process) == -9
                        gateway = start_gateway(NO_CRASH)
                        await asyncio.to_thread(gateway.wait_ready)
                    else:
                        assert answered == 303
                        assert await asyncio.to_thread(_exited, notifier) == -9
                        notifier, port = start_replica(notifier_env, None)
                        processes.append(notifier)
                        await wait_ready(port, notifier)
                    jobs = (await http.get(f"{gateway.url}/api/jobs")).json()["jobs"]
                    if crash == "new-job-before-commit":
                        # Neither the job nor its hook: its event was never written.
                        assert jobs == []
                        await asyncio.sleep(2.0)
                        assert receiver.received[owner] == []
                        assert await subscriptions.list_for(owner, "job-hook") == []
                        return
                    [job] = jobs
                    job_id = job["jobId"]
                    [queued] = await receiver.wait_for(owner, 1, timeout_s=30)
                    abort = await http.post(
                        f"{gateway.url}/api/jobs/{job_id}/phase", data={"PHASE": "ABORT"}
                    )
                    assert abort.status_code in (200, 303), abort.text
                    got = await receiver.wait_for(owner, 2, timeout_s=30)
                await asyncio.sleep(1.0)  # a repeated delivery would have come by now
                payloads = [verified(secret, r) for r in receiver.received[owner]]
                assert [p["data"]["phase"] for p in payloads] == ["QUEUED", "ABORTED"]
                assert [p["data"]["sequence"] for p in payloads] == [1, 2]
                assert got[0] is queued
                [hook] = await subscriptions.list_for(owner, "job-hook")
                assert hook.job_ids == [job_id]
                async with engine.connect() as connection:
                    hooks = await connection.execute(
                        text("SELECT count(*) FROM subscriptions WHERE hook_job_id = :job"),
                        {"job": job_id},
                    )
                    assert hooks.scalar_one() == 1
            finally:
                # Before the vhost goes: a process that lost its broker waits for it.
                await asyncio.to_thread(_stop_all, processes)
    finally:
        await asyncio.to_thread(_stop_all, processes)  # if the test failed before its own stop
        await engine.dispose()
        await receiver.stop()
        if database_name:
            await drop_postgres_database(database_name)
