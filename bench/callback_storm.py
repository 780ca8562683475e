"""Many job callbacks and DELETEs at once against one gateway on SQLite: how many are answered,
refused, or given up on (503), and how long they take.

``gridgate dev``'s stack (gateway with auth, submitter, monitor, results) in a process of
its own, so the client's work is not the server's, on a fresh SQLite file and a RabbitMQ vhost
of its own (RabbitMQ on 127.0.0.1:5672, ``rabbitmqctl`` on the PATH). The jobs are created
PENDING over HTTP, then given the callback token a running job's wrapper holds (written to the
database: no facility runs them, so nothing else changes them); then ``--callbacks`` wrapper
updates per job and a DELETE of ``--delete-share`` of the jobs are sent at once over HTTP, at
most ``--in-flight`` at a time. Nothing is asserted; the numbers go to docs/benchmarks.md.

    uv run --frozen python bench/callback_storm.py [--jobs 100] [--callbacks 5]
        [--delete-share 0.2] [--in-flight 600] [--database-url sqlite+aiosqlite:///...]
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import random
import statistics
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from multiprocessing.queues import Queue
from multiprocessing.synchronize import Event
from pathlib import Path

import httpx
from sqlalchemy import update
from sqlalchemy.ext.asyncio import create_async_engine

from gridgate.cli.stack import AUDIENCE, DevStack, dev_issuer
from gridgate.contracts.callback import CALLBACK_PATH, callback_token, token_digest
from gridgate.core.logging import configure_logging
from gridgate.gateway.schema import jobs_table
from gridgate.testing.services import free_port, rabbitmq_vhost

EVENTS = ("started", "progress", "progress", "progress", "ended")


async def storm(args: argparse.Namespace, stack: Served) -> None:
    issuer = dev_issuer(stack.data_dir, stack.host, stack.port)
    token = issuer.mint("alice", groups=["cta"], audience=AUDIENCE, lifetime_s=3600)
    limits = httpx.Limits(max_connections=args.in_flight, max_keepalive_connections=args.in_flight)
    async with httpx.AsyncClient(base_url=stack.url, timeout=120.0, limits=limits) as http:
        user = {"Authorization": f"Bearer {token}"}
        job_ids = []
        for _ in range(args.jobs):
            made = await http.post("/api/jobs", data={"workflow": "hello-world"}, headers=user)
            assert made.status_code == 303, made.text
            job_ids.append(made.headers["location"].rstrip("/").rsplit("/", 1)[-1])
        engine = create_async_engine(stack.database_url)
        async with engine.begin() as connection:
            for job_id in job_ids:
                digest = token_digest(callback_token(stack.internal_token, job_id))
                await connection.execute(
                    update(jobs_table)
                    .where(jobs_table.c.id == job_id)
                    .values(callback_token_hash=digest)
                )
        await engine.dispose()

        base = datetime.now(UTC)
        gate = asyncio.Semaphore(args.in_flight)

        async def send(method: str, path: str, **kwargs: object) -> tuple[str, float]:
            async with gate:
                start = time.perf_counter()
                try:
                    answer = await http.request(method, path, **kwargs)  # type: ignore[arg-type]
                    what = str(answer.status_code)
                    if answer.status_code >= 500:
                        what += " " + answer.json().get("type", "").rsplit("/", 1)[-1]
                except httpx.HTTPError as exc:
                    what = f"client error {type(exc).__name__}"
                return what, time.perf_counter() - start

        work = []
        for job_id in job_ids:
            bearer = {"Authorization": f"Bearer {callback_token(stack.internal_token, job_id)}"}
            for n in range(args.callbacks):
                event = EVENTS[n % len(EVENTS)]
                body = {
                    "task_index": 0,
                    "event": event,
                    "at": (base + timedelta(milliseconds=n)).isoformat(),
                    "exit_code": 0 if event == "ended" else None,
                }
                path = CALLBACK_PATH.format(job_id=job_id)
                work.append(("POST", path, {"json": body, "headers": bearer}))
        rng = random.Random(7)  # a reproducible order, not a secret
        for job_id in rng.sample(job_ids, int(len(job_ids) * args.delete_share)):
            work.append(("DELETE", f"/api/jobs/{job_id}", {"headers": user}))
        rng.shuffle(work)
        start = time.perf_counter()
        results = await asyncio.gather(*(send(m, p, **kw) for m, p, kw in work))
        wall = time.perf_counter() - start
    counts = Counter(answer for answer, _ in results)
    latencies = sorted(t for _, t in results)
    print(f"{len(work)} requests ({args.in_flight} in flight) in {wall:.1f} s")
    print(
        f"latency p50 {statistics.median(latencies):.2f} s,"
        f" p99 {latencies[int(len(latencies) * 0.99) - 1]:.2f} s, max {latencies[-1]:.2f} s"
    )
    for answer, count in counts.most_common():
        print(f"  {count:5d}  {answer}")


@dataclass
class Served:
    """What the client needs of the stack running in the other process."""

    url: str
    data_dir: Path
    host: str
    port: int
    database_url: str
    internal_token: str


def serve(database_url: str | None, ready: Queue[Served], stop: Event) -> None:
    """The stack, in a process of its own: the client's work is not measured as the server's."""
    configure_logging(json=True, level="WARNING")  # a log line per request would be measured

    async def run() -> None:
        data_dir = Path(tempfile.mkdtemp(prefix="callback-storm-"))
        url = database_url or f"sqlite+aiosqlite:///{data_dir / 'gridgate.db'}"
        with rabbitmq_vhost() as vhost_url:
            stack = DevStack(
                data_dir=data_dir, port=free_port(), broker_url=vhost_url, database_url=url
            )
            await stack.start()
            try:
                ready.put(
                    Served(stack.url, data_dir, stack.host, stack.port, url, stack.internal_token)
                )
                # The stop comes from the other process: a blocking wait, off the loop.
                await asyncio.to_thread(stop.wait)
            finally:
                await stack.stop()

    asyncio.run(run())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=100)
    parser.add_argument("--callbacks", type=int, default=5, help="updates per job")
    parser.add_argument("--delete-share", type=float, default=0.2)
    parser.add_argument("--in-flight", type=int, default=600, help="concurrent requests")
    parser.add_argument("--database-url", default=None, help="default: a fresh SQLite file")
    args = parser.parse_args()
    spawn = multiprocessing.get_context("spawn")
    ready: Queue[Served] = spawn.Queue()
    stop = spawn.Event()
    server = spawn.Process(target=serve, args=(args.database_url, ready, stop))
    server.start()
    try:
        asyncio.run(storm(args, ready.get(timeout=120)))
    finally:
        stop.set()
        server.join(60)


if __name__ == "__main__":
    main()
