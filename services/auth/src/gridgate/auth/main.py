"""The auth service (``gridgate-auth``): IAM tokens -> x509 proxies, and the dev issuer."""

from __future__ import annotations

import argparse
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
import uvicorn
from fastapi import FastAPI

from gridgate.auth.config import AuthSettings
from gridgate.auth.gateway_client import GatewayJobOwners
from gridgate.auth.groups import GroupMap
from gridgate.auth.handlers import router
from gridgate.auth.proxies.base import ProxyProvider
from gridgate.auth.proxies.local_ca import LocalCAProvider
from gridgate.auth.service import LifetimePolicy, ProxyService
from gridgate.core.logging import configure_logging
from gridgate.iam.dev_issuer import DevIssuer
from gridgate.iam.validator import TokenValidator
from gridgate.web import BearerAuthenticator, install_problem_handlers


def build_provider(settings: AuthSettings) -> ProxyProvider:
    if settings.provider == "local-ca":
        if settings.ca_cert_file is None or settings.ca_key_file is None:
            raise SystemExit(
                "local-ca needs GRIDGATE_AUTH_CA_CERT_FILE and GRIDGATE_AUTH_CA_KEY_FILE"
            )
        return LocalCAProvider.from_files(
            settings.ca_cert_file, settings.ca_key_file, dn_template=settings.dn_template
        )
    raise SystemExit(f"the {settings.provider} provider needs the DIRAC bridge (issue 4)")


def create_app(
    settings: AuthSettings,
    dev_issuer: DevIssuer | None = None,
    *,
    validator: TokenValidator | None = None,
    provider: ProxyProvider | None = None,
) -> FastAPI:
    owned_validator = validator is None
    token_validator = validator or TokenValidator(settings.oidc_issuer, settings.oidc_audience)

    gateway_http = httpx.AsyncClient(base_url=settings.gateway_url, timeout=10.0)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        yield
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
    if proxy_provider is None and settings.ca_cert_file is not None:
        proxy_provider = build_provider(settings)
    if proxy_provider is not None:
        app.state.proxies = ProxyService(
            proxy_provider,
            GroupMap(settings.group_map),
            GatewayJobOwners(gateway_http, settings.internal_token.get_secret_value()),
            LifetimePolicy(
                settings.default_lifetime_s, settings.max_lifetime_s, settings.cache_min_left_s
            ),
        )
    app.include_router(router)
    return app


def run(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="gridgate-auth")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8001)
    args = parser.parse_args(argv)
    settings = AuthSettings()
    configure_logging(json=settings.log_json, level=settings.log_level)
    if settings.provider == "local-ca" and settings.ca_cert_file is None:
        raise SystemExit("set GRIDGATE_AUTH_CA_CERT_FILE and GRIDGATE_AUTH_CA_KEY_FILE")
    uvicorn.run(create_app(settings), host=args.host, port=args.port, log_config=None)
