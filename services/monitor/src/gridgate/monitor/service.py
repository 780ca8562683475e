"""The monitor's rules: compare what facilities say with what the gateway knows; report changes."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import structlog

from gridgate.broker import Publisher
from gridgate.contracts import GATEWAY_REPORTS_QUEUE, JobStateObserved, TaskState
from gridgate.contracts.internal import IN_FLIGHT_PATH, INTERNAL_TOKEN_HEADER
from gridgate.contracts.phases import Phase
from gridgate.core.clock import utcnow
from gridgate.core.errors import TransientError
from gridgate.localfacility import LocalFacility

log = structlog.get_logger(__name__)


class MonitorService:
    """One poll round: in-flight jobs from the gateway, states from the facility in bulk."""

    def __init__(
        self,
        publisher: Publisher,
        http: httpx.AsyncClient,
        local: LocalFacility,
        internal_token: str,
    ) -> None:
        self.publisher = publisher
        self.http = http
        self.local = local
        self.internal_token = internal_token

    async def in_flight(self, facility: str) -> list[dict[str, Any]]:
        try:
            response = await self.http.get(
                IN_FLIGHT_PATH,
                params={"facility": facility},
                headers={INTERNAL_TOKEN_HEADER: self.internal_token},
            )
            response.raise_for_status()
        except httpx.HTTPError as exc:
            raise TransientError(f"the gateway did not list in-flight jobs: {exc}") from exc
        jobs: list[dict[str, Any]] = response.json()["jobs"]
        return jobs

    async def poll_once(self) -> int:
        """Report every task whose state changed; return how many jobs changed."""
        jobs = await self.in_flight(self.local.name)
        known = {
            task["facility_job_id"]: (job["job_id"], task)
            for job in jobs
            for task in job["tasks"]
            if task["facility_job_id"]
        }
        if not known:
            return 0
        states = await asyncio.to_thread(self.local.status, list(known))
        changed: dict[str, list[TaskState]] = {}
        for facility_job_id, status in states.items():
            job_id, task = known[facility_job_id]
            if (task["phase"], task["facility_status"], task["exit_code"]) == (
                status.phase.value,
                status.state,
                status.exit_code,
            ):
                continue
            changed.setdefault(job_id, []).append(
                TaskState(
                    index=task["index"],
                    facility_job_id=facility_job_id,
                    phase=Phase(status.phase),
                    facility_status=status.state,
                    exit_code=status.exit_code,
                    detail=status.detail,
                    started_at=status.started_at,
                    ended_at=status.ended_at,
                )
            )
        observed_at = utcnow()
        for job_id, tasks in changed.items():
            await self.publisher.send(
                GATEWAY_REPORTS_QUEUE,
                JobStateObserved(job_id=job_id, observed_at=observed_at, tasks=tasks),
            )
        return len(changed)
