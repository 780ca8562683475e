"""The baseline for ``post_jobs.py``: the least code that accepts a job the way the gateway must.

POST /jobs reads a small form or JSON body, checks it with pydantic, INSERTs one job row with
asyncpg and publishes a ~1 KiB persistent JSON message with publisher confirms, then answers 303.
No authentication, no outbox, no ORM: what is left is the price of HTTP + FastAPI, one INSERT
and one confirmed publish, which is the floor a real gateway is measured against.

Run it on its own with ``python bench/bare_handler.py --port 8100 --database-url ... --broker-url
...``; ``post_jobs.py`` starts it as a separate process.
"""

from __future__ import annotations

import argparse
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import aio_pika
import asyncpg
import orjson
import uvicorn
from aio_pika.abc import AbstractChannel, AbstractExchange, AbstractRobustConnection
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, RedirectResponse
from pydantic import BaseModel, Field, ValidationError
from starlette.responses import Response

QUEUE = "bench.bare.jobs"
POOL_SIZE = 10  # the gateway's SQLAlchemy pool_size

SCHEMA = """
CREATE TABLE IF NOT EXISTS bare_jobs (
    id varchar(32) PRIMARY KEY,
    owner varchar(255) NOT NULL,
    vo varchar(128) NOT NULL,
    workflow_id varchar(128) NOT NULL,
    workflow_version varchar(64) NOT NULL,
    facility varchar(128) NOT NULL,
    phase varchar(16) NOT NULL,
    parameters jsonb NOT NULL,
    creation_time timestamptz NOT NULL,
    execution_duration integer NOT NULL,
    destruction timestamptz,
    updated_at timestamptz NOT NULL
)
"""

INSERT = """
INSERT INTO bare_jobs (id, owner, vo, workflow_id, workflow_version, facility, phase,
                       parameters, creation_time, execution_duration, destruction, updated_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
"""


class JobFields(BaseModel):
    """The fields a client sends; the same ones the gateway benchmark posts."""

    workflow: str = Field(min_length=1, max_length=128)
    phase: str | None = None
    name: str = Field(default="world", min_length=1, max_length=200)
    repeat: int = Field(default=1, ge=1, le=100)


def message_body(job_id: str, fields: JobFields, now: datetime) -> bytes:
    """A command shaped like the gateway's SubmitJob, about 1 KiB of JSON."""
    return orjson.dumps(
        {
            "version": 1,
            "kind": "SubmitJob",
            "message_id": uuid.uuid4().hex,
            "job_id": job_id,
            "owner": "bench-user",
            "vo": "cta",
            "group": None,
            "facility": "local",
            "workflow_id": fields.workflow,
            "workflow_version": "1.0.0",
            "occurred_at": now.isoformat(),
            "tasks": [
                {
                    "index": 0,
                    "command": [
                        "/usr/bin/python3",
                        "-m",
                        "gridgate.workflows.standins.hello",
                        f"--name={fields.name}",
                        f"--repeat={fields.repeat}",
                        "--sleep-s=0",
                        "--exit-code=0",
                    ],
                    "environment": {"GRIDGATE_JOB_ID": job_id, "GRIDGATE_TASK_INDEX": "0"},
                    "inputs": [],
                }
            ],
            "limits": {
                "execution_duration_s": 600,
                "cores": 1,
                "memory_mb": 512,
                "max_output_mb": 1024,
            },
            "outputs": ["hello.txt"],
            "parameters": {"name": fields.name, "repeat": fields.repeat, "sleep_s": 0},
            "note": "x" * 360,  # pads the body to ~1 KiB, the size the limits notes measured
        }
    )


def create_app(database_url: str, broker_url: str) -> FastAPI:
    """The baseline application; ``database_url`` is a plain ``postgresql://`` DSN."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        pool = await asyncpg.create_pool(database_url, min_size=POOL_SIZE, max_size=POOL_SIZE)
        async with pool.acquire() as connection:
            await connection.execute(SCHEMA)
        broker: AbstractRobustConnection = await aio_pika.connect_robust(broker_url)
        channel: AbstractChannel = await broker.channel(publisher_confirms=True)
        await channel.declare_queue(QUEUE, durable=True)
        app.state.pool = pool
        app.state.exchange = channel.default_exchange
        try:
            yield
        finally:
            await broker.close()
            await pool.close()

    app = FastAPI(title="bare job handler", lifespan=lifespan)

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "alive"}

    @app.post("/jobs", status_code=303)
    async def create_job(request: Request) -> Response:
        content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
        raw: dict[str, Any]
        if content_type == "application/json":
            raw = orjson.loads(await request.body())
        else:
            form = await request.form()
            raw = {k.lower(): v for k, v in form.multi_items() if isinstance(v, str)}
        try:
            fields = JobFields.model_validate(raw)
        except ValidationError as exc:
            return JSONResponse({"errors": exc.errors(include_url=False)}, status_code=422)
        now = datetime.now(UTC)
        job_id = uuid.uuid4().hex
        parameters = orjson.dumps({"name": fields.name, "repeat": fields.repeat}).decode()
        pool: asyncpg.Pool = request.app.state.pool
        await pool.execute(
            INSERT,
            job_id,
            "bench-user",
            "cta",
            fields.workflow,
            "1.0.0",
            "local",
            "QUEUED" if fields.phase else "PENDING",
            parameters,
            now,
            600,
            now + timedelta(days=30),
            now,
        )
        exchange: AbstractExchange = request.app.state.exchange
        await exchange.publish(
            aio_pika.Message(
                message_body(job_id, fields, now),
                content_type="application/json",
                delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
                message_id=job_id,
            ),
            routing_key=QUEUE,
            mandatory=True,
        )
        return RedirectResponse(f"{request.base_url}jobs/{job_id}", status_code=303)

    return app


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8100)
    parser.add_argument("--database-url", required=True, help="postgresql://user@host:port/db")
    parser.add_argument("--broker-url", required=True, help="amqp://user:pass@host:port/vhost")
    args = parser.parse_args(argv)
    uvicorn.run(
        create_app(args.database_url, args.broker_url),
        host=args.host,
        port=args.port,
        log_level="warning",
        access_log=False,
    )


if __name__ == "__main__":
    main()
