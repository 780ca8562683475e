"""Chaos: the five services as processes, SIGKILLed at random under load, the broker stopped.

Every acknowledged job must end final exactly once, with an unbroken history, its phase told by
exactly one final event, each task run once. Bounded by default (CI); ``make chaos`` runs the
long version through ``GRIDGATE_CHAOS_*`` variables (see tests/chaos/README.md).
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import secrets
import shutil
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio

from gridgate.testing.services import create_postgres_database, drop_postgres_database

from .harness import (
    REPO,
    ChaosBroker,
    ChaosSettings,
    Cluster,
    Run,
    Tap,
    check,
    kill_services,
    restart_broker,
    submit_jobs,
    supervise,
    table,
    wait_until_final,
    write_figures,
)

pytestmark = pytest.mark.chaos

CONFIGURATIONS = {
    "sqlite": {"database": "sqlite", "gateways": 1, "submitters": 1},
    "postgresql": {"database": "postgresql", "gateways": 1, "submitters": 1},
    "replicas": {"database": "postgresql", "gateways": 2, "submitters": 2},
}
REPLICAS = os.environ.get("GRIDGATE_CHAOS_REPLICAS", "1") == "1"
FIGURES: dict[str, dict[str, Any]] = {}


def _marks(configuration: str) -> list[pytest.MarkDecorator]:
    marks = [] if CONFIGURATIONS[configuration]["database"] == "sqlite" else [pytest.mark.postgres]
    # One gateway on PostgreSQL is also in "replicas" (two of each, on PostgreSQL), which
    # make test runs; make chaos and make test-long run it on its own as well.
    if configuration == "postgresql":
        marks.append(pytest.mark.long)
    return marks


@pytest.fixture(scope="module")
def chaos_broker(request: pytest.FixtureRequest) -> Iterator[ChaosBroker]:
    broker = ChaosBroker()
    broker.up()
    try:
        yield broker
    finally:
        broker.down()
        if FIGURES:
            summary = table(FIGURES)
            (REPO / "var" / "chaos").mkdir(parents=True, exist_ok=True)
            (REPO / "var" / "chaos" / "summary.json").write_text(
                json.dumps(FIGURES, indent=2, default=str)
            )
            reporter = request.config.pluginmanager.get_plugin("terminalreporter")
            if reporter is not None:
                reporter.write_line("\nchaos figures (var/chaos/*.json):\n" + summary)


@pytest_asyncio.fixture
async def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    if CONFIGURATIONS[request.param]["database"] == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path}/gateway.db"
        return
    name, url = await create_postgres_database()
    try:
        yield url
    finally:
        await drop_postgres_database(name)


@pytest.mark.parametrize(
    ("configuration", "database_url"),
    [pytest.param(name, name, id=name, marks=_marks(name)) for name in CONFIGURATIONS],
    indirect=["database_url"],
)
async def test_jobs_survive_kills_and_a_broker_restart(
    configuration: str, database_url: str, chaos_broker: ChaosBroker, tmp_path: Path
) -> None:
    if configuration == "replicas" and not REPLICAS:
        pytest.skip("two gateways and two submitters: make chaos (GRIDGATE_CHAOS_REPLICAS=1)")
    settings = ChaosSettings()
    shape = CONFIGURATIONS[configuration]
    rng = random.Random(settings.seed or None)
    window_s = max(30.0, settings.kills * settings.kill_interval_s)
    vhost = f"gridgate-chaos-{secrets.token_hex(4)}"
    broker_url = chaos_broker.add_vhost(vhost)
    cluster = Cluster(
        tmp_path,
        broker_url,
        database_url,
        gateways=int(shape["gateways"]),
        submitters=int(shape["submitters"]),
    )
    tap = Tap(broker_url)
    run = Run()
    stop_supervisor = asyncio.Event()
    started = time.monotonic()
    try:
        await tap.start()
        await cluster.start()
        supervisor = asyncio.create_task(supervise(cluster, run, stop_supervisor))
        run.load_started_at = time.monotonic()
        await asyncio.gather(
            submit_jobs(cluster, run, settings, rng, window_s),
            kill_services(cluster, run, tap, settings, rng, window_s),
            restart_broker(chaos_broker, run, settings, rng, window_s),
        )
        recovery, jobs, extra = await wait_until_final(cluster, run, tap, settings)
        stop_supervisor.set()
        await supervisor
        result = check(run, tap, jobs, extra, cluster.ledger, cluster.results)
    finally:
        stop_supervisor.set()
        cluster.stop()
        await tap.close()
        chaos_broker.delete_vhost(vhost)
    result["configuration"] = configuration
    result["recovery_s"] = None if recovery is None else round(recovery, 1)
    result["duration_s"] = round(time.monotonic() - started, 1)
    result["settings"] = settings.__dict__
    FIGURES[configuration] = result
    path = write_figures(configuration, result)
    print(f"\n{table({configuration: result})}\nfigures: {path}")

    problems = {
        key: result[key]
        for key in (
            "lost",
            "orphan_jobs",
            "service_exits",
            "errored_unreadable",
            "duplicated_final_events",
            "broken_chains",
            "phase_disagrees_with_events",
            "double_executions",
            "completed_without_running",
            "collect_twice_results_differ",
        )
        if result[key]
    }
    if result["kills"] < settings.kills:
        problems["kills"] = result["kills"]
    if result["broker_restarts"] < settings.broker_restarts:
        problems["broker_restarts"] = result["broker_restarts"]
    if result["kills"] and result["min_in_flight_at_kill"] == 0:
        problems["a kill landed with no job in flight"] = result["min_in_flight_at_kill"]
    if problems:
        # pytest's temporary directories rotate; the services' logs must outlive the run.
        kept = REPO / "var" / "chaos" / f"logs-{configuration}"
        shutil.copytree(tmp_path / "logs", kept, dirs_exist_ok=True)
    assert not problems, (
        f"{configuration}: {problems}\nexamples: {json.dumps(result['examples'], indent=1)}"
        f"\nfigures: {path}"
    )


async def test_jobs_are_accepted_while_the_broker_is_down_and_run_after(
    chaos_broker: ChaosBroker, tmp_path: Path
) -> None:
    """The outbox at work: a POST during a broker outage is a 303, and the job runs once the
    broker is back; readiness says the broker is down meanwhile."""
    broker_url = chaos_broker.add_vhost(f"gridgate-outage-{secrets.token_hex(4)}")
    cluster = Cluster(tmp_path, broker_url, f"sqlite+aiosqlite:///{tmp_path}/gateway.db")
    token = cluster.issuer.mint("outage-user", groups=["km3net"], audience="gridgate")
    try:
        await cluster.start()
        async with httpx.AsyncClient(
            base_url=cluster.urls[0], timeout=30, headers={"Authorization": f"Bearer {token}"}
        ) as http:
            await chaos_broker.stop_app()
            try:
                await asyncio.sleep(2)  # the robust connections notice the broker is gone
                ready = await http.get("/readyz")
                assert ready.status_code == 503
                assert ready.json()["checks"]["broker"] == "down"
                created = [
                    await http.post("/api/jobs", data={"workflow": "hello-world", "PHASE": "RUN"})
                    for _ in range(3)
                ]
                assert [c.status_code for c in created] == [303, 303, 303]
            finally:
                await chaos_broker.start_app()
            for answer in created:
                job_url = answer.headers["location"]
                job = (await http.get(job_url)).json()
                deadline = time.monotonic() + 90
                while job["phase"] not in ("COMPLETED", "ERROR", "ABORTED"):
                    assert time.monotonic() < deadline, job
                    job = (await http.get(job_url, params={"WAIT": 10})).json()
                assert job["phase"] == "COMPLETED", job
    finally:
        cluster.stop()
