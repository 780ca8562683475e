"""What a facility needs to run one job: its tasks and its limits."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from gridgate.contracts.phases import Phase


class InputFile(BaseModel):
    """One input file of a task: a Rucio file DID, resolved by the gateway at job creation.

    A facility puts it into the task's working directory as :attr:`file_name`. DIRAC
    facilities pass :attr:`lfn` as ``InputData``; the local facility fetches one of
    :attr:`urls` (replica PFNs, preferred first) and checks size and Adler-32.
    """

    model_config = ConfigDict(extra="ignore", frozen=True)

    scope: str
    name: str
    lfn: str = Field(description="The logical file name (the Rucio name, by convention).")
    bytes: int | None = Field(default=None, ge=0)
    adler32: str | None = None
    urls: list[str] = Field(default_factory=list, description="Replica URLs, preferred first.")

    @property
    def did(self) -> str:
        return f"{self.scope}:{self.name}"

    @property
    def file_name(self) -> str:
        """Name in the working directory: the last path element of the DID name."""
        return self.name.rsplit("/", 1)[-1]


class TaskSpec(BaseModel):
    """One executable unit of a job (a job of N sweep points has N tasks).

    ``argv`` is an argument vector, never a shell line: parameter values cannot inject commands.
    """

    model_config = ConfigDict(extra="ignore", frozen=True)

    index: int = Field(ge=0)
    argv: list[str] = Field(min_length=1)
    env: dict[str, str] = Field(default_factory=dict)
    inputs: list[InputFile] = Field(
        default_factory=list, description="Files placed in the working directory before start."
    )


class ResourceLimits(BaseModel):
    """Limits the facility enforces on every task of a job."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    execution_duration_s: int = Field(ge=0, description="Wall-clock limit; 0 means unlimited.")
    cores: int = Field(default=1, ge=1)
    gpus: int = Field(default=0, ge=0, description="GPUs each task needs (a DIRAC tag).")
    memory_mb: int = Field(default=1024, ge=16)
    max_output_mb: int = Field(default=1024, ge=1)


@dataclass(frozen=True)
class TaskStatus:
    """What a facility (local runner, DIRAC) says of one task; the monitor compares and reports.

    ``state`` is the facility's own status word; ``detail`` its explanation (DIRAC's minor and
    application status).
    """

    facility_task_id: str
    state: str
    phase: Phase
    exit_code: int | None = None
    detail: str | None = None
    started_at: datetime | None = None
    ended_at: datetime | None = None
