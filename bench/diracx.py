"""DiracX testbed: N hello-world jobs through gridgate vs with diracx-client directly; status cost.

Usage: ``uv run --frozen python bench/diracx.py [--jobs 200] [--status 1000,10000]``

Needs the DiracX testbed (``make testbed-diracx``) and RabbitMQ (a vhost of its own). As the
testbed's alice, in one run:

1. **diracx-client directly**: the same JDL gridgate renders for hello-world (wrapper,
   tasks.json and payload in one stored sandbox), N jobs with the official
   ``AsyncDiracClient``: once one ``POST /api/jobs/jdl`` per job, once 20 JDLs per call (the
   most DiracX 0.7.0 takes from a normal user).
2. **gridgate**: the one-process stack pointed at the testbed as ``gridgate demo
   --diracx-testbed`` is; one warm-up job first; then N ``POST /api/jobs`` 20 at a time; the
   clock stops when every job has its DiracX id (the gateway's in-flight route).
3. **status**: the facility's bulk status (``/api/jobs/search``, 1,000 ids a call) of the
   first 1,000 and 10,000 jobs the testbed holds (more are submitted directly if needed).

Speed is reported here, never asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import os
import sys
import time
from pathlib import Path

import httpx

from gridgate.cli.stack import AUDIENCE, DevStack, dev_issuer
from gridgate.contracts.tasks import TaskSpec
from gridgate.dirac.jdl import JobDescription, Slot, build_jdl
from gridgate.dirac.sandbox import PAYLOAD_ZIP, SlotTask, sandbox_files
from gridgate.diracx.facility import DiracXFacility, _bearer, _json_body, pack_sandbox
from gridgate.diracx.testbed import FACILITY, DiracXTestbed
from gridgate.diracx.tokens import ExchangeTokens, LegacyExchange
from gridgate.testing.services import free_port, rabbitmq_vhost

REPO = Path(__file__).resolve().parent.parent


def testbed() -> DiracXTestbed:
    state = Path(os.environ.get("GRIDGATE_TESTBED_DIR", REPO / "var" / "testbeds"))
    return DiracXTestbed.from_env_file(state / "diracx" / "env.sh")


async def direct(facility: DiracXFacility, token: str, jobs: int, per_call: int) -> float:
    task = TaskSpec(index=0, argv=["python3", "-c", "print('hello')"])
    text, binary = sandbox_files([SlotTask(task)])
    files = {n: b.encode() for n, b in text.items()} | {
        n: base64.b64decode(b) for n, b in binary.items()
    }
    client = await facility.client()
    started = time.perf_counter()
    pfn = await facility.upload_sandbox(pack_sandbox(files), token)
    jdls = [
        build_jdl(
            JobDescription(
                slots=[Slot(f"bench{i:05d}", 0)],
                cpu_time_s=600,
                input_sandbox=[PAYLOAD_ZIP],
                packed_sandbox=pfn,
            )
        )
        for i in range(jobs)
    ]
    for start in range(0, jobs, per_call):
        await client.jobs.submit_jdl_jobs(
            _json_body(jdls[start : start + per_call]), headers=_bearer(token)
        )
    return time.perf_counter() - started


async def through_gridgate(tb: DiracXTestbed, jobs: int, data_dir: Path) -> float:
    import shutil

    shutil.rmtree(data_dir, ignore_errors=True)
    with rabbitmq_vhost() as vhost:
        stack = DevStack(
            data_dir=data_dir,
            port=free_port(),
            broker_url=vhost,
            diracx_facilities={FACILITY: tb.connection},
            auth_options=tb.auth_options(),
        )
        await stack.start()
        try:
            issuer = dev_issuer(stack.data_dir, stack.host, stack.port)
            token = issuer.mint(tb.subs["alice"], groups=["cta"], audience=AUDIENCE)
            async with httpx.AsyncClient(
                base_url=stack.url, headers={"Authorization": f"Bearer {token}"}, timeout=120
            ) as http:
                form = {"workflow": "hello-world", "facility": FACILITY, "PHASE": "RUN"}
                await wait_submitted(http, [(await http.post("/api/jobs", data=form))])
                gate = asyncio.Semaphore(20)

                async def post() -> httpx.Response:
                    async with gate:
                        return await http.post("/api/jobs", data=form)

                started = time.perf_counter()
                created = await asyncio.gather(*(post() for _ in range(jobs)))
                missing = await wait_submitted(http, created)
                elapsed = time.perf_counter() - started
                if missing:
                    print(
                        f"gridgate: {missing} of {jobs} jobs had no DiracX id after {elapsed:.0f} s"
                    )
                return elapsed
        finally:
            await stack.stop()


async def wait_submitted(
    http: httpx.AsyncClient, created: list[httpx.Response], limit_s: float = 180
) -> int:
    """Until every job shows its DiracX job id (or ``limit_s``); how many never did."""
    pending = {str(r.headers["location"]) for r in created}
    deadline = time.perf_counter() + limit_s
    while pending and time.perf_counter() < deadline:
        for url in sorted(pending):
            tasks = (await http.get(url)).json()["jobInfo"]["tasks"]
            if tasks and all(t.get("facilityJobId") for t in tasks):
                pending.discard(url)
        await asyncio.sleep(0.2)
    return len(pending)


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--jobs", type=int, default=200)
    parser.add_argument("--status", default="1000,10000")
    parser.add_argument("--data-dir", type=Path, default=Path("/tmp/gridgate-bench-diracx"))
    args = parser.parse_args()
    tb = testbed()
    async with httpx.AsyncClient(base_url=tb.connection.url, timeout=60) as http:
        tokens = ExchangeTokens(LegacyExchange(http, tb.legacy_key()), robot=tb.robot)
        tokens.owners["alice"] = tb.users["alice"]
        facility = DiracXFacility("bench", tb.connection, tokens)
        token = await tokens.for_job("alice")
        one = await direct(facility, token, args.jobs, 1)
        twenty = await direct(facility, token, args.jobs, 20)
        print(f"diracx-client, 1 JDL a call:   {args.jobs} jobs in {one:.2f} s "
              f"({args.jobs / one:.1f} jobs/s)")  # fmt: skip
        print(f"diracx-client, 20 JDLs a call: {args.jobs} jobs in {twenty:.2f} s "
              f"({args.jobs / twenty:.1f} jobs/s)")  # fmt: skip
        gridgate = await through_gridgate(tb, args.jobs, args.data_dir)
        print(f"gridgate (API -> DiracX ids): {args.jobs} jobs in {gridgate:.2f} s "
              f"({args.jobs / gridgate:.1f} jobs/s)")  # fmt: skip
        robot = await tokens.robot()
        rows = await facility._search(robot, [], ["JobID"])
        ids = [str(r["JobID"]) for r in rows]
        for size in (int(s) for s in args.status.split(",")):
            while len(ids) < size:
                await direct(facility, token, min(2000, size - len(ids)), 20)
                rows = await facility._search(robot, [], ["JobID"])
                ids = [str(r["JobID"]) for r in rows]
            best = float("inf")
            for _ in range(3):
                started = time.perf_counter()
                found = await facility.status(ids[:size])
                best = min(best, time.perf_counter() - started)
            assert len(found) == size, len(found)
            print(f"status of {size} jobs: {best * 1000:.0f} ms (best of 3, "
                  f"{(size + 999) // 1000} search call(s))")  # fmt: skip
        await facility.close()
    print("load:", os.getloadavg(), file=sys.stderr)


if __name__ == "__main__":
    asyncio.run(main())
