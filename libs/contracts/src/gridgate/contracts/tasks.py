"""What a facility needs to run one job: its tasks and its limits."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class TaskSpec(BaseModel):
    """One executable unit of a job (a job of N sweep points has N tasks).

    ``argv`` is an argument vector, never a shell line: parameter values cannot inject commands.
    """

    model_config = ConfigDict(extra="ignore", frozen=True)

    index: int = Field(ge=0)
    argv: list[str] = Field(min_length=1)
    env: dict[str, str] = Field(default_factory=dict)


class ResourceLimits(BaseModel):
    """Limits the facility enforces on every task of a job."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    execution_duration_s: int = Field(ge=0, description="Wall-clock limit; 0 means unlimited.")
    cores: int = Field(default=1, ge=1)
    memory_mb: int = Field(default=1024, ge=16)
    max_output_mb: int = Field(default=1024, ge=1)
