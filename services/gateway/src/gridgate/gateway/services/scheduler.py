"""Firing schedules: the gateway's scheduler round, and "run now".

Exactly once per (schedule, nominal time), across crashes, restarts and replicas
(docs/adr/0009-schedules.md): a firing reads the schedule, does its slow checks (credential,
inputs) with no transaction open, then *claims* the schedule (``UPDATE ... WHERE version =
:read``) as its first write, moves ``next_fire_at`` on, and writes the job, its SubmitJob (to
the outbox) and the run record in one transaction. A crash before the commit leaves the
schedule as it was, due again; a concurrent firing loses the claim and, run again on fresh
state, finds nothing due. ``schedule_runs`` is unique on (schedule, nominal time), the
backstop should anything else write the same firing.

A ``new-data`` schedule fires on files, not times: each look (every ``interval_s``) lists
its dataset or container, outside any transaction, and makes a job of each full batch of
``files_per_job`` files not yet handed out, in (scope, name) order. The files go into
``schedule_files`` (unique per schedule and file) in the transaction of their job, so each
file reaches exactly one job across crashes, restarts and replicas. A batch's nominal time
is when it was formed (batches of one look a microsecond apart).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial
from typing import Any, Literal

import structlog
from sqlalchemy.exc import IntegrityError

from gridgate.contracts import SUBMITTER_QUEUE, CancelJob
from gridgate.contracts.phases import Phase
from gridgate.contracts.schedules import ScheduleEvent, ScheduleEventKind
from gridgate.core.clock import new_job_id
from gridgate.core.crashpoints import crash_point
from gridgate.core.errors import ProblemError
from gridgate.gateway.models.phase_machine import ACTIVE_PHASES
from gridgate.gateway.models.schedule import Schedule
from gridgate.gateway.services.admission import admit, check_credential, draft_job
from gridgate.gateway.services.credentials import CredentialChecker
from gridgate.gateway.services.datalake import InputResolver, input_groups
from gridgate.gateway.services.ledger import JobLedger
from gridgate.gateway.services.misfire import plan_round
from gridgate.gateway.services.policy import SchedulePolicy
from gridgate.gateway.services.templates import render_parameters
from gridgate.gateway.services.triggers import next_fire_after
from gridgate.gateway.storage.jobs import job_row
from gridgate.gateway.storage.schedules import ScheduleStore, StaleScheduleError
from gridgate.iam.identity import Identity
from gridgate.workflows import task_count

log = structlog.get_logger(__name__)

SCHEDULER = "scheduler"
Clock = Callable[[], datetime]
MAX_BATCHES_PER_ROUND = 50
"""Jobs one look at a new-data schedule makes; more new files wait for the next look."""
FILES_NAMED_IN_RUN = 10


@dataclass(frozen=True)
class Ticket:
    """What a firing obtained before its transaction: the credential and the inputs."""

    group: str | None = None
    credential_expires_at: datetime | None = None
    inputs: dict[str, Any] | None = None
    refusal: str | None = None
    """Why no job can be made now (no credential, inputs unreadable)."""


@dataclass(frozen=True)
class Batch:
    """Files of a new-data schedule for one job: their DIDs and the job's inputs."""

    dids: list[str]
    inputs: dict[str, Any]


@dataclass(frozen=True)
class Firing:
    """What one firing came to."""

    nominal_time: datetime
    outcome: Literal["created", "skipped"]
    job_id: str | None = None
    reason: str | None = None
    refused: bool = False
    """No job could be made: no credential, unreadable inputs, a template no longer valid."""


def owner_identity(schedule: Schedule) -> Identity:
    """The owner as the schedule recorded them (no token at hand when it fires)."""
    vos = tuple(dict.fromkeys(g.split("/", 1)[0] for g in schedule.owner_groups))
    return Identity(sub=schedule.owner, groups=tuple(schedule.owner_groups), vos=vos)


class Scheduler:
    """Fires due schedules; one commit per schedule and round."""

    def __init__(
        self,
        ledger: JobLedger,
        schedules: ScheduleStore,
        policy: SchedulePolicy,
        clock: Clock,
        credentials: CredentialChecker | None = None,
        inputs: InputResolver | None = None,
    ) -> None:
        self.ledger = ledger
        self.jobs = ledger.jobs
        self.schedules = schedules
        self.policy = policy
        self.clock = clock
        self.credentials = credentials
        self.inputs = inputs

    async def run_due(self, limit: int = 100) -> int:
        """Fire every schedule due now; return how many jobs were created."""
        due = await self.schedules.due(self.clock(), limit)
        await self.ledger.rollback()
        created = 0
        for schedule_id in due:
            firings = await self.ledger.retrying(partial(self._unique, self._fire_due, schedule_id))
            created += sum(1 for f in firings if f.outcome == "created")
        return created

    async def seconds_to_next(self) -> float | None:
        """How long until the next schedule is due (none: no schedule will fire)."""
        upcoming = await self.schedules.next_due()
        await self.ledger.rollback()
        if upcoming is None:
            return None
        return (upcoming - self.clock()).total_seconds()

    async def run_now(self, schedule_id: str) -> Firing:
        """Fire ``schedule_id`` once now, whatever its trigger says (paused or not)."""
        firings = await self.ledger.retrying(
            partial(self._unique, self._fire_manually, schedule_id)
        )
        return firings[0]

    async def _unique(
        self, work: Callable[[str], Awaitable[list[Firing]]], schedule_id: str
    ) -> list[Firing]:
        try:
            return await work(schedule_id)
        except IntegrityError as exc:
            # This nominal time was recorded by another writer: run again on fresh state.
            raise StaleScheduleError(schedule_id) from exc

    # ----- one unit of work each ----------------------------------------------------------

    async def _fire_due(self, schedule_id: str) -> list[Firing]:
        now = self.clock()
        schedule = await self.schedules.get(schedule_id)
        handed_out = await self._handed_out(schedule)
        # End the read: the credential and data-lake calls below may take seconds.
        await self.ledger.rollback()
        if (
            schedule is None
            or schedule.paused
            or schedule.next_fire_at is None
            or schedule.next_fire_at > now
        ):
            return []
        if schedule.trigger_kind == "new-data":
            return await self._fire_new_data(schedule, handed_out, now, "schedule")
        plan = plan_round(schedule, now, self.policy.max_catch_up)
        ticket = await self._prepare(schedule, now) if plan.fire else Ticket()
        await self._claim(schedule)
        await self.schedules.update(schedule.id, next_fire_at=plan.next_fire_at, updated_at=now)
        firings = [
            await self._skip(schedule, nominal, now, "schedule", reason)
            for nominal, reason in plan.skipped
        ]
        for nominal in plan.fire:
            firings.append(await self._fire(schedule, nominal, now, "schedule", ticket))
        await self._settle(schedule, firings, now)
        await self._commit(firings)
        return firings

    async def _fire_manually(self, schedule_id: str) -> list[Firing]:
        now = self.clock()
        schedule = await self.schedules.get(schedule_id)
        handed_out = await self._handed_out(schedule)
        await self.ledger.rollback()
        if schedule is None:
            return []
        if schedule.trigger_kind == "new-data":
            return await self._fire_new_data(schedule, handed_out, now, "manual")
        ticket = await self._prepare(schedule, now)
        await self._claim(schedule)
        firings = [await self._fire(schedule, now, now, "manual", ticket)]
        await self._settle(schedule, firings, now)
        await self._commit(firings)
        return firings

    async def _fire_new_data(
        self,
        schedule: Schedule,
        handed_out: set[str],
        now: datetime,
        trigger: Literal["schedule", "manual"],
    ) -> list[Firing]:
        """A job per full batch of new files ("run now": one job of what is new, a partial
        batch too); files of a batch the overlap policy holds back wait for a later look."""
        ticket, batches = await self._prepare_new_data(
            schedule, handed_out, now, partial=trigger == "manual"
        )
        await self._claim(schedule)
        if trigger == "schedule":
            upcoming: datetime | None = next_fire_after(
                schedule.trigger, schedule.start or schedule.created_at, now
            )
            if upcoming is not None and schedule.end is not None and upcoming > schedule.end:
                upcoming = None
            await self.schedules.update(schedule.id, next_fire_at=upcoming, updated_at=now)
        firings: list[Firing] = []
        if ticket.refusal is not None:
            firings.append(
                await self._skip(schedule, now, now, trigger, ticket.refusal, refused=True)
            )
        elif not batches and trigger == "manual":
            reason = f"no new files in {schedule.data_did}"
            firings.append(await self._skip(schedule, now, now, trigger, reason))
        for index, batch in enumerate(batches if ticket.refusal is None else []):
            blocked = await self._overlap(schedule, now) if schedule.overlap == "forbid" else None
            if blocked is not None:
                # The files wait for the job in the way to end; "run now" says why it made none.
                if trigger == "manual":
                    firings.append(await self._skip(schedule, now, now, trigger, blocked))
                break
            nominal = now + timedelta(microseconds=index)
            batch_ticket = Ticket(ticket.group, ticket.credential_expires_at, batch.inputs)
            firing = await self._fire(schedule, nominal, now, trigger, batch_ticket, batch.dids)
            firings.append(firing)
            if firing.outcome != "created":
                break
        await self._settle(schedule, firings, now)
        await self._commit(firings)
        return firings

    # ----- the steps ----------------------------------------------------------------------

    async def _handed_out(self, schedule: Schedule | None) -> set[str]:
        if schedule is None or schedule.trigger_kind != "new-data":
            return set()
        return await self.schedules.handed_out(schedule.id)

    async def _prepare_new_data(
        self, schedule: Schedule, handed_out: set[str], now: datetime, *, partial: bool
    ) -> tuple[Ticket, list[Batch]]:
        """The credential, and the batches of files not handed out yet, outside any
        transaction; the owner must still be allowed to read them."""
        ticket = await self._prepare(schedule, now)
        if ticket.refusal is not None:
            return ticket, []
        if self.inputs is None:
            return Ticket(refusal="no data lake is configured, so new data cannot be seen"), []
        size = schedule.files_per_job or 1
        identity = owner_identity(schedule)
        try:
            listed = await self.inputs.files_in(identity, schedule.data_did or "")
            new = [did for did in listed if str(did) not in handed_out]
            full = len(new) - len(new) % size
            taken = new[: min(size if partial else full, size * MAX_BATCHES_PER_ROUND)]
            files = await self.inputs.describe(identity, {did: listed[did] for did in taken})
        except ProblemError as exc:
            return Ticket(refusal=f"{exc.title}: {exc.detail}"), []
        batches = []
        for start in range(0, len(files), size):
            chunk = files[start : start + size]
            dids = [f"{f.scope}:{f.name}" for f in chunk]
            inputs = {
                "dids": dids,
                "files_per_job": None,
                "files": [f.model_dump() for f in chunk],
            }
            batches.append(Batch(dids, inputs))
        return ticket, batches

    async def _prepare(self, schedule: Schedule, now: datetime) -> Ticket:
        """The credential and inputs of a firing, asked for outside any transaction."""
        identity = owner_identity(schedule)
        facility = self.ledger.facilities.get(schedule.facility)
        try:
            group, expires_at = await check_credential(
                self.credentials,
                self.ledger.policy.credential_margin_s,
                identity,
                facility,
                schedule.vo,
                schedule.group_name,
                schedule.execution_duration,
                now,
            )
            inputs = None
            if schedule.inputs:
                if self.inputs is None:
                    return Ticket(refusal="no data lake is configured, so inputs cannot be read")
                files = await self.inputs.resolve(identity, schedule.inputs)
                inputs = {
                    "dids": list(schedule.inputs),
                    "files_per_job": None,
                    "files": [f.model_dump() for f in files],
                }
        except ProblemError as exc:
            return Ticket(refusal=f"{exc.title}: {exc.detail}")
        return Ticket(group or schedule.group_name, expires_at, inputs)

    async def _claim(self, schedule: Schedule) -> None:
        await self.schedules.claim(schedule)

    async def _fire(
        self,
        schedule: Schedule,
        nominal: datetime,
        now: datetime,
        trigger: Literal["schedule", "manual"],
        ticket: Ticket,
        data_files: list[str] | None = None,
    ) -> Firing:
        if ticket.refusal is not None:
            return await self._skip(schedule, nominal, now, trigger, ticket.refusal, refused=True)
        blocked = await self._overlap(schedule, now)
        if blocked is not None:
            return await self._skip(schedule, nominal, now, trigger, blocked)
        previous_success = await self.schedules.previous_success(schedule.id)
        try:
            admission = admit(
                self.ledger.workflows,
                self.ledger.facilities,
                owner_identity(schedule),
                workflow=schedule.workflow_id,
                version=schedule.workflow_version,
                facility=schedule.facility,
                vo=schedule.vo,
                parameters=render_parameters(schedule.parameters, nominal, previous_success),
                execution_duration=schedule.execution_duration,
            )
        except ProblemError as exc:
            reason = f"{exc.title}: {exc.detail}"
            return await self._skip(schedule, nominal, now, trigger, reason, refused=True)
        count = task_count(admission.definition, admission.parameters)
        if ticket.inputs is not None:
            count = len(input_groups(ticket.inputs, count))
        job = draft_job(
            admission,
            job_id=new_job_id(),
            owner=schedule.owner,
            group=ticket.group,
            run_id=f"schedule:{schedule.id}@{nominal.isoformat()}",
            now=now,
            destruction=now + self.ledger.policy.default_destruction,
            credential_expires_at=ticket.credential_expires_at,
            inputs=ticket.inputs,
            task_count=count,
            schedule_id=schedule.id,
            nominal_time=nominal,
        )
        self.jobs.add_history(
            job.id,
            at=now,
            source=SCHEDULER,
            to_phase=Phase.PENDING,
            detail=f"created by schedule {schedule.id} for {nominal.isoformat()}",
        )
        command = await self.ledger.submit_command(job, admission.definition)
        detail = f"{len(command.tasks)} task(s) sent to {job.facility}"
        await self.ledger.transition(job, Phase.QUEUED, SCHEDULER, detail, now)
        self.ledger.outbox.command(SUBMITTER_QUEUE, command, at=now)
        await self.jobs.add_job(job_row(job))
        note = None
        if data_files is not None:
            await self.schedules.hand_out(schedule.id, data_files, nominal, job.id)
            note = files_note(schedule, data_files)
        await self.schedules.add_run(
            schedule_id=schedule.id,
            nominal_time=nominal,
            fired_at=now,
            trigger=trigger,
            outcome="created",
            reason=note,
            job_id=job.id,
        )
        schedule.last_job_id = job.id
        self._event(schedule, "fired", now, nominal, job_id=job.id)
        log.info("schedule fired", schedule_id=schedule.id, job_id=job.id, nominal=nominal)
        return Firing(nominal, "created", job_id=job.id)

    async def _overlap(self, schedule: Schedule, now: datetime) -> str | None:
        """Why the previous job keeps this firing from running, if it does."""
        if schedule.overlap == "allow" or schedule.last_job_id is None:
            return None
        previous = await self.jobs.get(schedule.last_job_id, for_update=True)
        if previous is None or previous.phase not in ACTIVE_PHASES:
            return None
        if schedule.overlap == "forbid":
            return (
                f"the previous job {previous.id} is still {previous.phase.value}"
                " (overlap policy forbid)"
            )
        await self.ledger.claim(previous)
        was_submitted = previous.phase != Phase.PENDING
        await self.ledger.transition(
            previous,
            Phase.ABORTED,
            SCHEDULER,
            f"replaced by the next firing of schedule {schedule.id}",
            now,
        )
        if was_submitted:
            self.ledger.outbox.command(
                SUBMITTER_QUEUE,
                CancelJob(job_id=previous.id, owner=previous.owner, facility=previous.facility),
                at=now,
            )
        return None

    async def _skip(
        self,
        schedule: Schedule,
        nominal: datetime,
        now: datetime,
        trigger: Literal["schedule", "manual"],
        reason: str,
        *,
        refused: bool = False,
    ) -> Firing:
        await self.schedules.add_run(
            schedule_id=schedule.id,
            nominal_time=nominal,
            fired_at=now,
            trigger=trigger,
            outcome="skipped",
            reason=reason,
            job_id=None,
        )
        self._event(schedule, "skipped", now, nominal, reason=reason)
        log.info("schedule skipped", schedule_id=schedule.id, nominal=nominal, reason=reason)
        return Firing(nominal, "skipped", reason=reason, refused=refused)

    async def _settle(self, schedule: Schedule, firings: list[Firing], now: datetime) -> None:
        """Count refused firings in a row (no credential, say); pause the schedule after too
        many, rather than fail on every firing unseen."""
        failures = schedule.consecutive_failures
        for firing in firings:
            if firing.outcome == "created":
                failures = 0
            elif firing.refused:
                failures += 1
        values: dict[str, Any] = {
            "consecutive_failures": failures,
            "last_job_id": schedule.last_job_id,
        }
        limit = self.policy.credential_failures_to_pause
        if failures >= limit and not schedule.paused:
            reason = (
                f"paused after {failures} firings in a row created no job: {firings[-1].reason}"
            )
            values |= {"paused": True, "paused_reason": reason}
            self._event(schedule, "paused", now, None, reason=reason)
            log.warning("schedule paused itself", schedule_id=schedule.id, reason=reason)
        await self.schedules.update(schedule.id, **values)

    async def _commit(self, firings: list[Firing]) -> None:
        await self.jobs.flush()
        await self.ledger.outbox.store.flush()
        crash_point("schedule-fired-before-commit")
        await self.ledger.commit()
        for firing in firings:
            if firing.job_id is not None:
                self.ledger.notify(firing.job_id)

    def _event(
        self,
        schedule: Schedule,
        what: ScheduleEventKind,
        now: datetime,
        nominal: datetime | None,
        *,
        job_id: str | None = None,
        reason: str | None = None,
    ) -> None:
        self.ledger.outbox.schedule_event(
            schedule_event(schedule, what, now, nominal, job_id=job_id, reason=reason)
        )


def files_note(schedule: Schedule, dids: list[str]) -> str:
    """What a new-data run record says of its files (the job's inputs list them all)."""
    named = ", ".join(dids[:FILES_NAMED_IN_RUN])
    more = len(dids) - FILES_NAMED_IN_RUN
    return f"{len(dids)} new file(s) of {schedule.data_did}: {named}" + (
        f" (+{more} more, in the job's inputs)" if more > 0 else ""
    )


def schedule_event(
    schedule: Schedule,
    what: ScheduleEventKind,
    now: datetime,
    nominal: datetime | None = None,
    *,
    job_id: str | None = None,
    reason: str | None = None,
) -> ScheduleEvent:
    """The event of something that happened to ``schedule``."""
    return ScheduleEvent(
        schedule_id=schedule.id,
        owner=schedule.owner,
        vo=schedule.vo,
        what=what,
        occurred_at=now,
        nominal_time=nominal,
        job_id=job_id,
        reason=reason,
    )


__all__ = ["Batch", "Clock", "Firing", "Scheduler", "Ticket", "owner_identity", "schedule_event"]
