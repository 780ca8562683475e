"""A schedule (a job template and its trigger) and the record of its firings."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

Overlap = Literal["allow", "forbid", "replace"]
Misfire = Literal["skip", "run-once", "catch-up"]
TriggerKind = Literal["cron", "interval", "new-data"]


@dataclass(frozen=True)
class Trigger:
    """When a schedule fires: a cron expression in a time zone, a fixed interval, or new
    files in a Rucio dataset or container (``new-data``: ``did`` is looked at every
    ``interval_s`` and each full batch of ``files_per_job`` new files makes a job)."""

    kind: TriggerKind
    cron: str | None = None
    timezone: str | None = None
    interval_s: int | None = None
    did: str | None = None
    files_per_job: int | None = None


@dataclass
class Schedule:
    """A schedule as the gateway's services see it (one row of ``schedules``)."""

    id: str
    owner: str
    owner_groups: list[str]
    name: str | None
    vo: str
    group_name: str | None
    workflow_id: str
    workflow_version: str
    facility: str
    parameters: dict[str, Any]
    """As given: values may hold ``{nominal_time}``-style placeholders."""
    inputs: list[str]
    execution_duration: int
    trigger_kind: TriggerKind
    cron: str | None
    timezone: str | None
    interval_s: int | None
    start: datetime | None
    end: datetime | None
    overlap: Overlap
    misfire: Misfire
    catch_up_max: int
    misfire_grace_s: int
    paused: bool
    paused_reason: str | None
    next_fire_at: datetime | None
    last_job_id: str | None
    consecutive_failures: int
    created_at: datetime
    updated_at: datetime
    version: int = 0
    data_did: str | None = None
    """new-data: the dataset or container watched."""
    files_per_job: int | None = None
    """new-data: the files each job reads."""

    @property
    def trigger(self) -> Trigger:
        return Trigger(
            self.trigger_kind,
            self.cron,
            self.timezone,
            self.interval_s,
            did=self.data_did,
            files_per_job=self.files_per_job,
        )


@dataclass(frozen=True)
class ScheduleRun:
    """One firing: its nominal time, when it happened, and what came of it."""

    id: int
    schedule_id: str
    nominal_time: datetime
    fired_at: datetime
    trigger: Literal["schedule", "manual"]
    outcome: Literal["created", "skipped"]
    reason: str | None
    job_id: str | None
