"""Results settings, from ``GRIDGATE_RESULTS_*``."""

from __future__ import annotations

from pathlib import Path
from typing import Literal, Self

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import SettingsConfigDict

from gridgate.core.settings import BaseServiceSettings
from gridgate.dirac.settings import DiracFacilitiesSettings, ProxyAccessSettings
from gridgate.diracx.settings import DiracXFacilitiesSettings


class ResultsSettings(
    BaseServiceSettings, DiracFacilitiesSettings, DiracXFacilitiesSettings, ProxyAccessSettings
):
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
    health_host: str = Field(
        default="0.0.0.0",  # noqa: S104 - kubelet probes and Prometheus come from outside
        description="Address of the /healthz, /readyz and /metrics endpoint.",
    )
    health_port: int = Field(
        default=8083,
        ge=0,
        le=65535,
        description="Port of the /healthz, /readyz and /metrics endpoint (0: off).",
    )
    # ----- where results go (docs/data-lake.md) -------------------------------------------
    store: Literal["directory", "webdav", "rucio"] = Field(
        default="directory",
        description="Where job files are kept for download: a directory, a WebDAV server, or "
        "only as Rucio replicas on the RSE (rucio).",
    )
    webdav_url: str = Field(
        default="",
        description="store=webdav: base URL; a job's files go under <url>/<job id>/.",
    )
    storage_ca_file: Path | None = Field(
        default=None, description="CA bundle for https storage (system CAs when unset)."
    )
    storage_token: SecretStr = Field(
        default=SecretStr(""),
        description="Bearer token gridgate presents to storage (WebDAV store, RSE); empty: none.",
    )
    storage_username: str = Field(default="", description="HTTP basic user for storage.")
    storage_password: SecretStr = Field(
        default=SecretStr(""), description="HTTP basic password for storage."
    )
    rucio_url: str = Field(
        default="", description="Rucio REST server; empty: outputs are not registered."
    )
    rucio_account: str = Field(
        default="gridgate", description="Rucio service account that registers outputs."
    )
    rucio_username: str = Field(
        default="", description="Its userpass identity (the account name when empty)."
    )
    rucio_password: SecretStr = Field(default=SecretStr(""), description="Its password.")
    rucio_ca_file: Path | None = Field(
        default=None, description="CA bundle to verify the Rucio server (system CAs when unset)."
    )
    rucio_rse: str = Field(
        default="", description="The RSE (deterministic) that outputs are written to."
    )
    rucio_scheme: str = Field(
        default="https",
        description="Protocol to write to the RSE with: https (WebDAV) or file (a mounted path).",
    )

    @model_validator(mode="after")
    def _store_is_complete(self) -> Self:
        if self.store == "webdav" and not self.webdav_url:
            raise ValueError("store=webdav needs GRIDGATE_RESULTS_WEBDAV_URL")
        if self.rucio_url and not self.rucio_rse:
            raise ValueError("GRIDGATE_RESULTS_RUCIO_URL needs GRIDGATE_RESULTS_RUCIO_RSE")
        if self.store == "rucio" and not self.rucio_url:
            raise ValueError("store=rucio needs GRIDGATE_RESULTS_RUCIO_URL and _RUCIO_RSE")
        return self
