"""Monitor settings, from ``GRIDGATE_MONITOR_*``."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr
from pydantic_settings import SettingsConfigDict

from gridgate.core.settings import BaseServiceSettings
from gridgate.dirac.settings import DiracFacilitiesSettings
from gridgate.diracx.settings import DiracXFacilitiesSettings


class MonitorSettings(BaseServiceSettings, DiracFacilitiesSettings, DiracXFacilitiesSettings):
    model_config = SettingsConfigDict(env_prefix="GRIDGATE_MONITOR_", extra="ignore")

    gateway_url: str = Field(
        default="http://127.0.0.1:8000", description="Where the gateway's internal routes are."
    )
    internal_token: SecretStr = Field(
        default=SecretStr(""), description="Shared secret for the gateway's /internal."
    )
    auth_url: str = Field(
        default="http://127.0.0.1:8001",
        description="The auth service's internal URL (the DiracX robot's token for bulk status; "
        "the internal token is the same shared secret).",
    )
    local_facility_root: Path = Field(
        default=Path(".gridgate/local-facility"),
        description="Where local-facility tasks run (shared with submitter and results).",
    )
    local_lost_after_s: float = Field(
        default=120.0,
        gt=0,
        description="Seconds a launched local-facility task may wait for its runner before it "
        "is reported lost (the submitter was stopped in the launch and no redelivery came).",
    )
    min_interval_s: float = Field(default=0.5, gt=0, description="Poll interval while busy.")
    max_interval_s: float = Field(default=10.0, gt=0, description="Poll interval when idle.")
    health_host: str = Field(
        default="0.0.0.0",  # noqa: S104 - kubelet probes and Prometheus come from outside
        description="Address of the /healthz, /readyz and /metrics endpoint.",
    )
    health_port: int = Field(
        default=8082,
        ge=0,
        le=65535,
        description="Port of the /healthz, /readyz and /metrics endpoint (0: off).",
    )
