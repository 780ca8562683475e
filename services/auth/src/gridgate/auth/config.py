"""Auth settings, from ``GRIDGATE_AUTH_*``."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import SettingsConfigDict

from gridgate.core.settings import BaseServiceSettings

DEFAULT_GROUP_MAP = {"cta": {"cta": "cta_user"}, "km3net": {"km3net": "km3net_user"}}


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
    oidc_issuer: str = Field(
        default="http://127.0.0.1:8000/auth/dev-issuer",
        description="The pinned token issuer (INDIGO IAM in production).",
    )
    oidc_audience: str = Field(default="gridgate", description="Audience tokens must carry.")
    provider: Literal["local-ca", "dirac-proxymanager"] = Field(
        default="local-ca", description="Where proxies come from (docs/auth.md)."
    )
    ca_cert_file: Path | None = Field(
        default=None,
        description="local-ca: the issuing CA certificate (PEM). gridgate-auth refuses to "
        "start with provider local-ca (the default) unless this and the key are set.",
    )
    ca_key_file: Path | None = Field(
        default=None,
        description="local-ca: the CA private key (PEM, a mounted secret file); needed "
        "with the certificate.",
    )
    dirac_python: Path | None = Field(
        default=None,
        description="dirac-proxymanager: the DIRAC client's Python (its own environment).",
    )
    dirac_root: Path | None = Field(
        default=None,
        description="dirac-proxymanager: DIRAC_ROOT_PATH; its etc/dirac.cfg names the setup, "
        "the CS and the robot credential (a host certificate with FullDelegation and "
        "ProxyManagement, mounted secret files).",
    )
    dirac_cert_dir: Path = Field(
        default=Path("/etc/grid-security/certificates"),
        description="dirac-proxymanager: X509_CERT_DIR, the CAs (and CRLs) DIRAC trusts.",
    )
    dirac_bridge_processes: int = Field(
        default=2,
        ge=1,
        le=32,
        description="dirac-proxymanager: DIRAC bridge processes (ProxyManager calls at once).",
    )
    dn_template: str = Field(
        default="/O=gridgate/OU={vo}/CN={sub}",
        description="local-ca: user DN from the token's sub and the VO.",
    )
    group_map: dict[str, dict[str, str]] = Field(
        default=DEFAULT_GROUP_MAP,
        description="Per VO, IAM group -> DIRAC group (JSON). Only these groups are served.",
    )
    default_lifetime_s: int = Field(default=7200, ge=300, description="Proxy lifetime asked.")
    max_lifetime_s: int = Field(default=43200, ge=300, description="Longest proxy issued.")
    cache_min_left_s: int = Field(
        default=1800, ge=0, description="A cached proxy is reused while this much is left."
    )
    internal_token: SecretStr = Field(
        default=SecretStr(""),
        description="Shared secret our workers and gateway present on /internal (empty: off).",
    )
    diracx_url: str = Field(
        default="",
        description="diracx-exchange: the DiracX installation's URL (empty: no DiracX tokens).",
    )
    diracx_legacy_key: SecretStr = Field(
        default=SecretStr(""),
        description="diracx-exchange: the operator's DiracX legacy-exchange key (a mounted "
        "secret; the same trust as the DIRAC robot with FullDelegation).",
    )
    diracx_users: dict[str, str] = Field(
        default_factory=dict,
        description="diracx-exchange: IAM sub -> DiracX username (JSON). Unlisted users get "
        "no DiracX token.",
    )
    diracx_robot: str = Field(
        default="",
        description="gridgate's DiracX robot as user:vo:group (a group with JobAdministrator), "
        "minted with the legacy-exchange key in either mode: the workers' bulk status.",
    )
    diracx_mode: Literal["exchange", "user-link"] = Field(
        default="exchange",
        description="Whose DiracX tokens jobs run with: exchange (minted with the legacy-exchange "
        "key) or user-link (each user links their DiracX account once; docs/auth.md).",
    )
    diracx_client_id: str = Field(
        default="myDIRACClientID",
        description="user-link: DiracX's OAuth client id (DIRACX_SERVICE_AUTH_DIRAC_CLIENT_ID).",
    )
    diracx_link_keys: SecretStr = Field(
        default=SecretStr(""),
        description="user-link: Fernet keys (comma-separated, newest first) sealing the stored "
        "DiracX refresh and access tokens; the first seals, all open. Required with user-link.",
    )
    diracx_link_refresh_ahead_s: int = Field(
        default=120,
        ge=0,
        description="user-link: a stored access token is refreshed when less than this is left.",
    )
    database_url: SecretStr = Field(
        default=SecretStr(""),
        description="user-link: the auth service's own database of DiracX links "
        "(sqlite+aiosqlite:///... for one replica, postgresql+asyncpg://... for several).",
    )
    gateway_url: str = Field(
        default="http://127.0.0.1:8000",
        description="The gateway's internal URL: it says whose a job is before a proxy is given.",
    )
