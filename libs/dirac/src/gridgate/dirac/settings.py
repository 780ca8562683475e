"""Settings the workers that reach DIRAC share (submitter, monitor, results)."""

from __future__ import annotations

from pydantic import BaseModel, Field, SecretStr

from gridgate.dirac.connection import DiracConnection


class DiracFacilitiesSettings(BaseModel):
    dirac_facilities: dict[str, DiracConnection] = Field(
        default_factory=dict,
        description="DIRAC facilities this worker serves: catalogue id -> client set-up "
        '(JSON, e.g. {"dirac-testbed": {"python": ..., "root": ..., "cert_dir": ...}}).',
    )


class ProxyAccessSettings(BaseModel):
    """Where a worker asks for a job owner's proxy (submitter and results act as owners)."""

    auth_url: str = Field(
        default="http://127.0.0.1:8001",
        description="The auth service's internal URL (job owners' proxies for DIRAC).",
    )
    internal_token: SecretStr = Field(
        default=SecretStr(""), description="Shared secret for the auth service's /internal."
    )
