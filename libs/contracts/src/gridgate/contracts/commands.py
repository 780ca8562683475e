"""Commands: what the gateway asks a worker to do. Each names its target job."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, TypeAdapter

from gridgate.contracts.images import ImageProvenance, ImageRequest
from gridgate.contracts.messages import Message
from gridgate.contracts.tasks import ResourceLimits, TaskSpec


class SubmitJob(Message):
    """Run a job's tasks on a facility, as its owner."""

    kind: Literal["submit-job"] = "submit-job"
    owner: str
    vo: str
    group: str | None = None
    facility: str
    workflow_id: str
    workflow_version: str
    tasks: list[TaskSpec] = Field(min_length=1)
    limits: ResourceLimits
    outputs: list[str] = Field(default_factory=list, description="Glob patterns of outputs.")
    image: ImageRequest | None = Field(
        default=None, description="Run the tasks in this image (a containerised workflow)."
    )


class CancelJob(Message):
    """Stop a job's tasks on its facility (the user asked to ABORT)."""

    kind: Literal["cancel-job"] = "cancel-job"
    owner: str
    facility: str


class PurgeJob(Message):
    """Forget a deleted job on its facility: stop it if it runs, remove its working files."""

    kind: Literal["purge-job"] = "purge-job"
    owner: str
    facility: str


class CollectResults(Message):
    """Copy a finished job's declared outputs, stdout and stderr into the results store."""

    kind: Literal["collect-results"] = "collect-results"
    owner: str
    vo: str
    facility: str
    outputs: list[str] = Field(default_factory=list)
    task_count: int = Field(default=1, ge=1)
    # Provenance and data-lake placement (version 1 additions; older senders omit them).
    workflow_id: str | None = None
    workflow_version: str | None = None
    parameters_digest: str | None = Field(
        default=None, description="'sha256:<hex>' of the job's validated parameters."
    )
    facility_job_ids: list[str] = Field(
        default_factory=list, description="The facility's job ids (DIRAC job ids), task order."
    )
    data_scope: str | None = Field(
        default=None, description="Rucio scope to register outputs in; none: no registration."
    )
    data_account: str | None = Field(
        default=None, description="Rucio account owning the rule; none: the service account."
    )
    image: ImageProvenance | None = Field(
        default=None, description="The container image the tasks ran in, for provenance."
    )


class PurgeResults(Message):
    """Remove a deleted job's files from the results store."""

    kind: Literal["purge-results"] = "purge-results"
    owner: str
    reason: Literal["deleted", "destroyed"] = "deleted"
    dataset: str | None = Field(default=None, description="The job's Rucio dataset DID, if any.")
    rule_lifetime_s: int | None = Field(
        default=None, ge=0, description="Set this lifetime on the dataset's rules; none: keep."
    )


Command = Annotated[
    SubmitJob | CancelJob | PurgeJob | CollectResults | PurgeResults,
    Field(discriminator="kind"),
]
COMMAND_ADAPTER: TypeAdapter[Command] = TypeAdapter(Command)
