"""Settings of the local facility's task runner, from ``GRIDGATE_LOCALFACILITY_*``.

The runner is a detached process started by the submitter; it inherits the submitter's
environment, so these variables are set where the submitter runs.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class LocalFacilitySettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="GRIDGATE_LOCALFACILITY_", extra="ignore")

    ca_file: Path | None = Field(
        default=None,
        description="CA bundle to verify https storage that input files come from (system CAs "
        "when unset).",
    )
    input_timeout_s: float = Field(
        default=300.0, gt=0, description="Network timeout of one input file download."
    )
    docker_host: str = Field(
        default="",
        description="Docker engine that runs containerised tasks (empty: DOCKER_HOST or the "
        "default socket).",
    )
