"""The request bodies the UWS job resources read by hand, described for the OpenAPI document.

The handlers keep reading fields themselves (:func:`~gridgate.gateway.handlers.negotiation.
read_fields`): UWS names are case-insensitive, a form and JSON are both taken, and every
name that is not UWS's or gridgate's is a parameter of the workflow, so no pydantic body
could validate them. These models only say what may be sent.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from gridgate.web.openapi import request_body

WORKFLOW_PARAMETERS = (
    "Every other field is a parameter of the workflow: `GET /api/workflows/{id}` answers the "
    "JSON Schema of its parameters (`parameters`), which the job's fields are checked against. "
    "Values are strings of at most 4096 characters (numbers and booleans in JSON)."
)
CASE = "Field names are case-insensitive, as UWS has them; they may be sent in the query string."


def _extra(values: dict[str, Any]) -> ConfigDict:
    # Unknown names are workflow parameters, not mistakes.
    return ConfigDict(extra="allow", json_schema_extra={"additionalProperties": values})


FORM_VALUE: dict[str, Any] = {"type": "string", "maxLength": 4096}
JSON_VALUE: dict[str, Any] = {"type": ["string", "number", "integer", "boolean"]}


class _JobFields(BaseModel):
    workflow: str = Field(description="The workflow's id (`GET /api/workflows`).")
    version: str | None = Field(default=None, description="Its version; the latest if unset.")
    facility: str = Field(default="local", description="Where to run (`GET /api/facilities`).")
    vo: str | None = Field(default=None, description="The VO to charge; the token's if unset.")
    group: str | None = Field(default=None, description="The VO group to run as.")
    RUNID: str | None = Field(default=None, max_length=255, description="The client's own label.")
    PHASE: Literal["RUN"] | None = Field(default=None, description="RUN: queue it at once.")
    executionduration: int | None = Field(
        default=None, ge=0, description="Seconds it may run; 0: unlimited, where allowed."
    )
    destruction: datetime | None = Field(
        default=None, description="When it and its results are deleted; in the future."
    )
    files_per_job: int | None = Field(
        default=None, ge=1, description="Input files per task: a sweep of tasks over the inputs."
    )
    notification_url: str | None = Field(
        default=None,
        max_length=2000,
        description="The job's own webhook (also `notificationUrl`): the notifier POSTs each "
        "of the job's events there as a signed CloudEvent, in order. https only unless the "
        "operator allows http; internal addresses are refused (`unsafe-webhook-url`). "
        "Signed with your job-hook secret (`POST /api/subscriptions/job-hook-secret`).",
    )


class JobCreationForm(_JobFields):
    """A new job, as a form: UWS fields, then the workflow's parameters."""

    model_config = _extra(FORM_VALUE)

    inputs: str | None = Field(
        default=None, description="Data-lake DIDs (`scope:name`), separated by commas or spaces."
    )


class JobCreation(_JobFields):
    """A new job, as JSON: UWS fields, then the workflow's parameters (top-level, or nested
    in ``parameters``)."""

    model_config = _extra(JSON_VALUE)

    inputs: list[str] | None = Field(default=None, description="Data-lake DIDs (`scope:name`).")
    parameters: dict[str, Any] | None = Field(
        default=None, description="The workflow's parameters, instead of top-level fields."
    )


class PhaseChange(BaseModel):
    """``PHASE=RUN`` queues a PENDING job; ``PHASE=ABORT`` stops it."""

    PHASE: Literal["RUN", "ABORT"]


class JobAction(BaseModel):
    """UWS 1.0's posts to the job itself: delete it, change its phase, or set parameters."""

    model_config = _extra(JSON_VALUE)

    ACTION: Literal["DELETE"] | None = Field(default=None, description="Delete the job.")
    PHASE: Literal["RUN", "ABORT"] | None = Field(default=None, description="As on /phase.")


class ParameterChanges(BaseModel):
    """New values of the workflow's parameters, for a PENDING job; checked again as a whole."""

    model_config = _extra(JSON_VALUE)


class ExecutionDurationChange(BaseModel):
    """The longest the job may run, in seconds (0: unlimited, where the facility allows)."""

    EXECUTIONDURATION: int = Field(ge=0)


class DestructionChange(BaseModel):
    """When the job and its results are deleted: in the future, within the operator's limit."""

    DESTRUCTION: datetime


# No body is required: UWS takes the same fields from the query string. (That also keeps
# openapi-python-client 0.29 from naming ``Unset`` without importing it, for a body that
# has two media types and is required.)
CREATE_JOB = request_body(
    form=JobCreationForm,
    json=JobCreation,
    description=f"The job to create. {WORKFLOW_PARAMETERS} {CASE}",
)
POST_JOB = request_body(
    form=JobAction,
    json=JobAction,
    description=f"`ACTION=DELETE`, `PHASE=RUN` or `PHASE=ABORT`, or parameters. {CASE}",
)
CHANGE_PHASE = request_body(form=PhaseChange, json=PhaseChange, description=CASE)
CHANGE_PARAMETERS = request_body(
    form=ParameterChanges,
    json=ParameterChanges,
    description=f"{WORKFLOW_PARAMETERS} In JSON they may also be nested in `parameters`.",
)
CHANGE_EXECUTION_DURATION = request_body(
    form=ExecutionDurationChange, json=ExecutionDurationChange, description=CASE
)
CHANGE_DESTRUCTION = request_body(form=DestructionChange, json=DestructionChange, description=CASE)

SCHEMAS: tuple[type[BaseModel], ...] = (
    JobCreationForm,
    JobCreation,
    PhaseChange,
    JobAction,
    ParameterChanges,
    ExecutionDurationChange,
    DestructionChange,
)
"""The models :func:`~gridgate.web.openapi.install_openapi` adds to the document."""
