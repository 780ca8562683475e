"""How fast the gateway applies the monitor's observations: a part of issue 16's P3.

Usage: ``uv run python bench/observations.py [--jobs 5000] [--concurrency 256] [--sqlite]``

Creates a database of its own (PostgreSQL by default), creates ``--jobs`` jobs through
``JobService.create_job`` (``PHASE=RUN``), records each one's submission (``JobSubmitted``), then
applies one ``JobStateObserved`` per job (QUEUED -> EXECUTING, then EXECUTING -> COMPLETED)
through the gateway's own report handler, ``--concurrency`` at a time (the reports consumer
takes that many with its prefetch; the handler applies the observations it has at once in
batches, see gateway/consumers/report_batches.py). Job creation and submissions run 20 at a
time (the engine's pool: 10 + 10 overflow). Prints observations applied
per second (wall) and this process's CPU per observation, with the machine's load. No broker:
the consumer's AMQP work (about one delivery and one ack per report) and the relay's
publishing of the events are not included, so this is an upper bound of the gateway's rate.
Speed is reported here, never asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from pydantic import SecretStr

BENCH_DIR = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH_DIR))

from post_jobs import database  # noqa: E402

from gridgate.contracts import JobStateObserved, JobSubmitted, TaskState  # noqa: E402
from gridgate.contracts.phases import Phase  # noqa: E402
from gridgate.core.logging import configure_logging  # noqa: E402
from gridgate.gateway.config import GatewaySettings  # noqa: E402
from gridgate.gateway.consumers.report_batches import MAX_BATCH  # noqa: E402
from gridgate.gateway.consumers.reports import ReportHandler  # noqa: E402
from gridgate.gateway.factory import ProcessContext, job_policy, unit_of_work  # noqa: E402
from gridgate.gateway.schema.engine import create_engine  # noqa: E402
from gridgate.gateway.schema.migrate import upgrade_schema  # noqa: E402
from gridgate.gateway.services.facilities import FacilityCatalogue  # noqa: E402
from gridgate.gateway.services.group_commit import GroupCommit  # noqa: E402
from gridgate.gateway.services.jobs import JobRequest  # noqa: E402
from gridgate.gateway.services.notifier import PhaseNotifier  # noqa: E402
from gridgate.iam.identity import Identity  # noqa: E402
from gridgate.workflows import WorkflowCatalogue  # noqa: E402

OWNER = Identity(sub="bench-user", groups=("cta",), vos=("cta",))
POOL = 20
"""The engine's connections: 10 + 10 overflow."""
REQUEST = JobRequest(workflow="hello-world", run=True, parameters={"name": "bench"})


async def in_lanes(items: list[object], lanes: int, work: object) -> tuple[float, float]:
    """Run ``work(item)`` over ``items``, ``lanes`` at a time; (wall s, CPU s)."""
    queue = list(reversed(items))

    async def lane() -> None:
        while queue:
            await work(queue.pop())  # type: ignore[operator]

    wall, cpu = time.monotonic(), time.process_time()
    await asyncio.gather(*(lane() for _ in range(lanes)))
    return time.monotonic() - wall, time.process_time() - cpu


def observed(job_id: str, at: datetime, phase: Phase, status: str) -> JobStateObserved:
    task = TaskState(
        index=0,
        facility_job_id=f"{job_id}.0",
        phase=phase,
        facility_status=status,
        exit_code=0 if phase == Phase.COMPLETED else None,
    )
    return JobStateObserved(job_id=job_id, observed_at=at, tasks=[task])


async def run(url: str, jobs: int, lanes: int) -> None:
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
    ids: list[str] = []

    async def create(_: object) -> None:
        async with unit_of_work(context) as factory:
            ids.append(await factory.job_service().create_job(OWNER, REQUEST))

    handler = ReportHandler(context)
    wall, cpu = await in_lanes(list(range(jobs)), min(lanes, POOL), create)
    print(
        f"created {jobs} jobs in {wall:.1f} s ({jobs / wall:.0f}/s, {cpu * 1e6 / jobs:.0f} us CPU)"
    )
    submitted = [JobSubmitted(job_id=j, facility="local", facility_job_ids=[f"{j}.0"]) for j in ids]
    wall, cpu = await in_lanes(submitted, min(lanes, POOL), handler)  # type: ignore[arg-type]
    print(f"{'JobSubmitted':<34} {jobs / wall:>7.0f}/s  {cpu * 1e6 / jobs:>6.0f} us CPU each")
    start = datetime.now(UTC)
    for name, at, phase, status in (
        ("observed QUEUED -> EXECUTING", start, Phase.EXECUTING, "running"),
        ("observed EXECUTING -> COMPLETED", start + timedelta(seconds=1), Phase.COMPLETED, "done"),
    ):
        reports = [observed(j, at, phase, status) for j in ids]
        wall, cpu = await in_lanes(reports, lanes, handler)  # type: ignore[arg-type]
        print(f"{name:<34} {jobs / wall:>7.0f}/s  {cpu * 1e6 / jobs:>6.0f} us CPU each")
    batches = handler.observations
    print(
        f"observation batches: {batches.batches} committed, largest {batches.largest}, "
        f"{batches.failed} failed"
    )
    await context.engine.dispose()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=5000)
    parser.add_argument(
        "--concurrency",
        type=int,
        default=MAX_BATCH,
        help="reports handled at once: the reports consumer's prefetch",
    )
    parser.add_argument("--sqlite", action="store_true")
    parser.add_argument("--admin-dsn", default="postgresql://postgres@127.0.0.1:5432/test")
    args = parser.parse_args(argv)
    configure_logging(json=True, level="WARNING")
    print(f"load before: {os.getloadavg()[0]:.1f} {os.getloadavg()[1]:.1f} (1, 5 min)")
    if args.sqlite:
        with tempfile.TemporaryDirectory() as work:
            asyncio.run(run(f"sqlite+aiosqlite:///{work}/gw.db", args.jobs, args.concurrency))
    else:
        with database(args.admin_dsn, f"gridgate_observations_{os.getpid()}") as dsn:
            url = dsn.replace("postgresql://", "postgresql+asyncpg://", 1)
            asyncio.run(run(url, args.jobs, args.concurrency))
    print(f"load after: {os.getloadavg()[0]:.1f} {os.getloadavg()[1]:.1f} (1, 5 min)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
