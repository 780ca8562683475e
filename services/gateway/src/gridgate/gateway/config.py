"""Gateway settings, from ``GRIDGATE_GATEWAY_*`` environment variables."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr
from pydantic_settings import SettingsConfigDict

from gridgate.core.settings import BaseServiceSettings


class GatewaySettings(BaseServiceSettings):
    """Everything the gateway needs to know, documented in docs/configuration.md."""

    model_config = SettingsConfigDict(env_prefix="GRIDGATE_GATEWAY_", extra="ignore")

    database_url: SecretStr = Field(
        default=SecretStr("sqlite+aiosqlite:///.gridgate/gridgate.db"),
        description="SQLAlchemy async URL: sqlite+aiosqlite:///file or postgresql+asyncpg://...",
    )
    oidc_issuer: str = Field(
        default="http://127.0.0.1:8000/auth/dev-issuer",
        description="The pinned token issuer (INDIGO IAM URL in production).",
    )
    oidc_audience: str = Field(default="gridgate", description="Audience our tokens must carry.")
    results_dir: Path = Field(default=Path(".gridgate/results"), description="Results store.")
    facilities_file: Path | None = Field(
        default=None, description="YAML facility catalogue; the shipped one when unset."
    )
    workflows_dir: Path | None = Field(
        default=None, description="Directory of workflow definitions; the shipped ones if unset."
    )
    internal_token: SecretStr = Field(
        default=SecretStr(""),
        description="Shared secret workers present on /internal routes (empty: routes off).",
    )
    wait_cap_s: int = Field(default=60, ge=1, description="Longest WAIT a client may block.")
    max_body_bytes: int = Field(default=1_048_576, ge=1024, description="Largest request body.")
    default_destruction_days: int = Field(
        default=30, ge=1, description="Days until a job's destruction when the client sets none."
    )
    relay_batch: int = Field(default=200, ge=1, description="Outbox rows published per round.")
    worker_python: str | None = Field(
        default=None, description="Interpreter named by '{python}' in workflow commands."
    )
    run_migrations: bool = Field(default=True, description="Upgrade the schema at start.")
    auth_url: str = Field(
        default="http://127.0.0.1:8001",
        description="The auth service's internal URL (credential checks for DIRAC facilities).",
    )
    credential_margin_s: int = Field(
        default=3600,
        ge=0,
        description="A job's credential must outlive its execution duration by this much.",
    )
    credential_watch_interval_s: float = Field(
        default=60.0, gt=0, description="How often expiring credentials are looked for."
    )
    credential_warning_s: int = Field(
        default=3600,
        ge=60,
        description="Warn a job's owner this long before its credential runs out.",
    )
