"""The JSON of /api/schedules: the request bodies read, and the representations answered."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator

from gridgate.gateway.handlers.representations import Wire, WorkflowRef, absent_when_none
from gridgate.gateway.models.schedule import Misfire, Overlap, Schedule, ScheduleRun, Trigger
from gridgate.gateway.services.scheduler import Firing
from gridgate.gateway.services.schedules import ScheduleSpec

MAX_INTERVAL_HOURS = 366 * 24
"""The longest interval trigger: a year."""


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
    # At most a year: longer intervals overflow the calendar when fire times are computed.
    minutes: int | None = Field(default=None, ge=1, le=MAX_INTERVAL_HOURS * 60)
    hours: int | None = Field(default=None, ge=1, le=MAX_INTERVAL_HOURS)
    seconds: int | None = Field(
        default=None,
        ge=1,
        le=MAX_INTERVAL_HOURS * 3600,
        description="Below the operator's minimum interval: refused.",
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


class CronTrigger(Wire):
    kind: Literal["cron"]
    expression: str | None
    timezone: str | None


class IntervalTrigger(Wire):
    """Every ``hours`` hours when the interval is whole hours, else every ``minutes``, else
    every ``seconds``."""

    kind: Literal["interval"]
    minutes: int | None = Field(default=None, exclude_if=absent_when_none)
    hours: int | None = Field(default=None, exclude_if=absent_when_none)
    seconds: int | None = Field(default=None, exclude_if=absent_when_none)


class NewDataTrigger(Wire):
    """A job per ``files_per_job`` new files of ``did``, looked for every ``minutes``."""

    kind: Literal["new-data"]
    did: str | None
    files_per_job: int | None = Field(alias="files_per_job")
    minutes: int


class MisfirePolicy(Wire):
    policy: Misfire
    max: int
    grace_s: int = Field(alias="grace_s")


class ScheduleView(Wire):
    """A schedule: its job template, its trigger and policies, and its state."""

    schedule_id: str
    url: str
    name: str | None
    owner_id: str
    workflow: WorkflowRef
    facility: str
    vo: str
    group: str | None
    parameters: dict[str, Any] = Field(description="As given, placeholders included.")
    inputs: list[str]
    execution_duration: int
    trigger: Annotated[CronTrigger | IntervalTrigger | NewDataTrigger, Field(discriminator="kind")]
    start: datetime | None
    end: datetime | None
    overlap: Overlap
    misfire: MisfirePolicy
    paused: bool
    paused_reason: str | None
    next_fire_time: datetime | None
    last_job_id: str | None
    consecutive_failures: int
    creation_time: datetime
    runs: str = Field(description="Where its firings are listed.")
    preview: list[datetime] | None = Field(
        default=None,
        exclude_if=absent_when_none,
        description="The next fire times, with `?preview=n`.",
    )


class ScheduleRef(Wire):
    """A schedule in a list."""

    schedule_id: str
    url: str
    name: str | None
    workflow: str
    paused: bool
    next_fire_time: datetime | None


class ScheduleList(Wire):
    """A page of schedules, newest first."""

    schedules: list[ScheduleRef]
    total: int
    next: str | None


class RunView(Wire):
    """One firing: its nominal time, when it happened and what came of it."""

    run_id: int
    nominal_time: datetime
    fired_at: datetime
    trigger: Literal["schedule", "manual"]
    outcome: Literal["created", "skipped"]
    reason: str | None
    job_id: str | None
    job: str | None = Field(description="The job's URL, when one was created.")


class RunList(Wire):
    runs: list[RunView]
    next: str | None


class FiringView(Wire):
    """What firing now came to."""

    nominal_time: datetime
    outcome: Literal["created", "skipped"]
    reason: str | None
    job_id: str | None
    job: str | None


def trigger_view(schedule: Schedule) -> CronTrigger | IntervalTrigger | NewDataTrigger:
    if schedule.trigger_kind == "new-data":
        return NewDataTrigger(
            kind="new-data",
            did=schedule.data_did,
            files_per_job=schedule.files_per_job,
            minutes=(schedule.interval_s or 0) // 60,
        )
    if schedule.trigger_kind == "cron":
        return CronTrigger(kind="cron", expression=schedule.cron, timezone=schedule.timezone)
    seconds = schedule.interval_s or 0
    if seconds % 3600 == 0:
        return IntervalTrigger(kind="interval", hours=seconds // 3600)
    if seconds % 60 == 0:
        return IntervalTrigger(kind="interval", minutes=seconds // 60)
    return IntervalTrigger(kind="interval", seconds=seconds)


def schedule_view(
    schedule: Schedule, url: str, preview: list[datetime] | None = None
) -> ScheduleView:
    return ScheduleView(
        schedule_id=schedule.id,
        url=url,
        name=schedule.name,
        owner_id=schedule.owner,
        workflow=WorkflowRef(id=schedule.workflow_id, version=schedule.workflow_version),
        facility=schedule.facility,
        vo=schedule.vo,
        group=schedule.group_name,
        parameters=schedule.parameters,
        inputs=schedule.inputs,
        execution_duration=schedule.execution_duration,
        trigger=trigger_view(schedule),
        start=schedule.start,
        end=schedule.end,
        overlap=schedule.overlap,
        misfire=MisfirePolicy(
            policy=schedule.misfire,
            max=schedule.catch_up_max,
            grace_s=schedule.misfire_grace_s,
        ),
        paused=schedule.paused,
        paused_reason=schedule.paused_reason,
        next_fire_time=schedule.next_fire_at,
        last_job_id=schedule.last_job_id,
        consecutive_failures=schedule.consecutive_failures,
        creation_time=schedule.created_at,
        runs=f"{url}/runs",
        preview=preview,
    )


def schedule_ref(schedule: Schedule, url: str) -> ScheduleRef:
    return ScheduleRef(
        schedule_id=schedule.id,
        url=url,
        name=schedule.name,
        workflow=schedule.workflow_id,
        paused=schedule.paused,
        next_fire_time=schedule.next_fire_at,
    )


def run_view(run: ScheduleRun, jobs_url: str) -> RunView:
    return RunView(
        run_id=run.id,
        nominal_time=run.nominal_time,
        fired_at=run.fired_at,
        trigger=run.trigger,
        outcome=run.outcome,
        reason=run.reason,
        job_id=run.job_id,
        job=f"{jobs_url}/{run.job_id}" if run.job_id else None,
    )


def firing_view(firing: Firing, jobs_url: str) -> FiringView:
    return FiringView(
        nominal_time=firing.nominal_time,
        outcome=firing.outcome,
        reason=firing.reason,
        job_id=firing.job_id,
        job=f"{jobs_url}/{firing.job_id}" if firing.job_id else None,
    )
