"""1,000 concurrent Server-Sent Event streams on one gateway: memory and latency.

Usage: ``uv run python bench/sse.py [--streams 1000] [--users 200] [--jobs 100]
[--databases sqlite,postgresql]``

Per database, on a RabbitMQ vhost of its own:

1. ``gridgate dev`` (gateway and workers in one process, as a small site runs it) starts in a
   subprocess; its RSS is read from /proc once it answers (**before**).
2. ``--streams`` streams of ``GET /api/events`` open, ``--streams / --users`` per user, each
   read by httpx-sse in this process; RSS again once every stream got its opening id
   (**open**).
3. ``--jobs`` hello-world jobs of those users run to the end (4 events each: queued,
   executing, results_staged, completed; each event goes to every stream of its owner). This
   process also binds a queue of its own to ``gridgate.events`` and notes when each event
   arrives from RabbitMQ: **published → received** is the time a stream received the event
   less that time. Streams read the journal, not the exchange, so a stream can get an event
   before its publication reaches this process (negative values). **created → received**
   counts from the CloudEvent's ``time`` (set in the unit of work, before its commit; the
   same machine's clock). RSS once every delivery arrived (**after**).
4. SIGTERM with every stream still open: how long the gateway takes to exit (its streams
   end at once, docs/events.md).

Prints one table; nothing is asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

import aio_pika
import httpx
from httpx_sse import aconnect_sse

from gridgate.cli.stack import AUDIENCE, dev_issuer
from gridgate.contracts import EVENTS_EXCHANGE
from gridgate.testing.services import (
    create_postgres_database,
    drop_postgres_database,
    free_port,
    rabbitmq_vhost,
)


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def run(database: str, streams: int, users: int, jobs: int) -> dict[str, object]:
    data_dir = Path(tempfile.mkdtemp(prefix="bench-sse-"))
    port = free_port()
    pg_name = None
    database_url = f"sqlite+aiosqlite:///{data_dir / 'gridgate.db'}"
    if database == "postgresql":
        pg_name, database_url = await create_postgres_database()
    with rabbitmq_vhost() as vhost:
        env = {
            **os.environ,
            "GRIDGATE_GATEWAY_MAX_STREAMS_PER_USER": str(streams),
        }
        server = await asyncio.create_subprocess_exec(
            str(Path(sys.executable).with_name("gridgate")),
            "dev",
            "--port",
            str(port),
            "--data-dir",
            str(data_dir),
            "--broker-url",
            vhost,
            "--database-url",
            database_url,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            return await measure(server, data_dir, port, vhost, streams, users, jobs)
        finally:
            if server.returncode is None:
                server.kill()
                await server.wait()
            if pg_name:
                await drop_postgres_database(pg_name)


async def measure(
    server: asyncio.subprocess.Process,
    data_dir: Path,
    port: int,
    vhost: str,
    streams: int,
    users: int,
    jobs: int,
) -> dict[str, object]:
    base = f"http://127.0.0.1:{port}"
    async with httpx.AsyncClient(base_url=base) as probe:
        for _ in range(300):
            with contextlib.suppress(httpx.HTTPError):
                if (await probe.get("/readyz")).status_code == 200:
                    break
            await asyncio.sleep(0.2)
    await asyncio.sleep(2)
    before = rss_mb(server.pid)

    issuer = dev_issuer(data_dir, "127.0.0.1", port)
    names = [f"bench-sse-{n}" for n in range(users)]
    clients = {
        name: httpx.AsyncClient(
            base_url=base,
            headers={
                "Authorization": "Bearer "
                + issuer.mint(name, groups=["cta"], audience=AUDIENCE, lifetime_s=3600)
            },
            timeout=httpx.Timeout(30, read=None),
            limits=httpx.Limits(max_connections=streams // users + 2),
        )
        for name in names
    }

    published: dict[str, float] = {}
    connection = await aio_pika.connect(vhost)
    channel = await connection.channel()
    queue = await channel.declare_queue(exclusive=True, auto_delete=True)
    await queue.bind(EVENTS_EXCHANGE, routing_key="job.#")

    async def on_published(message: aio_pika.abc.AbstractIncomingMessage) -> None:
        published.setdefault(json.loads(message.body)["id"], time.time())

    await queue.consume(on_published, no_ack=True)

    received: list[tuple[str, float]] = []
    expected = jobs * 4 * (streams // users)
    all_received = asyncio.Event()
    kinds: dict[str, str] = {}
    created: dict[str, float] = {}
    opened = 0
    all_open = asyncio.Event()

    reconnects = repeated = 0
    stopping = False

    async def stream(name: str) -> None:
        # As a client should: a stream that ends is opened again from its last id.
        nonlocal opened, reconnects, repeated
        last_id = None
        first = True
        seen: set[str] = set()
        while True:
            headers = {"Last-Event-ID": last_id} if last_id else {}
            async with aconnect_sse(clients[name], "GET", "/api/events", headers=headers) as source:
                async for sse in source.aiter_sse():
                    last_id = sse.id or last_id
                    if first:
                        first = False
                        opened += 1
                        if opened == streams:
                            all_open.set()
                    if sse.data:
                        event = json.loads(sse.data)
                        repeated += event["id"] in seen
                        seen.add(event["id"])
                        received.append((event["id"], time.time()))
                        created[event["id"]] = datetime.fromisoformat(event["time"]).timestamp()
                        kinds[event["id"]] = sse.event
                        if len(received) >= expected:
                            all_received.set()
            if stopping:
                return
            reconnects += 1

    readers = [asyncio.create_task(stream(names[n % users])) for n in range(streams)]
    started = time.monotonic()
    await asyncio.wait_for(all_open.wait(), 300)
    open_s = time.monotonic() - started
    await asyncio.sleep(3)
    with_streams = rss_mb(server.pid)

    async def submit(n: int) -> None:
        answer = await clients[names[n % users]].post(
            "/api/jobs", data={"workflow": "hello-world", "PHASE": "RUN"}
        )
        assert answer.status_code == 303, answer.text

    for start in range(0, jobs, 10):  # ten at a time
        await asyncio.gather(*(submit(n) for n in range(start, min(jobs, start + 10))))
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(all_received.wait(), 600)
    await asyncio.sleep(2)
    after = rss_mb(server.pid)

    latencies = [(at - published[event]) * 1000 for event, at in received if event in published]
    since_created = [(at - created[event]) * 1000 for event, at in received]
    if os.environ.get("BENCH_SSE_DEBUG"):
        slow = sorted(
            ((at - published[e]) * 1000, kinds[e], e) for e, at in received if e in published
        )
        print(slow[-12:], file=sys.stderr)
    stop_started = time.monotonic()
    stopping = True
    server.send_signal(signal.SIGTERM)
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(server.wait(), 30)
    stop_s = time.monotonic() - stop_started
    ended = 0
    for reader in readers:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(reader, 5)
        ended += reader.done() and reader.exception() is None
    for client in clients.values():
        await client.aclose()
    await connection.close()
    return {
        "rss_before_mb": before,
        "rss_open_mb": with_streams,
        "rss_after_mb": after,
        "open_s": open_s,
        "deliveries": len(received),
        "expected": expected,
        "created_p50_ms": statistics.median(since_created),
        "created_p99_ms": percentile(since_created, 0.99),
        "p50_ms": statistics.median(latencies) if latencies else float("nan"),
        "p99_ms": percentile(latencies, 0.99) if latencies else float("nan"),
        "max_ms": max(latencies) if latencies else float("nan"),
        "stop_s": stop_s,
        "reconnects": reconnects,
        "repeated": repeated,
        "ended_cleanly": ended,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--streams", type=int, default=1000)
    parser.add_argument("--users", type=int, default=200)
    parser.add_argument("--jobs", type=int, default=100)
    parser.add_argument("--databases", default="sqlite,postgresql")
    args = parser.parse_args()
    print(f"uptime: {subprocess.check_output(['uptime'], text=True).strip()}")
    rows = []
    for database in args.databases.split(","):
        result = asyncio.run(run(database, args.streams, args.users, args.jobs))
        rows.append((database, result))
        print(database, result, flush=True)
    print(f"uptime: {subprocess.check_output(['uptime'], text=True).strip()}")
    print()
    print(
        "| database | streams | RSS before / open / after MB | opened in s | deliveries "
        "| published → received p50 / p99 / max ms | created → received p50 / p99 ms "
        "| reconnects | exit after SIGTERM s | streams ended cleanly |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    for database, r in rows:
        print(
            f"| {database} | {args.streams} | {r['rss_before_mb']:.0f} / {r['rss_open_mb']:.0f}"
            f" / {r['rss_after_mb']:.0f} | {r['open_s']:.1f} | {r['deliveries']} of "
            f"{r['expected']} ({r['repeated']} repeated) | "
            f"{r['p50_ms']:.0f} / {r['p99_ms']:.0f} / {r['max_ms']:.0f} | "
            f"{r['created_p50_ms']:.0f} / {r['created_p99_ms']:.0f} | {r['reconnects']} | "
            f"{r['stop_s']:.1f} | {r['ended_cleanly']} |"
        )


if __name__ == "__main__":
    main()
