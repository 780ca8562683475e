"""Submitter settings, from ``GRIDGATE_SUBMITTER_*``."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from gridgate.core.settings import BaseServiceSettings
from gridgate.dirac.settings import DiracFacilitiesSettings, ProxyAccessSettings
from gridgate.diracx.settings import DiracXFacilitiesSettings
from gridgate.images import ImageSettings


class SubmitterSettings(
    BaseServiceSettings,
    DiracFacilitiesSettings,
    DiracXFacilitiesSettings,
    ProxyAccessSettings,
    ImageSettings,
):
    model_config = SettingsConfigDict(env_prefix="GRIDGATE_SUBMITTER_", extra="ignore")

    local_facility_root: Path = Field(
        default=Path(".gridgate/local-facility"),
        description="Working directories of local-facility tasks (shared with monitor, results).",
    )
    workflows_dir: Path | None = Field(
        default=None,
        description="Workflow catalogue directory (image recipes); unset: the shipped one. "
        "Must match the gateway's GRIDGATE_GATEWAY_WORKFLOWS_DIR.",
    )
    prefetch: int = Field(
        default=500,
        ge=1,
        description="Commands handled at once. While one bulk submission is on its way to "
        "DIRAC, the next gathers from the commands held: as many as a submission takes (500).",
    )
    image_build_poll_s: float = Field(
        default=2.0,
        gt=0,
        description="While another replica builds an image a job needs: how often to look "
        "for it in the registry, and whether that replica is still alive.",
    )
    image_build_heartbeat_s: float = Field(
        default=60.0,
        gt=0,
        description="While a job waits for its image build: how often the gateway is told "
        "the build is alive (keep it well below the gateway's STALL_AFTER_S).",
    )
    callback_url: str = Field(
        default="",
        description="The gateway's URL as DIRAC jobs reach it, for the job callback "
        "(empty: jobs do not call back; the monitor's polling alone tracks them).",
    )
    health_host: str = Field(
        default="0.0.0.0",  # noqa: S104 - kubelet probes and Prometheus come from outside
        description="Address of the /healthz, /readyz and /metrics endpoint.",
    )
    health_port: int = Field(
        default=8081,
        ge=0,
        le=65535,
        description="Port of the /healthz, /readyz and /metrics endpoint (0: off).",
    )
