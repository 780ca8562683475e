"""JSON shapes of jobs, following the UWS 1.1 element names in camelCase."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from gridgate.contracts.phases import Phase
from gridgate.gateway.models.job import Job, ResultRecord
from gridgate.gateway.services.datalake import input_groups
from gridgate.workflows import render_value


def iso(value: datetime | None) -> str | None:
    return value.isoformat().replace("+00:00", "Z") if value else None


def result_json(
    job_url: str, result: ResultRecord, signed: tuple[str, datetime] | None = None
) -> dict[str, Any]:
    """One result; with ``signed`` (token, expiry), a URL that works without a token."""
    href = f"{job_url}/results/{result.name}"
    body: dict[str, Any] = {
        "id": result.name,
        "href": href,
        "size": result.size,
        "mimeType": result.media_type,
        "sha256": result.sha256,
        "adler32": result.adler32,
        "taskIndex": result.task_index,
        "did": result.did,
    }
    if signed is not None:
        token, expires = signed
        body["signedUrl"] = f"{href}?{urlencode({'signed': token})}"
        body["signedUrlExpires"] = iso(expires)
    return body


def inputs_json(job: Job) -> dict[str, Any] | None:
    if not job.inputs:
        return None
    return {
        "dids": job.inputs.get("dids", []),
        "filesPerJob": job.inputs.get("files_per_job"),
        "files": len(job.inputs.get("files", [])),
    }


def error_json(job: Job) -> dict[str, Any] | None:
    if job.phase != Phase.ERROR:
        return None
    return {
        "type": job.error_type or "fatal",
        "message": job.error_message or "",
        "hasDetail": True,
    }


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


def job_ref_json(job: Job, job_url: str) -> dict[str, Any]:
    return {
        "jobId": job.id,
        "href": job_url,
        "phase": job.phase.value,
        "runId": job.run_id,
        "ownerId": job.owner,
        "creationTime": iso(job.creation_time),
        "workflow": job.workflow_id,
        "facility": job.facility,
    }


def job_json(job: Job, job_url: str) -> dict[str, Any]:
    task_inputs = input_groups(job.inputs, job.task_count)
    return {
        "jobId": job.id,
        "runId": job.run_id,
        "ownerId": job.owner,
        "phase": job.phase.value,
        "quote": iso(job.quote),
        "creationTime": iso(job.creation_time),
        "startTime": iso(job.start_time),
        "endTime": iso(job.end_time),
        "executionDuration": job.execution_duration,
        "destruction": iso(job.destruction),
        "parameters": parameters_json(job),
        "results": [result_json(job_url, r) for r in job.results],
        "errorSummary": error_json(job),
        "jobInfo": {
            "workflow": {"id": job.workflow_id, "version": job.workflow_version},
            "facility": job.facility,
            "vo": job.vo,
            "group": job.group_name,
            "inputs": inputs_json(job),
            "dataset": job.data_dataset,
            "schedule": (
                {"id": job.schedule_id, "nominalTime": iso(job.nominal_time)}
                if job.schedule_id
                else None
            ),
            "pendingReason": pending_reason(job, datetime.now(UTC)),
            "tasks": [
                {
                    "index": t.index,
                    "phase": t.phase.value,
                    "facilityJobId": t.facility_job_id,
                    "facilityStatus": t.facility_status,
                    "exitCode": t.exit_code,
                    "detail": t.detail,
                    "startTime": iso(t.started_at),
                    "endTime": iso(t.ended_at),
                    "inputs": [f.did for f in task_inputs[t.index]]
                    if t.index < len(task_inputs)
                    else [],
                }
                for t in job.tasks
            ],
            "history": [
                {
                    "at": iso(h.at),
                    "from": h.from_phase.value if h.from_phase else None,
                    "to": h.to_phase.value if h.to_phase else None,
                    "source": h.source,
                    "detail": h.detail,
                }
                for h in job.history
            ],
        },
    }
