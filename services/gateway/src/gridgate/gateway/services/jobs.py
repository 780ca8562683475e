"""The job service: every rule about jobs, each public method one unit of work."""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal

import structlog
from sqlalchemy.ext.asyncio import AsyncConnection

from gridgate.contracts import (
    RESULTS_QUEUE,
    SUBMITTER_QUEUE,
    CancelJob,
    CollectResults,
    JobEvent,
    JobFailureReported,
    JobStateObserved,
    JobSubmitted,
    PurgeJob,
    PurgeResults,
    ResourceLimits,
    ResultsStaged,
    SubmitJob,
)
from gridgate.contracts.callback import callback_token, token_digest
from gridgate.contracts.events import CREDENTIAL_EXPIRING, RESULTS_STAGED
from gridgate.contracts.phases import FINAL_PHASES, Phase
from gridgate.core.clock import new_job_id, utcnow
from gridgate.gateway.exceptions import (
    InvalidCursorError,
    InvalidInputsError,
    InvalidJobFieldError,
    InvalidPhaseChangeError,
    JobNotFoundError,
    JobNotPendingError,
    NoVirtualOrganisationError,
    ResultNotFoundError,
)
from gridgate.gateway.models.facility import Facility
from gridgate.gateway.models.job import Job, ResultRecord, TaskRecord
from gridgate.gateway.models.phase_machine import ACTIVE_PHASES, aggregate_phase, is_legal
from gridgate.gateway.services.credentials import (
    CredentialChecker,
    CredentialUnavailableError,
)
from gridgate.gateway.services.datalake import DataLakePolicy, InputResolver, input_groups
from gridgate.gateway.services.facilities import FacilityCatalogue, require_capacity
from gridgate.gateway.services.messages import Outbox
from gridgate.gateway.services.notifier import PhaseNotifier
from gridgate.gateway.storage.jobs import JobStore, job_row
from gridgate.iam.identity import Identity
from gridgate.workflows import (
    PYTHON_ON_NODE,
    WorkflowCatalogue,
    WorkflowDefinition,
    parameters_digest,
    render_tasks,
    task_count,
    validate_parameters,
)

log = structlog.get_logger(__name__)

USER = "user"
MAX_OUTPUT_MB = 1024


@dataclass(frozen=True)
class JobRequest:
    """A client's request to create a job, its reserved fields already taken apart."""

    workflow: str
    facility: str = "local"
    version: str | None = None
    run: bool = False
    run_id: str | None = None
    vo: str | None = None
    group: str | None = None
    execution_duration: int | None = None
    destruction: datetime | None = None
    parameters: dict[str, Any] = field(default_factory=dict)
    inputs: tuple[str, ...] = ()
    """Rucio DIDs (files, datasets, containers) the job reads."""
    files_per_job: int | None = None
    """Split the input files over tasks of this many files each."""


@dataclass(frozen=True)
class JobFilter:
    phases: tuple[Phase, ...] = ()
    after: datetime | None = None
    last: int | None = None
    cursor: str | None = None
    limit: int = 100


@dataclass(frozen=True)
class JobPage:
    jobs: list[Job]
    total: int
    next_cursor: str | None


@dataclass(frozen=True)
class JobPolicy:
    """Operator choices the service applies."""

    default_destruction: timedelta = timedelta(days=30)
    worker_python: str = "python3"
    wait_cap_s: int = 60
    credential_margin_s: int = 3600
    retention: Literal["archive", "delete"] = "archive"
    """At a job's destruction time: archive it (UWS ARCHIVED) or delete it."""
    retention_rule_lifetime_s: int | None = None
    """Lifetime given to a destroyed or deleted job's Rucio rules; ``None``: kept."""
    facility_grace_s: int = 900
    """How long after a job ends (or is deleted) workers may still act as its owner on the
    facility: kill, delete and collect run after the phase is final."""
    callback_secret: str | None = field(default=None, repr=False)
    """Key of the jobs' callback tokens (shared with the submitter); ``None``: no callbacks."""


@dataclass(frozen=True)
class JobOwnership:
    """Whose a job is, and whether its facility work is over (no owner's proxy any more)."""

    owner: str
    vo: str
    group_name: str | None
    settled: bool


def encode_cursor(job: Job) -> str:
    raw = f"{job.creation_time.isoformat()}|{job.id}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, str]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        created, job_id = raw.split("|", 1)
        return datetime.fromisoformat(created), job_id
    except (ValueError, binascii.Error, UnicodeDecodeError) as exc:
        raise InvalidCursorError("The paging cursor is not one this service issued.") from exc


class JobService:
    """Creates, runs, aborts, deletes and reports on jobs; the single writer of their state."""

    def __init__(
        self,
        connection: AsyncConnection,
        jobs: JobStore,
        outbox: Outbox,
        workflows: WorkflowCatalogue,
        facilities: FacilityCatalogue,
        notifier: PhaseNotifier,
        policy: JobPolicy,
        credentials: CredentialChecker | None = None,
        data_policy: DataLakePolicy | None = None,
        inputs: InputResolver | None = None,
    ) -> None:
        self.connection = connection
        self.data_policy = data_policy or DataLakePolicy()
        self.inputs = inputs
        self.jobs = jobs
        self.outbox = outbox
        self.workflows = workflows
        self.facilities = facilities
        self.notifier = notifier
        self.policy = policy
        self.credentials = credentials

    # ----- user actions -------------------------------------------------------------------

    async def create_job(self, identity: Identity, request: JobRequest) -> str:
        """Validate and record a job (PENDING, or QUEUED when asked to run); return its id."""
        definition = self.workflows.get(request.workflow, request.version)
        vo = self._choose_vo(identity, request.vo)
        facility = self.facilities.get(request.facility)
        parameters = validate_parameters(definition, request.parameters)
        duration = (
            request.execution_duration
            if request.execution_duration is not None
            else definition.execution.default_execution_duration_s
        )
        require_capacity(facility, definition.requirements, vo, duration)
        now = utcnow()
        destruction = request.destruction or now + self.policy.default_destruction
        if destruction <= now:
            raise InvalidJobFieldError(
                "The destruction time must be in the future.",
                errors=[{"field": "destruction", "message": "must be in the future"}],
            )
        group, credential_expires_at = await self._check_credential(
            identity, facility, vo, request.group, duration, now
        )
        count = task_count(definition, parameters)
        inputs = await self._resolve_inputs(identity, request, definition)
        if inputs is not None:
            count = len(input_groups(inputs, count))
        job = Job(
            id=new_job_id(),
            owner=identity.sub,
            vo=vo,
            group_name=group,
            run_id=request.run_id,
            workflow_id=definition.id,
            workflow_version=definition.version,
            facility=facility.id,
            phase=Phase.PENDING,
            parameters=parameters,
            creation_time=now,
            start_time=None,
            end_time=None,
            execution_duration=duration,
            destruction=destruction,
            quote=None,
            error_type=None,
            error_message=None,
            task_count=count,
            finished_outcome=None,
            finished_detail=None,
            updated_at=now,
            credential_expires_at=credential_expires_at,
            inputs=inputs,
            tasks=[TaskRecord(index=i, phase=Phase.PENDING) for i in range(count)],
            is_new=True,
        )
        self.jobs.add_history(
            job.id,
            at=now,
            source=USER,
            to_phase=Phase.PENDING,
            detail=f"created: {definition.id} {definition.version} on {facility.id}",
        )
        if request.run:
            # Straight to QUEUED: subscribers get one 'queued' event, the history both steps.
            await self._queue(job, definition, now)
        else:
            self._event(job, Phase.PENDING, None, USER, None, now)
        await self.jobs.add_job(job_row(job))
        await self._commit()
        self.notifier.notify(job.id)
        log.info("job created", job_id=job.id, workflow=definition.id, run=request.run)
        return job.id

    async def start_job(self, identity: Identity, job_id: str) -> None:
        """PHASE=RUN: queue a pending job. Repeating it on a queued or running job is a no-op."""
        job = await self._owned(identity, job_id, for_update=True)
        if job.phase in (Phase.QUEUED, Phase.EXECUTING):
            return
        if job.phase != Phase.PENDING:
            raise InvalidPhaseChangeError(
                f"Job {job_id} is {job.phase.value}; only a PENDING job can be run."
            )
        definition = self.workflows.get(job.workflow_id, job.workflow_version)
        now = utcnow()
        group, expires_at = await self._check_credential(
            identity,
            self.facilities.get(job.facility),
            job.vo,
            job.group_name,
            job.execution_duration,
            now,
        )
        if expires_at is not None:
            await self.jobs.update(job.id, group_name=group, credential_expires_at=expires_at)
        await self._queue(job, definition, now)
        await self._commit()
        self.notifier.notify(job_id)

    async def abort_job(self, identity: Identity, job_id: str) -> None:
        """PHASE=ABORT: stop the job; its facility is told to cancel its tasks."""
        job = await self._owned(identity, job_id, for_update=True)
        if job.phase == Phase.ABORTED:
            return
        if job.phase in FINAL_PHASES:
            raise InvalidPhaseChangeError(
                f"Job {job_id} is already {job.phase.value}; it cannot be aborted."
            )
        now = utcnow()
        was_submitted = job.phase != Phase.PENDING
        await self._transition(job, Phase.ABORTED, USER, "aborted by its owner", now)
        if was_submitted:
            self.outbox.command(
                SUBMITTER_QUEUE,
                CancelJob(job_id=job.id, owner=job.owner, facility=job.facility),
                at=now,
            )
        await self._commit()
        self.notifier.notify(job_id)

    async def delete_job(self, identity: Identity, job_id: str) -> None:
        """Delete the job and its records; its facility and results store forget it too."""
        job = await self._owned(identity, job_id, for_update=True)
        now = utcnow()
        if job.phase != Phase.PENDING:
            self.outbox.command(
                SUBMITTER_QUEUE,
                PurgeJob(job_id=job.id, owner=job.owner, facility=job.facility),
                at=now,
            )
            self.outbox.command(RESULTS_QUEUE, self._purge_results(job, "deleted"), at=now)
        await self._forget(job, now)
        await self._commit()
        self.notifier.notify(job_id)
        log.info("job deleted", job_id=job_id)

    async def set_execution_duration(self, identity: Identity, job_id: str, seconds: int) -> None:
        job = await self._owned(identity, job_id, for_update=True)
        self._require_pending(job, "executionduration")
        if seconds < 0:
            raise InvalidJobFieldError(
                "executionduration is a number of seconds, 0 or more.",
                errors=[{"field": "executionduration", "message": "must be >= 0"}],
            )
        definition = self.workflows.get(job.workflow_id, job.workflow_version)
        require_capacity(
            self.facilities.get(job.facility), definition.requirements, job.vo, seconds
        )
        now = utcnow()
        await self.jobs.update(job_id, execution_duration=seconds, updated_at=now)
        self.jobs.add_history(
            job_id, at=now, source=USER, detail=f"executionduration set to {seconds} s"
        )
        await self._commit()

    async def set_destruction(self, identity: Identity, job_id: str, when: datetime) -> None:
        job = await self._owned(identity, job_id, for_update=True)
        now = utcnow()
        if when <= now:
            raise InvalidJobFieldError(
                "The destruction time must be in the future.",
                errors=[{"field": "destruction", "message": "must be in the future"}],
            )
        await self.jobs.update(job.id, destruction=when, updated_at=now)
        self.jobs.add_history(
            job.id, at=now, source=USER, detail=f"destruction set to {when.isoformat()}"
        )
        await self._commit()

    # ----- reading ------------------------------------------------------------------------

    async def get_job(self, identity: Identity, job_id: str, *, details: bool = True) -> Job:
        job = await self._owned(identity, job_id)
        if details:
            job.history = await self.jobs.history(job_id)
            job.results = await self.jobs.results(job_id)
        return job

    async def wait_for_job(
        self, identity: Identity, job_id: str, wait_s: int, phase: Phase | None
    ) -> Job:
        """UWS WAIT: block while the job is in ``phase`` (or any active phase), capped."""
        job = await self.get_job(identity, job_id)
        blocking = {phase} if phase is not None else ACTIVE_PHASES
        timeout = self.policy.wait_cap_s if wait_s < 0 else min(wait_s, self.policy.wait_cap_s)
        if job.phase not in blocking or timeout == 0 or not self.notifier.may_block(identity.sub):
            return job
        start_phase = job.phase
        deadline = utcnow() + timedelta(seconds=timeout)
        # End the read transaction: a long-held snapshot would pin old rows (and SQLite's WAL).
        await self.connection.rollback()
        while (remaining := (deadline - utcnow()).total_seconds()) > 0:
            await self.notifier.wait(identity.sub, job_id, remaining)
            job = await self.get_job(identity, job_id)
            await self.connection.rollback()
            if job.phase != start_phase:
                break
        return job

    async def list_jobs(self, identity: Identity, query: JobFilter) -> JobPage:
        limit = query.limit if query.last is None else min(query.last, query.limit)
        cursor = decode_cursor(query.cursor) if query.cursor else None
        jobs, total = await self.jobs.page(
            owner=identity.sub,
            phases=query.phases,
            after=query.after,
            limit=limit + 1,
            cursor=cursor,
        )
        if query.last is not None:
            total = min(total, query.last)
        has_more = len(jobs) > limit and query.last is None
        jobs = jobs[:limit]
        return JobPage(
            jobs=jobs,
            total=total,
            next_cursor=encode_cursor(jobs[-1]) if has_more and jobs else None,
        )

    async def result_for_download(
        self, identity: Identity | None, job_id: str, name: str
    ) -> tuple[Job, ResultRecord]:
        """A job and one of its results: the owner's, or anyone's with ``identity=None``
        (the caller checked a signed URL)."""
        if identity is None:
            job = await self.jobs.get(job_id)
            if job is None:
                raise JobNotFoundError(f"There is no job {job_id}.")
        else:
            job = await self._owned(identity, job_id)
        record = await self.jobs.result(job_id, name)
        if record is None:
            raise ResultNotFoundError(f"Job {job_id} has no result {name!r}.")
        return job, record

    async def result_record(self, identity: Identity, job_id: str, name: str) -> ResultRecord:
        await self._owned(identity, job_id)
        for result in await self.jobs.results(job_id):
            if result.name == name:
                return result
        raise ResultNotFoundError(f"Job {job_id} has no result {name!r}.")

    async def warn_expiring_credentials(self, warning: timedelta) -> int:
        """Tell the owners of live jobs whose credential runs out within ``warning``, once."""
        now = utcnow()
        jobs = await self.jobs.expiring_credentials(now + warning)
        for job in jobs:
            assert job.credential_expires_at is not None
            detail = (
                f"the job's credential runs out at {job.credential_expires_at.isoformat()};"
                " renew your long-lived credential or the job may fail"
            )
            self.jobs.add_history(job.id, at=now, source="gateway", detail=detail)
            await self.jobs.update(job.id, credential_warned=True)
            self._event(job, job.phase, None, "gateway", detail, now, what=CREDENTIAL_EXPIRING)
        await self._commit()
        return len(jobs)

    async def owner_of(self, job_id: str) -> JobOwnership | None:
        """Whose a job is, for the auth service (no user context: an internal question).

        A job stays unsettled for a grace period after it ends or is deleted: the workers
        still kill, delete and collect on its facility as its owner.
        """
        horizon = utcnow() - timedelta(seconds=self.policy.facility_grace_s)
        job = await self.jobs.get(job_id)
        if job is not None:
            ended = job.end_time or job.updated_at
            settled = job.phase in FINAL_PHASES and ended < horizon
            return JobOwnership(job.owner, job.vo, job.group_name, settled)
        tombstone = await self.jobs.tombstone(job_id)
        if tombstone is None:
            return None
        return JobOwnership(
            tombstone.owner, tombstone.vo, tombstone.group_name, tombstone.deleted_at < horizon
        )

    async def in_flight(self, facility: str, limit: int) -> list[Job]:
        return await self.jobs.in_flight(facility, limit)

    # ----- worker reports -----------------------------------------------------------------

    async def record_submission(self, report: JobSubmitted) -> None:
        job = await self.jobs.get(report.job_id, for_update=True)
        if job is None:
            return
        now = utcnow()
        changed = False
        for task, facility_job_id in zip(job.tasks, report.facility_job_ids, strict=False):
            if task.facility_job_id != facility_job_id:
                await self.jobs.update_task(job.id, task.index, facility_job_id=facility_job_id)
                changed = True
        if changed:
            shown = ", ".join(report.facility_job_ids[:5])
            more = len(report.facility_job_ids) - 5
            self.jobs.add_history(
                job.id,
                at=now,
                source="submitter",
                detail=f"submitted to {report.facility} as {shown}"
                + (f" (+{more} more)" if more > 0 else ""),
            )
        if job.phase == Phase.ABORTED:
            # The abort may have overtaken the submission: make sure the facility stops it.
            self.outbox.command(
                SUBMITTER_QUEUE,
                CancelJob(job_id=job.id, owner=job.owner, facility=job.facility),
                at=now,
            )
        await self._commit()
        self.notifier.notify(job.id)

    async def record_observation(self, report: JobStateObserved) -> None:
        job = await self.jobs.get(report.job_id, for_update=True)
        if job is None or job.phase in FINAL_PHASES or job.finished_outcome is not None:
            await self.connection.rollback()
            return
        now = utcnow()
        by_index = {t.index: t for t in job.tasks}
        for state in report.tasks:
            task = by_index.get(state.index)
            if task is None:
                continue
            if (task.phase, task.facility_status, task.exit_code, task.detail) == (
                state.phase,
                state.facility_status,
                state.exit_code,
                state.detail,
            ):
                continue
            task.phase, task.exit_code, task.detail = state.phase, state.exit_code, state.detail
            task.facility_status = state.facility_status
            await self.jobs.update_task(
                job.id,
                state.index,
                phase=state.phase.value,
                facility_status=state.facility_status,
                exit_code=state.exit_code,
                detail=state.detail,
                started_at=state.started_at or task.started_at,
                ended_at=state.ended_at,
                facility_job_id=state.facility_job_id,
            )
            label = f"task {state.index}: " if job.task_count > 1 else ""
            self.jobs.add_history(
                job.id,
                at=report.observed_at,
                source="monitor",
                detail=f"{label}{state.facility_status}"
                + (f" ({state.detail})" if state.detail else ""),
            )
        phases = [t.phase for t in job.tasks]
        if all(p in FINAL_PHASES for p in phases):
            await self._finish_execution(job, now)
        else:
            target = aggregate_phase(phases)
            if target != job.phase and is_legal(job.phase, target):
                await self._transition(job, target, "monitor", None, now)
        await self._commit()
        self.notifier.notify(job.id)

    async def record_results(self, report: ResultsStaged) -> None:
        job = await self.jobs.get(report.job_id, for_update=True)
        if job is None:
            # The job was deleted while its results were staged: they must not linger.
            purge = PurgeResults(
                job_id=report.job_id,
                owner="",
                reason="deleted",
                dataset=report.dataset,
                rule_lifetime_s=self.policy.retention_rule_lifetime_s,
            )
            self.outbox.command(RESULTS_QUEUE, purge, at=utcnow())
            await self._commit()
            return
        now = utcnow()
        if job.phase == Phase.ARCHIVED:
            # Staged after the destruction time (a late or redelivered report): remove again.
            self.outbox.command(RESULTS_QUEUE, self._purge_results(job, "destroyed"), at=now)
            await self._commit()
            return
        if report.dataset and report.dataset != job.data_dataset:
            await self.jobs.update(job.id, data_dataset=report.dataset)
            job.data_dataset = report.dataset
        count = await self.jobs.replace_results(
            job.id, [ResultRecord.of(r) for r in report.results]
        )
        self.jobs.add_history(
            job.id, at=now, source="results", detail=f"{count} result files stored"
        )
        self._event(
            job,
            job.phase,
            None,
            "results",
            f"{count} result files",
            now,
            what=RESULTS_STAGED,
            results=count,
        )
        if job.finished_outcome is not None and job.phase not in FINAL_PHASES:
            target = Phase(job.finished_outcome)
            if target == Phase.ERROR:
                await self.jobs.update(
                    job.id, error_type="fatal", error_message=job.finished_detail
                )
            await self._transition(job, target, "results", job.finished_detail, now)
        await self._commit()
        self.notifier.notify(job.id)

    async def record_failure(self, report: JobFailureReported) -> None:
        job = await self.jobs.get(report.job_id, for_update=True)
        if job is None or job.phase in FINAL_PHASES:
            return
        now = utcnow()
        await self.jobs.update(job.id, error_type="fatal", error_message=report.reason)
        await self._transition(job, Phase.ERROR, report.source, report.reason, now)
        await self._commit()
        self.notifier.notify(job.id)

    # ----- retention ----------------------------------------------------------------------

    async def destroy_expired(self, limit: int = 100) -> int:
        """Honour destruction times: abort what still runs, remove the results, then archive
        or delete each job, as the operator's policy says. One commit per job."""
        now = utcnow()
        candidates = [job.id for job in await self.jobs.past_destruction(now, limit)]
        await self.connection.rollback()
        done = 0
        for job_id in candidates:
            job = await self.jobs.get(job_id, for_update=True)
            if (
                job is None
                or job.phase == Phase.ARCHIVED
                or job.destruction is None
                or job.destruction > now
            ):
                await self.connection.rollback()
                continue
            detail = "destruction time reached"
            if job.phase not in FINAL_PHASES:
                await self._transition(job, Phase.ABORTED, "gateway", detail, now)
                self.outbox.command(
                    SUBMITTER_QUEUE,
                    CancelJob(job_id=job.id, owner=job.owner, facility=job.facility),
                    at=now,
                )
            if any(t.facility_job_id for t in job.tasks):
                self.outbox.command(
                    SUBMITTER_QUEUE,
                    PurgeJob(job_id=job.id, owner=job.owner, facility=job.facility),
                    at=now,
                )
            self.outbox.command(RESULTS_QUEUE, self._purge_results(job, "destroyed"), at=now)
            if self.policy.retention == "delete":
                await self._forget(job, now)
            else:
                await self._transition(
                    job, Phase.ARCHIVED, "gateway", f"{detail}: results removed", now
                )
            await self._commit()
            self.notifier.notify(job.id)
            log.info("job destroyed", job_id=job.id, policy=self.policy.retention)
            done += 1
        return done

    async def prune_tombstones(self) -> int:
        """Forget deleted jobs whose facility work is over."""
        horizon = utcnow() - timedelta(seconds=self.policy.facility_grace_s)
        pruned = await self.jobs.prune_tombstones(horizon)
        await self._commit()
        return pruned

    # ----- internals ----------------------------------------------------------------------

    async def _forget(self, job: Job, now: datetime) -> None:
        """Delete a job's records; a tombstone lets its facility clean up as its owner."""
        if job.group_name is not None and job.phase != Phase.PENDING:
            await self.jobs.add_tombstone(job, now)
        await self.jobs.delete(job.id)

    def _purge_results(self, job: Job, reason: Literal["deleted", "destroyed"]) -> PurgeResults:
        return PurgeResults(
            job_id=job.id,
            owner=job.owner,
            reason=reason,
            dataset=job.data_dataset,
            rule_lifetime_s=self.policy.retention_rule_lifetime_s,
        )

    async def _resolve_inputs(
        self, identity: Identity, request: JobRequest, definition: WorkflowDefinition
    ) -> dict[str, Any] | None:
        """Check and resolve the job's input DIDs; the record kept with the job."""
        if not request.inputs:
            if request.files_per_job is not None:
                raise InvalidInputsError(
                    "files_per_job splits inputs over tasks; the job names no inputs.",
                    errors=[{"field": "files_per_job", "message": "needs inputs"}],
                )
            return None
        if request.files_per_job is not None:
            if request.files_per_job < 1:
                raise InvalidInputsError(
                    "files_per_job must be 1 or more.",
                    errors=[{"field": "files_per_job", "message": "must be >= 1"}],
                )
            if definition.execution.tasks_from is not None:
                raise InvalidInputsError(
                    f"{definition.id} sets its number of tasks from "
                    f"{definition.execution.tasks_from}; it cannot also split inputs.",
                    errors=[{"field": "files_per_job", "message": "not for this workflow"}],
                )
        if self.inputs is None:
            raise InvalidInputsError(
                "This gridgate has no data lake configured, so jobs cannot read inputs.",
                errors=[{"field": "inputs", "message": "no data lake"}],
            )
        files = await self.inputs.resolve(identity, request.inputs)
        return {
            "dids": list(request.inputs),
            "files_per_job": request.files_per_job,
            "files": [f.model_dump() for f in files],
        }

    def _collect_command(self, job: Job) -> CollectResults:
        definition = self.workflows.get(job.workflow_id, job.workflow_version)
        scope, account = self.data_policy.placement(job.owner, job.vo)
        return CollectResults(
            job_id=job.id,
            owner=job.owner,
            vo=job.vo,
            facility=job.facility,
            outputs=list(definition.execution.outputs),
            task_count=job.task_count,
            workflow_id=job.workflow_id,
            workflow_version=job.workflow_version,
            parameters_digest=parameters_digest(job.parameters),
            facility_job_ids=[t.facility_job_id for t in job.tasks if t.facility_job_id],
            data_scope=scope,
            data_account=account,
        )

    async def _commit(self) -> None:
        """Write the buffered history and outbox rows, then commit: one unit of work."""
        await self.jobs.flush()
        await self.outbox.store.flush()
        await self.connection.commit()

    async def _owned(self, identity: Identity, job_id: str, *, for_update: bool = False) -> Job:
        job = await self.jobs.get(job_id, for_update=for_update)
        # Another user's job answers exactly as a missing one: its existence stays private.
        if job is None or job.owner != identity.sub:
            raise JobNotFoundError(f"There is no job {job_id} of yours.")
        return job

    def _choose_vo(self, identity: Identity, requested: str | None) -> str:
        if requested is not None:
            if not identity.in_vo(requested):
                raise NoVirtualOrganisationError(
                    f"You are not a member of the VO {requested!r}; yours: "
                    f"{', '.join(identity.vos) or 'none'}."
                )
            return requested
        if not identity.vos:
            raise NoVirtualOrganisationError(
                "Your token names no group, so no VO can be charged for the job; ask your VO "
                "administrator to add you to a group (IAM 'groups' or 'wlcg.groups' claim)."
            )
        return identity.vos[0]

    @staticmethod
    def _require_pending(job: Job, what: str) -> None:
        if job.phase != Phase.PENDING:
            raise JobNotPendingError(
                f"{what} can only change while the job is PENDING; it is {job.phase.value}."
            )

    async def _check_credential(
        self,
        identity: Identity,
        facility: Facility,
        vo: str,
        group: str | None,
        duration: int,
        now: datetime,
    ) -> tuple[str | None, datetime | None]:
        """For facilities that run jobs with the owner's proxy: can it last long enough?"""
        if not facility.needs_credential:
            return None, None
        if self.credentials is None:
            raise CredentialUnavailableError("No credential service is configured.")
        check = await self.credentials.check(
            identity, vo, group, duration + self.policy.credential_margin_s
        )
        return check.group, now + timedelta(seconds=check.obtainable_s)

    async def _queue(self, job: Job, definition: WorkflowDefinition, now: datetime) -> None:
        # On DIRAC the worker node's interpreter is only known there: the job's wrapper
        # resolves "{python}" itself.
        remote = self.facilities.get(job.facility).kind == "dirac"
        tasks = render_tasks(
            definition,
            job.parameters,
            python=PYTHON_ON_NODE if remote else self.policy.worker_python,
            inputs=input_groups(job.inputs, job.task_count) or None,
        )
        needs = definition.requirements
        command = SubmitJob(
            job_id=job.id,
            owner=job.owner,
            vo=job.vo,
            group=job.group_name,
            facility=job.facility,
            workflow_id=definition.id,
            workflow_version=definition.version,
            tasks=tasks,
            limits=ResourceLimits(
                execution_duration_s=job.execution_duration,
                cores=needs.cores,
                gpus=needs.gpu_count,
                memory_mb=max(16, int(needs.memory_gb * 1024)),
                max_output_mb=MAX_OUTPUT_MB,
            ),
            outputs=list(definition.execution.outputs),
        )
        if self.policy.callback_secret:
            # Only the digest is kept; the submitter derives the token itself from the secret.
            token = callback_token(self.policy.callback_secret, job.id)
            job.callback_token_hash = token_digest(token)
            if not job.is_new:  # a new job's row is inserted afterwards, with the digest
                await self.jobs.update(job.id, callback_token_hash=job.callback_token_hash)
        await self._transition(
            job, Phase.QUEUED, USER, f"{len(tasks)} task(s) sent to {job.facility}", now
        )
        self.outbox.command(SUBMITTER_QUEUE, command, at=now)

    async def _finish_execution(self, job: Job, now: datetime) -> None:
        """All tasks ended: remember the outcome, collect results, then decide the phase."""
        failed = [t for t in job.tasks if t.phase == Phase.ERROR]
        aborted = [t for t in job.tasks if t.phase == Phase.ABORTED]
        if failed:
            outcome = Phase.ERROR
            parts = [
                (f"task {t.index}: " if job.task_count > 1 else "")
                + (t.detail or t.facility_status or "failed")
                for t in failed[:5]
            ]
            more = f" (+{len(failed) - 5} more tasks failed)" if len(failed) > 5 else ""
            detail = "; ".join(parts) + more
        elif aborted:
            outcome, detail = Phase.ERROR, "the facility cancelled the job's tasks"
        else:
            outcome, detail = Phase.COMPLETED, None
        if job.phase == Phase.QUEUED:
            await self._transition(job, Phase.EXECUTING, "monitor", None, now)
        await self.jobs.update(
            job.id, finished_outcome=outcome.value, finished_detail=detail, updated_at=now
        )
        job.finished_outcome, job.finished_detail = outcome.value, detail
        self.jobs.add_history(
            job.id,
            at=now,
            source="monitor",
            detail="execution finished"
            + (f": {detail}" if detail else "")
            + "; collecting results",
        )
        self.outbox.command(RESULTS_QUEUE, self._collect_command(job), at=now)

    async def _transition(
        self, job: Job, target: Phase, source: str, detail: str | None, now: datetime
    ) -> None:
        if not is_legal(job.phase, target):
            raise InvalidPhaseChangeError(
                f"Job {job.id} cannot go from {job.phase.value} to {target.value}."
            )
        values: dict[str, Any] = {"phase": target.value, "updated_at": now}
        if target == Phase.EXECUTING and job.start_time is None:
            values["start_time"] = job.start_time = now
        if target in FINAL_PHASES and job.end_time is None:
            values["end_time"] = job.end_time = now
        if target in FINAL_PHASES:
            # The job's callback token dies with it: nothing may report on a final job.
            values["callback_token_hash"] = job.callback_token_hash = None
        if not job.is_new:  # a new job's row is inserted afterwards, in its final state
            await self.jobs.update(job.id, **values)
        self.jobs.add_history(
            job.id, at=now, source=source, from_phase=job.phase, to_phase=target, detail=detail
        )
        previous, job.phase = job.phase, target
        self._event(job, target, previous, source, detail, now)

    def _event(
        self,
        job: Job,
        phase: Phase,
        previous: Phase | None,
        source: str,
        detail: str | None,
        now: datetime,
        *,
        what: Phase | str | None = None,
        results: int | None = None,
    ) -> None:
        data = JobEvent(
            job_id=job.id,
            owner=job.owner,
            vo=job.vo,
            phase=phase,
            previous_phase=previous,
            occurred_at=now,
            source=source,
            detail=detail,
            workflow_id=job.workflow_id,
            run_id=job.run_id,
            results=results,
        )
        self.outbox.event(data, what if what is not None else phase)
