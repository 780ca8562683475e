"""Settings the workers that reach DiracX share (submitter, monitor, results)."""

from __future__ import annotations

from pydantic import BaseModel, Field

from gridgate.diracx.connection import DiracXConnection


class DiracXFacilitiesSettings(BaseModel):
    diracx_facilities: dict[str, DiracXConnection] = Field(
        default_factory=dict,
        description="DiracX facilities this worker serves: catalogue id -> connection (JSON, "
        'e.g. {"diracx-testbed": {"url": "http://127.0.0.1:8710"}}). Tokens come from the '
        "auth service (auth_url).",
    )
