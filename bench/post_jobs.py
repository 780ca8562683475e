"""POST /api/jobs of the gateway against a bare FastAPI + asyncpg + aio-pika handler, side by side.

Usage: ``uv run python bench/post_jobs.py [--duration 8] [--rounds 5] [--sqlite]``

Creates two PostgreSQL databases and a RabbitMQ vhost of its own, starts each server as a separate
uvicorn process (one worker, a free loopback port), warms both up, then drives them in turn with
``wrk`` for several interleaved rounds and prints accepted submissions per second (2xx/3xx only),
p50 and p99 latency, server CPU per job, and the gridgate/bare ratio. Afterwards it checks that
each database holds at least one job row per accepted request, and that the broker holds one
command per job, so "accepted" means stored and published. Everything it created is removed at
the end, also on failure or Ctrl-C. Speed is reported here, never asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import shutil
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg

BENCH_DIR = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH_DIR))

from gateway_server import AUDIENCE, issuer_url  # noqa: E402

from gridgate.iam.dev_issuer import DevIssuer  # noqa: E402

HOST = "127.0.0.1"
BODY = "workflow=hello-world&PHASE=RUN&name=bench"
TICKS = os.sysconf("SC_CLK_TCK")
SUBMITTER_QUEUE = "gridgate.submitter"
BARE_QUEUE = "bench.bare.jobs"

# wrk prints this line from done(); latencies are in microseconds.
WRK_SCRIPT = """
wrk.method = "POST"
wrk.body = {body}
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
{auth}
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'BENCH {{"requests":%d,"duration_us":%d,"status":%d,"connect":%d,"read":%d,' ..
    '"write":%d,"timeout":%d,"p50":%d,"p99":%d,"max":%d}}\\n',
    summary.requests, summary.duration, e.status, e.connect, e.read, e.write, e.timeout,
    latency:percentile(50), latency:percentile(99), latency.max))
end
"""


@dataclass
class Run:
    """One wrk run against one server."""

    accepted: int
    rejected: int  # HTTP status >= 400
    socket_errors: int
    seconds: float
    p50_ms: float
    p99_ms: float
    cpu_us_per_job: float
    machine_busy: float  # share of all cores busy during the run, 0..1
    backlog: int = 0  # outbox rows still unpublished when wrk stopped (gateway only)
    drain_s: float = 0.0

    @property
    def rate(self) -> float:
        return self.accepted / self.seconds


@dataclass
class Server:
    name: str
    url: str  # the POST target
    ready_url: str
    process: subprocess.Popen[bytes]
    log: Path
    script: Path
    runs: list[Run] = field(default_factory=list)
    warmup_accepted: int = 0
    backlog: Callable[[], int] | None = None  # unpublished outbox rows, if the server has any

    def accepted(self) -> int:
        return self.warmup_accepted + sum(r.accepted for r in self.runs)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


def process_cpu_s(pid: int) -> float:
    """User + system CPU seconds of one process (all its threads)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def machine_cpu() -> tuple[int, int]:
    """(busy, total) jiffies of all cores."""
    values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = values[3] + values[4]
    return sum(values) - idle, sum(values)


def run_sql(dsn: str, query: str) -> int | None:
    """Run one statement on a fresh connection; its first value as an int, if it returns one."""

    async def go() -> int | None:
        connection = await asyncpg.connect(dsn)
        try:
            value = await connection.fetchval(query)
            return None if value is None else int(value)
        finally:
            await connection.close()

    return asyncio.run(go())


def count_rows(dsn: str, table: str) -> int:
    if dsn.startswith("sqlite:///"):
        # WAL: this read does not wait for the gateway's writes.
        with contextlib.closing(sqlite3.connect(dsn.removeprefix("sqlite:///"))) as db:
            return int(db.execute(f"SELECT count(*) FROM {table}").fetchone()[0])
    return run_sql(dsn, f"SELECT count(*) FROM {table}") or 0


def rabbitmqctl(*args: str) -> str:
    result = subprocess.run(
        ["rabbitmqctl", "-q", *args], capture_output=True, text=True, timeout=60, check=False
    )
    if result.returncode != 0:
        raise RuntimeError(f"rabbitmqctl {' '.join(args)} failed: {result.stderr.strip()}")
    return result.stdout


def queue_depths(vhost: str) -> dict[str, int]:
    out = rabbitmqctl("list_queues", "-p", vhost, "--no-table-headers", "name", "messages")
    depths = {}
    for line in out.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[1].isdigit():
            depths[parts[0]] = int(parts[1])
    return depths


@contextmanager
def database(admin_dsn: str, name: str) -> Iterator[str]:
    """A fresh database; yields its asyncpg DSN and drops it afterwards."""
    run_sql(admin_dsn, f'CREATE DATABASE "{name}"')
    try:
        yield admin_dsn.rsplit("/", 1)[0] + "/" + name
    finally:
        run_sql(admin_dsn, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextmanager
def vhost(name: str, user: str) -> Iterator[str]:
    rabbitmqctl("add_vhost", name)
    try:
        rabbitmqctl("set_permissions", "-p", name, user, ".*", ".*", ".*")
        yield name
    finally:
        rabbitmqctl("delete_vhost", name)


@contextmanager
def server_process(argv: list[str], log: Path) -> Iterator[subprocess.Popen[bytes]]:
    with log.open("wb") as sink:
        process = subprocess.Popen(
            argv,
            stdout=sink,
            stderr=subprocess.STDOUT,
            cwd=BENCH_DIR.parent,
            start_new_session=True,
        )
    try:
        yield process
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def wait_ready(server: Server, timeout_s: float = 90.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(f"{server.name} exited:\n{server.log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(server.ready_url, timeout=2) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.2)
    raise RuntimeError(
        f"{server.name} not ready after {timeout_s} s:\n{server.log.read_text()[-3000:]}"
    )


def write_script(path: Path, token: str | None) -> Path:
    auth = f'wrk.headers["Authorization"] = "Bearer {token}"' if token else ""
    path.write_text(WRK_SCRIPT.format(body=json.dumps(BODY), auth=auth))
    return path


def wrk(server: Server, seconds: int, connections: int) -> dict[str, int]:
    argv = [
        "wrk",
        "-t1",
        f"-c{connections}",
        f"-d{seconds}s",
        "--timeout",
        "10s",
        "--latency",
        "-s",
        str(server.script),
        server.url,
    ]
    result = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 60, check=False)
    for line in result.stdout.splitlines():
        if line.startswith("BENCH "):
            summary: dict[str, int] = json.loads(line[6:])
            return summary
    raise RuntimeError(f"wrk gave no summary:\n{result.stdout}\n{result.stderr}")


def wait_drained(server: Server, timeout_s: float = 120.0) -> float:
    """Wait until the outbox relay has published everything; return how long that took."""
    if server.backlog is None:
        return 0.0
    start = time.monotonic()
    while server.backlog() > 0:
        if time.monotonic() - start > timeout_s:
            raise RuntimeError(f"{server.name}: outbox not drained after {timeout_s} s")
        time.sleep(0.1)
    return time.monotonic() - start


def measure(server: Server, seconds: int, connections: int) -> Run:
    """One wrk run, with the server's CPU time and, for the gateway, the relay's drain."""
    wait_drained(server)
    pid = server.process.pid
    cpu0, (busy0, total0) = process_cpu_s(pid), machine_cpu()
    summary = wrk(server, seconds, connections)
    busy1, total1 = machine_cpu()
    backlog = server.backlog() if server.backlog else 0
    drain_s = wait_drained(server)  # the relay's publishing is part of the cost of a job
    cpu1 = process_cpu_s(pid)
    accepted = summary["requests"] - summary["status"]
    return Run(
        accepted=accepted,
        rejected=summary["status"],
        socket_errors=summary["connect"] + summary["read"] + summary["write"] + summary["timeout"],
        seconds=summary["duration_us"] / 1e6,
        p50_ms=summary["p50"] / 1000,
        p99_ms=summary["p99"] / 1000,
        cpu_us_per_job=(cpu1 - cpu0) * 1e6 / max(accepted, 1),
        machine_busy=(busy1 - busy0) / max(total1 - total0, 1),
        backlog=backlog,
        drain_s=drain_s,
    )


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def report(gateway: Server, bare: Server) -> None:
    print("\nper round:")
    print(
        f"{'round':>5} {'server':<9} {'jobs/s':>8} {'p50 ms':>7} {'p99 ms':>7} "
        f"{'CPU us/job':>10} {'machine':>7} {'errors':>6} {'backlog':>7} {'drain s':>7}"
    )
    for index, (g, b) in enumerate(zip(gateway.runs, bare.runs, strict=True), 1):
        for name, r in (("gridgate", g), ("bare", b)):
            print(
                f"{index:>5} {name:<9} {r.rate:>8.0f} {r.p50_ms:>7.1f} {r.p99_ms:>7.1f} "
                f"{r.cpu_us_per_job:>10.0f} {r.machine_busy:>7.0%} "
                f"{r.rejected + r.socket_errors:>6} {r.backlog:>7} {r.drain_s:>7.1f}"
            )
    ratios = [g.rate / b.rate for g, b in zip(gateway.runs, bare.runs, strict=True)]
    print(f"\nmedians of {len(ratios)} rounds (wrk -t1 -c{CONNECTIONS}, {DURATION:g} s each):")
    print(
        f"{'server':<9} {'jobs/s':>8} {'p50 ms':>7} {'p99 ms':>7} {'CPU us/job':>10} {'errors':>6}"
    )
    for server in (gateway, bare):
        runs = server.runs
        errors = sum(r.rejected + r.socket_errors for r in runs)
        print(
            f"{'gridgate' if server is gateway else 'bare':<9} "
            f"{median([r.rate for r in runs]):>8.0f} {median([r.p50_ms for r in runs]):>7.1f} "
            f"{median([r.p99_ms for r in runs]):>7.1f} "
            f"{median([r.cpu_us_per_job for r in runs]):>10.0f} {errors:>6}"
        )
    ratio = median([r.rate for r in gateway.runs]) / median([r.rate for r in bare.runs])
    print(
        f"ratio gridgate/bare: {ratio:.2f}x (per round {min(ratios):.2f}-{max(ratios):.2f}; "
        f"goal >= 0.80x)"
    )


def verify(
    gateway: Server, bare: Server, gw_dsn: str, bare_dsn: str, vhost_name: str, connections: int
) -> bool:
    """Every accepted request is a stored job, and every stored job a published command."""
    time.sleep(1.0)  # requests wrk abandoned at its deadline finish on the server
    wait_drained(gateway)
    gw_rows = count_rows(gw_dsn, "jobs")
    bare_rows = count_rows(bare_dsn, "bare_jobs")
    depths = queue_depths(vhost_name)
    ok = True
    print("\nchecks (rows may exceed accepted by requests in flight when wrk stopped):")
    for name, server, rows, queue in (
        ("gridgate", gateway, gw_rows, SUBMITTER_QUEUE),
        ("bare", bare, bare_rows, BARE_QUEUE),
    ):
        accepted = server.accepted()
        slack = connections * (len(server.runs) + 1)
        published = depths.get(queue, -1)
        good = accepted <= rows <= accepted + slack and published == rows
        ok &= good
        print(
            f"  {name:<9} accepted {accepted}, job rows {rows} (+{rows - accepted}), "
            f"messages in {queue} {published}: {'ok' if good else 'MISMATCH'}"
        )
    return ok


def _terminate(signum: int, _frame: object) -> None:
    raise SystemExit(128 + signum)


CONNECTIONS = 50
DURATION = 8


def main(argv: list[str] | None = None) -> int:
    global CONNECTIONS, DURATION
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=int, default=8, help="seconds per wrk run")
    parser.add_argument("--connections", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=3, help="seconds per server")
    parser.add_argument(
        "--admin-dsn",
        default="postgresql://postgres@127.0.0.1:5432/test",
        help="an existing database to CREATE/DROP the bench databases from",
    )
    parser.add_argument(
        "--broker",
        default="amqp://guest:guest@127.0.0.1:5672",
        help="RabbitMQ URL without vhost; its user gets the bench vhost",
    )
    parser.add_argument(
        "--sqlite",
        action="store_true",
        help="the gateway on a SQLite file (the bare handler stays on PostgreSQL)",
    )
    args = parser.parse_args(argv)
    CONNECTIONS, DURATION = args.connections, args.duration
    if shutil.which("wrk") is None:
        print("wrk is missing: apt-get install -y wrk", file=sys.stderr)
        return 2
    signal.signal(signal.SIGTERM, _terminate)
    tag = f"gridgate_bench_{os.getpid()}"
    broker_user = args.broker.split("://", 1)[1].split(":", 1)[0]
    started = time.monotonic()
    with ExitStack() as stack:
        work = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="gridgate-bench-")))
        if args.sqlite:
            gw_dsn = f"sqlite:///{work}/gateway.db"
            gw_url = f"sqlite+aiosqlite:///{work}/gateway.db"
        else:
            gw_dsn = stack.enter_context(database(args.admin_dsn, f"{tag}_gw"))
            gw_url = gw_dsn.replace("postgresql://", "postgresql+asyncpg://", 1)
        bare_dsn = stack.enter_context(database(args.admin_dsn, f"{tag}_bare"))
        vhost_name = stack.enter_context(vhost(tag.replace("_", "-"), broker_user))
        broker_url = f"{args.broker}/{vhost_name}"

        gw_port, bare_port = free_port(), free_port()
        issuer = DevIssuer(issuer_url(HOST, gw_port), work / "dev-issuer-key.json")
        token = issuer.mint("bench-user", groups=["cta"], audience=AUDIENCE, lifetime_s=3600)
        python = sys.executable
        gw_process = stack.enter_context(
            server_process(
                [
                    python,
                    str(BENCH_DIR / "gateway_server.py"),
                    "--host",
                    HOST,
                    "--port",
                    str(gw_port),
                    "--data-dir",
                    str(work),
                    "--broker-url",
                    broker_url,
                    "--database-url",
                    gw_url,
                ],
                work / "gateway.log",
            )
        )
        bare_process = stack.enter_context(
            server_process(
                [
                    python,
                    str(BENCH_DIR / "bare_handler.py"),
                    "--host",
                    HOST,
                    "--port",
                    str(bare_port),
                    "--database-url",
                    bare_dsn,
                    "--broker-url",
                    broker_url,
                ],
                work / "bare.log",
            )
        )
        gateway = Server(
            "gridgate",
            f"http://{HOST}:{gw_port}/api/jobs",
            f"http://{HOST}:{gw_port}/readyz",
            gw_process,
            work / "gateway.log",
            write_script(work / "gateway.lua", token),
            backlog=lambda: count_rows(gw_dsn, "outbox"),
        )
        bare = Server(
            "bare",
            f"http://{HOST}:{bare_port}/jobs",
            f"http://{HOST}:{bare_port}/healthz",
            bare_process,
            work / "bare.log",
            write_script(work / "bare.lua", None),
        )
        for server in (gateway, bare):
            wait_ready(server)
        print(
            f"servers up in {time.monotonic() - started:.0f} s; warming up {args.warmup:g} s each"
        )
        for server in (gateway, bare):
            warm = wrk(server, args.warmup, args.connections)
            server.warmup_accepted = warm["requests"] - warm["status"]
            if warm["status"] or not server.warmup_accepted:
                log_tail = server.log.read_text()[-2000:]
                raise RuntimeError(f"{server.name} rejects requests during warm-up:\n{log_tail}")
        for index in range(args.rounds):
            order = (gateway, bare) if index % 2 == 0 else (bare, gateway)
            for server in order:
                server.runs.append(measure(server, args.duration, args.connections))
            g, b = gateway.runs[-1], bare.runs[-1]
            print(f"round {index + 1}/{args.rounds}: gridgate {g.rate:.0f}/s, bare {b.rate:.0f}/s")
        report(gateway, bare)
        ok = verify(gateway, bare, gw_dsn, bare_dsn, vhost_name, args.connections)
        for server in (gateway, bare):
            if server.process.poll() is not None:
                ok = False
                print(f"{server.name} died during the run:\n{server.log.read_text()[-2000:]}")
    print(f"\ntotal {time.monotonic() - started:.0f} s; databases, vhost and processes removed")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
