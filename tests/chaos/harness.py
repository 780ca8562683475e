"""The chaos suite's moving parts: its broker node, a cluster of service processes, a killer,
an event tap, and the checks that read the database, the tap and the facility's files.

The node is testbeds/rabbitmq (port 5682), never the machine's broker: the suite stops its
application on purpose.
"""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import json
import os
import random
import secrets
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import aio_pika
import httpx
from aio_pika.abc import AbstractIncomingMessage
from sqlalchemy import text
from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import create_async_engine

from gridgate.auth.proxies.dev_ca import ensure_dev_ca
from gridgate.contracts.topology import COMMANDS_EXCHANGE, EVENTS_EXCHANGE, RESULTS_QUEUE
from gridgate.iam import DevIssuer
from gridgate.testing.services import free_port

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
UP = REPO / "testbeds" / "rabbitmq" / "up.sh"
DOWN = REPO / "testbeds" / "rabbitmq" / "down.sh"
NODE = os.environ.get("GRIDGATE_CHAOS_BROKER_NODE", "gridgate-chaos@localhost")
BROKER_HOST = f"127.0.0.1:{os.environ.get('GRIDGATE_CHAOS_BROKER_PORT', '5682')}"
FINAL = frozenset({"COMPLETED", "ERROR", "ABORTED"})
SECRET = "chaos-internal-secret"
LEDGER_WORKFLOW = "chaos-ledger"
SHIPPED_WORKFLOWS = ("hello-world",)

# The crash points in the product's narrow windows (grep crash_point), by the service whose
# process passes them. runner-claimed is left out: a task runner inherits the submitter's
# environment, so it would kill every task of that submitter.
CRASH_POINTS = {
    "gateway": [
        "gateway-before-commit",
        "gateway-after-commit",
        "new-job-before-commit",
        "new-job-committed",
        "observations-batch-written",
        "observations-batch-committed",
        "observations-run-committed",
        "submissions-batch-written",
        "submissions-batch-committed",
        "relay-published",
        "consumer-before-ack",
    ],
    "submitter": [
        "launch-claimed",
        "launch-status-written",
        "launch-spawned",
        "submitter-submitted",
        "consumer-before-ack",
    ],
    "monitor": ["monitor-reported"],
    "results": ["results-stored", "consumer-before-ack"],
    "auth": [],
}


def _env_int(name: str, default: int) -> int:
    return int(os.environ.get(name, default))


def _env_float(name: str, default: float) -> float:
    return float(os.environ.get(name, default))


@dataclass(frozen=True)
class ChaosSettings:
    """How hard a run pushes: bounded defaults for CI, ``make chaos`` sets the long ones."""

    jobs: int = field(default_factory=lambda: _env_int("GRIDGATE_CHAOS_JOBS", 60))
    kills: int = field(default_factory=lambda: _env_int("GRIDGATE_CHAOS_KILLS", 10))
    broker_restarts: int = field(
        default_factory=lambda: _env_int("GRIDGATE_CHAOS_BROKER_RESTARTS", 1)
    )
    recovery_s: float = field(
        default_factory=lambda: _env_float("GRIDGATE_CHAOS_RECOVERY_S", 120.0)
    )
    seed: int = field(default_factory=lambda: _env_int("GRIDGATE_CHAOS_SEED", 0))
    kill_interval_s: float = field(
        default_factory=lambda: _env_float("GRIDGATE_CHAOS_KILL_INTERVAL_S", 3.0)
    )


# ---------------------------------------------------------------------------------------------
# the broker node


def _rabbitmqctl(*args: str, timeout: float = 60) -> None:
    executable = shutil.which("rabbitmqctl")
    if executable is None:
        raise RuntimeError("rabbitmqctl is needed (install rabbitmq-server)")
    subprocess.run(
        [executable, "-n", NODE, "-q", *args], check=True, capture_output=True, timeout=timeout
    )


class ChaosBroker:
    """The chaos node: started by testbeds/rabbitmq/up.sh, stopped at the end if we started it."""

    def __init__(self) -> None:
        self.started_here = False

    def up(self) -> None:
        pid_file = REPO / "var" / "testbeds" / "rabbitmq" / "pid"
        self.started_here = not pid_file.exists()
        subprocess.run([str(UP)], check=True, capture_output=True, timeout=180)

    def down(self) -> None:
        if self.started_here:
            subprocess.run([str(DOWN)], check=False, capture_output=True, timeout=180)

    def add_vhost(self, name: str) -> str:
        _rabbitmqctl("add_vhost", name)
        _rabbitmqctl("set_permissions", "-p", name, "guest", ".*", ".*", ".*")
        return f"amqp://guest:guest@{BROKER_HOST}/{quote(name, safe='')}"

    def delete_vhost(self, name: str) -> None:
        try:
            _rabbitmqctl("start_app")  # a failed run may have left it stopped
            _rabbitmqctl("delete_vhost", name)
        except (subprocess.SubprocessError, OSError):
            pass

    async def stop_app(self) -> None:
        await asyncio.to_thread(_rabbitmqctl, "stop_app")

    async def start_app(self) -> None:
        await asyncio.to_thread(_rabbitmqctl, "start_app")


# ---------------------------------------------------------------------------------------------
# the workflows: the shipped hello-world and a ledger workflow that makes double runs visible


LEDGER_CODE = """\
import os, sys, time
time.sleep(float(sys.argv[1]))
task = os.path.dirname(os.getcwd())
line = os.path.basename(os.path.dirname(task)) + ' ' + os.path.basename(task) + ' ' \\
    + str(os.getpid()) + chr(10)
fd = os.open(sys.argv[2], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o666)
os.write(fd, line.encode())
os.close(fd)
index = os.environ.get('GRIDGATE_TASK_INDEX', '0')
with open('ledger-' + index.zfill(4) + '.txt', 'w') as out:
    out.write(line)
"""


def write_workflows(directory: Path, ledger: Path) -> None:
    """Copy the shipped workflows used here and add the ledger workflow."""
    import gridgate.workflows

    shipped = Path(gridgate.workflows.__file__).parent / "definitions"
    for name in SHIPPED_WORKFLOWS:
        shutil.copytree(shipped / name, directory / name)
    (directory / LEDGER_WORKFLOW).mkdir(parents=True)
    definition = {
        "id": LEDGER_WORKFLOW,
        "version": "1.0.0",
        "title": "Chaos ledger",
        "description": "Sleeps, then appends '<job> <task> <pid>' to a shared ledger file, so "
        "the chaos suite can count how often each task ran.",
        "keywords": ["test"],
        "source_ref": "tests/chaos (test only)",
        "standin": False,
        "standin_note": None,
        "requirements": {
            "cores": 1,
            "memory_gb": 0.5,
            "gpu_count": 0,
            "gpu_type": None,
            "walltime_s": 600,
            "runtime": None,
            "note": "test only",
        },
        "parameters": {
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "tasks": {
                    "type": "integer",
                    "title": "Tasks",
                    "description": "How many tasks; each appends one line.",
                    "default": 1,
                    "minimum": 1,
                    "maximum": 50,
                },
                "sleep_s": {
                    "type": "number",
                    "title": "Sleep (s)",
                    "description": "Seconds each task sleeps before it appends.",
                    "default": 1,
                    "minimum": 0,
                    "maximum": 60,
                },
            },
        },
        "execution": {
            "command": ["{python}", "-c", LEDGER_CODE, "{sleep_s}", str(ledger)],
            "tasks_from": "tasks",
            "outputs": ["ledger-*.txt"],
            "default_execution_duration_s": 300,
        },
    }
    # JSON is YAML; no YAML writer needed.
    (directory / LEDGER_WORKFLOW / "1.0.0.yaml").write_text(json.dumps(definition, indent=1))


# ---------------------------------------------------------------------------------------------
# the service processes


@dataclass
class Service:
    name: str
    kind: str
    argv: list[str]
    env: dict[str, str]
    log: Path
    process: subprocess.Popen[bytes] | None = None
    armed: str = ""
    held: bool = False  # killed on purpose, restarted by the killer

    def start(self, crash_points: str = "") -> None:
        env = dict(self.env)
        if crash_points:
            env["GRIDGATE_CRASH_POINTS"] = crash_points
        self.armed = crash_points
        with self.log.open("ab") as log:
            log.write(f"\n=== start {time.time():.3f} crash points {crash_points!r}\n".encode())
            self.process = subprocess.Popen(
                self.argv, env=env, stdout=subprocess.DEVNULL, stderr=log
            )

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait()

    def terminate(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


class Cluster:
    """Five kinds of service as separate processes, configured by environment only."""

    def __init__(
        self,
        root: Path,
        broker_url: str,
        database_url: str,
        gateways: int = 1,
        submitters: int = 1,
    ) -> None:
        self.root = root
        self.database_url = database_url
        self.facility = root / "facility"
        self.results = root / "results"
        self.ledger = root / "ledger.txt"
        self.ledger.touch()
        self.ledger.chmod(0o666)
        workflows = root / "workflows"
        write_workflows(workflows, self.ledger)
        auth_port = free_port()
        self.gateway_ports = [free_port() for _ in range(gateways)]
        self.urls = [f"http://127.0.0.1:{port}" for port in self.gateway_ports]
        issuer_url = f"http://127.0.0.1:{auth_port}/dev-issuer"
        key_file = root / "issuer-key.json"
        self.issuer = DevIssuer(issuer_url, key_file)
        ca_cert, ca_key = ensure_dev_ca(root / "ca")
        base = {k: v for k, v in os.environ.items() if k != "GRIDGATE_CRASH_POINTS"}
        common = {
            **base,
            "GRIDGATE_GATEWAY_BROKER_URL": broker_url,
            "GRIDGATE_GATEWAY_DATABASE_URL": database_url,
            "GRIDGATE_GATEWAY_OIDC_ISSUER": issuer_url,
            "GRIDGATE_GATEWAY_RESULTS_DIR": str(self.results),
            "GRIDGATE_GATEWAY_INTERNAL_TOKEN": SECRET,
            "GRIDGATE_GATEWAY_WORKFLOWS_DIR": str(workflows),
            "GRIDGATE_GATEWAY_AUTH_URL": f"http://127.0.0.1:{auth_port}",
            "GRIDGATE_GATEWAY_SIGNING_KEY": "chaos-signing-key",
            "GRIDGATE_AUTH_DEV_ISSUER": "true",
            "GRIDGATE_AUTH_DEV_ISSUER_URL": issuer_url,
            "GRIDGATE_AUTH_DEV_ISSUER_KEY_FILE": str(key_file),
            "GRIDGATE_AUTH_CA_CERT_FILE": str(ca_cert),
            "GRIDGATE_AUTH_CA_KEY_FILE": str(ca_key),
            "GRIDGATE_AUTH_OIDC_ISSUER": issuer_url,
            "GRIDGATE_AUTH_INTERNAL_TOKEN": SECRET,
            "GRIDGATE_AUTH_GATEWAY_URL": self.urls[0],
            "GRIDGATE_SUBMITTER_BROKER_URL": broker_url,
            "GRIDGATE_SUBMITTER_LOCAL_FACILITY_ROOT": str(self.facility),
            "GRIDGATE_MONITOR_BROKER_URL": broker_url,
            "GRIDGATE_MONITOR_GATEWAY_URL": self.urls[-1],
            "GRIDGATE_MONITOR_INTERNAL_TOKEN": SECRET,
            "GRIDGATE_MONITOR_LOCAL_FACILITY_ROOT": str(self.facility),
            "GRIDGATE_RESULTS_BROKER_URL": broker_url,
            "GRIDGATE_RESULTS_RESULTS_DIR": str(self.results),
            "GRIDGATE_RESULTS_LOCAL_FACILITY_ROOT": str(self.facility),
        }
        logs = root / "logs"
        logs.mkdir()
        self.services: list[Service] = []

        def add(name: str, kind: str, argv: list[str], **extra: str) -> None:
            env = {**common, **extra}
            self.services.append(Service(name, kind, argv, env, logs / f"{name}.log"))

        add("auth", "auth", [str(BIN / "gridgate-auth"), "--port", str(auth_port)])
        for i, port in enumerate(self.gateway_ports):
            add(f"gateway-{i}", "gateway", [str(BIN / "gridgate-gateway"), "--port", str(port)])
        for i in range(submitters):
            add(
                f"submitter-{i}",
                "submitter",
                [str(BIN / "gridgate-submitter")],
                GRIDGATE_SUBMITTER_HEALTH_PORT=str(free_port()),
            )
        add(
            "monitor",
            "monitor",
            [str(BIN / "gridgate-monitor")],
            GRIDGATE_MONITOR_HEALTH_PORT=str(free_port()),
        )
        add(
            "results",
            "results",
            [str(BIN / "gridgate-results")],
            GRIDGATE_RESULTS_HEALTH_PORT=str(free_port()),
        )

    async def start(self) -> None:
        # One gateway first: it migrates the schema, and two migrating at once is not the
        # fault under test.
        first, rest = self.services[:2], self.services[2:]
        for service in first:
            service.start()
        await self.ready(self.urls[:1])
        for service in rest:
            service.start()
        await self.ready(self.urls)

    async def ready(self, urls: list[str], timeout_s: float = 60) -> None:
        deadline = time.monotonic() + timeout_s
        async with httpx.AsyncClient(timeout=2) as http:
            for url in urls:
                while True:
                    try:
                        if (await http.get(f"{url}/readyz")).status_code == 200:
                            break
                    except httpx.TransportError:
                        pass
                    dead = [s.name for s in self.services if s.process and not s.alive()]
                    if time.monotonic() > deadline or "gateway-0" in dead:
                        raise AssertionError(f"{url} did not become ready: {self.tail('gateway')}")
                    await asyncio.sleep(0.2)

    def tail(self, kind: str, lines: int = 30) -> str:
        return "\n".join(
            f"--- {s.name}\n" + "\n".join(s.log.read_text(errors="replace").splitlines()[-lines:])
            for s in self.services
            if s.kind == kind and s.log.exists()
        )

    def stop(self) -> None:
        for service in self.services:
            if service.alive():
                assert service.process is not None
                service.process.send_signal(signal.SIGTERM)
        for service in self.services:
            service.terminate()
        # Task runners are detached on purpose (they outlive a submitter); end ours.
        for status in self.facility.glob("*/task-*/status.json"):
            try:
                pid = json.loads(status.read_text()).get("runner_pid")
            except (OSError, ValueError):
                continue
            if isinstance(pid, int) and f"{status.parent}" in _cmdline(pid):
                try:
                    os.killpg(pid, signal.SIGKILL)
                except (ProcessLookupError, PermissionError):
                    pass
                try:
                    os.kill(pid, signal.SIGKILL)
                except (ProcessLookupError, PermissionError):
                    pass


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


# ---------------------------------------------------------------------------------------------
# the event tap


class Tap:
    """Durable queues on the events exchange and on the results command queue's key.

    Durable, so that copies published just before a broker stop are still read after it; a
    robust connection re-declares them when the node comes back.
    """

    def __init__(self, broker_url: str) -> None:
        self.broker_url = broker_url
        self.events: list[dict[str, Any]] = []
        self.collects: list[dict[str, Any]] = []
        self.last_message_at = time.monotonic()
        self.connection: aio_pika.abc.AbstractRobustConnection | None = None

    async def start(self) -> None:
        self.connection = await aio_pika.connect_robust(self.broker_url)
        channel = await self.connection.channel()
        events = await channel.declare_exchange(
            EVENTS_EXCHANGE, aio_pika.ExchangeType.TOPIC, durable=True
        )
        commands = await channel.declare_exchange(
            COMMANDS_EXCHANGE, aio_pika.ExchangeType.DIRECT, durable=True
        )
        event_queue = await channel.declare_queue("chaos.tap.events", durable=True)
        await event_queue.bind(events, "job.#")
        collect_queue = await channel.declare_queue("chaos.tap.collect", durable=True)
        await collect_queue.bind(commands, RESULTS_QUEUE)
        await event_queue.consume(self.on_event)
        await collect_queue.consume(self.on_collect)

    async def on_event(self, message: AbstractIncomingMessage) -> None:
        body = json.loads(message.body)
        self.events.append(
            {"id": body["id"], "key": message.routing_key, "type": body["type"], **body["data"]}
        )
        self.last_message_at = time.monotonic()
        await message.ack()

    async def on_collect(self, message: AbstractIncomingMessage) -> None:
        body = json.loads(message.body)
        if body.get("kind") == "collect-results":
            self.collects.append(body)
        self.last_message_at = time.monotonic()
        await message.ack()

    async def close(self) -> None:
        if self.connection is not None:
            await self.connection.close()


# ---------------------------------------------------------------------------------------------
# load and faults


@dataclass
class Run:
    """What happened during one run, for the checks and the table."""

    acknowledged: dict[str, dict[str, Any]] = field(default_factory=dict)
    submit_failures: int = 0
    kills: list[dict[str, Any]] = field(default_factory=list)
    crash_point_deaths: list[str] = field(default_factory=list)
    service_exits: list[str] = field(default_factory=list)
    broker_restarts: list[float] = field(default_factory=list)
    last_fault_at: float = 0.0
    load_started_at: float = 0.0


def job_fields(rng: random.Random, i: int) -> dict[str, str]:
    roll = rng.random()
    if roll < 0.15:
        return {"workflow": "hello-world", "name": f"chaos{i}", "sleep_s": str(rng.randint(0, 2))}
    tasks = 1 if roll < 0.6 else rng.randint(2, 6)
    return {
        "workflow": LEDGER_WORKFLOW,
        "tasks": str(tasks),
        "sleep_s": f"{rng.uniform(0.2, 3.0):.2f}",
    }


async def submit_jobs(
    cluster: Cluster, run: Run, settings: ChaosSettings, rng: random.Random, window_s: float
) -> None:
    """POST the jobs spread over the fault window, round-robin over the gateways."""
    token = cluster.issuer.mint("chaos-user", groups=["km3net"], audience="gridgate")
    headers = {"Authorization": f"Bearer {token}"}
    gap = window_s / max(1, settings.jobs)
    async with httpx.AsyncClient(timeout=30, headers=headers) as http:

        async def one(i: int) -> None:
            fields = {"PHASE": "RUN", "runid": f"chaos-{i}", **job_fields(rng, i)}
            # A POST cut by a kill may have committed: the key makes the retry find that job.
            key = {"Idempotency-Key": f"chaos-{i}-{secrets.token_hex(8)}"}
            for attempt in range(200):
                url = cluster.urls[(i + attempt) % len(cluster.urls)]
                try:
                    response = await http.post(f"{url}/api/jobs", data=fields, headers=key)
                except httpx.TransportError:
                    response = None
                if response is not None and response.status_code == 303:
                    job_id = response.headers["location"].rstrip("/").rsplit("/", 1)[-1]
                    run.acknowledged[job_id] = fields
                    return
                if response is not None and response.status_code < 500:
                    raise AssertionError(f"job refused: {response.status_code} {response.text}")
                run.submit_failures += 1
                await asyncio.sleep(0.5)
            raise AssertionError(f"job {i} was never accepted")

        tasks = []
        for i in range(settings.jobs):
            tasks.append(asyncio.create_task(one(i)))
            await asyncio.sleep(rng.uniform(0, 2 * gap))
        await asyncio.gather(*tasks)


def in_flight(run: Run, tap: Tap) -> int:
    finished = {e["job_id"] for e in tap.events if e.get("phase") in FINAL}
    return len(set(run.acknowledged) - finished)


async def supervise(cluster: Cluster, run: Run, stop: asyncio.Event) -> None:
    """Restart any service that died on its own (an armed crash point fired)."""
    while not stop.is_set():
        for service in cluster.services:
            if service.held:
                continue
            process = service.process
            if process is None or service.alive():
                continue
            if service.armed and process.returncode == -signal.SIGKILL:
                run.crash_point_deaths.append(f"{service.name}:{service.armed}")
                run.last_fault_at = time.monotonic()
                await asyncio.sleep(random.uniform(0.2, 1.5))
                # The killer may have taken this service meanwhile (it found it dead and will
                # start it itself): a second start here would leave an untracked twin holding
                # the service's health port.
                if service.held or service.process is not process:
                    continue
                service.start()
            else:
                # Exited on its own (e.g. gave up on the stopped broker): its log says why.
                run.service_exits.append(f"{service.name}:{process.returncode}")
                service.start()
        await asyncio.sleep(0.2)


async def kill_services(
    cluster: Cluster,
    run: Run,
    tap: Tap,
    settings: ChaosSettings,
    rng: random.Random,
    window_s: float,
) -> None:
    """SIGKILL random services at random moments while jobs are in flight; restart each."""
    weights = {"gateway": 4, "submitter": 3, "monitor": 3, "results": 2, "auth": 1}
    kinds = [s for s in cluster.services]
    interval = window_s / max(1, settings.kills)
    started = time.monotonic()
    for i in range(settings.kills):
        # The i-th kill falls in the i-th slice of the window, whatever the restarts took: the
        # kills stay inside the time jobs are still being submitted, so there is load to hit.
        due = started + (i + rng.uniform(0.15, 0.85)) * interval
        await asyncio.sleep(max(0.0, due - time.monotonic()))
        # Kill under load only: wait for work in flight (bounded, then kill anyway and the
        # check on in_flight_at_kill fails).
        for _ in range(100):
            if in_flight(run, tap) > 0:
                break
            await asyncio.sleep(0.1)
        target = rng.choices(kinds, weights=[weights[s.kind] for s in kinds])[0]
        flying = in_flight(run, tap)
        target.held = True
        target.kill()
        run.last_fault_at = time.monotonic()
        points = CRASH_POINTS[target.kind]
        armed = ""
        if points and rng.random() < 0.4:
            armed = ",".join(
                f"{p}:{rng.randint(1, 4)}" for p in rng.sample(points, min(2, len(points)))
            )
        run.kills.append(
            {
                "at_s": round(time.monotonic() - run.load_started_at, 2),
                "service": target.name,
                "in_flight": flying,
                "restart_armed": armed,
            }
        )
        await asyncio.sleep(rng.uniform(0.3, 3.0))
        target.start(armed)
        target.held = False


async def restart_broker(
    broker: ChaosBroker, run: Run, settings: ChaosSettings, rng: random.Random, window_s: float
) -> None:
    for _ in range(settings.broker_restarts):
        await asyncio.sleep(rng.uniform(0.2, 0.5) * window_s / max(1, settings.broker_restarts))
        await broker.stop_app()
        run.last_fault_at = time.monotonic()
        await asyncio.sleep(rng.uniform(10, 20))
        await broker.start_app()
        run.last_fault_at = time.monotonic()
        run.broker_restarts.append(round(time.monotonic() - run.load_started_at, 2))


# ---------------------------------------------------------------------------------------------
# the checks


async def read_database(database_url: str) -> tuple[dict[str, dict[str, Any]], dict[str, list]]:
    engine = create_async_engine(database_url)
    try:
        async with engine.connect() as connection:
            jobs = {
                row["id"]: dict(row)
                for row in (
                    await connection.execute(
                        text(
                            "SELECT id, phase, workflow_id, task_count, error_message, "
                            "error_type FROM jobs"
                        )
                    )
                ).mappings()
            }
            history: dict[str, list[dict[str, Any]]] = defaultdict(list)
            for row in (
                await connection.execute(
                    text("SELECT id, job_id, from_phase, to_phase FROM job_history ORDER BY id")
                )
            ).mappings():
                history[row["job_id"]].append(dict(row))
            results: dict[str, list[dict[str, Any]]] = defaultdict(list)
            for row in (
                await connection.execute(text("SELECT job_id, name, sha256 FROM job_results"))
            ).mappings():
                results[row["job_id"]].append(dict(row))
            outbox = (await connection.execute(text("SELECT count(*) FROM outbox"))).scalar()
    finally:
        await engine.dispose()
    return jobs, {"history": history, "results": results, "outbox": [outbox]}  # type: ignore[dict-item]


async def wait_until_final(
    cluster: Cluster, run: Run, tap: Tap, settings: ChaosSettings
) -> tuple[float | None, dict[str, dict[str, Any]], dict[str, Any]]:
    """Poll until every acknowledged job is final, the outbox is empty and the tap is quiet."""
    deadline = time.monotonic() + settings.recovery_s
    recovered_at = None
    while True:
        try:
            jobs, extra = await read_database(cluster.database_url)
        except OperationalError:  # a locked SQLite file: read again
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(1)
            continue
        done = all(jobs.get(j, {}).get("phase") in FINAL for j in run.acknowledged)
        if done and recovered_at is None:
            recovered_at = time.monotonic()
        quiet = time.monotonic() - tap.last_message_at > 3
        if done and extra["outbox"][0] == 0 and quiet:
            break
        if time.monotonic() > deadline:
            break
        await asyncio.sleep(1)
    recovery = None if recovered_at is None else max(0.0, recovered_at - run.last_fault_at)
    return recovery, jobs, extra


def ledger_counts(ledger: Path) -> Counter[tuple[str, int]]:
    counts: Counter[tuple[str, int]] = Counter()
    for line in ledger.read_text().splitlines():
        job, task, _pid = line.split()
        counts[(job, int(task.removeprefix("task-")))] += 1
    return counts


def check(
    run: Run,
    tap: Tap,
    jobs: dict[str, dict[str, Any]],
    extra: dict[str, Any],
    ledger: Path,
    results_dir: Path,
) -> dict[str, Any]:
    history: dict[str, list[dict[str, Any]]] = extra["history"]
    lost = sorted(j for j in run.acknowledged if jobs.get(j, {}).get("phase") not in FINAL)

    final_ids: dict[str, set[str]] = defaultdict(set)
    final_copies: Counter[str] = Counter()
    event_phases: dict[str, list[str]] = defaultdict(list)
    for event in tap.events:
        phase = event.get("phase")
        if phase in FINAL and event["key"].endswith("." + phase.lower()):
            final_ids[event["job_id"]].add(event["id"])
            final_copies[event["job_id"]] += 1
            event_phases[event["job_id"]].append(phase)
    duplicated_final = sorted(j for j, ids in final_ids.items() if len(ids) > 1)
    redelivered_final = sorted(j for j, n in final_copies.items() if n > len(final_ids[j]))

    broken_chains = []
    for job_id, job in jobs.items():
        rows = [r for r in history.get(job_id, []) if r["to_phase"]]
        broken = any(b["from_phase"] != a["to_phase"] for a, b in itertools.pairwise(rows))
        if broken or not rows or rows[-1]["to_phase"] != job["phase"]:
            broken_chains.append(job_id)

    disagree = []
    for job_id, job in jobs.items():
        if job["phase"] not in FINAL:
            continue
        if set(event_phases.get(job_id, [])) != {job["phase"]}:
            disagree.append(job_id)

    counts = ledger_counts(ledger)
    double = sorted(f"{j}/{t}" for (j, t), n in counts.items() if n > 1)
    not_run = sorted(
        f"{j}/{t}"
        for j, job in jobs.items()
        if job["workflow_id"] == LEDGER_WORKFLOW and job["phase"] == "COMPLETED"
        for t in range(job["task_count"])
        if counts[(j, t)] == 0
    )

    collects: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for body in tap.collects:
        collects[body["job_id"]].append(body)
    collect_twice = []
    collect_differ = []
    for job_id, bodies in collects.items():
        distinct = {b["message_id"]: b for b in bodies}
        if len(distinct) > 1:
            collect_twice.append(job_id)
            payloads = {
                json.dumps({k: v for k, v in b.items() if k not in {"message_id", "sent_at"}})
                for b in distinct.values()
            }
            if len(payloads) > 1:
                collect_differ.append(job_id)
    results_mismatch = []
    for job_id, rows in extra["results"].items():
        for row in rows:
            stored = results_dir / job_id / row["name"]
            if stored.is_file():
                if hashlib.sha256(stored.read_bytes()).hexdigest() != row["sha256"]:
                    results_mismatch.append(f"{job_id}/{row['name']}")

    errored = sorted(j for j in run.acknowledged if jobs.get(j, {}).get("phase") == "ERROR")
    unreadable = [j for j in errored if len((jobs[j].get("error_message") or "").strip()) < 10]
    return {
        "jobs": len(run.acknowledged),
        "jobs_in_database": len(jobs),
        "orphan_jobs": len(set(jobs) - set(run.acknowledged)),
        "submit_retries": run.submit_failures,
        "kills": len(run.kills),
        "crash_point_deaths": len(run.crash_point_deaths),
        "service_exits": len(run.service_exits),
        "broker_restarts": len(run.broker_restarts),
        "completed": sum(1 for j in jobs.values() if j["phase"] == "COMPLETED"),
        "lost": len(lost),
        "errored_by_faults": len(errored),
        "errored_unreadable": len(unreadable),
        "duplicated_final_events": len(duplicated_final),
        "redelivered_final_copies": len(redelivered_final),
        "broken_chains": len(broken_chains),
        "phase_disagrees_with_events": len(disagree),
        "double_executions": len(double),
        "completed_without_running": len(not_run),
        "collect_sent_twice": len(collect_twice),
        "collect_twice_results_differ": len(collect_differ) + len(results_mismatch),
        "min_in_flight_at_kill": min((k["in_flight"] for k in run.kills), default=0),
        "examples": {
            "lost": [{"job": j, "phase": jobs.get(j, {}).get("phase")} for j in lost[:5]],
            "duplicated_final_events": duplicated_final[:5],
            "broken_chains": [
                {
                    "job": j,
                    "phase": jobs[j]["phase"],
                    "history": [(r["from_phase"], r["to_phase"]) for r in history.get(j, [])],
                }
                for j in broken_chains[:3]
            ],
            "phase_disagrees_with_events": [
                {"job": j, "phase": jobs[j]["phase"], "events": event_phases.get(j, [])}
                for j in disagree[:3]
            ],
            "double_executions": double[:5],
            "completed_without_running": not_run[:5],
            "collect_twice_results_differ": (collect_differ + results_mismatch)[:5],
            "errors": sorted({(jobs[j].get("error_message") or "")[:160] for j in errored})[:8],
            "errored_unreadable": unreadable[:5],
        },
        "kill_log": run.kills,
        "crash_point_log": run.crash_point_deaths,
        "service_exit_log": run.service_exits,
        "broker_restart_at_s": run.broker_restarts,
    }


FIGURES = [
    ("jobs", "jobs"),
    ("kills", "kills"),
    ("crash_point_deaths", "crash pts"),
    ("broker_restarts", "broker"),
    ("service_exits", "exits"),
    ("lost", "lost"),
    ("orphan_jobs", "orphans"),
    ("errored_by_faults", "errored"),
    ("duplicated_final_events", "dup final"),
    ("broken_chains", "broken"),
    ("phase_disagrees_with_events", "disagree"),
    ("double_executions", "double run"),
    ("collect_twice_results_differ", "collect diff"),
    ("recovery_s", "recovery s"),
    ("duration_s", "run s"),
]


def table(figures: dict[str, dict[str, Any]]) -> str:
    """One table, a row per configuration."""
    header = ["config"] + [label for _, label in FIGURES]
    rows = [
        [name] + [str(result.get(key)) for key, _ in FIGURES] for name, result in figures.items()
    ]
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    line = lambda r: "  ".join(c.rjust(w) for c, w in zip(r, widths, strict=True))  # noqa: E731
    return "\n".join([line(header), *(line(r) for r in rows)])


def write_figures(name: str, result: dict[str, Any]) -> Path:
    directory = REPO / "var" / "chaos"
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{name}.json"
    path.write_text(json.dumps(result, indent=2, default=str))
    return path
