"""The schedule service: what users do with their schedules, and what they read of them.

The template of a schedule is checked when it is made or changed exactly as a job's is
(:mod:`gridgate.gateway.services.admission`), with its placeholders filled with sample
values; its trigger and policies against the operator's limits. Firing is the
:class:`~gridgate.gateway.services.scheduler.Scheduler`'s.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from itertools import islice
from typing import Any

import structlog

from gridgate.core.clock import new_job_id
from gridgate.gateway.exceptions import (
    InvalidCursorError,
    InvalidInputsError,
    InvalidScheduleError,
    ScheduleLimitError,
    ScheduleNotFoundError,
)
from gridgate.gateway.models.schedule import Misfire, Overlap, Schedule, ScheduleRun, Trigger
from gridgate.gateway.services.admission import admit, check_credential
from gridgate.gateway.services.credentials import CredentialChecker
from gridgate.gateway.services.datalake import InputResolver, parse_dids
from gridgate.gateway.services.ledger import JobLedger
from gridgate.gateway.services.misfire import first_fire
from gridgate.gateway.services.policy import SchedulePolicy
from gridgate.gateway.services.scheduler import Clock, Firing, Scheduler, schedule_event
from gridgate.gateway.services.templates import check_placeholders, render_parameters
from gridgate.gateway.services.triggers import check_trigger, fire_times
from gridgate.gateway.storage.schedules import ScheduleStore
from gridgate.iam.identity import Identity

log = structlog.get_logger(__name__)

MAX_PREVIEW = 100
MAX_START_AHEAD = timedelta(days=3653)
"""The latest start a schedule may have, from now: ten years. Fire times are computed from
the start, and near the end of the calendar (year 9999) that computation overflows."""


@dataclass(frozen=True)
class ScheduleSpec:
    """What a user asks for: a job template, a trigger, and the policies."""

    workflow: str
    trigger: Trigger
    name: str | None = None
    version: str | None = None
    facility: str = "local"
    vo: str | None = None
    group: str | None = None
    parameters: dict[str, Any] = field(default_factory=dict)
    inputs: tuple[str, ...] = ()
    execution_duration: int | None = None
    start: datetime | None = None
    end: datetime | None = None
    overlap: Overlap = "forbid"
    misfire: Misfire = "skip"
    catch_up_max: int = 1
    misfire_grace_s: int | None = None
    paused: bool = False


@dataclass(frozen=True)
class ScheduleFilter:
    paused: bool | None = None
    workflow: str | None = None
    cursor: str | None = None
    limit: int = 100


@dataclass(frozen=True)
class SchedulePage:
    schedules: list[Schedule]
    total: int
    next_cursor: str | None


def encode_cursor(schedule: Schedule) -> str:
    raw = f"{schedule.created_at.isoformat()}|{schedule.id}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, str]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        created, schedule_id = raw.split("|", 1)
        return datetime.fromisoformat(created), schedule_id
    except (ValueError, binascii.Error, UnicodeDecodeError) as exc:
        raise InvalidCursorError("The paging cursor is not one this service issued.") from exc


def spec_of(schedule: Schedule) -> ScheduleSpec:
    """The request that would make ``schedule`` as it is now."""
    return ScheduleSpec(
        workflow=schedule.workflow_id,
        trigger=schedule.trigger,
        name=schedule.name,
        version=schedule.workflow_version,
        facility=schedule.facility,
        vo=schedule.vo,
        group=schedule.group_name,
        parameters=dict(schedule.parameters),
        inputs=tuple(schedule.inputs),
        execution_duration=schedule.execution_duration,
        start=schedule.start,
        end=schedule.end,
        overlap=schedule.overlap,
        misfire=schedule.misfire,
        catch_up_max=schedule.catch_up_max,
        misfire_grace_s=schedule.misfire_grace_s,
        paused=schedule.paused,
    )


class ScheduleService:
    """Creates, changes, pauses, fires and deletes schedules for their owners, and reads them."""

    def __init__(
        self,
        ledger: JobLedger,
        schedules: ScheduleStore,
        scheduler: Scheduler,
        policy: SchedulePolicy,
        clock: Clock,
        credentials: CredentialChecker | None = None,
        inputs: InputResolver | None = None,
    ) -> None:
        self.ledger = ledger
        self.schedules = schedules
        self.scheduler = scheduler
        self.policy = policy
        self.clock = clock
        self.credentials = credentials
        self.inputs = inputs

    async def create_schedule(self, identity: Identity, spec: ScheduleSpec) -> Schedule:
        """Check and record a schedule; it first fires at its trigger's next time."""
        now = self.clock()
        schedule = await self._checked(identity, spec, now, schedule_id=new_job_id(), created=now)
        if await self.schedules.count_owned(identity.sub) >= self.policy.max_per_user:
            raise ScheduleLimitError(
                f"You have {self.policy.max_per_user} schedules, the most one user may have."
            )
        await self.schedules.add(schedule)
        await self.ledger.commit()
        log.info("schedule created", schedule_id=schedule.id, workflow=schedule.workflow_id)
        return schedule

    async def change_schedule(
        self, identity: Identity, schedule_id: str, changes: dict[str, Any]
    ) -> Schedule:
        """Change some fields (pause and resume among them); the result is checked whole.

        A changed trigger or start, or a resumed schedule, fires next at its trigger's first
        time after now: firings missed while paused are not run.
        """
        return await self.ledger.retrying(lambda: self._change(identity, schedule_id, changes))

    async def _change(
        self, identity: Identity, schedule_id: str, changes: dict[str, Any]
    ) -> Schedule:
        current = await self._owned(identity, schedule_id)
        await self.ledger.rollback()
        now = self.clock()
        spec = dataclasses.replace(spec_of(current), **changes)
        changed = await self._checked(
            identity, spec, now, schedule_id=current.id, created=current.created_at
        )
        retimed = (
            changed.trigger != current.trigger
            or changed.start != current.start
            or changed.end != current.end
            or (current.paused and not changed.paused)
        )
        if not retimed:
            changed.next_fire_at = current.next_fire_at
        changed.last_job_id = current.last_job_id
        await self.schedules.claim(current)
        if changed.paused:
            changed.paused_reason = (
                current.paused_reason if current.paused else "paused by its owner"
            )
            if not current.paused:
                event = schedule_event(changed, "paused", now, reason=changed.paused_reason)
                self.ledger.outbox.schedule_event(event)
        values = {k: v for k, v in dataclasses.asdict(changed).items() if k != "version"}
        await self.schedules.update(schedule_id, **values)
        await self.ledger.commit()
        changed.version = current.version
        return changed

    async def delete_schedule(self, identity: Identity, schedule_id: str) -> None:
        """Delete the schedule and its runs; the jobs it made stay."""
        schedule = await self._owned(identity, schedule_id)
        await self.schedules.delete(schedule.id)
        await self.ledger.commit()

    async def get_schedule(self, identity: Identity, schedule_id: str) -> Schedule:
        return await self._owned(identity, schedule_id)

    async def list_schedules(self, identity: Identity, query: ScheduleFilter) -> SchedulePage:
        after = decode_cursor(query.cursor) if query.cursor else None
        found, total = await self.schedules.list_owned(
            identity.sub,
            paused=query.paused,
            workflow=query.workflow,
            after=after,
            limit=query.limit + 1,
        )
        page = found[: query.limit]
        more = len(found) > query.limit
        return SchedulePage(page, total, encode_cursor(page[-1]) if more and page else None)

    def preview(self, schedule: Schedule, count: int) -> list[datetime]:
        """The next ``count`` nominal times (fewer if the schedule ends first)."""
        if schedule.next_fire_at is None:
            return []
        upcoming = [schedule.next_fire_at]
        anchor = schedule.start or schedule.created_at
        upcoming += islice(fire_times(schedule.trigger, anchor, schedule.next_fire_at), count)
        return [t for t in upcoming if schedule.end is None or t <= schedule.end][:count]

    async def runs(
        self, identity: Identity, schedule_id: str, before: int | None, limit: int
    ) -> list[ScheduleRun]:
        schedule = await self._owned(identity, schedule_id)
        return await self.schedules.runs(schedule.id, before, limit)

    async def run_now(self, identity: Identity, schedule_id: str) -> Firing:
        """Fire the schedule once now, as its trigger would (overlap policy included)."""
        schedule = await self._owned(identity, schedule_id)
        await self.ledger.rollback()
        return await self.scheduler.run_now(schedule.id)

    # ----- internals ----------------------------------------------------------------------

    async def _owned(self, identity: Identity, schedule_id: str) -> Schedule:
        schedule = await self.schedules.get(schedule_id)
        # Another user's schedule answers exactly as a missing one: its existence stays private.
        if schedule is None or schedule.owner != identity.sub:
            raise ScheduleNotFoundError(f"There is no schedule {schedule_id} of yours.")
        return schedule

    async def _checked(
        self,
        identity: Identity,
        spec: ScheduleSpec,
        now: datetime,
        *,
        schedule_id: str,
        created: datetime,
    ) -> Schedule:
        """The schedule ``spec`` asks for, checked as job creation checks a job."""
        check_placeholders(spec.parameters)
        trigger = spec.trigger
        if trigger.kind == "new-data" and trigger.interval_s is None:
            # Look for new files as often as schedules may fire.
            trigger = dataclasses.replace(trigger, interval_s=self.policy.min_interval_s)
        check_trigger(trigger, self.policy.min_interval_s, now)
        self._check_window(spec, now)
        admission = admit(
            self.ledger.workflows,
            self.ledger.facilities,
            identity,
            workflow=spec.workflow,
            version=spec.version,
            facility=spec.facility,
            vo=spec.vo,
            # Sample values: a placeholder must render to something the workflow accepts.
            parameters=render_parameters(spec.parameters, now, now),
            execution_duration=spec.execution_duration,
        )
        group, _ = await check_credential(
            self.credentials,
            self.ledger.policy.credential_margin_s,
            identity,
            admission.facility,
            admission.vo,
            spec.group,
            admission.duration,
            now,
        )
        if spec.inputs or trigger.kind == "new-data":
            if self.inputs is None:
                raise InvalidInputsError(
                    "This gridgate has no data lake configured, so jobs cannot read inputs.",
                    errors=[{"field": "inputs", "message": "no data lake"}],
                )
            if spec.inputs:
                await self.inputs.resolve(identity, spec.inputs)
        data_did = None
        if trigger.kind == "new-data":
            self._check_new_data(spec)
            assert self.inputs is not None and trigger.did is not None
            # Readable by its owner (an empty dataset is fine: files come later).
            await self.inputs.files_in(identity, trigger.did)
            data_did = str(parse_dids([trigger.did])[0])
        schedule = Schedule(
            id=schedule_id,
            owner=identity.sub,
            owner_groups=list(identity.groups),
            name=spec.name,
            vo=admission.vo,
            group_name=group or spec.group,
            workflow_id=admission.definition.id,
            workflow_version=admission.definition.version,
            facility=admission.facility.id,
            parameters=dict(spec.parameters),
            inputs=list(spec.inputs),
            execution_duration=admission.duration,
            trigger_kind=trigger.kind,
            cron=trigger.cron,
            timezone=trigger.timezone,
            interval_s=trigger.interval_s,
            data_did=data_did,
            files_per_job=trigger.files_per_job,
            start=spec.start,
            end=spec.end,
            overlap=spec.overlap,
            misfire=spec.misfire,
            catch_up_max=spec.catch_up_max,
            misfire_grace_s=(
                spec.misfire_grace_s
                if spec.misfire_grace_s is not None
                else self.policy.misfire_grace_s
            ),
            paused=spec.paused,
            paused_reason="paused by its owner" if spec.paused else None,
            next_fire_at=None,
            last_job_id=None,
            consecutive_failures=0,
            created_at=created,
            updated_at=now,
        )
        schedule.next_fire_at = first_fire(schedule, now)
        return schedule

    def _check_new_data(self, spec: ScheduleSpec) -> None:
        """A new-data schedule's jobs read the new files, and every file must be read."""
        if spec.inputs:
            raise InvalidScheduleError(
                "A new-data schedule's jobs read the new files of its DID; it takes no inputs.",
                errors=[{"field": "inputs", "message": "not with a new-data trigger"}],
            )
        if spec.overlap == "replace":
            raise InvalidScheduleError(
                "A new-data schedule cannot replace a running job: its files would go unread. "
                "Use allow (a job per batch at once) or forbid (batches wait their turn).",
                errors=[{"field": "overlap", "message": "allow or forbid"}],
            )

    def _check_window(self, spec: ScheduleSpec, now: datetime) -> None:
        if spec.start is not None and spec.start > now + MAX_START_AHEAD:
            raise InvalidScheduleError(
                "A schedule starts at most ten years from now.",
                errors=[{"field": "start", "message": "more than ten years ahead"}],
            )
        if spec.start is not None and spec.end is not None and spec.end <= spec.start:
            raise InvalidScheduleError(
                "The end of a schedule must come after its start.",
                errors=[{"field": "end", "message": "must be after start"}],
            )
        if spec.catch_up_max > self.policy.max_catch_up:
            raise InvalidScheduleError(
                f"A schedule catches up at most {self.policy.max_catch_up} missed firings.",
                errors=[{"field": "misfire.max", "message": f"at most {self.policy.max_catch_up}"}],
            )


__all__ = [
    "ScheduleFilter",
    "SchedulePage",
    "ScheduleService",
    "ScheduleSpec",
    "spec_of",
]
