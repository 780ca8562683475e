"""The monitor's rules: compare what facilities say with what the gateway knows; report changes."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any, Protocol

import httpx
import structlog

from gridgate.broker.publisher import Outgoing, Publisher
from gridgate.contracts import (
    GATEWAY_REPORTS_QUEUE,
    MAX_OBSERVATIONS_PER_MESSAGE,
    JobStateObserved,
    JobStatesObserved,
    TaskState,
)
from gridgate.contracts.internal import IN_FLIGHT_PATH, INTERNAL_TOKEN_HEADER
from gridgate.contracts.phases import Phase
from gridgate.contracts.tasks import TaskStatus
from gridgate.core.clock import utcnow
from gridgate.core.crashpoints import crash_point
from gridgate.core.errors import TransientError
from gridgate.localfacility import LocalFacility

log = structlog.get_logger(__name__)

REPORT_BATCH = 500
"""Reports published and confirmed together."""


class StatusSource(Protocol):
    """A facility's bulk status query."""

    async def status(self, facility_job_ids: list[str]) -> Mapping[str, TaskStatus]: ...


class LocalStatus:
    """The local facility's status files, read off the event loop."""

    def __init__(self, local: LocalFacility) -> None:
        self.local = local

    async def status(self, facility_job_ids: list[str]) -> Mapping[str, TaskStatus]:
        return await asyncio.to_thread(self.local.status, facility_job_ids)


class MonitorService:
    """One poll round per facility: its in-flight jobs from the gateway, states in bulk."""

    def __init__(
        self,
        publisher: Publisher,
        http: httpx.AsyncClient,
        facilities: Mapping[str, StatusSource],
        internal_token: str,
    ) -> None:
        self.publisher = publisher
        self.http = http
        self.facilities = dict(facilities)
        self.internal_token = internal_token

    async def in_flight(self, facility: str) -> list[dict[str, Any]]:
        """All the facility's in-flight jobs, page by page (the gateway's pages are bounded)."""
        jobs: list[dict[str, Any]] = []
        after: str | None = None
        while True:
            params = {"facility": facility} | ({"after": after} if after else {})
            try:
                response = await self.http.get(
                    IN_FLIGHT_PATH,
                    params=params,
                    headers={INTERNAL_TOKEN_HEADER: self.internal_token},
                )
                response.raise_for_status()
            except httpx.HTTPError as exc:
                raise TransientError(f"the gateway did not list in-flight jobs: {exc}") from exc
            page = response.json()
            jobs.extend(page["jobs"])
            after = page.get("next")
            if not after:
                return jobs

    async def poll_once(self) -> int:
        """Report every task whose state changed, on every facility; how many jobs changed."""
        changed = 0
        for name, source in self.facilities.items():
            try:
                changed += await self.poll_facility(name, source)
            except TransientError as exc:
                # One facility down must not stop the others being watched.
                log.warning("poll of a facility failed", facility=name, reason=str(exc))
        return changed

    async def poll_facility(self, name: str, source: StatusSource) -> int:
        jobs = await self.in_flight(name)
        known = {
            task["facility_job_id"]: (job["job_id"], task)
            for job in jobs
            for task in job["tasks"]
            if task["facility_job_id"]
        }
        if not known:
            return 0
        states = await source.status(list(known))
        changed: dict[str, list[TaskState]] = {}
        for facility_job_id, status in states.items():
            job_id, task = known[facility_job_id]
            # DIRAC's minor status moves on while its status stays: each move is recorded.
            if (task["phase"], task["facility_status"], task["exit_code"], task["detail"]) == (
                status.phase.value,
                status.state,
                status.exit_code,
                status.detail,
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
        observations = [
            JobStateObserved(job_id=job_id, observed_at=observed_at, tasks=tasks)
            for job_id, tasks in changed.items()
        ]
        # Many observations to a message, and those messages confirmed in batches, not one
        # round trip each: a cycle over 100,000 jobs may carry thousands of changes. A crash
        # mid-way loses nothing: what was not applied is still a change at the next cycle.
        messages = [
            JobStatesObserved(observations=observations[start : start + per_message])
            for per_message in (MAX_OBSERVATIONS_PER_MESSAGE,)
            for start in range(0, len(observations), per_message)
        ]
        for start in range(0, len(messages), REPORT_BATCH):
            await self.publisher.publish_many(
                [
                    Outgoing(
                        body=message.model_dump_json().encode(),
                        message_id=message.message_id,
                        routing_key=GATEWAY_REPORTS_QUEUE,
                        command=True,
                        kind=str(message.kind),
                        job_id=message.job_id,
                    )
                    for message in messages[start : start + REPORT_BATCH]
                ]
            )
            crash_point("monitor-reported")
        return len(changed)
