"""Auth settings, from ``GRIDGATE_AUTH_*``."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from gridgate.core.settings import BaseServiceSettings


class AuthSettings(BaseServiceSettings):
    model_config = SettingsConfigDict(env_prefix="GRIDGATE_AUTH_", extra="ignore")

    dev_issuer: bool = Field(
        default=False,
        description="Serve the development token issuer (never in production).",
    )
    dev_issuer_url: str = Field(
        default="http://127.0.0.1:8000/auth/dev-issuer",
        description="The development issuer's public URL.",
    )
    dev_issuer_key_file: Path = Field(
        default=Path(".gridgate/dev-issuer-key.json"),
        description="Its RSA signing key (created, mode 0600).",
    )
