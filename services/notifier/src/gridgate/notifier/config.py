"""Notifier settings, from ``GRIDGATE_NOTIFIER_*``."""

from __future__ import annotations

from typing import Self

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import SettingsConfigDict

from gridgate.core.settings import BaseServiceSettings


class NotifierSettings(BaseServiceSettings):
    model_config = SettingsConfigDict(env_prefix="GRIDGATE_NOTIFIER_", extra="ignore")

    database_url: SecretStr = Field(
        default=SecretStr("sqlite+aiosqlite:///.gridgate/notifier.db"),
        description="SQLAlchemy URL of the notifier's own database (subscriptions, deliveries): "
        "SQLite for one replica, PostgreSQL for several.",
    )
    run_migrations: bool = Field(
        default=True, description="Upgrade the schema at start (the chart runs a hook Job)."
    )
    secret_keys: SecretStr = Field(
        default=SecretStr(""),
        description="Fernet keys (comma-separated, newest first) that encrypt the signing "
        "secrets at rest; the first encrypts, all decrypt (key rotation). Required.",
    )
    oidc_issuer: str = Field(
        default="http://127.0.0.1:8000/auth/dev-issuer",
        description="Issuer whose access tokens /api/subscriptions accepts (as the gateway's).",
    )
    oidc_audience: str = Field(default="gridgate", description="Required token audience.")
    allow_http: bool = Field(
        default=False,
        description="Accept plain-http webhook URLs (tests, in-cluster receivers); https only "
        "otherwise.",
    )
    allowed_networks: list[str] = Field(
        default_factory=list,
        description="CIDRs webhooks may reach although internal (loopback, private, ...), "
        'e.g. ["10.20.0.0/16"]. Empty: public addresses only.',
    )
    timeout_s: float = Field(
        default=10.0, gt=0, le=60, description="Timeout of one webhook call (connect + answer)."
    )
    max_response_bytes: int = Field(
        default=4096, ge=0, description="At most this much of an answer is read; the rest is cut."
    )
    retry_base_s: float = Field(
        default=5.0, gt=0, description="Delay before the second attempt; doubles each time."
    )
    retry_max_s: float = Field(
        default=3600.0, gt=0, description="Longest delay between two attempts."
    )
    give_up_after_s: float = Field(
        default=90000.0,
        gt=0,
        description="A delivery still failing this long after its event arrived is given up, "
        "and its subscription disabled (25 h: the retries span more than a day).",
    )
    order_window_s: float = Field(
        default=0.25,
        ge=0,
        description="A new delivery waits this long before its first attempt, so that an "
        "earlier event of the same job published late by another gateway replica can still "
        "take its place in front of it.",
    )
    order_hold_s: float = Field(
        default=30.0,
        ge=0,
        description="A numbered job event waits for the job's earlier events to reach the "
        "notifier at most this long, then goes out anyway (counted in "
        "gridgate_webhook_order_hold_released_total): an earlier event that never comes "
        "(dead-lettered, or from before the notifier's queue existed) holds no job for ever.",
    )
    lease_s: float = Field(
        default=60.0,
        gt=0,
        description="A claimed delivery is another replica's again after this long without "
        "its claimer renewing the lease (a live claimer renews it every third of it); longer "
        "than timeout_s.",
    )
    intake_prefetch: int = Field(
        default=1,
        ge=1,
        description="Events taken in at once per replica. 1 keeps them in queue order (what "
        "order per job relies on); more is faster and may reorder them within the window.",
    )
    batch: int = Field(default=64, ge=1, description="Deliveries claimed per round.")
    concurrency: int = Field(default=32, ge=1, description="Webhook calls in flight at once.")
    poll_interval_s: float = Field(
        default=1.0,
        gt=0,
        description="Longest sleep of the delivery loop (it also wakes on new events).",
    )
    retention_s: float = Field(
        default=30 * 86400.0,
        ge=3600,
        description="Finished deliveries (delivered or given up) are deleted this long after "
        "they began, and with them spent job hooks and the numbering state of jobs with no "
        "event for as long (30 days; looked at every hour).",
    )
    max_subscriptions_per_owner: int = Field(
        default=200, ge=1, description="Subscriptions one user may have."
    )

    @model_validator(mode="after")
    def _lease_outlasts_a_call(self) -> Self:
        # A lease shorter than one call would hand a delivery to a second replica while the
        # first is still waiting for the answer: the receiver would get it twice.
        if self.lease_s <= self.timeout_s:
            raise ValueError("lease_s must be longer than timeout_s")
        return self
