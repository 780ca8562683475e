"""100,000 jobs in flight: the monitor's cycle and the gateway's rate of applied observations
(issue 16, P3).

Usage: ``uv run python bench/scale.py [--jobs 100000] [--cycles 4] [--change 0.05]``

Real parts: the gateway (``gateway_server.py``, one uvicorn process with its reports consumer,
on a PostgreSQL database of its own), RabbitMQ (a vhost of its own) and the monitor's own
``MonitorService`` (its in-flight listing over HTTP, its comparison, its publisher). The one
stand-in is the facility: a load generator that answers the monitor's bulk status reads for
every id, costing ``--read-ms`` of wall time per batch of ``--batch`` ids, ``--bridges``
batches at a time (DIRAC's measured cost: about 0.12 ms per job in batches of 1,000, spread
over the monitor's 2 bridge processes; see docs/benchmarks.md, "Status refresh").

Set-up is not measured and takes a shortcut: one job goes the real way (created, submitted,
observed EXECUTING through the gateway's own services), then SQL copies its job and task rows
``--jobs - 1`` times in one statement each. Every copy is EXECUTING on the facility "local"
with its own facility job id, as a facility would hold it.

Each cycle, ``--change`` of the jobs get a new minor status (DIRAC's minor status moves on while
the job runs: one observation each, history row and all). The first cycle changes nothing, so
it times the listing and the reads alone. Per cycle it prints the in-flight listing, the status
reads, the publishing of the changes and the whole cycle, then how fast the gateway applied
those observations (from the first publish to the last history row written), the gateway's CPU
per observation, and the machine's load. Speed is reported here, never asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import signal
import sys
import tempfile
import time
from collections.abc import Mapping
from contextlib import ExitStack
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import httpx
from aio_pika import connect_robust
from pydantic import SecretStr

BENCH_DIR = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH_DIR))

from post_jobs import (  # noqa: E402
    HOST,
    Server,
    database,
    free_port,
    machine_cpu,
    process_cpu_s,
    server_process,
    vhost,
    wait_ready,
)

from gridgate.broker import Publisher, declare_topology  # noqa: E402
from gridgate.contracts import JobStateObserved, JobSubmitted, TaskState  # noqa: E402
from gridgate.contracts.phases import Phase  # noqa: E402
from gridgate.contracts.tasks import TaskStatus  # noqa: E402
from gridgate.core.logging import configure_logging  # noqa: E402
from gridgate.gateway.config import GatewaySettings  # noqa: E402
from gridgate.gateway.consumers.reports import ReportHandler  # noqa: E402
from gridgate.gateway.factory import ProcessContext, job_policy, unit_of_work  # noqa: E402
from gridgate.gateway.schema.engine import create_engine  # noqa: E402
from gridgate.gateway.schema.migrate import upgrade_schema  # noqa: E402
from gridgate.gateway.schema.tables import jobs_table, tasks_table  # noqa: E402
from gridgate.gateway.services.facilities import FacilityCatalogue  # noqa: E402
from gridgate.gateway.services.group_commit import GroupCommit  # noqa: E402
from gridgate.gateway.services.jobs import JobRequest  # noqa: E402
from gridgate.gateway.services.notifier import PhaseNotifier  # noqa: E402
from gridgate.iam.identity import Identity  # noqa: E402
from gridgate.monitor.service import MonitorService  # noqa: E402
from gridgate.workflows import WorkflowCatalogue  # noqa: E402

OWNER = Identity(sub="bench-user", groups=("cta",), vos=("cta",))
REQUEST = JobRequest(workflow="hello-world", run=True, parameters={"name": "bench"})
FACILITY = "local"
TOKEN = "scale-bench-internal-token"
RUNNING = "Running"


async def seed(url: str, count: int) -> None:
    """One job the real way, then ``count - 1`` copies of its rows (set-up, not measured)."""
    settings = GatewaySettings(database_url=SecretStr(url))
    context = ProcessContext(
        settings=settings,
        engine=create_engine(url),
        workflows=WorkflowCatalogue.shipped(),
        facilities=FacilityCatalogue.load(),
        notifier=PhaseNotifier(),
        relay=None,
        policy=job_policy(settings, sys.executable),
        group_commit=GroupCommit(),
    )
    await upgrade_schema(context.engine)
    async with unit_of_work(context) as factory:
        template = await factory.job_service().create_job(OWNER, REQUEST)
    handler = ReportHandler(context)
    await handler(JobSubmitted(job_id=template, facility=FACILITY, facility_job_ids=["s0"]))
    task = TaskState(index=0, facility_job_id="s0", phase=Phase.EXECUTING, facility_status=RUNNING)
    await handler(JobStateObserved(job_id=template, observed_at=datetime.now(UTC), tasks=[task]))
    await context.engine.dispose()
    dsn = url.replace("postgresql+asyncpg://", "postgresql://", 1)
    connection = await asyncpg.connect(dsn)
    try:
        new_id = "'sc' || lpad(g::text, 10, '0')"
        job_columns = [c.name for c in jobs_table.c]
        job_values = [
            new_id
            if c == "id"
            else "creation_time + g * interval '1 microsecond'"
            if c == "creation_time"
            else f"'{FACILITY}'"
            if c == "facility"
            else c
            for c in job_columns
        ]
        await connection.execute(
            f"INSERT INTO jobs ({', '.join(job_columns)}) "
            f"SELECT {', '.join(job_values)} FROM jobs, generate_series(1, {count - 1}) g "
            "WHERE jobs.id = $1",
            template,
        )
        task_columns = [c.name for c in tasks_table.c]
        task_values = [
            new_id if c == "job_id" else "'s' || g::text" if c == "facility_job_id" else c
            for c in task_columns
        ]
        await connection.execute(
            f"INSERT INTO job_tasks ({', '.join(task_columns)}) "
            f"SELECT {', '.join(task_values)} FROM job_tasks, generate_series(1, {count - 1}) g "
            "WHERE job_tasks.job_id = $1",
            template,
        )
        await connection.execute("UPDATE jobs SET facility = $1 WHERE id = $2", FACILITY, template)
        await connection.execute("ANALYZE")
    finally:
        await connection.close()


class Facility:
    """The load generator in the facility's part: answers bulk status reads for every id at
    a measured cost per batch; ``move`` gives some jobs a new minor status."""

    def __init__(self, count: int, batch: int, read_s: float, bridges: int) -> None:
        self.detail: dict[str, str | None] = {f"s{i}": None for i in range(count)}
        self.batch, self.read_s, self.bridges = batch, read_s, bridges
        self.read_wall = 0.0
        self.gateway_pid = 0
        self.gateway_cpu_at_publish = 0.0

    def move(self, share: float, step: int) -> int:
        chosen = random.sample(list(self.detail), int(len(self.detail) * share))
        for facility_job_id in chosen:
            self.detail[facility_job_id] = f"Application step {step}"
        return len(chosen)

    async def status(self, facility_job_ids: list[str]) -> Mapping[str, TaskStatus]:
        started = time.monotonic()
        batches = [
            facility_job_ids[i : i + self.batch]
            for i in range(0, len(facility_job_ids), self.batch)
        ]
        found: dict[str, TaskStatus] = {}

        async def bridge() -> None:
            while batches:
                ids = batches.pop()
                await asyncio.sleep(self.read_s)  # DIRAC's side of the call
                for i in ids:
                    found[i] = TaskStatus(
                        facility_task_id=i,
                        state=RUNNING,
                        phase=Phase.EXECUTING,
                        detail=self.detail.get(i),
                    )

        await asyncio.gather(*(bridge() for _ in range(self.bridges)))
        self.read_wall = time.monotonic() - started
        # The gateway's CPU from here on is applying this cycle's observations.
        self.gateway_cpu_at_publish = process_cpu_s(self.gateway_pid)
        return found


class TimedMonitor(MonitorService):
    """The monitor's own service; only the listing is timed on its way through."""

    listing_wall = 0.0
    listed = 0

    async def in_flight(self, facility: str) -> list[dict[str, Any]]:
        started = time.monotonic()
        jobs = await super().in_flight(facility)
        self.listing_wall = time.monotonic() - started
        self.listed = len(jobs)
        return jobs


async def applied_since(connection: asyncpg.Connection, after: int) -> int:
    value = await connection.fetchval(
        "SELECT count(*) FROM job_history WHERE id > $1 AND source = 'monitor'", after
    )
    return int(value)


async def drive(
    args: argparse.Namespace, dsn: str, broker_url: str, gateway: str, gateway_pid: int
) -> None:
    facility = Facility(args.jobs, args.batch, args.read_ms / 1000, args.bridges)
    facility.gateway_pid = gateway_pid
    connection = await connect_robust(broker_url)
    channel = await connection.channel()
    await declare_topology(channel)
    await channel.close()
    publisher = await Publisher.open(connection)
    db = await asyncpg.connect(dsn)
    async with httpx.AsyncClient(base_url=gateway, timeout=300.0) as http:
        monitor = TimedMonitor(publisher, http, {FACILITY: facility}, TOKEN)
        print(
            f"{'cycle':>5} {'listed':>7} {'listing':>8} {'reads':>7} {'publish':>8} "
            f"{'cycle':>7} {'changes':>7} | {'applied/s':>9} {'gw CPU/obs':>10} "
            f"{'busy':>5} load"
        )
        for cycle in range(args.cycles):
            moved = facility.move(args.change, cycle) if cycle else 0
            mark = await db.fetchval("SELECT coalesce(max(id), 0) FROM job_history")
            machine = machine_cpu()
            spy = None
            if args.py_spy and cycle == 1:
                spy = await asyncio.create_subprocess_exec(
                    "py-spy",
                    "record",
                    "--pid",
                    str(gateway_pid),
                    "--format",
                    "raw",
                    "--duration",
                    str(args.py_spy_s),
                    "--nonblocking",
                    "-o",
                    args.py_spy,
                    stdout=asyncio.subprocess.DEVNULL,
                    stderr=asyncio.subprocess.DEVNULL,
                )
            started = time.monotonic()
            changed = await monitor.poll_once()
            cycle_wall = time.monotonic() - started
            publish = cycle_wall - monitor.listing_wall - facility.read_wall
            first_publish = started + monitor.listing_wall + facility.read_wall
            applied = await applied_since(db, mark)
            deadline = time.monotonic() + args.apply_timeout
            while applied < changed and time.monotonic() < deadline:
                await asyncio.sleep(0.2)
                applied = await applied_since(db, mark)
            done = time.monotonic()
            busy_jiffies, total_jiffies = (
                a - b for a, b in zip(machine_cpu(), machine, strict=True)
            )
            cpu = process_cpu_s(gateway_pid) - facility.gateway_cpu_at_publish
            if spy is not None:
                await spy.wait()
            rate = f"{applied / (done - first_publish):>9.0f}" if changed else f"{'-':>9}"
            per = f"{cpu * 1e6 / applied:>7.0f} us" if applied else f"{'-':>10}"
            print(
                f"{cycle:>5} {monitor.listed:>7} {monitor.listing_wall:>7.2f}s "
                f"{facility.read_wall:>6.2f}s {publish:>7.2f}s {cycle_wall:>6.2f}s "
                f"{changed:>7} | {rate} {per} {busy_jiffies / total_jiffies:>5.0%} "
                f"{os.getloadavg()[0]:.1f}",
                flush=True,
            )
            if applied < changed:
                print(f"  only {applied} of {changed} applied after {args.apply_timeout} s")
            if moved and changed != min(moved, monitor.listed):
                print(f"  moved {moved} jobs, the monitor reported {changed}")
    await db.close()
    await publisher.close()
    await connection.close()


def _terminate(_signum: int, _frame: object) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=100_000)
    parser.add_argument("--cycles", type=int, default=4)
    parser.add_argument("--change", type=float, default=0.05, help="share moved per cycle")
    parser.add_argument("--batch", type=int, default=1000, help="ids per status read")
    parser.add_argument("--read-ms", type=float, default=120.0, help="wall ms per batch")
    parser.add_argument("--bridges", type=int, default=2, help="batches read at a time")
    parser.add_argument("--apply-timeout", type=float, default=600.0)
    parser.add_argument("--py-spy", help="record the gateway in cycle 1 to this file (raw)")
    parser.add_argument("--py-spy-s", type=int, default=20)
    parser.add_argument("--admin-dsn", default="postgresql://postgres@127.0.0.1:5432/test")
    parser.add_argument("--broker", default="amqp://guest:guest@127.0.0.1:5672")
    args = parser.parse_args(argv)
    configure_logging(json=True, level="WARNING")
    signal.signal(signal.SIGTERM, _terminate)
    tag = f"gridgate_scale_{os.getpid()}"
    broker_user = args.broker.split("://", 1)[1].split(":", 1)[0]
    print(f"uptime before: {os.popen('uptime').read().strip()}")
    with ExitStack() as stack:
        work = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="gridgate-scale-")))
        dsn = stack.enter_context(database(args.admin_dsn, tag))
        url = dsn.replace("postgresql://", "postgresql+asyncpg://", 1)
        vhost_name = stack.enter_context(vhost(tag.replace("_", "-"), broker_user))
        broker_url = f"{args.broker}/{vhost_name}"
        started = time.monotonic()
        asyncio.run(seed(url, args.jobs))
        seconds = time.monotonic() - started
        print(f"set-up: {args.jobs} EXECUTING jobs by SQL copy in {seconds:.1f} s")
        port = free_port()
        argv_gw = [
            sys.executable,
            str(BENCH_DIR / "gateway_server.py"),
            "--host",
            HOST,
            "--port",
            str(port),
            "--data-dir",
            str(work),
            "--broker-url",
            broker_url,
            "--database-url",
            url,
            "--internal-token",
            TOKEN,
        ]
        process = stack.enter_context(server_process(argv_gw, work / "gateway.log"))
        gateway = Server(
            "gridgate",
            f"http://{HOST}:{port}",
            f"http://{HOST}:{port}/readyz",
            process,
            work / "gateway.log",
            work / "unused.lua",
        )
        wait_ready(gateway)
        asyncio.run(drive(args, dsn, broker_url, f"http://{HOST}:{port}", process.pid))
    print(f"uptime after: {os.popen('uptime').read().strip()}")
    print("goals: cycle <= 30 s over 100,000 in-flight jobs; >= 2,000 observations/s applied")
    return 0


if __name__ == "__main__":
    sys.exit(main())
