"""Where the gateway's CPU goes when it accepts a job: a breakdown, in process, without HTTP.

Usage: ``uv run python bench/profile_post_jobs.py [--jobs 1000] [--concurrency 50]``

``post_jobs.py`` gives the end-to-end figure (server CPU per accepted job, relay included). This
script takes the same work apart on the real PostgreSQL and RabbitMQ: it builds the gateway app in
this process (with its lifespan, outbox relay stopped so each part is measured alone) and reports
CPU microseconds per job, from ``time.process_time``, for

- ``JobService.create_job`` as a request runs it (session, pool checkout, every statement, commit,
  the "job created" log line), with the SQL statements and PostgreSQL transactions it causes;
- the same with logging above INFO;
- the outbox relay publishing those jobs' rows;
- parts without I/O: parameter validation, CloudEvent building, a cached token check;
- the same statement sequence written for raw asyncpg, one transaction per job: what the SQL costs
  without the SQLAlchemy layer.

Creates and drops its own database and vhost. Numbers are CPU of this process only (PostgreSQL
and RabbitMQ run in their own), so they add up to the gateway's share of a request.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
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
from sqlalchemy import event

BENCH_DIR = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH_DIR))

from gateway_server import AUDIENCE, issuer_url  # noqa: E402
from post_jobs import database, vhost  # noqa: E402

from gridgate.auth.config import AuthSettings  # noqa: E402
from gridgate.auth.main import create_app as create_auth_app  # noqa: E402
from gridgate.broker.publisher import cloud_event  # noqa: E402
from gridgate.core.logging import configure_logging  # noqa: E402
from gridgate.gateway.config import GatewaySettings  # noqa: E402
from gridgate.gateway.factory import ProcessContext, unit_of_work  # noqa: E402
from gridgate.gateway.main import create_app  # noqa: E402
from gridgate.gateway.services.jobs import JobRequest  # noqa: E402
from gridgate.iam.dev_issuer import DevIssuer  # noqa: E402
from gridgate.iam.validator import TokenValidator  # noqa: E402
from gridgate.workflows import validate_parameters  # noqa: E402

HOST, PORT = "127.0.0.1", 8999  # only names the issuer; nothing listens there
REQUEST = JobRequest(workflow="hello-world", run=True, parameters={"name": "bench"})


async def cpu_per_item(
    count: int, concurrency: int, work: Callable[[int], Awaitable[object]]
) -> float:
    """CPU microseconds per item of ``work(i)`` for i < count, ``concurrency`` at a time."""
    queue = iter(range(count))

    async def lane() -> None:
        for i in queue:
            await work(i)

    start = time.process_time()
    await asyncio.gather(*(lane() for _ in range(concurrency)))
    return (time.process_time() - start) * 1e6 / count


def cpu_per_call(count: int, work: Callable[[], object]) -> float:
    start = time.process_time()
    for _ in range(count):
        work()
    return (time.process_time() - start) * 1e6 / count


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


RAW_SQL = [
    (
        "INSERT INTO jobs (id, owner, vo, group_name, run_id, workflow_id, workflow_version,"
        " facility, phase, parameters, creation_time, start_time, end_time, execution_duration,"
        " destruction, quote, error_type, error_message, task_count, finished_outcome,"
        " finished_detail, updated_at) VALUES ($1, 'bench-user', 'cta', NULL, NULL,"
        " 'hello-world', '1.0.0', 'local', 'PENDING', $2, $3, NULL, NULL, 600, $4, NULL, NULL,"
        " NULL, 1, NULL, NULL, $3)"
    ),
    "INSERT INTO job_tasks (job_id, task_index, phase) VALUES ($1, 0, 'PENDING')",
    (
        "INSERT INTO job_history (job_id, at, source, detail, from_phase, to_phase)"
        " VALUES ($1, $2, 'user', 'created', NULL, 'PENDING')"
    ),
    "SELECT * FROM jobs WHERE id = $1",
    "SELECT * FROM job_tasks WHERE job_id = $1 ORDER BY task_index",
    "OUTBOX",
    "UPDATE jobs SET phase = 'QUEUED', updated_at = $2 WHERE id = $1",
    (
        "INSERT INTO job_history (job_id, at, source, detail, from_phase, to_phase)"
        " VALUES ($1, $2, 'user', 'queued', 'PENDING', 'QUEUED')"
    ),
    "OUTBOX",
    "OUTBOX",
]
RAW_OUTBOX = (
    "INSERT INTO outbox (kind, routing_key, message_id, message_type, job_id, body, created_at)"
    " VALUES ('event', 'cta.queued', $1, 'jobs.queued', $2, $3, $4)"
)


async def raw_job(pool: asyncpg.Pool, body: str) -> None:
    job_id = uuid.uuid4().hex
    now = datetime.now(UTC)
    async with pool.acquire() as connection, connection.transaction():
        for sql in RAW_SQL:
            if sql == "OUTBOX":
                await connection.execute(RAW_OUTBOX, uuid.uuid4().hex, job_id, body, now)
            elif sql.startswith("INSERT INTO jobs"):
                await connection.execute(
                    sql, job_id, json.dumps({"name": "bench"}), now, now + timedelta(days=30)
                )
            elif sql.startswith("SELECT"):
                await connection.fetch(sql, job_id)
            elif "$2" in sql:
                await connection.execute(sql, job_id, now)
            else:
                await connection.execute(sql, job_id)


async def profile(args: argparse.Namespace, gw_dsn: str, db_name: str, broker_url: str) -> None:
    work = Path(tempfile.mkdtemp(prefix="gridgate-profile-"))
    issuer = DevIssuer(issuer_url(HOST, PORT), work / "dev-issuer-key.json")
    token = issuer.mint("bench-user", groups=["cta"], audience=AUDIENCE, lifetime_s=3600)
    keys = FastAPI()
    keys.mount("/auth", create_auth_app(AuthSettings(), dev_issuer=issuer))
    validator = TokenValidator(
        issuer.issuer, AUDIENCE, http=httpx.AsyncClient(transport=httpx.ASGITransport(app=keys))
    )
    settings = GatewaySettings(
        database_url=SecretStr(gw_dsn.replace("postgresql://", "postgresql+asyncpg://", 1)),
        broker_url=SecretStr(broker_url),
        oidc_issuer=issuer.issuer,
        oidc_audience=AUDIENCE,
        results_dir=work / "results",
    )
    app = create_app(settings, validator=validator)
    n, lanes = args.jobs, args.concurrency
    rows: list[tuple[str, float, str]] = []
    async with LifespanManager(app):
        context: ProcessContext = app.state.context
        assert context.relay is not None
        await context.relay.stop()  # measured on its own below
        statements: Counter[str] = Counter()
        checkouts = Counter[str]()

        @event.listens_for(context.engine.sync_engine, "before_cursor_execute")
        def _count(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
            statements[" ".join(statement.split()[:3])] += 1

        @event.listens_for(context.engine.sync_engine.pool, "checkout")
        def _checkout(*_: Any) -> None:
            checkouts["checkout"] += 1

        identity = await validator.validate(token)

        async def create(_: int) -> None:
            async with unit_of_work(context) as factory:
                await factory.job_service().create_job(identity, REQUEST)

        await cpu_per_item(200, lanes, create)  # warm caches and the pool
        statements.clear()
        checkouts.clear()
        commits0, rollbacks0 = await pg_transactions(gw_dsn, db_name)
        rows.append(("JobService.create_job (as a request runs it)",
                     await cpu_per_item(n, lanes, create), "INFO log on"))
        commits1, rollbacks1 = await pg_transactions(gw_dsn, db_name)
        per_job = {k: round(v / n, 2) for k, v in statements.most_common()}
        quiet_logging("WARNING")
        rows.append(("JobService.create_job, logging at WARNING",
                     await cpu_per_item(n, lanes, create), ""))
        quiet_logging("INFO")

        start = time.process_time()
        sent = 0
        while published := await context.relay.relay_once():
            sent += published
        rows.append(("outbox relay, per job (its 3 rows)",
                     (time.process_time() - start) * 1e6 / (sent / 3), f"{sent} rows"))

        definition = context.workflows.get("hello-world", None)
        rows.append(("  validate_parameters (jsonschema)",
                     cpu_per_call(n, lambda: validate_parameters(definition, {"name": "b"})), ""))
        data = {"job_id": "x" * 32, "owner": "bench-user", "vo": "cta", "phase": "QUEUED"}
        rows.append(("  cloud_event() + to_structured, x2 per job",
                     2 * cpu_per_call(n, lambda: _structured(data)), ""))
        rows.append(("  cached token validation",
                     await cpu_per_item(n, 1, lambda _: validator.validate(token)), ""))

        pool = await asyncpg.create_pool(gw_dsn, min_size=10, max_size=10)
        body = "x" * 1000
        try:
            await cpu_per_item(200, lanes, lambda _: raw_job(pool, body))
            rows.append(("same 10 statements, raw asyncpg, 1 transaction",
                         await cpu_per_item(n, lanes, lambda _: raw_job(pool, body)), ""))
        finally:
            await pool.close()

    print(f"{n} jobs, {lanes} at a time; CPU of this process per job:")
    for name, micros, note in rows:
        print(f"  {name:<50} {micros:>7.0f} us  {note}")
    print(f"SQL statements per job via SQLAlchemy: {sum(per_job.values()):.1f} "
          f"(+ pool checkouts {checkouts['checkout'] / n:.1f}, each pre-pinged)")
    for statement, count in per_job.items():
        print(f"    {count:>4} x {statement}")
    print(f"PostgreSQL transactions per job: commits {(commits1 - commits0) / n:.2f}, "
          f"rollbacks {(rollbacks1 - rollbacks0) / n:.2f}")


def quiet_logging(level: str) -> None:
    """Production logging (JSON lines) written to /dev/null: its cost counts, a tty's does not."""
    real, sys.stderr = sys.stderr, open(os.devnull, "w")  # noqa: SIM115 - kept by the logger
    try:
        configure_logging(json=True, level=level)
    finally:
        sys.stderr = real


def _structured(data: dict[str, Any]) -> bytes:
    from cloudevents.core.bindings import rabbitmq as ce_rabbitmq
    from cloudevents.core.formats.json import JSONFormat

    event_ = cloud_event(event_type="t", source="s", subject="jobs/x", data=data)
    body: bytes = ce_rabbitmq.to_structured(event_, JSONFormat()).body
    return body


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--admin-dsn", default="postgresql://postgres@127.0.0.1:5432/test")
    parser.add_argument("--broker", default="amqp://guest:guest@127.0.0.1:5672")
    args = parser.parse_args(argv)
    quiet_logging("INFO")
    tag = f"gridgate_profile_{os.getpid()}"
    user = args.broker.split("://", 1)[1].split(":", 1)[0]
    with database(args.admin_dsn, tag) as dsn, vhost(tag.replace("_", "-"), user) as name:
        asyncio.run(profile(args, dsn, tag, f"{args.broker}/{name}"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
