"""Where the gateway's CPU goes when it accepts a job: a breakdown, in process, without a socket.

Usage: ``uv run python bench/profile_post_jobs.py [--jobs 1000] [--concurrency 50] [--repeat 3]``

``post_jobs.py`` gives the end-to-end figure (server CPU per accepted job, relay included). This
script takes the same work apart on the real PostgreSQL and RabbitMQ. It builds the gateway and the
bare handler in this process (lifespans run, the outbox relay stopped so that each part is measured
alone), calls them as ASGI apps (no uvicorn, no HTTP parsing) and reports CPU microseconds of this
process per job, from ``time.process_time``, median of ``--repeat`` interleaved repetitions:

- POST /api/jobs through the gateway app, and ``JobService.create_job`` alone (the difference is
  the HTTP/FastAPI/auth/form layer), with the SQL statements and PostgreSQL transactions per job;
- the outbox relay publishing those jobs' rows;
- parts without I/O: parameter validation, CloudEvent building, a cached token check;
- POST /jobs through the bare handler;
- one INSERT, ten per transaction, written four ways (SQLAlchemy ``.values()``, SQLAlchemy with
  parameters, SQLAlchemy executemany, raw asyncpg), and the gateway's ten statements in raw
  asyncpg: what the SQL layer costs per statement.

Creates and drops its own databases and vhost. Only this process's CPU is counted (PostgreSQL and
RabbitMQ run in their own), so the figures are the gateway's share of a request.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import httpx
from asgi_lifespan import LifespanManager
from fastapi import FastAPI
from pydantic import SecretStr
from sqlalchemy import event, insert
from starlette.types import ASGIApp, Message

BENCH_DIR = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH_DIR))

from bare_handler import create_app as create_bare_app  # noqa: E402
from gateway_server import AUDIENCE, issuer_url  # noqa: E402
from post_jobs import BODY, database, vhost  # noqa: E402

from gridgate.auth.config import AuthSettings  # noqa: E402
from gridgate.auth.main import create_app as create_auth_app  # noqa: E402
from gridgate.broker.publisher import cloud_event  # noqa: E402
from gridgate.core.logging import configure_logging  # noqa: E402
from gridgate.gateway.config import GatewaySettings  # noqa: E402
from gridgate.gateway.factory import ProcessContext, unit_of_work  # noqa: E402
from gridgate.gateway.main import create_app  # noqa: E402
from gridgate.gateway.schema import history_table  # noqa: E402
from gridgate.gateway.services.jobs import JobRequest  # noqa: E402
from gridgate.iam.dev_issuer import DevIssuer  # noqa: E402
from gridgate.iam.validator import TokenValidator  # noqa: E402
from gridgate.workflows import validate_parameters  # noqa: E402

HOST, PORT = "127.0.0.1", 8999  # only names the issuer; nothing listens there
REQUEST = JobRequest(workflow="hello-world", run=True, parameters={"name": "bench"})
Work = Callable[[int], Awaitable[object]]


async def cpu_per_item(count: int, concurrency: int, work: Work) -> float:
    """CPU microseconds per item of ``work(i)`` for i < count, ``concurrency`` at a time."""
    items = iter(range(count))

    async def lane() -> None:
        for i in items:
            await work(i)

    start = time.process_time()
    await asyncio.gather(*(lane() for _ in range(concurrency)))
    return (time.process_time() - start) * 1e6 / count


def cpu_per_call(count: int, work: Callable[[], object]) -> float:
    start = time.process_time()
    for _ in range(count):
        work()
    return (time.process_time() - start) * 1e6 / count


def asgi_post(app: ASGIApp, path: str, token: str | None) -> Work:
    """POST the benchmark's form to an ASGI app directly; fail unless it answers 303."""
    body = BODY.encode()
    headers = [
        (b"host", b"127.0.0.1:8000"),
        (b"content-type", b"application/x-www-form-urlencoded"),
        (b"content-length", str(len(body)).encode()),
    ]
    if token:
        headers.append((b"authorization", f"Bearer {token}".encode()))

    async def post(_: int) -> None:
        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": "POST",
            "scheme": "http",
            "path": path,
            "raw_path": path.encode(),
            "root_path": "",
            "query_string": b"",
            "headers": headers,
            "client": (HOST, 50000),
            "server": (HOST, 8000),
            "state": {},
        }
        messages = [{"type": "http.request", "body": body, "more_body": False}]
        status: list[int] = []

        async def receive() -> Message:
            if messages:
                return messages.pop()
            await asyncio.Event().wait()  # no disconnect while the app runs
            raise AssertionError

        async def send(message: Message) -> None:
            if message["type"] == "http.response.start":
                status.append(message["status"])

        await app(scope, receive, send)
        if status != [303]:
            raise RuntimeError(f"POST {path} answered {status}")

    return post


async def pg_transactions(dsn: str, db: str) -> tuple[int, int]:
    """(commits, rollbacks) PostgreSQL has counted for ``db`` so far."""
    await asyncio.sleep(1.2)  # backends report their counters about once a second
    connection = await asyncpg.connect(dsn)
    try:
        row = await connection.fetchrow(
            "SELECT xact_commit, xact_rollback FROM pg_stat_database WHERE datname = $1", db
        )
    finally:
        await connection.close()
    assert row is not None
    return int(row[0]), int(row[1])


# The statements JobService.create_job sends for a job created with PHASE=RUN, in order.
JOB_INSERT = (
    "INSERT INTO jobs (id, owner, vo, group_name, run_id, workflow_id, workflow_version, facility,"
    " phase, parameters, creation_time, start_time, end_time, execution_duration, destruction,"
    " quote, error_type, error_message, task_count, finished_outcome, finished_detail,"
    " updated_at) VALUES ($1, 'bench-user', 'cta', NULL, NULL, 'hello-world', '1.0.0', 'local',"
    " 'PENDING', $2, $3, NULL, NULL, 600, $4, NULL, NULL, NULL, 1, NULL, NULL, $3)"
)
HISTORY_INSERT = (
    "INSERT INTO job_history (job_id, at, source, detail, from_phase, to_phase)"
    " VALUES ($1, $2, 'user', $3, $4, $5)"
)
OUTBOX_INSERT = (
    "INSERT INTO outbox (kind, routing_key, message_id, message_type, job_id, body, created_at)"
    " VALUES ('event', 'cta.queued', $1, 'jobs.queued', $2, $3, $4)"
)


async def raw_job(pool: asyncpg.Pool, body: str) -> None:
    """The gateway's ten statements for one job, in one transaction, through asyncpg."""
    job_id, now = uuid.uuid4().hex, datetime.now(UTC)
    async with pool.acquire() as db, db.transaction():
        await db.execute(JOB_INSERT, job_id, '{"name": "bench"}', now, now + timedelta(days=30))
        await db.execute(
            "INSERT INTO job_tasks (job_id, task_index, phase) VALUES ($1, 0, 'PENDING')", job_id
        )
        await db.execute(HISTORY_INSERT, job_id, now, "created", None, "PENDING")
        await db.fetch("SELECT * FROM jobs WHERE id = $1", job_id)
        await db.fetch("SELECT * FROM job_tasks WHERE job_id = $1 ORDER BY task_index", job_id)
        await db.execute(OUTBOX_INSERT, uuid.uuid4().hex, job_id, body, now)
        await db.execute(
            "UPDATE jobs SET phase = 'QUEUED', updated_at = $2 WHERE id = $1", job_id, now
        )
        await db.execute(HISTORY_INSERT, job_id, now, "queued", "PENDING", "QUEUED")
        await db.execute(OUTBOX_INSERT, uuid.uuid4().hex, job_id, body, now)
        await db.execute(OUTBOX_INSERT, uuid.uuid4().hex, job_id, body, now)


def quiet_logging(level: str) -> None:
    """Production logging (JSON lines) written to /dev/null: its cost counts, a tty's does not."""
    # The logger keeps this file open for the life of the process.
    real, sys.stderr = sys.stderr, open(os.devnull, "w")
    try:
        configure_logging(json=True, level=level)
    finally:
        sys.stderr = real


def structured_event(data: dict[str, Any]) -> bytes:
    from cloudevents.core.bindings import rabbitmq as ce_rabbitmq
    from cloudevents.core.formats.json import JSONFormat

    built = cloud_event(event_type="t", source="s", subject="jobs/x", data=data)
    body: bytes = ce_rabbitmq.to_structured(built, JSONFormat()).body
    return body


class Table:
    """Rows of ``name -> [us per item, one per repetition]``, printed as medians."""

    def __init__(self) -> None:
        self.rows: dict[str, list[float]] = {}

    def add(self, name: str, micros: float) -> None:
        self.rows.setdefault(name, []).append(micros)

    def median(self, name: str) -> float:
        return statistics.median(self.rows[name])

    def print(self, title: str) -> None:
        print(title)
        for name, values in self.rows.items():
            spread = " ".join(f"{v:.0f}" for v in values)
            print(f"  {name:<56} {statistics.median(values):>7.0f} us   ({spread})")


async def profile(args: argparse.Namespace, dsns: dict[str, str], broker_url: str) -> None:
    work = Path(tempfile.mkdtemp(prefix="gridgate-profile-"))
    issuer = DevIssuer(issuer_url(HOST, PORT), work / "dev-issuer-key.json")
    token = issuer.mint("bench-user", groups=["cta"], audience=AUDIENCE, lifetime_s=3600)
    keys = FastAPI()
    keys.mount("/auth", create_auth_app(AuthSettings(), dev_issuer=issuer))
    validator = TokenValidator(
        issuer.issuer, AUDIENCE, http=httpx.AsyncClient(transport=httpx.ASGITransport(app=keys))
    )
    gw_dsn = dsns["gateway"]
    settings = GatewaySettings(
        database_url=SecretStr(gw_dsn.replace("postgresql://", "postgresql+asyncpg://", 1)),
        broker_url=SecretStr(broker_url),
        oidc_issuer=issuer.issuer,
        oidc_audience=AUDIENCE,
        results_dir=work / "results",
    )
    gateway = create_app(settings, validator=validator)
    bare = create_bare_app(dsns["bare"], broker_url)
    n, lanes = args.jobs, args.concurrency
    jobs, sql = Table(), Table()
    async with LifespanManager(gateway), LifespanManager(bare):
        context: ProcessContext = gateway.state.context
        assert context.relay is not None
        await context.relay.stop()  # measured on its own below
        identity = await validator.validate(token)

        async def create(_: int) -> None:
            async with unit_of_work(context, on_demand=True) as factory:  # as POST /api/jobs
                await factory.job_service().create_job(identity, REQUEST)

        post_gateway = asgi_post(gateway, "/api/jobs", token)
        post_bare = asgi_post(bare, "/jobs", None)
        for warm in (post_gateway, post_bare):
            await cpu_per_item(200, lanes, warm)

        statements: Counter[str] = Counter()

        @event.listens_for(context.engine.sync_engine, "before_cursor_execute")
        def _count(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
            statements[" ".join(statement.split()[:3])] += 1

        commits0, rollbacks0 = await pg_transactions(gw_dsn, dsns["gateway_name"])
        await cpu_per_item(n, lanes, create)
        commits1, rollbacks1 = await pg_transactions(gw_dsn, dsns["gateway_name"])
        per_job = {k: v / n for k, v in statements.most_common()}
        event.remove(context.engine.sync_engine, "before_cursor_execute", _count)

        relayed = 0
        relay_cpu = 0.0
        for _ in range(args.repeat):
            jobs.add(
                "gateway POST /api/jobs (ASGI, relay off)",
                await cpu_per_item(n, lanes, post_gateway),
            )
            jobs.add("  JobService.create_job alone", await cpu_per_item(n, lanes, create))
            quiet_logging("WARNING")
            jobs.add(
                "  JobService.create_job, logging at WARNING", await cpu_per_item(n, lanes, create)
            )
            quiet_logging("INFO")
            start = time.process_time()
            while sent := await context.relay.relay_once():
                relayed += sent
            relay_cpu += time.process_time() - start
            jobs.add("bare POST /jobs (ASGI)", await cpu_per_item(n, lanes, post_bare))

        definition = context.workflows.get("hello-world", None)
        data = {"job_id": "x" * 32, "owner": "bench-user", "vo": "cta", "phase": "QUEUED"}
        parts = {
            "  validate_parameters (jsonschema)": lambda: validate_parameters(
                definition, {"name": "b"}
            ),
            "  CloudEvent built and serialised (2 per job)": lambda: structured_event(data),
        }
        for name, part in parts.items():
            jobs.add(name, cpu_per_call(n, part))
        jobs.add(
            "  cached token validation",
            await cpu_per_item(n, 1, lambda _: validator.validate(token)),
        )

        # One statement, ten times per transaction, four ways.
        now = datetime.now(UTC)
        pool = await asyncpg.create_pool(gw_dsn, min_size=10, max_size=10)
        job_id = uuid.uuid4().hex
        await pool.execute(JOB_INSERT, job_id, "{}", now, now)
        row = {
            "job_id": job_id,
            "at": now,
            "source": "user",
            "detail": "x",
            "from_phase": None,
            "to_phase": "QUEUED",
        }
        prebuilt = insert(history_table)

        def sqlalchemy(style: str) -> Work:
            async def go(_: int) -> None:
                async with context.engine.connect() as session:
                    if style == "executemany":
                        await session.execute(prebuilt, [row] * 10)
                    for _ in range(10 if style != "executemany" else 0):
                        if style == "values":
                            await session.execute(insert(history_table).values(**row))
                        else:
                            await session.execute(prebuilt, row)
                    await session.commit()

            return go

        async def raw(_: int) -> None:
            async with pool.acquire() as db, db.transaction():
                for _ in range(10):
                    await db.execute(HISTORY_INSERT, job_id, now, "x", None, "QUEUED")

        ways: dict[str, Work] = {
            "AsyncSession, insert(t).values(**row) x10 (as the stores)": sqlalchemy("values"),
            "AsyncSession, prebuilt insert(t) + parameters x10": sqlalchemy("parameters"),
            "AsyncSession, executemany of 10 rows": sqlalchemy("executemany"),
            "raw asyncpg, same INSERT x10": raw,
            "raw asyncpg, the gateway's 10 statements of a job": lambda _: raw_job(pool, "x" * 900),
        }
        try:
            for way in ways.values():
                await cpu_per_item(200, lanes, way)
            for _ in range(args.repeat):
                for name, way in ways.items():
                    sql.add(name, await cpu_per_item(n, lanes, way))
        finally:
            await pool.close()

    print(f"{n} jobs, {lanes} at a time, median of {args.repeat}; CPU of this process per job:")
    jobs.print("")
    layer = jobs.median("gateway POST /api/jobs (ASGI, relay off)") - jobs.median(
        "  JobService.create_job alone"
    )
    print(f"  {'  => HTTP/FastAPI/auth/form layer (difference)':<56} {layer:>7.0f} us")
    # A job created with PHASE=RUN leaves 2 outbox rows: its SubmitJob and its 'queued' event.
    print(
        f"  {'outbox relay, per job (2 rows; claim, publish, delete)':<56} "
        f"{relay_cpu * 1e6 / (relayed / 2):>7.0f} us   ({relayed} rows)"
    )
    print(
        f"SQL statements per job: {sum(per_job.values()):.1f}; PostgreSQL transactions per job:"
        f" {(commits1 - commits0) / n:.2f} commits, {(rollbacks1 - rollbacks0) / n:.2f}"
        " rollbacks (pool_pre_ping)"
    )
    for statement, count in per_job.items():
        print(f"  {count:>4.1f} x {statement}")
    sql.print("\nCPU per transaction of 10 job_history INSERTs:")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=1000, help="per measurement")
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--admin-dsn", default="postgresql://postgres@127.0.0.1:5432/test")
    parser.add_argument("--broker", default="amqp://guest:guest@127.0.0.1:5672")
    args = parser.parse_args(argv)
    quiet_logging("INFO")
    tag = f"gridgate_profile_{os.getpid()}"
    user = args.broker.split("://", 1)[1].split(":", 1)[0]
    with (
        database(args.admin_dsn, f"{tag}_gw") as gw_dsn,
        database(args.admin_dsn, f"{tag}_bare") as bare_dsn,
        vhost(tag.replace("_", "-"), user) as name,
    ):
        dsns = {"gateway": gw_dsn, "gateway_name": f"{tag}_gw", "bare": bare_dsn}
        asyncio.run(profile(args, dsns, f"{args.broker}/{name}"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
