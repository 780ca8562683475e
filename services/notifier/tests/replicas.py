"""Notifier replicas as separate processes, as the tests run them: started, waited for,
stopped (SIGTERM, then SIGKILL after a grace period).

Stopping waits in a thread: a replica finishing a webhook call may be waiting on the tests'
receiver, which answers on the test's event loop; blocking that loop would hold the replica
until its grace period ran out.
"""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
from pathlib import Path

import httpx

from gridgate.testing.services import free_port

BIN = Path(sys.executable).parent
STOP_GRACE_S = 15.0


def start_replica(
    environment: dict[str, str], crash: str | None
) -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    env = {**os.environ, **environment}
    env.pop("GRIDGATE_CRASH_POINTS", None)
    if crash:
        env["GRIDGATE_CRASH_POINTS"] = crash
    process = subprocess.Popen(
        [str(BIN / "gridgate-notifier"), "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    return process, port


async def wait_ready(port: int, process: subprocess.Popen[bytes]) -> None:
    async with httpx.AsyncClient() as http, asyncio.timeout(60):
        while process.poll() is None:
            try:
                if (await http.get(f"http://127.0.0.1:{port}/readyz")).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            await asyncio.sleep(0.2)
    raise AssertionError("the notifier replica did not become ready")


def replica_environment(
    database_url: str, broker_url: str, key: str, **settings: str
) -> dict[str, str]:
    """A replica's settings: its database, broker and key, plain http to the tests' receiver
    on loopback, and ``settings`` (``timeout_s="2"`` is ``GRIDGATE_NOTIFIER_TIMEOUT_S``)."""
    return {
        "GRIDGATE_NOTIFIER_DATABASE_URL": database_url,
        "GRIDGATE_NOTIFIER_BROKER_URL": broker_url,
        "GRIDGATE_NOTIFIER_SECRET_KEYS": key,
        "GRIDGATE_NOTIFIER_ALLOW_HTTP": "true",
        "GRIDGATE_NOTIFIER_ALLOWED_NETWORKS": '["127.0.0.1/32"]',
        **{f"GRIDGATE_NOTIFIER_{name.upper()}": value for name, value in settings.items()},
    }


def _stop_now(processes: list[subprocess.Popen[bytes]], grace_s: float) -> None:
    for process in processes:
        if process.poll() is None:
            process.terminate()
    for process in processes:
        try:
            process.wait(timeout=grace_s)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


async def stop_replicas(
    processes: list[subprocess.Popen[bytes]], grace_s: float = STOP_GRACE_S
) -> None:
    """SIGTERM each, wait up to ``grace_s`` for all (off the event loop), SIGKILL the rest."""
    await asyncio.to_thread(_stop_now, list(processes), grace_s)


def metric(text: str, name: str) -> float:
    match = re.search(rf"^{name} ([0-9.e+]+)$", text, re.MULTILINE)
    return float(match[1]) if match else 0.0


class Notifiers:
    """Notifier processes on one database and one vhost, stopped at the end."""

    def __init__(self, database_url: str, broker_url: str, key: str, **settings: str) -> None:
        self.environment = replica_environment(
            database_url,
            broker_url,
            key,
            **{"timeout_s": "2", "poll_interval_s": "0.2", "order_window_s": "0.25", **settings},
        )
        self.processes: list[subprocess.Popen[bytes]] = []
        self.ports: list[int] = []

    async def start(self, count: int, crash: str | None = None) -> subprocess.Popen[bytes]:
        """Start ``count`` more; the first armed with ``crash`` (a crash point), if given."""
        started = []
        for i in range(count):
            process, port = start_replica(self.environment, crash if i == 0 else None)
            self.processes.append(process)
            self.ports.append(port)
            started.append((process, port))
        for process, port in started:
            await wait_ready(port, process)
        return started[0][0]

    async def metric(self, name: str) -> float:
        async with httpx.AsyncClient() as http:
            texts = [(await http.get(f"http://127.0.0.1:{p}/metrics")).text for p in self.ports]
        return sum(metric(text, name) for text in texts)

    async def stop(self) -> None:
        await stop_replicas(self.processes)
