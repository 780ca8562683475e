"""What the build lease of ADR 0015 costs, and how fast a dead builder's lease comes free.

Against the RabbitMQ on 127.0.0.1:5672 (its own vhost):

- take + release of a free lease (channel, exclusive declare, delete, close), n times;
- a refused take (another connection holds it), n times;
- takeover: a child process takes the lease and is SIGKILLed; this process tries every
  ``--poll`` seconds; the time from the kill to the lease held here, n times.

    uv run --frozen python bench/image_leases.py --rounds 20
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import statistics
import sys
import time

from gridgate.broker import BrokerLeases, Lease, connect
from gridgate.testing.services import rabbitmq_vhost

HOLDER = """
import asyncio, sys
from gridgate.broker import BrokerLeases, connect

async def hold():
    connection = await connect(sys.argv[1])
    assert await BrokerLeases(connection).try_take(sys.argv[2]) is not None
    print("held", flush=True)
    await asyncio.sleep(3600)

asyncio.run(hold())
"""


def _row(name: str, samples: list[float]) -> str:
    ms = [s * 1000 for s in samples]
    return f"| {name} | {statistics.median(ms):.1f} | {min(ms):.1f} | {max(ms):.1f} | {len(ms)} |"


async def _take_when_free(leases: BrokerLeases, name: str, poll_s: float) -> Lease:
    for _ in range(int(60 / poll_s)):
        lease = await leases.try_take(name)
        if lease is not None:
            return lease
        await asyncio.sleep(poll_s)
    raise AssertionError(f"the lease {name} stayed taken after its holder died")


async def bench(url: str, rounds: int, poll_s: float) -> None:
    here = await connect(url)
    other = await connect(url)
    leases, others = BrokerLeases(here), BrokerLeases(other)
    free: list[float] = []
    refused: list[float] = []
    takeover: list[float] = []
    for i in range(rounds):
        started = time.perf_counter()
        lease = await leases.try_take(f"bench-free-{i}")
        assert lease is not None
        await lease.release()
        free.append(time.perf_counter() - started)

        held = await others.try_take(f"bench-held-{i}")
        assert held is not None
        started = time.perf_counter()
        assert await leases.try_take(f"bench-held-{i}") is None
        refused.append(time.perf_counter() - started)
        await held.release()

        name = f"bench-dead-{i}"
        child = await asyncio.create_subprocess_exec(
            sys.executable, "-c", HOLDER, url, name, stdout=asyncio.subprocess.PIPE
        )
        assert child.stdout is not None
        assert (await child.stdout.readline()).strip() == b"held"
        assert await leases.try_take(name) is None
        killed = time.perf_counter()
        os.kill(child.pid, signal.SIGKILL)
        lease = await _take_when_free(leases, name, poll_s)
        takeover.append(time.perf_counter() - killed)
        await lease.release()
        await child.wait()
    await here.close()
    await other.close()
    print(f"load average after: {os.getloadavg()}")
    print("| Case | median ms | min ms | max ms | n |\n|---|---:|---:|---:|---:|")
    print(_row("take + release a free lease", free))
    print(_row("take refused (held by another connection)", refused))
    print(_row(f"SIGKILL of the holder -> lease taken here (poll {poll_s} s)", takeover))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--poll", type=float, default=0.05)
    options = parser.parse_args()
    print(f"load average before: {os.getloadavg()}")
    with rabbitmq_vhost() as url:
        asyncio.run(bench(url, options.rounds, options.poll))


if __name__ == "__main__":
    main()
