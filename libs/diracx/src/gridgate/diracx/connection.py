"""How gridgate's workers reach one DiracX installation: configuration, not code."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

# DiracX's /api/jobs/search answers at most 10,000 rows a page; we ask 1,000 jobs a call.
MAX_STATUS_BATCH = 1000


class DiracXConnection(BaseModel):
    """One DiracX facility, as the workers' settings give it (JSON)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    url: str = Field(description="DiracX's base URL (https://... in production).")
    ca_file: Path | None = Field(
        default=None, description="CA bundle DiracX's certificate is checked against."
    )
    status_batch: int = Field(
        default=MAX_STATUS_BATCH,
        ge=1,
        le=MAX_STATUS_BATCH,
        description="Jobs asked for in one /api/jobs/search call.",
    )
    read_timeout_s: float = Field(
        default=120.0, gt=0, description="Longest wait for one DiracX answer, in seconds."
    )
    submit_batch: int = Field(
        default=20,
        ge=1,
        description="Tasks in one POST /api/jobs/jdl (DiracX 0.7.0 takes at most 20 from a "
        "normal user).",
    )
