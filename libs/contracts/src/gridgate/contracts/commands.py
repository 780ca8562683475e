"""Commands: what the gateway asks a worker to do. Each names its target job."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, TypeAdapter

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


class PurgeResults(Message):
    """Remove a deleted job's files from the results store."""

    kind: Literal["purge-results"] = "purge-results"
    owner: str


Command = Annotated[
    SubmitJob | CancelJob | PurgeJob | CollectResults | PurgeResults,
    Field(discriminator="kind"),
]
COMMAND_ADAPTER: TypeAdapter[Command] = TypeAdapter(Command)
