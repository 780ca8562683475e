"""Each service's time to ready and idle memory, and ``gridgate dev``'s (issue 16, P4 and
start-up).

Usage: ``uv run python bench/footprint.py [--rounds 3] [--idle-s 5] [--only gateway ...]``

Starts each service's own console script (``gridgate-gateway``, ``-auth``, ``-submitter``,
``-monitor``, ``-results``, ``-notifier``) as a process of its own, configured by environment
as a deployment is, then ``gridgate dev`` (all of them in one process). Time to ready is from
the spawn until ``/readyz`` answers 200 (the workers serve it on their health port). Idle RSS
is ``VmRSS`` after ``--idle-s`` seconds of nothing to do, once ready. Needs RabbitMQ on
127.0.0.1:5672 with ``rabbitmqctl`` (a vhost of its own, removed at the end); the gateway and
the notifier use SQLite files.

The first start of each is on a new database, which it migrates (Alembic); the ``--rounds``
restarts after it find the schema current, as most starts of a deployment do, and are
reported apart (medians, all values, and the load average). Speed is reported here, never
asserted.
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path

import httpx
from cryptography.fernet import Fernet

BENCH_DIR = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH_DIR))

from post_jobs import free_port, vhost  # noqa: E402

from gridgate.auth.proxies.dev_ca import ensure_dev_ca  # noqa: E402

BIN = Path(sys.executable).parent
"""Where the console scripts are: this interpreter's environment unless ``--bin`` says."""
TOKEN = "footprint-internal-token"
SERVICES = ["gateway", "auth", "submitter", "monitor", "results", "notifier", "dev"]
GOALS_MIB = {"dev": 120}
"""Issue 16: 100 MiB for each service, 120 for ``gridgate dev``; ready within 2 s."""


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


def command(
    name: str, work: Path, broker_url: str, bin_dir: Path
) -> tuple[list[str], dict[str, str], int]:
    """argv, environment and the port of /readyz of one service."""
    port = free_port()
    env = {**os.environ, f"GRIDGATE_{name.upper()}_BROKER_URL": broker_url}
    facility = str(work / "facility")
    if name == "gateway":
        env |= {
            "GRIDGATE_GATEWAY_DATABASE_URL": f"sqlite+aiosqlite:///{work}/gateway.db",
            "GRIDGATE_GATEWAY_RESULTS_DIR": str(work / "results"),
            "GRIDGATE_GATEWAY_INTERNAL_TOKEN": TOKEN,
        }
        return [str(bin_dir / "gridgate-gateway"), "--port", str(port)], env, port
    if name == "auth":
        ca_cert, ca_key = ensure_dev_ca(work / "ca")
        env |= {
            "GRIDGATE_AUTH_INTERNAL_TOKEN": TOKEN,
            "GRIDGATE_AUTH_DEV_ISSUER": "true",
            "GRIDGATE_AUTH_DEV_ISSUER_URL": f"http://127.0.0.1:{port}/dev-issuer",
            "GRIDGATE_AUTH_DEV_ISSUER_KEY_FILE": str(work / "issuer-key.json"),
            "GRIDGATE_AUTH_CA_CERT_FILE": str(ca_cert),
            "GRIDGATE_AUTH_CA_KEY_FILE": str(ca_key),
        }
        return [str(bin_dir / "gridgate-auth"), "--port", str(port)], env, port
    if name == "notifier":
        env["GRIDGATE_NOTIFIER_DATABASE_URL"] = f"sqlite+aiosqlite:///{work}/notifier.db"
        env["GRIDGATE_NOTIFIER_SECRET_KEYS"] = Fernet.generate_key().decode()
        return [str(bin_dir / "gridgate-notifier"), "--port", str(port)], env, port
    if name == "dev":
        argv = [str(bin_dir / "gridgate"), "dev", "--port", str(port)]
        return [*argv, "--data-dir", str(work / "dev"), "--broker-url", broker_url], env, port
    env[f"GRIDGATE_{name.upper()}_HEALTH_PORT"] = str(port)
    env[f"GRIDGATE_{name.upper()}_LOCAL_FACILITY_ROOT"] = facility
    if name == "monitor":
        env |= {
            "GRIDGATE_MONITOR_GATEWAY_URL": "http://127.0.0.1:9",
            "GRIDGATE_MONITOR_INTERNAL_TOKEN": TOKEN,
        }
    if name == "results":
        env["GRIDGATE_RESULTS_RESULTS_DIR"] = str(work / "results")
    return [str(bin_dir / f"gridgate-{name}")], env, port


def start_once(
    name: str, work: Path, broker_url: str, idle_s: float, bin_dir: Path
) -> tuple[float, float]:
    """(seconds to ready, idle RSS MiB) of one start of ``name``."""
    argv, env, port = command(name, work, broker_url, bin_dir)
    log = (work / f"{name}.log").open("ab")
    started = time.monotonic()
    process = subprocess.Popen(argv, env=env, stdout=log, stderr=log)
    try:
        deadline = started + 60
        with httpx.Client(timeout=2.0) as http:
            while True:
                if process.poll() is not None:
                    tail = (work / f"{name}.log").read_text()[-2000:]
                    raise RuntimeError(f"{name} exited with {process.returncode}: {tail}")
                try:
                    if http.get(f"http://127.0.0.1:{port}/readyz").status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                if time.monotonic() > deadline:
                    tail = (work / f"{name}.log").read_text()[-2000:]
                    raise RuntimeError(f"{name} not ready within 60 s: {tail}")
                time.sleep(0.02)
        ready = time.monotonic() - started
        time.sleep(idle_s)
        return ready, rss_mib(process.pid)
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3, help="restarts after the first start")
    parser.add_argument("--idle-s", type=float, default=5.0)
    parser.add_argument("--only", nargs="*", choices=SERVICES, default=SERVICES)
    parser.add_argument("--broker", default="amqp://guest:guest@127.0.0.1:5672")
    parser.add_argument(
        "--bin",
        type=Path,
        default=BIN,
        help="directory of the console scripts, e.g. a venv made as the images are "
        "(uv sync --no-default-groups --no-editable --package gridgate-gateway)",
    )
    args = parser.parse_args(argv)
    print(f"load before: {os.getloadavg()[0]:.1f} {os.getloadavg()[1]:.1f} (1, 5 min)")
    broker_user = args.broker.split("://", 1)[1].split(":", 1)[0]
    with ExitStack() as stack:
        work = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="gridgate-fp-")))
        name = stack.enter_context(vhost(f"gridgate-footprint-{os.getpid()}", broker_user))
        broker_url = f"{args.broker}/{name}"
        print(
            f"{'service':<10} {'first start: ready s, RSS MiB':<32}"
            f"{'restarts: ready s (median; all)':<36}{'idle RSS MiB (median; all)'}"
        )
        for service in args.only:
            first_ready, first_rss = start_once(service, work, broker_url, args.idle_s, args.bin)
            runs = [
                start_once(service, work, broker_url, args.idle_s, args.bin)
                for _ in range(args.rounds)
            ]
            ready = [r for r, _ in runs]
            rss = [m for _, m in runs]
            goal = GOALS_MIB.get(service, 100)
            print(
                f"{service:<10} {first_ready:5.2f} s {first_rss:6.1f} MiB{'':<14}"
                f"{statistics.median(ready):5.2f} ({', '.join(f'{r:.2f}' for r in ready)})"
                f"{'':<6}{statistics.median(rss):6.1f} ({', '.join(f'{m:.1f}' for m in rss)})"
                f"  goal {goal}",
                flush=True,
            )
    print(f"load after: {os.getloadavg()[0]:.1f} {os.getloadavg()[1]:.1f} (1, 5 min)")
    print("goals: ready <= 2 s; idle RSS <= 100 MiB per service, <= 120 MiB for gridgate dev")
    return 0


if __name__ == "__main__":
    sys.exit(main())
