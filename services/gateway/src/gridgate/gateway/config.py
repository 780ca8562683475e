"""Gateway settings, from ``GRIDGATE_GATEWAY_*`` environment variables."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

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
    portal_client_id: str = Field(
        default="gridgate-portal",
        description="The public OIDC client (authorization code + PKCE) the web portal at / "
        "logs in as; its redirect URI at the issuer is this gateway's public URL + /.",
    )
    portal_resource: str | None = Field(
        default=None,
        description="RFC 8707 resource indicator the portal asks tokens for, where the issuer "
        "wants one (the oidc-provider testbed: urn:gridgate); none by default.",
    )
    results_dir: Path = Field(default=Path(".gridgate/results"), description="Results store.")
    facilities_file: Path | None = Field(
        default=None, description="YAML facility catalogue; the shipped one when unset."
    )
    workflows_dir: Path | None = Field(
        default=None, description="Directory of workflow definitions; the shipped ones if unset."
    )
    internal_token: SecretStr = Field(
        default=SecretStr(""),
        description="Shared secret workers present on /internal routes, and the key job "
        "callback tokens derive from (empty: routes and callbacks off).",
    )
    wait_cap_s: int = Field(default=60, ge=1, description="Longest WAIT a client may block.")
    max_body_bytes: int = Field(default=1_048_576, ge=1024, description="Largest request body.")
    default_destruction_days: int = Field(
        default=30, ge=1, description="Days until a job's destruction when the client sets none."
    )
    max_destruction_days: int = Field(
        default=365,
        ge=1,
        description="Latest destruction time a client may set, in days from now (UWS "
        "DESTRUCTION at creation or POST /destruction).",
    )
    notification_urls: bool = Field(
        default=True,
        description="Accept a notification_url at job creation: the notifier sends the job's "
        "events there (docs/webhooks.md). Turn off where no notifier runs.",
    )
    notification_allow_http: bool = Field(
        default=False,
        description="Accept plain-http notification URLs; https only otherwise. Set it as the "
        "notifier's GRIDGATE_NOTIFIER_ALLOW_HTTP: the notifier checks again on every call.",
    )
    notification_allowed_networks: list[str] = Field(
        default_factory=list,
        description="CIDRs a notification URL may name although internal, as the notifier's "
        "GRIDGATE_NOTIFIER_ALLOWED_NETWORKS (keep the two the same).",
    )
    cors_origins: list[str] = Field(
        default=[],
        description='Origins (JSON list, e.g. ["https://portal.example.org"]) whose browser '
        "pages may call the API (CORS); none by default.",
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
    diracx_links: bool = Field(
        default=False,
        description="Serve /api/diracx-links: users link their DiracX account, relayed to the "
        "auth service (its diracx-user-link mode, docs/auth.md).",
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
    # ----- data lake (docs/data-lake.md) --------------------------------------------------
    rucio_url: str = Field(
        default="", description="Rucio REST server for job inputs; empty: jobs take no inputs."
    )
    rucio_account: str = Field(
        default="gridgate", description="Rucio account the gateway resolves inputs as."
    )
    rucio_username: str = Field(
        default="", description="Its userpass identity (the account name when empty)."
    )
    rucio_password: SecretStr = Field(default=SecretStr(""), description="Its password.")
    rucio_ca_file: Path | None = Field(
        default=None, description="CA bundle to verify the Rucio server (system CAs when unset)."
    )
    rucio_accounts: dict[str, str] = Field(
        default={},
        description="Token subject -> Rucio account (JSON). A user's own scope is "
        "user.<account>; rules on their outputs are owned by that account.",
    )
    rucio_output_scope: Literal["user", "vo"] = Field(
        default="user",
        description="Register outputs in the owner's scope (user.<account>; the VO's when the "
        "owner has no account) or the VO's scope.",
    )
    rucio_vo_scopes: dict[str, list[str]] = Field(
        default={},
        description="VO -> scopes its members may read (JSON); the first takes VO outputs. "
        "A VO not listed has the scope of its own name.",
    )
    rucio_public_scopes: list[str] = Field(
        default=[], description="Scopes every user may read inputs from (JSON list)."
    )
    rucio_input_schemes: list[str] = Field(
        default=["https", "http", "file"],
        description="Replica URL schemes handed to the local facility, preferred first.",
    )
    max_input_files: int = Field(default=10_000, ge=1, description="Most input files per job.")
    signing_key: SecretStr = Field(
        default=SecretStr(""),
        description="HMAC key of signed download URLs; empty: a random key per process "
        "(URLs then fail on another replica or after a restart).",
    )
    signed_url_ttl_s: int = Field(
        default=600, ge=1, description="How long a signed download URL works."
    )
    download_redirect: bool = Field(
        default=False,
        description="Answer an authenticated result download with 303 to a signed URL instead "
        "of streaming it.",
    )
    storage_ca_file: Path | None = Field(
        default=None, description="CA bundle for https storage results are read from."
    )
    storage_token: SecretStr = Field(
        default=SecretStr(""), description="Bearer token gridgate presents to storage."
    )
    image_registry: str = Field(
        default="",
        description="Registry (host[:port]) holding workflow images, listed by "
        "/api/workflows/{id}/images (empty: not listed).",
    )
    image_registry_insecure: bool = Field(
        default=False, description="Talk plain HTTP to the image registry (loopback tests)."
    )
    image_registry_username: str = Field(default="", description="Image registry user.")
    image_registry_password: SecretStr = Field(
        default=SecretStr(""), description="Image registry password or token."
    )
    storage_username: str = Field(default="", description="HTTP basic user for storage.")
    storage_password: SecretStr = Field(
        default=SecretStr(""), description="HTTP basic password for storage."
    )
    retention_policy: Literal["archive", "delete"] = Field(
        default="archive",
        description="At a job's destruction time: keep its record as ARCHIVED, or delete it.",
    )
    stall_after_s: int = Field(
        default=900,
        ge=1,
        description="An active job with no recorded change for this long is looked at: a "
        "submission or collection that never came back is sent again, else the owner sees a "
        "pendingReason.",
    )
    max_redrives: int = Field(
        default=3,
        ge=0,
        description="How often a stalled submission or collection is sent again before the "
        "job goes to ERROR.",
    )
    stall_watch_interval_s: float = Field(
        default=60.0, gt=0, description="How often stalled jobs are looked for."
    )
    idempotency_ttl_s: int = Field(
        default=86400,
        ge=86400,
        description="How long an Idempotency-Key of POST /api/jobs answers with its job.",
    )
    retention_interval_s: float = Field(
        default=60.0, gt=0, description="How often jobs past their destruction time are sought."
    )
    facility_grace_s: int = Field(
        default=900,
        ge=0,
        description="How long after a job ends or is deleted the workers may still obtain its "
        "owner's proxy (to kill, delete and collect on DIRAC).",
    )
    retention_rule_lifetime_s: int | None = Field(
        default=None,
        ge=0,
        description="Lifetime set on a destroyed or deleted job's Rucio rules (unset: kept).",
    )
    # ----- live event streams (docs/events.md) ---------------------------------------------
    stream_heartbeat_s: float = Field(
        default=15.0,
        gt=0,
        description="An open event stream (GET /api/events) gets a keep-alive comment this "
        "often, so proxies do not close it while it is quiet.",
    )
    stream_buffer: int = Field(
        default=256,
        ge=1,
        description="Events one stream may have waiting to be sent; a client further behind "
        "has its stream ended and resumes from its Last-Event-ID.",
    )
    stream_poll_s: float = Field(
        default=2.0,
        gt=0,
        description="While streams are open the event journal is read at least this often "
        "(events normally wake it at once).",
    )
    max_streams_per_user: int = Field(
        default=20,
        ge=1,
        description="Event streams one user may have open on one gateway process (429 "
        "too-many-streams beyond).",
    )
    event_retention_s: int = Field(
        default=7 * 86400,
        ge=60,
        description="How long events are kept for streams to resume from; an older "
        "Last-Event-ID is answered 410 events-expired.",
    )
    # ----- schedules (docs/schedules.md) --------------------------------------------------
    schedule_interval_s: float = Field(
        default=15.0,
        gt=0,
        description="The longest the scheduler waits between looks for due schedules; it also "
        "wakes when the next schedule is due.",
    )
    max_schedules_per_user: int = Field(
        default=100, ge=0, description="Most schedules one user may have."
    )
    min_schedule_interval_s: int = Field(
        default=300,
        # As low as a second for demonstrations (gridgate demo --schedule) and tests.
        ge=1,
        description="No schedule may fire more often than this (interval or cron).",
    )
    max_schedule_catch_up: int = Field(
        default=10,
        ge=0,
        description="Most missed firings a schedule with misfire policy catch-up runs after "
        "downtime.",
    )
    schedule_misfire_grace_s: int = Field(
        default=300,
        ge=0,
        description="A firing this late is still on time, for schedules that set no grace.",
    )
    schedule_failures_to_pause: int = Field(
        default=3,
        ge=1,
        description="Consecutive firings that could make no job (no credential, say) after "
        "which a schedule pauses itself.",
    )
