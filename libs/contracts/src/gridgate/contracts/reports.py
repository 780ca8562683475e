"""Reports: what workers tell the gateway, which alone writes job state."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

from gridgate.contracts.images import ImageProvenance
from gridgate.contracts.messages import Message
from gridgate.contracts.phases import Phase


class JobSubmitted(Message):
    """A facility accepted the job's tasks; ``facility_job_ids[i]`` runs task ``i``."""

    kind: Literal["job-submitted"] = "job-submitted"
    facility: str
    facility_job_ids: list[str] = Field(min_length=1)


class TaskState(BaseModel):
    """The state of one task as its facility reports it."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    index: int = Field(ge=0)
    facility_job_id: str
    phase: Phase
    facility_status: str = Field(description="The facility's own status word, for the history.")
    exit_code: int | None = None
    detail: str | None = None
    started_at: datetime | None = None
    ended_at: datetime | None = None


class JobStateObserved(Message):
    """The monitor saw one or more of a job's tasks change state."""

    kind: Literal["job-state-observed"] = "job-state-observed"
    observed_at: datetime
    tasks: list[TaskState] = Field(min_length=1)


MAX_OBSERVATIONS_PER_MESSAGE = 256
"""Observations one :class:`JobStatesObserved` carries at most: one unit of work's worth."""


class JobStatesObserved(Message):
    """Observations of many jobs from one monitor cycle, in one message.

    One message per observation costs the gateway more in handling the message (decoding,
    a task, an acknowledgement) than in applying the observation; carried together they
    are applied in one unit of work, at most one per job. It names no single job (its
    ``job_id`` is empty): dead-lettered, it fails none; the next cycle observes again.
    """

    kind: Literal["job-states-observed"] = "job-states-observed"
    job_id: str = ""
    observations: list[JobStateObserved] = Field(
        min_length=1, max_length=MAX_OBSERVATIONS_PER_MESSAGE
    )


class ResultFile(BaseModel):
    """One file of a job's results, as stored."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    name: str
    size: int = Field(ge=0)
    media_type: str
    sha256: str
    adler32: str
    task_index: int | None = None
    did: str | None = Field(default=None, description="Rucio DID 'scope:name' when registered.")
    location: str | None = Field(
        default=None,
        description="URL of the stored copy (WebDAV, RSE); none: <results dir>/<job>/<name>.",
    )


class ResultsStaged(Message):
    """The results service stored a job's files."""

    kind: Literal["results-staged"] = "results-staged"
    results: list[ResultFile]
    dataset: str | None = Field(default=None, description="The job's Rucio dataset DID.")


class JobFailureReported(Message):
    """A worker could not do its part for a reason the user can act on (a usage error)."""

    kind: Literal["job-failure-reported"] = "job-failure-reported"
    source: str
    reason: str


class ImageBuildStarted(Message):
    """No image of the job's recipe and arguments exists: the submitter is building it."""

    kind: Literal["image-build-started"] = "image-build-started"
    repository: str
    tag: str = Field(description="The content-addressed tag being built.")


class ImageResolved(Message):
    """The job's image is in the registry, selected or just built, pinned by digest."""

    kind: Literal["image-resolved"] = "image-resolved"
    image: ImageProvenance


Report = Annotated[
    JobSubmitted
    | JobStateObserved
    | JobStatesObserved
    | ResultsStaged
    | JobFailureReported
    | ImageBuildStarted
    | ImageResolved,
    Field(discriminator="kind"),
]
REPORT_ADAPTER: TypeAdapter[Report] = TypeAdapter(Report)
