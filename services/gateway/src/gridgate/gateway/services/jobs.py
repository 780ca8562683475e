"""The job service: what users do with their jobs, and what they read of them.

Each public method is one unit of work. Worker reports live in
:mod:`gridgate.gateway.services.reports`, the gateway's own rounds in
:mod:`gridgate.gateway.services.housekeeping`; the mechanics of changing a job's state that
all three share are in :mod:`gridgate.gateway.services.ledger`.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from typing import Any

import structlog
from sqlalchemy.exc import IntegrityError

from gridgate.contracts import RESULTS_QUEUE, SUBMITTER_QUEUE, CancelJob, PurgeJob
from gridgate.contracts.phases import FINAL_PHASES, Phase
from gridgate.core.clock import new_job_id, utcnow
from gridgate.gateway.exceptions import (
    IdempotencyKeyReusedError,
    InvalidCursorError,
    InvalidInputsError,
    InvalidJobFieldError,
    InvalidPhaseChangeError,
    JobNotFoundError,
    JobNotPendingError,
    ResultNotFoundError,
)
from gridgate.gateway.models.job import InFlightJob, Job, ResultRecord
from gridgate.gateway.services.admission import admit, check_credential, choose_vo, draft_job
from gridgate.gateway.services.credentials import (
    CredentialChecker,
)
from gridgate.gateway.services.datalake import InputResolver, input_groups
from gridgate.gateway.services.facilities import require_capacity
from gridgate.gateway.services.fields import (
    MAX_NAME,
    MAX_RUN_ID,
    check_parameters,
    check_text,
)
from gridgate.gateway.services.ledger import JobLedger
from gridgate.gateway.storage.idempotency import IdempotencyStore, idempotency_row
from gridgate.gateway.storage.jobs import job_row
from gridgate.gateway.storage.new_jobs import NewJobRows, checked_out
from gridgate.iam.identity import Identity
from gridgate.web.outbound import MAX_URL_CHARS, UnsafeUrlError
from gridgate.workflows import (
    WorkflowDefinition,
    task_count,
    validate_parameters,
)

log = structlog.get_logger(__name__)

USER = "user"


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
    idempotency_key: str | None = None
    """The client's ``Idempotency-Key``: a repeated request answers with the same job."""
    notification_url: str | None = None
    """The job's own webhook: the notifier sends each of its events there, signed."""

    def digest(self) -> str:
        """What identifies the request for its idempotency key (the key itself aside)."""
        fields = asdict(self)
        del fields["idempotency_key"]
        canonical = json.dumps(fields, sort_keys=True, default=str, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()


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
    """Creates, runs, aborts and deletes jobs for their owners, and reads them."""

    def __init__(
        self,
        ledger: JobLedger,
        keys: IdempotencyStore,
        credentials: CredentialChecker | None = None,
        inputs: InputResolver | None = None,
    ) -> None:
        self.ledger = ledger
        self.jobs = ledger.jobs
        self.keys = keys
        self.workflows = ledger.workflows
        self.facilities = ledger.facilities
        self.policy = ledger.policy
        self.notifier = ledger.notifier
        self.credentials = credentials
        self.inputs = inputs

    # ----- user actions -------------------------------------------------------------------

    async def create_job(self, identity: Identity, request: JobRequest) -> str:
        """Validate and record a job (PENDING, or QUEUED when asked to run); return its id.

        With an idempotency key, the same owner, key and request answer with the job the
        first one created, however often it is repeated, concurrently or after a lost
        answer; the key with another request is refused.

        The unit of work may have been opened on demand (``unit_of_work(on_demand=True)``):
        only the key's look-up and a write of this job check its connection out.
        """
        _check_request(request)
        await self._check_notification_url(request.notification_url)
        if request.idempotency_key is None:
            return await self._create_job(identity, request)
        digest = request.digest()
        await checked_out(self.ledger.connection)  # the key is looked up first
        existing = await self._job_of_key(identity, request.idempotency_key, digest)
        if existing is not None:
            return existing
        # No transaction may stay open across the credential and data-lake calls to come.
        await self.ledger.rollback()
        try:
            return await self._create_job(identity, request, digest)
        except IntegrityError:
            # A concurrent request with the same key committed first: answer with its job.
            await self.ledger.rollback()
            existing = await self._job_of_key(identity, request.idempotency_key, digest)
            if existing is None:
                raise
            return existing

    async def _job_of_key(self, identity: Identity, key: str, digest: str) -> str | None:
        record = await self.keys.get(identity.sub, key)
        if record is None:
            return None
        if record.request_digest != digest:
            raise IdempotencyKeyReusedError(
                "This Idempotency-Key was used before with a different request; use a new key"
                " for a new job.",
                errors=[{"field": "Idempotency-Key", "message": "used with another request"}],
            )
        return record.job_id

    async def _create_job(
        self, identity: Identity, request: JobRequest, digest: str | None = None
    ) -> str:
        admission = admit(
            self.workflows,
            self.facilities,
            identity,
            workflow=request.workflow,
            version=request.version,
            facility=request.facility,
            vo=request.vo,
            parameters=request.parameters,
            execution_duration=request.execution_duration,
        )
        definition, facility = admission.definition, admission.facility
        now = utcnow()
        destruction = request.destruction or now + self.policy.default_destruction
        self._check_destruction(destruction, now)
        group, credential_expires_at = await check_credential(
            self.credentials,
            self.policy.credential_margin_s,
            identity,
            facility,
            admission.vo,
            request.group,
            admission.duration,
            now,
        )
        count = task_count(definition, admission.parameters)
        inputs = await self._resolve_inputs(identity, request, definition)
        if inputs is not None:
            count = len(input_groups(inputs, count))
        job = draft_job(
            admission,
            job_id=new_job_id(),
            owner=identity.sub,
            group=group,
            run_id=request.run_id,
            now=now,
            destruction=destruction,
            credential_expires_at=credential_expires_at,
            inputs=inputs,
            task_count=count,
            notification_url=request.notification_url,
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
            self.ledger.event(job, Phase.PENDING, None, USER, None, now)
        key = None
        if request.idempotency_key is not None and digest is not None:
            # Written first at commit: a concurrent twin waits on (or fails at) the key.
            key = idempotency_row(identity.sub, request.idempotency_key, digest, job.id, now)
        await self.ledger.commit_new(NewJobRows(job=job_row(job), key=key))
        self.ledger.notify(job.id)
        log.info("job created", job_id=job.id, workflow=definition.id, run=request.run)
        return job.id

    async def start_job(self, identity: Identity, job_id: str) -> None:
        """PHASE=RUN: queue a pending job. Repeating it on a queued or running job is a no-op."""
        await self.ledger.retrying(lambda: self._start_job(identity, job_id))

    async def _start_job(self, identity: Identity, job_id: str) -> None:
        # Read without a lock and end the read: the credential check below is a call to
        # the auth service, and no transaction (let alone a row lock) may wait on it. The
        # claim then proves the job did not change in between.
        job = await self._owned(identity, job_id)
        await self.ledger.rollback()
        if job.phase in (Phase.QUEUED, Phase.EXECUTING):
            return
        if job.phase != Phase.PENDING:
            raise InvalidPhaseChangeError(
                f"Job {job_id} is {job.phase.value}; only a PENDING job can be run."
            )
        definition = self.workflows.get(job.workflow_id, job.workflow_version)
        now = utcnow()
        group, expires_at = await check_credential(
            self.credentials,
            self.policy.credential_margin_s,
            identity,
            self.facilities.get(job.facility),
            job.vo,
            job.group_name,
            job.execution_duration,
            now,
        )
        await self.ledger.claim(job)
        if expires_at is not None:
            await self.jobs.update(job.id, group_name=group, credential_expires_at=expires_at)
        await self._queue(job, definition, now)
        await self.ledger.commit()
        self.ledger.notify(job_id)

    async def abort_job(self, identity: Identity, job_id: str) -> None:
        """PHASE=ABORT: stop the job; its facility is told to cancel its tasks."""
        await self.ledger.retrying(lambda: self._abort_job(identity, job_id))

    async def _abort_job(self, identity: Identity, job_id: str) -> None:
        job = await self._owned(identity, job_id, for_update=True)
        if job.phase == Phase.ABORTED:
            await self.ledger.rollback()
            return
        if job.phase in FINAL_PHASES:
            raise InvalidPhaseChangeError(
                f"Job {job_id} is already {job.phase.value}; it cannot be aborted."
            )
        await self.ledger.claim(job)
        now = utcnow()
        was_submitted = job.phase != Phase.PENDING
        await self.ledger.transition(job, Phase.ABORTED, USER, "aborted by its owner", now)
        if was_submitted:
            self.ledger.outbox.command(
                SUBMITTER_QUEUE,
                CancelJob(job_id=job.id, owner=job.owner, facility=job.facility),
                at=now,
            )
        await self.ledger.commit()
        self.ledger.notify(job_id)

    async def delete_job(self, identity: Identity, job_id: str) -> None:
        """Delete the job and its records; its facility and results store forget it too."""
        await self.ledger.retrying(lambda: self._delete_job(identity, job_id))

    async def _delete_job(self, identity: Identity, job_id: str) -> None:
        job = await self._owned(identity, job_id, for_update=True)
        await self.ledger.claim(job)
        now = utcnow()
        if job.phase != Phase.PENDING:
            outbox = self.ledger.outbox
            outbox.command(
                SUBMITTER_QUEUE,
                PurgeJob(job_id=job.id, owner=job.owner, facility=job.facility),
                at=now,
            )
            outbox.command(RESULTS_QUEUE, self.ledger.purge_results(job, "deleted"), at=now)
        await self.ledger.forget(job, now)
        await self.ledger.commit()
        self.ledger.notify(job_id)
        log.info("job deleted", job_id=job_id)

    async def set_parameters(
        self, identity: Identity, job_id: str, changes: Mapping[str, Any]
    ) -> None:
        """UWS POST /parameters: change parameters of a PENDING job.

        The given values replace the job's; the whole set is validated again against the
        workflow's schema, and the job's number of tasks follows (a sweep may grow).
        """
        check_parameters(changes)
        await self.ledger.retrying(lambda: self._set_parameters(identity, job_id, changes))

    async def _set_parameters(
        self, identity: Identity, job_id: str, changes: Mapping[str, Any]
    ) -> None:
        job = await self._owned(identity, job_id, for_update=True)
        self._require_pending(job, "parameters")
        definition = self.workflows.get(job.workflow_id, job.workflow_version)
        parameters = validate_parameters(definition, {**job.parameters, **changes})
        count = task_count(definition, parameters)
        if job.inputs is not None:
            count = len(input_groups(job.inputs, count))
        await self.ledger.claim(job)
        now = utcnow()
        await self.jobs.update(job_id, parameters=parameters, task_count=count, updated_at=now)
        if count != job.task_count:
            await self.jobs.replace_tasks(job_id, count, job.phase)
        self.jobs.add_history(
            job_id, at=now, source=USER, detail=f"parameters set: {', '.join(sorted(changes))}"
        )
        await self.ledger.commit()
        self.ledger.notify(job_id)

    async def set_execution_duration(self, identity: Identity, job_id: str, seconds: int) -> None:
        await self.ledger.retrying(lambda: self._set_execution_duration(identity, job_id, seconds))

    async def _set_execution_duration(self, identity: Identity, job_id: str, seconds: int) -> None:
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
        await self.ledger.claim(job)
        now = utcnow()
        await self.jobs.update(job_id, execution_duration=seconds, updated_at=now)
        self.jobs.add_history(
            job_id, at=now, source=USER, detail=f"executionduration set to {seconds} s"
        )
        await self.ledger.commit()

    async def set_destruction(self, identity: Identity, job_id: str, when: datetime) -> None:
        await self.ledger.retrying(lambda: self._set_destruction(identity, job_id, when))

    async def _set_destruction(self, identity: Identity, job_id: str, when: datetime) -> None:
        job = await self._owned(identity, job_id, for_update=True)
        now = utcnow()
        self._check_destruction(when, now)
        await self.ledger.claim(job)
        await self.jobs.update(job.id, destruction=when, updated_at=now)
        self.jobs.add_history(
            job.id, at=now, source=USER, detail=f"destruction set to {when.isoformat()}"
        )
        await self.ledger.commit()

    # ----- reading ------------------------------------------------------------------------

    async def get_job(self, identity: Identity, job_id: str, *, details: bool = True) -> Job:
        job = await self._owned(identity, job_id)
        if details:
            job.history = await self.jobs.history(job_id)
            job.results = await self.jobs.results(job_id)
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

    async def in_flight(self, facility: str, limit: int, after: str | None) -> list[InFlightJob]:
        return await self.jobs.in_flight(facility, limit, after)

    # ----- internals ----------------------------------------------------------------------

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

    async def _check_notification_url(self, url: str | None) -> None:
        """Hold a notification URL to the notifier's rules before the job exists: a job whose
        hook could never be called is refused, not created (``unsafe-webhook-url``). The host
        is resolved here as for a subscription; the notifier checks every address again when
        it connects. No transaction is open yet: a slow DNS answer holds no lock."""
        if url is None:
            return
        policy = self.policy.notification_policy
        if policy is None:
            raise InvalidJobFieldError(
                "This gridgate does not send job notifications; subscribe to your jobs' "
                "events at /api/subscriptions instead, if it offers them.",
                errors=[{"field": "notification_url", "message": "not offered here"}],
            )
        check_text("notification_url", url, MAX_URL_CHARS)
        try:
            await policy.check(url)
        except UnsafeUrlError as exc:
            exc.extra.setdefault("errors", [{"field": "notification_url", "message": exc.detail}])
            raise

    async def _owned(self, identity: Identity, job_id: str, *, for_update: bool = False) -> Job:
        job = await self.jobs.get(job_id, for_update=for_update)
        # Another user's job answers exactly as a missing one: its existence stays private.
        if job is None or job.owner != identity.sub:
            raise JobNotFoundError(f"There is no job {job_id} of yours.")
        return job

    def _choose_vo(self, identity: Identity, requested: str | None) -> str:
        return choose_vo(identity, requested)

    def _check_destruction(self, when: datetime, now: datetime) -> None:
        latest = now + self.policy.max_destruction
        if when <= now or when > latest:
            raise InvalidJobFieldError(
                "The destruction time must be in the future and at most "
                f"{self.policy.max_destruction.days} days away.",
                errors=[
                    {
                        "field": "destruction",
                        "message": f"must be after now and before {latest.isoformat()}",
                    }
                ],
            )

    @staticmethod
    def _require_pending(job: Job, what: str) -> None:
        if job.phase != Phase.PENDING:
            raise JobNotPendingError(
                f"{what} can only change while the job is PENDING; it is {job.phase.value}."
            )

    async def _queue(self, job: Job, definition: WorkflowDefinition, now: datetime) -> None:
        command = await self.ledger.submit_command(job, definition)
        await self.ledger.transition(
            job, Phase.QUEUED, USER, f"{len(command.tasks)} task(s) sent to {job.facility}", now
        )
        self.ledger.outbox.command(SUBMITTER_QUEUE, command, at=now)


def _check_request(request: JobRequest) -> None:
    """Refuse, before anything is looked up, free text that could not be kept or shown."""
    names = {
        "workflow": request.workflow,
        "version": request.version,
        "facility": request.facility,
        "vo": request.vo,
        "group": request.group,
    }
    for name, value in names.items():
        if value is not None:
            check_text(name, value, MAX_NAME)
    if request.run_id is not None:
        check_text("RUNID", request.run_id, MAX_RUN_ID)
    check_parameters(request.parameters)
    if request.execution_duration is not None and request.execution_duration < 0:
        raise InvalidJobFieldError(
            "executionduration is a number of seconds: 0 (unlimited) or more.",
            errors=[{"field": "executionduration", "message": "must be >= 0"}],
        )
