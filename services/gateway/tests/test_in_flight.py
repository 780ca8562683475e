"""The monitor's in-flight listing: page by page, every job a facility still runs exactly once
and nothing else, on SQLite and on PostgreSQL."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from gridgate.contracts import JobSubmitted
from gridgate.contracts.internal import IN_FLIGHT_PATH, INTERNAL_TOKEN_HEADER
from gridgate.contracts.phases import Phase
from gridgate.gateway.consumers.reports import ReportHandler
from gridgate.gateway.factory import ProcessContext
from gridgate.gateway.handlers.internal import router
from gridgate.gateway.schema.migrate import upgrade_schema
from gridgate.testing.services import create_postgres_database, drop_postgres_database

from .test_report_concurrency import create_job, make_context, observation

TOKEN = "in-flight-test-token"


@pytest.fixture(params=["sqlite", "postgresql"])
async def context(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[ProcessContext]:
    name = None
    if request.param == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp_path}/gateway.db"
    else:
        name, url = await create_postgres_database()
    context = make_context(url, internal_token=TOKEN)
    await upgrade_schema(context.engine)
    try:
        yield context
    finally:
        await context.engine.dispose()
        if name is not None:
            await drop_postgres_database(name)


async def test_pages_list_every_running_job_once(context: ProcessContext) -> None:
    handler = ReportHandler(context)
    running = []
    for _ in range(7):
        job_id = await create_job(context)
        submitted = JobSubmitted(job_id=job_id, facility="local", facility_job_ids=[f"{job_id}.0"])
        await handler(submitted)
        running.append(job_id)
    finished = running.pop()
    running.append(await create_job(context))  # QUEUED, not yet submitted: in flight too
    now = datetime.now(UTC)
    await handler(observation(finished, now, Phase.COMPLETED, "done"))  # has an outcome: out
    await handler(observation(running[0], now, Phase.EXECUTING, "running"))
    app = FastAPI()
    app.include_router(router)
    app.state.context = context
    seen: list[dict[str, object]] = []
    pages = 0
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://gateway"
    ) as http:
        params: dict[str, str | int] = {"facility": "local", "limit": 2}
        while True:
            response = await http.get(
                IN_FLIGHT_PATH, params=params, headers={INTERNAL_TOKEN_HEADER: TOKEN}
            )
            assert response.status_code == 200, response.text
            page = response.json()
            assert len(page["jobs"]) <= 2
            seen.extend(page["jobs"])
            pages += 1
            if page["next"] is None:
                break
            params["after"] = page["next"]
        other = await http.get(
            IN_FLIGHT_PATH, params={"facility": "nowhere"}, headers={INTERNAL_TOKEN_HEADER: TOKEN}
        )
    ids = [job["job_id"] for job in seen]
    assert sorted(ids) == sorted(running)  # each once, and not the finished one
    assert pages >= 3
    first = next(job for job in seen if job["job_id"] == running[0])
    assert first["tasks"] == [
        {
            "index": 0,
            "facility_job_id": f"{running[0]}.0",
            "phase": "EXECUTING",
            "facility_status": "running",
            "exit_code": None,
            "detail": None,
        }
    ]
    assert first["owner"] == "alice" and first["phase"] == "EXECUTING"
    assert other.json() == {"jobs": [], "next": None}
