"""Webhook deliveries: events to deliveries per second with 100 subscriptions, and latency.

Usage: ``uv run python bench/webhooks.py [--subscriptions 100] [--events 200]
[--databases sqlite,postgresql] [--window 0.25] [--pace-s 0]``

Per database: a notifier (in this process, as ``gridgate dev`` runs it) on a RabbitMQ vhost of
its own and a fresh database; ``--subscriptions`` subscriptions of one user, all matching; a
receiver in another process (bench/webhook_receiver.py, uvicorn, answers 204). Then
``--events`` job events (``--events / 4`` jobs, 4 events each, in order) are published on
``gridgate.events`` as fast as the publisher confirms (a burst: throughput), or one every
``--pace-s`` seconds (a steady rate below capacity: latency without a backlog), each stamped
with its publish time in ``data.occurred_at``. Measured until the receiver holds every
(subscription, event):

- deliveries per second, from the first publish to the last arrival;
- end-to-end latency, event published -> receiver got it: p50, p99, max;
- duplicates (at least once: expected 0 without crashes).

Signatures are made (HMAC per delivery) but not verified by this receiver. The notifier's
``order_window_s`` (the wait before a first attempt, default 0.25 s) is part of the latency.
Prints a table; nothing is asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from cryptography.fernet import Fernet
from pydantic import SecretStr

from gridgate.broker import Publisher, connect
from gridgate.broker.publisher import cloud_event
from gridgate.contracts import EVENT_SOURCE, JobEvent, Phase, event_type_for, routing_key_for
from gridgate.core.logging import configure_logging
from gridgate.notifier.config import NotifierSettings
from gridgate.notifier.factory import NotifierContext
from gridgate.notifier.models import SubscriptionCreate
from gridgate.testing.services import (
    create_postgres_database,
    drop_postgres_database,
    free_port,
    rabbitmq_vhost,
)

PHASES = (Phase.QUEUED, Phase.EXECUTING, Phase.COMPLETED, Phase.COMPLETED)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def run(kind: str, args: argparse.Namespace) -> dict[str, Any]:
    database_name = None
    with tempfile.TemporaryDirectory() as scratch:
        if kind == "postgresql":
            database_name, database_url = await create_postgres_database()
        else:
            database_url = f"sqlite+aiosqlite:///{Path(scratch) / 'notifier.db'}"
        port = free_port()
        receiver = subprocess.Popen(  # noqa: ASYNC220 - started once, before measuring
            [sys.executable, str(Path(__file__).with_name("webhook_receiver.py")), str(port)]
        )
        try:
            with rabbitmq_vhost() as broker_url:
                return await measure(kind, args, database_url, broker_url, port)
        finally:
            receiver.terminate()
            receiver.wait(timeout=10)
            if database_name:
                await drop_postgres_database(database_name)


async def measure(
    kind: str, args: argparse.Namespace, database_url: str, broker_url: str, port: int
) -> dict[str, Any]:
    connection = await connect(broker_url)
    context = NotifierContext(
        NotifierSettings(
            database_url=SecretStr(database_url),
            secret_keys=SecretStr(Fernet.generate_key().decode()),
            allow_http=True,
            allowed_networks=["127.0.0.1/32"],
            order_window_s=args.window,
            batch=args.batch,
            concurrency=args.concurrency,
        ),
        connection,
    )
    await context.start()
    try:
        owner = "bench"
        for n in range(args.subscriptions):
            await context.subscriptions.create(
                owner, SubscriptionCreate(url=f"http://127.0.0.1:{port}/hook/{n}")
            )
        async with httpx.AsyncClient() as http:
            while True:
                try:
                    await http.get(f"http://127.0.0.1:{port}/stats")
                    break
                except httpx.HTTPError:
                    await asyncio.sleep(0.1)
        publisher = await Publisher.open(connection)
        started = time.time()
        cpu_started = time.process_time()
        for n in range(args.events):
            job, step = divmod(n, len(PHASES))
            phase = PHASES[step]
            data = JobEvent(
                job_id=f"job-{job}",
                owner=owner,
                vo="cta",
                phase=phase,
                occurred_at=datetime.now(UTC),
                source="bench",
                workflow_id="hello-world",
                job_version=2 + min(step, 2),
                ordinal=1 if step == 3 else 0,
            )
            event = cloud_event(
                event_type=event_type_for(phase),
                source=EVENT_SOURCE,
                subject=data.job_id,
                data=data.model_dump(mode="json"),
            )
            await publisher.publish_event(routing_key_for("cta", phase), event)
            if args.pace_s:
                await asyncio.sleep(args.pace_s)
        published_s = time.time() - started
        await publisher.close()
        expected = args.events * args.subscriptions
        async with httpx.AsyncClient(timeout=30) as http:
            while True:
                arrivals = (await http.get(f"http://127.0.0.1:{port}/stats")).json()
                if len({a[0] for a in arrivals}) >= expected or time.time() - started > 600:
                    break
                await asyncio.sleep(0.5)
        cpu = time.process_time() - cpu_started
    finally:
        await context.stop()
        await connection.close()
    last = max(a[2] for a in arrivals)
    latencies = [a[2] - a[1] for a in arrivals]
    unique = len({a[0] for a in arrivals})
    duplicates = sum(n - 1 for n in Counter(a[0] for a in arrivals).values())
    return {
        "kind": kind,
        "deliveries": unique,
        "expected": expected,
        "duplicates": duplicates,
        "published_s": published_s,
        "elapsed_s": last - started,
        "rate": unique / (last - started),
        "p50": statistics.median(latencies),
        "p99": percentile(latencies, 0.99),
        "max": max(latencies),
        "cpu_s": cpu,
    }


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--subscriptions", type=int, default=100)
    parser.add_argument("--events", type=int, default=200)
    parser.add_argument("--databases", default="sqlite,postgresql")
    parser.add_argument("--window", type=float, default=0.25)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--pace-s", type=float, default=0.0)
    args = parser.parse_args()
    configure_logging(json=False, level="WARNING")
    print(f"load before: {os.getloadavg()}")
    print(
        f"{args.subscriptions} subscriptions, {args.events} events "
        f"({args.events * args.subscriptions} deliveries), order window {args.window} s, "
        f"batch {args.batch}, concurrency {args.concurrency}, "
        f"{'one event every ' + str(args.pace_s) + ' s' if args.pace_s else 'burst'}"
    )
    for kind in args.databases.split(","):
        r = await run(kind, args)
        print(
            f"{r['kind']:<11} {r['deliveries']}/{r['expected']} delivered, "
            f"{r['duplicates']} duplicates, in {r['elapsed_s']:.1f} s "
            f"(published in {r['published_s']:.1f} s): {r['rate']:.0f} deliveries/s; "
            f"latency p50 {r['p50'] * 1000:.0f} ms, p99 {r['p99'] * 1000:.0f} ms, "
            f"max {r['max'] * 1000:.0f} ms; notifier CPU {r['cpu_s']:.1f} s"
        )
        print(f"  load after: {os.getloadavg()}")


if __name__ == "__main__":
    asyncio.run(main())
