"""UWS 1.1 XML documents, built with the ``vo-models`` models that IVOA clients agree with."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import pydantic_xml
from pydantic_xml import element
from vo_models.uws.models import (
    ErrorSummary,
    Jobs,
    JobSummary,
    Parameter,
    Parameters,
    ResultReference,
    Results,
    ShortJobDescription,
)
from vo_models.uws.types import ErrorType, ExecutionPhase

from gridgate.gateway.handlers.representations import parameters_json
from gridgate.gateway.models.job import Job

XML_MEDIA_TYPE = "application/xml"


@lru_cache(maxsize=256)
def _parameters_model(names: tuple[str, ...]) -> type[Parameters]:
    # UWS parameters are one element per key; vo-models wants one field per key, so a model
    # is made per distinct set of parameter names (few: one per workflow version).
    # Field names are the parameter ids: vo-models' Parameters re-keys its input by id.
    fields: dict[str, Any] = {
        name: (Parameter | None, element(tag="parameter", default=None)) for name in names
    }
    return pydantic_xml.create_model("JobParameters", __base__=Parameters, **fields)


def _parameters(job: Job) -> Parameters:
    values = parameters_json(job)
    names = tuple(values)
    model = _parameters_model(names)
    return model(**{name: Parameter(id=name, value=values[name]) for name in names})


def _results(job: Job, job_url: str) -> Results:
    return Results(
        results=[
            ResultReference(
                id=r.name, href=f"{job_url}/results/{r.name}", size=r.size, mime_type=r.media_type
            )
            for r in job.results
        ]
    )


def job_xml(job: Job, job_url: str) -> bytes:
    error = None
    if job.phase.value == "ERROR":
        error = ErrorSummary(
            message=job.error_message or "",
            has_detail=True,
            type=ErrorType(job.error_type or "fatal"),
        )
    parameters = _parameters(job)
    summary = JobSummary[type(parameters)](  # type: ignore[misc,operator]
        job_id=job.id,
        run_id=job.run_id,
        owner_id=job.owner,
        phase=ExecutionPhase(job.phase.value),
        quote=job.quote,
        creation_time=job.creation_time,
        start_time=job.start_time,
        end_time=job.end_time,
        execution_duration=job.execution_duration,
        destruction=job.destruction,
        parameters=parameters,
        results=_results(job, job_url),
        error_summary=error,
    )
    return _bytes(summary.to_xml(skip_empty=True))


def results_xml(job: Job, job_url: str) -> bytes:
    return _bytes(_results(job, job_url).to_xml(skip_empty=True))


def parameters_xml(job: Job) -> bytes:
    return _bytes(_parameters(job).to_xml(skip_empty=True))


def jobs_xml(jobs: list[Job], base_url: str) -> bytes:
    document = Jobs(
        jobref=[
            ShortJobDescription(
                job_id=job.id,
                phase=ExecutionPhase(job.phase.value),
                run_id=job.run_id,
                owner_id=job.owner,
                creation_time=job.creation_time,
                href=f"{base_url}/{job.id}",
            )
            for job in jobs
        ]
    )
    return _bytes(document.to_xml(skip_empty=True))


def _bytes(value: str | bytes) -> bytes:
    return value if isinstance(value, bytes) else value.encode()
