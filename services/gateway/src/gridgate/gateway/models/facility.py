"""A facility's capacity record and whether it can run a workflow."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class Facility(BaseModel):
    """A computing facility and what one task there may use."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(pattern=r"^[a-z][a-z0-9-]*$")
    title: str
    description: str
    kind: Literal["local", "dirac", "diracx"]
    runtime_engine: str = Field(description="process, docker, singularity, ...")
    runtimes: tuple[str, ...] = Field(default=(), description="Container runtimes offered.")
    cores: int = Field(ge=1, description="Cores one task may use.")
    memory_gb: float = Field(gt=0, description="Memory one task may use, in GB.")
    gpu_count: int = Field(default=0, ge=0)
    gpu_type: str | None = None
    max_walltime_s: int = Field(ge=1)
    vos: tuple[str, ...] = Field(default=("*",), description="VOs served; '*' for any.")

    @property
    def needs_credential(self) -> bool:
        """Jobs there run as their owner, in a group: an x509 proxy (DIRAC 8) or a DiracX
        token (DiracX), both from the auth service."""
        return self.kind in ("dirac", "diracx")

    @property
    def is_grid(self) -> bool:
        """Tasks run on a grid worker node, not on the submitter's host."""
        return self.kind in ("dirac", "diracx")

    def serves(self, vo: str) -> bool:
        return "*" in self.vos or vo in self.vos
