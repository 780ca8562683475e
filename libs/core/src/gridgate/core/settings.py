"""The settings base: every service has one pydantic-settings class, prefix ``GRIDGATE_<SERVICE>_``.

Settings are built in ``main`` and passed down, never read at import time.
"""

from __future__ import annotations

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_BROKER_URL = "amqp://guest:guest@127.0.0.1:5672/"


class BaseServiceSettings(BaseSettings):
    """Settings every service shares; subclasses set ``env_prefix``."""

    model_config = SettingsConfigDict(env_prefix="GRIDGATE_", extra="ignore")

    broker_url: SecretStr = Field(
        default=SecretStr(DEFAULT_BROKER_URL),
        description="AMQP URL of RabbitMQ; a secret because it usually carries a password.",
    )
    log_json: bool = Field(default=False, description="Log JSON lines (production) or console.")
    log_level: str = Field(default="INFO", description="Minimum log level.")
