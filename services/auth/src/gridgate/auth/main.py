"""The auth service (``gridgate-auth``): IAM tokens -> x509 proxies, and the dev issuer."""

from __future__ import annotations

import argparse
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from typing import TYPE_CHECKING

import httpx
import uvicorn
from fastapi import FastAPI

from gridgate.auth.config import AuthSettings
from gridgate.auth.diracx_tokens import DiracXTokenService
from gridgate.auth.gateway_client import GatewayJobOwners
from gridgate.auth.groups import GroupMap
from gridgate.auth.handlers import router
from gridgate.auth.proxies.base import ProxyProvider
from gridgate.auth.proxies.local_ca import LocalCAProvider
from gridgate.auth.service import LifetimePolicy, ProxyService
from gridgate.core.logging import configure_logging
from gridgate.core.tls import shared_tls_context
from gridgate.diracx.tokens import DiracXIdentity, LegacyExchange
from gridgate.iam.dev_issuer import DevIssuer
from gridgate.iam.validator import TokenValidator
from gridgate.web import BearerAuthenticator, install_problem_handlers

if TYPE_CHECKING:
    from gridgate.auth.links.service import DiracXLinkService


def build_provider(settings: AuthSettings, cleanup: AsyncExitStack) -> ProxyProvider:
    """The configured proxy provider. Building it starts nothing; what it must release at
    shutdown (the DIRAC bridge processes, started on first use) is pushed onto ``cleanup``,
    which the app's lifespan closes."""
    if settings.provider == "local-ca":
        if settings.ca_cert_file is None or settings.ca_key_file is None:
            raise SystemExit(
                "local-ca needs GRIDGATE_AUTH_CA_CERT_FILE and GRIDGATE_AUTH_CA_KEY_FILE"
            )
        return LocalCAProvider.from_files(
            settings.ca_cert_file, settings.ca_key_file, dn_template=settings.dn_template
        )
    if settings.dirac_python is None or settings.dirac_root is None:
        raise SystemExit(
            "dirac-proxymanager needs GRIDGATE_AUTH_DIRAC_PYTHON and GRIDGATE_AUTH_DIRAC_ROOT"
        )
    # Imported here: only this provider talks to DIRAC (ADR 0019).
    from gridgate.auth.proxies.dirac_proxymanager import DiracProxyManagerProvider
    from gridgate.dirac.bridge import DiracBridge
    from gridgate.dirac.connection import DiracConnection

    connection = DiracConnection(
        python=settings.dirac_python,
        root=settings.dirac_root,
        cert_dir=settings.dirac_cert_dir,
        bridge_processes=settings.dirac_bridge_processes,
    )
    bridge = DiracBridge(connection.environment(), size=connection.bridge_processes)
    cleanup.push_async_callback(bridge.close)
    return DiracProxyManagerProvider(bridge)


def create_app(
    settings: AuthSettings,
    dev_issuer: DevIssuer | None = None,
    *,
    validator: TokenValidator | None = None,
    provider: ProxyProvider | None = None,
) -> FastAPI:
    owned_validator = validator is None
    token_validator = validator or TokenValidator(settings.oidc_issuer, settings.oidc_audience)

    gateway_http = httpx.AsyncClient(
        base_url=settings.gateway_url,
        timeout=10.0,
        verify=shared_tls_context(httpx.create_ssl_context),
    )
    # what the providers we build must release at shutdown; a provider passed in is the
    # caller's to close
    cleanup = AsyncExitStack()

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        yield
        await cleanup.aclose()
        await gateway_http.aclose()
        if owned_validator:
            await token_validator.aclose()

    app = FastAPI(title="gridgate auth", version="0.1.0", lifespan=lifespan)
    install_problem_handlers(app)
    if dev_issuer is None and settings.dev_issuer:
        dev_issuer = DevIssuer(settings.dev_issuer_url, settings.dev_issuer_key_file)
    app.state.dev_issuer = dev_issuer
    app.state.authenticator = BearerAuthenticator(token_validator)
    app.state.internal_token = settings.internal_token.get_secret_value()
    proxy_provider = provider
    # local-ca without a CA file: no provider, the proxy routes answer 503 (the development
    # issuer alone, as in the IdP tests); every other provider needs no CA file
    if proxy_provider is None and (
        settings.provider != "local-ca" or settings.ca_cert_file is not None
    ):
        proxy_provider = build_provider(settings, cleanup)
    if proxy_provider is not None:
        app.state.proxies = ProxyService(
            proxy_provider,
            GroupMap(settings.group_map),
            GatewayJobOwners(gateway_http, settings.internal_token.get_secret_value()),
            LifetimePolicy(
                settings.default_lifetime_s, settings.max_lifetime_s, settings.cache_min_left_s
            ),
        )
    if settings.diracx_url:
        app.state.diracx = build_diracx_tokens(settings, cleanup)
    app.include_router(router)
    return app


def build_diracx_tokens(
    settings: AuthSettings,
    cleanup: AsyncExitStack,
) -> DiracXTokenService:
    """diracx-exchange (tokens minted with the operator's legacy-exchange key) or
    diracx-user-link (users' links, in the auth service's own database)."""
    key = settings.diracx_legacy_key.get_secret_value()
    if not key and settings.diracx_mode == "exchange":
        raise SystemExit("GRIDGATE_AUTH_DIRACX_URL needs GRIDGATE_AUTH_DIRACX_LEGACY_KEY")
    robot = None
    if settings.diracx_robot:
        user, vo, group = settings.diracx_robot.split(":")
        robot = DiracXIdentity(user, vo, group)
    http = httpx.AsyncClient(base_url=settings.diracx_url, timeout=30.0)
    cleanup.push_async_callback(http.aclose)
    owners_http = httpx.AsyncClient(base_url=settings.gateway_url, timeout=10.0)
    cleanup.push_async_callback(owners_http.aclose)
    return DiracXTokenService(
        LegacyExchange(http, key) if key else None,
        GatewayJobOwners(owners_http, settings.internal_token.get_secret_value()),
        settings.diracx_users,
        robot,
        GroupMap(settings.group_map),
        links=build_links(settings, http, cleanup) if settings.diracx_mode == "user-link" else None,
        max_lifetime_s=settings.max_lifetime_s,
    )


def build_links(
    settings: AuthSettings,
    http: httpx.AsyncClient,
    cleanup: AsyncExitStack,
) -> DiracXLinkService:
    """diracx-user-link: the link store (its schema is brought up to date on first use)."""
    url = settings.database_url.get_secret_value()
    keys = settings.diracx_link_keys.get_secret_value()
    if not url or not keys:
        raise SystemExit(
            "GRIDGATE_AUTH_DIRACX_MODE=user-link needs GRIDGATE_AUTH_DATABASE_URL and "
            "GRIDGATE_AUTH_DIRACX_LINK_KEYS"
        )
    # Imported here: the link store is the auth service's only SQL, and SQLAlchemy is about
    # 18 MiB that no other mode uses (ADR 0019).
    from gridgate.auth.links.engine import create_engine
    from gridgate.auth.links.sealing import TokenBox
    from gridgate.auth.links.service import DiracXLinkService
    from gridgate.diracx.oauth import DiracXOAuth

    engine = create_engine(url)
    cleanup.push_async_callback(engine.dispose)
    return DiracXLinkService(
        engine,
        TokenBox(keys),
        DiracXOAuth(http, settings.diracx_client_id),
        min_left_s=settings.diracx_link_refresh_ahead_s,
    )


def run(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="gridgate-auth")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8001)
    args = parser.parse_args(argv)
    settings = AuthSettings()
    configure_logging(json=settings.log_json, level=settings.log_level)
    if settings.provider == "local-ca" and (
        settings.ca_cert_file is None or settings.ca_key_file is None
    ):
        # create_app tolerates this (its proxy routes then answer 503), a deployment should not.
        raise SystemExit(
            "gridgate-auth: provider local-ca (the default) needs GRIDGATE_AUTH_CA_CERT_FILE "
            "and GRIDGATE_AUTH_CA_KEY_FILE (or set GRIDGATE_AUTH_PROVIDER=dirac-proxymanager)"
        )
    # dirac-proxymanager settings are checked by build_provider, inside create_app
    uvicorn.run(
        create_app(settings),
        host=args.host,
        port=args.port,
        log_config=None,
        ws="none",  # no WebSocket route: do not import the websockets library (ADR 0019)
    )
