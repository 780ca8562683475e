"""The JSON of /api/schedules: the request bodies read, and the representations answered."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator

from gridgate.gateway.handlers.representations import iso
from gridgate.gateway.models.schedule import Misfire, Overlap, Schedule, ScheduleRun, Trigger
from gridgate.gateway.services.scheduler import Firing
from gridgate.gateway.services.schedules import ScheduleSpec


class CronTriggerBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: Literal["cron"]
    expression: str = Field(description="Five fields: minute hour day-of-month month weekday.")
    timezone: str = Field(default="UTC", description="IANA time zone, e.g. Europe/Paris.")

    def trigger(self) -> Trigger:
        return Trigger("cron", cron=self.expression, timezone=self.timezone)


class IntervalTriggerBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: Literal["interval"]
    minutes: int | None = Field(default=None, ge=1)
    hours: int | None = Field(default=None, ge=1)
    seconds: int | None = Field(
        default=None, ge=1, description="Below the operator's minimum interval: refused."
    )

    @model_validator(mode="after")
    def _one_unit(self) -> IntervalTriggerBody:
        if sum(unit is not None for unit in (self.minutes, self.hours, self.seconds)) != 1:
            raise ValueError("give one of minutes, hours or seconds")
        return self

    def trigger(self) -> Trigger:
        seconds = (self.minutes or 0) * 60 + (self.hours or 0) * 3600 + (self.seconds or 0)
        return Trigger("interval", interval_s=seconds)


class NewDataTriggerBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: Literal["new-data"]
    did: str = Field(description="The Rucio dataset or container watched (scope:name).")
    files_per_job: int = Field(ge=1, description="New files each job reads.")
    minutes: int | None = Field(default=None, ge=1, description="How often to look.")

    def trigger(self) -> Trigger:
        seconds = self.minutes * 60 if self.minutes is not None else None
        return Trigger(
            "new-data", interval_s=seconds, did=self.did, files_per_job=self.files_per_job
        )


TriggerBody = Annotated[
    CronTriggerBody | IntervalTriggerBody | NewDataTriggerBody, Field(discriminator="kind")
]


class MisfireBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    policy: Misfire = "skip"
    max: int = Field(default=1, ge=0, description="catch-up: most missed firings run.")
    grace_s: int | None = Field(default=None, ge=0, description="Lateness still on time.")


class ScheduleBody(BaseModel):
    """``POST /api/schedules``."""

    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(default=None, max_length=255)
    workflow: str
    version: str | None = None
    facility: str = "local"
    vo: str | None = None
    group: str | None = None
    parameters: dict[str, Any] = {}
    inputs: list[str] = []
    executionduration: int | None = Field(default=None, ge=0)
    trigger: TriggerBody
    start: AwareDatetime | None = None
    end: AwareDatetime | None = None
    overlap: Overlap = "forbid"
    misfire: MisfireBody = MisfireBody()
    paused: bool = False

    def spec(self) -> ScheduleSpec:
        return ScheduleSpec(
            workflow=self.workflow,
            trigger=self.trigger.trigger(),
            name=self.name,
            version=self.version,
            facility=self.facility,
            vo=self.vo,
            group=self.group,
            parameters=self.parameters,
            inputs=tuple(self.inputs),
            execution_duration=self.executionduration,
            start=self.start,
            end=self.end,
            overlap=self.overlap,
            misfire=self.misfire.policy,
            catch_up_max=self.misfire.max,
            misfire_grace_s=self.misfire.grace_s,
            paused=self.paused,
        )


class ScheduleChangeBody(BaseModel):
    """``PATCH /api/schedules/{id}``: only the fields given change."""

    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(default=None, max_length=255)
    version: str | None = None
    facility: str | None = None
    vo: str | None = None
    group: str | None = None
    parameters: dict[str, Any] | None = None
    inputs: list[str] | None = None
    executionduration: int | None = Field(default=None, ge=0)
    trigger: TriggerBody | None = None
    start: AwareDatetime | None = None
    end: AwareDatetime | None = None
    overlap: Overlap | None = None
    misfire: MisfireBody | None = None
    paused: bool | None = None

    def changes(self) -> dict[str, Any]:
        """The :class:`ScheduleSpec` fields to replace."""
        given = self.model_fields_set
        renamed = {"executionduration": "execution_duration"}
        changes: dict[str, Any] = {}
        for name in given - {"trigger", "misfire", "inputs"}:
            changes[renamed.get(name, name)] = getattr(self, name)
        if "trigger" in given and self.trigger is not None:
            changes["trigger"] = self.trigger.trigger()
        if "inputs" in given:
            changes["inputs"] = tuple(self.inputs or ())
        if "misfire" in given and self.misfire is not None:
            changes |= {
                "misfire": self.misfire.policy,
                "catch_up_max": self.misfire.max,
                "misfire_grace_s": self.misfire.grace_s,
            }
        nullable = {"name", "version", "vo", "group", "start", "end", "execution_duration"}
        return {k: v for k, v in changes.items() if v is not None or k in nullable}


def trigger_json(schedule: Schedule) -> dict[str, Any]:
    if schedule.trigger_kind == "new-data":
        return {
            "kind": "new-data",
            "did": schedule.data_did,
            "files_per_job": schedule.files_per_job,
            "minutes": (schedule.interval_s or 0) // 60,
        }
    if schedule.trigger_kind == "cron":
        return {"kind": "cron", "expression": schedule.cron, "timezone": schedule.timezone}
    seconds = schedule.interval_s or 0
    if seconds % 3600 == 0:
        return {"kind": "interval", "hours": seconds // 3600}
    if seconds % 60 == 0:
        return {"kind": "interval", "minutes": seconds // 60}
    return {"kind": "interval", "seconds": seconds}


def schedule_json(
    schedule: Schedule, url: str, preview: list[datetime] | None = None
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "scheduleId": schedule.id,
        "url": url,
        "name": schedule.name,
        "ownerId": schedule.owner,
        "workflow": {"id": schedule.workflow_id, "version": schedule.workflow_version},
        "facility": schedule.facility,
        "vo": schedule.vo,
        "group": schedule.group_name,
        "parameters": schedule.parameters,
        "inputs": schedule.inputs,
        "executionDuration": schedule.execution_duration,
        "trigger": trigger_json(schedule),
        "start": iso(schedule.start),
        "end": iso(schedule.end),
        "overlap": schedule.overlap,
        "misfire": {
            "policy": schedule.misfire,
            "max": schedule.catch_up_max,
            "grace_s": schedule.misfire_grace_s,
        },
        "paused": schedule.paused,
        "pausedReason": schedule.paused_reason,
        "nextFireTime": iso(schedule.next_fire_at),
        "lastJobId": schedule.last_job_id,
        "consecutiveFailures": schedule.consecutive_failures,
        "creationTime": iso(schedule.created_at),
        "runs": f"{url}/runs",
    }
    if preview is not None:
        body["preview"] = [iso(t) for t in preview]
    return body


def schedule_ref_json(schedule: Schedule, url: str) -> dict[str, Any]:
    return {
        "scheduleId": schedule.id,
        "url": url,
        "name": schedule.name,
        "workflow": schedule.workflow_id,
        "paused": schedule.paused,
        "nextFireTime": iso(schedule.next_fire_at),
    }


def run_json(run: ScheduleRun, jobs_url: str) -> dict[str, Any]:
    return {
        "runId": run.id,
        "nominalTime": iso(run.nominal_time),
        "firedAt": iso(run.fired_at),
        "trigger": run.trigger,
        "outcome": run.outcome,
        "reason": run.reason,
        "jobId": run.job_id,
        "job": f"{jobs_url}/{run.job_id}" if run.job_id else None,
    }


def firing_json(firing: Firing, jobs_url: str) -> dict[str, Any]:
    return {
        "nominalTime": iso(firing.nominal_time),
        "outcome": firing.outcome,
        "reason": firing.reason,
        "jobId": firing.job_id,
        "job": f"{jobs_url}/{firing.job_id}" if firing.job_id else None,
    }
