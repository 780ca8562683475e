"""Results settings, from ``GRIDGATE_RESULTS_*``."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from gridgate.core.settings import BaseServiceSettings


class ResultsSettings(BaseServiceSettings):
    model_config = SettingsConfigDict(env_prefix="GRIDGATE_RESULTS_", extra="ignore")

    results_dir: Path = Field(
        default=Path(".gridgate/results"),
        description="The results store (the gateway serves from it).",
    )
    local_facility_root: Path = Field(
        default=Path(".gridgate/local-facility"),
        description="Where local-facility tasks ran (shared with submitter and monitor).",
    )
    prefetch: int = Field(default=4, ge=1, description="Collections handled at once.")
