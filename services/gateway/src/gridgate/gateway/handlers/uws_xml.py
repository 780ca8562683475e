"""UWS 1.1 XML documents, built with the ``vo-models`` models that IVOA clients agree with.

Every document is valid against the UWS 1.1 schema in every phase: the job's nillable
elements (``quote``, ``startTime``, ``endTime``, ``destruction``) are always present, with
``xsi:nil="true"`` while unknown, and ``results`` is present even when empty.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any

import pydantic_xml
from lxml import etree
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
UWS_NAMESPACE = "http://www.ivoa.net/xml/UWS/v1.0"

# Characters XML 1.0 cannot carry. New values with them are refused at the door; this
# keeps a document well-formed for anything recorded before that rule, or written by a worker
# (an error message quoting a task's output).
_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def xml_text(value: str) -> str:
    """The value with every character XML 1.0 cannot carry replaced by U+FFFD."""
    return _NOT_XML.sub("\ufffd", value)


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
    return model(**{name: Parameter(id=name, value=xml_text(values[name])) for name in names})


def _results(job: Job, job_url: str) -> Results:
    return Results(
        results=[
            ResultReference(
                id=xml_text(r.name),
                href=xml_text(f"{job_url}/results/{r.name}"),
                size=r.size,
                mime_type=r.media_type,
            )
            for r in job.results
        ]
    )


def job_xml(job: Job, job_url: str) -> bytes:
    error = None
    if job.phase.value == "ERROR":
        error = ErrorSummary(
            message=xml_text(job.error_message or ""),
            has_detail=True,
            type=ErrorType(job.error_type or "fatal"),
        )
    parameters = _parameters(job)
    summary = JobSummary[type(parameters)](  # type: ignore[misc,operator]
        job_id=job.id,
        run_id=xml_text(job.run_id) if job.run_id is not None else None,
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
    # Not skip_empty: that would drop the nil elements the schema requires.
    tree = summary.to_xml_tree(skip_empty=False)
    if job.run_id is None:
        # runId is optional: absent rather than an empty string clients would read as one.
        for run_id in tree.findall(f"{{{UWS_NAMESPACE}}}runId"):
            tree.remove(run_id)
    return bytes(etree.tostring(tree, encoding="UTF-8", xml_declaration=True))


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
                run_id=xml_text(job.run_id) if job.run_id is not None else None,
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
