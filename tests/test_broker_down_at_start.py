"""A service started while the broker is down waits for it instead of exiting, answers its
probes meanwhile, and still stops at once on SIGTERM."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from gridgate.testing.services import free_port

BIN = Path(sys.executable).parent


def test_a_worker_waits_for_the_broker_and_stops_on_sigterm(tmp_path: Path) -> None:
    health = free_port()
    env = {
        **os.environ,
        # Nothing listens on this port: the broker is "down" for the whole test.
        "GRIDGATE_RESULTS_BROKER_URL": f"amqp://guest:guest@127.0.0.1:{free_port()}/",
        "GRIDGATE_RESULTS_RESULTS_DIR": str(tmp_path / "results"),
        "GRIDGATE_RESULTS_LOCAL_FACILITY_ROOT": str(tmp_path / "facility"),
        "GRIDGATE_RESULTS_HEALTH_HOST": "127.0.0.1",
        "GRIDGATE_RESULTS_HEALTH_PORT": str(health),
    }
    log = (tmp_path / "results.log").open("wb")
    process = subprocess.Popen([str(BIN / "gridgate-results")], env=env, stderr=log)
    try:
        deadline = time.monotonic() + 30
        alive = None
        while time.monotonic() < deadline:
            assert process.poll() is None, (tmp_path / "results.log").read_text()
            try:
                alive = httpx.get(f"http://127.0.0.1:{health}/healthz", timeout=2)
                break
            except httpx.TransportError:
                time.sleep(0.2)
        assert alive is not None and alive.status_code == 200
        ready = httpx.get(f"http://127.0.0.1:{health}/readyz", timeout=2)
        assert ready.status_code == 503
        time.sleep(3)  # several connection attempts later, still waiting
        assert process.poll() is None
        assert "broker unreachable; trying again" in (tmp_path / "results.log").read_text()
        process.send_signal(signal.SIGTERM)
        stopped = time.monotonic()
        assert process.wait(timeout=15) == 0
        assert time.monotonic() - stopped < 10
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
