"""JSON shapes of jobs, following the UWS 1.1 element names in camelCase.

The models are what the OpenAPI document shows; the functions build them from the services'
domain objects. Field names on the wire are the aliases, and they do not change.
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from gridgate.contracts.phases import Phase
from gridgate.gateway.models.job import Job, ResultRecord
from gridgate.gateway.services.datalake import input_groups
from gridgate.workflows import render_value

UWS_SCHEMA = "http://www.ivoa.net/xml/UWS/v1.0"
"""The UWS 1.1 XML schema's namespace (its schema is at
https://www.ivoa.net/xml/UWS/UWS-v1.1.xsd)."""


def iso(value: datetime | None) -> str | None:
    return value.isoformat().replace("+00:00", "Z") if value else None


def absent_when_none(value: Any) -> bool:
    return value is None


class Wire(BaseModel):
    """A JSON answer: camelCase names on the wire, snake_case in Python."""

    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=True, serialize_by_alias=True
    )

    def wire(self) -> dict[str, Any]:
        """The JSON value sent."""
        return self.model_dump(mode="json", by_alias=True)


class ResultFile(Wire):
    """One result file of a job."""

    id: str = Field(description="Its name, unique in the job.")
    href: str = Field(description="Where to download it (with the bearer token).")
    size: int = Field(description="Bytes.")
    mime_type: str | None
    sha256: str = Field(description="Hex SHA-256 of the bytes.")
    adler32: str = Field(description="Hex Adler-32, as the grid's storage has it.")
    task_index: int | None = Field(description="The task of a sweep that wrote it.")
    did: str | None = Field(description="Its Rucio DID once in the data lake.")
    signed_url: str | None = Field(
        default=None,
        exclude_if=absent_when_none,
        description="A URL that works without a token until `signedUrlExpires`.",
    )
    signed_url_expires: datetime | None = Field(default=None, exclude_if=absent_when_none)


class ErrorSummary(Wire):
    """Why a job is in ERROR."""

    type: str = Field(description="UWS: `transient` (may work if tried again) or `fatal`.")
    message: str
    has_detail: bool


class InputsSummary(Wire):
    dids: list[str] = Field(description="The data-lake DIDs asked for.")
    files_per_job: int | None
    files: int = Field(description="How many files they resolved to.")


class WorkflowRef(Wire):
    id: str
    version: str


class ScheduleOrigin(Wire):
    id: str = Field(description="The schedule that made the job.")
    nominal_time: datetime | None


class TaskSummary(Wire):
    index: int
    phase: Phase
    facility_job_id: str | None
    facility_status: str | None
    exit_code: int | None
    detail: str | None
    start_time: datetime | None
    end_time: datetime | None
    inputs: list[str]


class PhaseChangeRecord(Wire):
    at: datetime
    from_: Phase | None = Field(alias="from")
    to: Phase | None
    source: str
    detail: str | None


class ImageInfo(Wire):
    """The container image a containerised job runs in, pinned by digest, and its origin."""

    reference: str
    digest: str
    repository: str
    tag: str | None
    built: bool
    build_args: dict[str, str]
    base_digest: str | None
    recipe_digest: str | None


class JobInfo(Wire):
    """gridgate's part of the job: where it runs, its tasks and every phase change."""

    workflow: WorkflowRef
    facility: str
    vo: str
    group: str | None
    inputs: InputsSummary | None
    dataset: str | None
    schedule: ScheduleOrigin | None
    pending_reason: str | None
    image: ImageInfo | None = None
    notification_url: str | None = Field(
        default=None, description="The job's own webhook, if it was created with one."
    )
    tasks: list[TaskSummary]
    history: list[PhaseChangeRecord]


class JobSummary(Wire):
    """A job, as UWS 1.1's job element in JSON."""

    job_id: str
    run_id: str | None
    owner_id: str
    phase: Phase
    quote: datetime | None
    creation_time: datetime
    start_time: datetime | None
    end_time: datetime | None
    execution_duration: int
    destruction: datetime | None
    parameters: dict[str, str]
    results: list[ResultFile]
    error_summary: ErrorSummary | None
    job_info: JobInfo


class JobRef(Wire):
    """A job in a list."""

    job_id: str
    href: str
    phase: Phase
    run_id: str | None
    owner_id: str
    creation_time: datetime
    workflow: str
    facility: str


class JobList(Wire):
    """A page of jobs, newest first."""

    jobs: list[JobRef]
    total: int = Field(description="Jobs matching the filters, on every page.")
    next: str | None = Field(description="The next page; null on the last.")


class Results(Wire):
    """A job's results, each with a signed URL (none once the job is ARCHIVED)."""

    results: list[ResultFile]
    dataset: str | None = Field(description="The data-lake dataset holding them.")


def result_file(
    job_url: str, result: ResultRecord, signed: tuple[str, datetime] | None = None
) -> ResultFile:
    """One result; with ``signed`` (token, expiry), a URL that works without a token."""
    href = f"{job_url}/results/{result.name}"
    signed_url = signed_expires = None
    if signed is not None:
        token, signed_expires = signed
        signed_url = f"{href}?{urlencode({'signed': token})}"
    return ResultFile(
        id=result.name,
        href=href,
        size=result.size,
        mime_type=result.media_type,
        sha256=result.sha256,
        adler32=result.adler32,
        task_index=result.task_index,
        did=result.did,
        signed_url=signed_url,
        signed_url_expires=signed_expires,
    )


def inputs_summary(job: Job) -> InputsSummary | None:
    if not job.inputs:
        return None
    return InputsSummary(
        dids=job.inputs.get("dids", []),
        files_per_job=job.inputs.get("files_per_job"),
        files=len(job.inputs.get("files", [])),
    )


def error_summary(job: Job) -> ErrorSummary | None:
    if job.phase != Phase.ERROR:
        return None
    return ErrorSummary(
        type=job.error_type or "fatal", message=job.error_message or "", has_detail=True
    )


def parameters_json(job: Job) -> dict[str, str]:
    return {name: render_value(value) for name, value in job.parameters.items()}


PENDING_NOTICE_AFTER = timedelta(minutes=5)
"""A job queued longer than this gets a pending reason: a grid job usually starts sooner."""


def pending_reason(job: Job, now: datetime) -> str | None:
    """Why a job still waits, once it has waited unusually long; ``None`` otherwise.

    Built from what the facility says of each waiting task (DIRAC's status and minor status,
    such as "Waiting (Pilot Agent Submission)"), most common first.
    """
    if job.stall_reason is not None and job.phase in (Phase.QUEUED, Phase.EXECUTING):
        return job.stall_reason[0].upper() + job.stall_reason[1:] + "."
    if job.phase != Phase.QUEUED:
        return None
    queued_at = next((h.at for h in reversed(job.history) if h.to_phase == Phase.QUEUED), None)
    if queued_at is None or now - queued_at < PENDING_NOTICE_AFTER:
        return None
    waiting = Counter(
        (t.facility_status or "not yet accepted by the facility")
        + (f" ({t.detail})" if t.detail else "")
        for t in job.tasks
        if t.phase in (Phase.QUEUED, Phase.PENDING)
    )
    minutes = int((now - queued_at).total_seconds() // 60)
    states = "; ".join(f"{count} task(s) {state}" for state, count in waiting.most_common(3))
    return f"Queued at {job.facility} for {minutes} min: {states or 'no task state known'}."


def job_ref(job: Job, job_url: str) -> JobRef:
    return JobRef(
        job_id=job.id,
        href=job_url,
        phase=job.phase,
        run_id=job.run_id,
        owner_id=job.owner,
        creation_time=job.creation_time,
        workflow=job.workflow_id,
        facility=job.facility,
    )


def job_summary(job: Job, job_url: str) -> JobSummary:
    task_inputs = input_groups(job.inputs, job.task_count)
    return JobSummary(
        job_id=job.id,
        run_id=job.run_id,
        owner_id=job.owner,
        phase=job.phase,
        quote=job.quote,
        creation_time=job.creation_time,
        start_time=job.start_time,
        end_time=job.end_time,
        execution_duration=job.execution_duration,
        destruction=job.destruction,
        parameters=parameters_json(job),
        results=[result_file(job_url, r) for r in job.results],
        error_summary=error_summary(job),
        job_info=JobInfo(
            workflow=WorkflowRef(id=job.workflow_id, version=job.workflow_version),
            facility=job.facility,
            vo=job.vo,
            group=job.group_name,
            inputs=inputs_summary(job),
            dataset=job.data_dataset,
            schedule=ScheduleOrigin(id=job.schedule_id, nominal_time=job.nominal_time)
            if job.schedule_id
            else None,
            pending_reason=pending_reason(job, datetime.now(UTC)),
            image=ImageInfo.model_validate(job.image) if job.image else None,
            notification_url=job.notification_url,
            tasks=[
                TaskSummary(
                    index=t.index,
                    phase=t.phase,
                    facility_job_id=t.facility_job_id,
                    facility_status=t.facility_status,
                    exit_code=t.exit_code,
                    detail=t.detail,
                    start_time=t.started_at,
                    end_time=t.ended_at,
                    inputs=[f.did for f in task_inputs[t.index]]
                    if t.index < len(task_inputs)
                    else [],
                )
                for t in job.tasks
            ],
            history=[
                PhaseChangeRecord(
                    at=h.at,
                    from_=h.from_phase,
                    to=h.to_phase,
                    source=h.source,
                    detail=h.detail,
                )
                for h in job.history
            ],
        ),
    )
