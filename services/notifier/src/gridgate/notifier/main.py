"""The notifier application and its command line (``gridgate-notifier``)."""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import uvicorn
from aio_pika.abc import AbstractRobustConnection
from fastapi import FastAPI

from gridgate.broker import connect_when_up
from gridgate.core.logging import configure_logging
from gridgate.iam.validator import TokenValidator
from gridgate.notifier.config import NotifierSettings
from gridgate.notifier.factory import NotifierContext
from gridgate.notifier.handlers import health, subscriptions
from gridgate.notifier.schema.engine import create_engine
from gridgate.web import BearerAuthenticator, BodySizeLimitMiddleware, install_problem_handlers
from gridgate.web.openapi import install_openapi

MAX_BODY_BYTES = 64 * 1024
GRACEFUL_STOP_S = 5


def create_app(
    settings: NotifierSettings,
    *,
    validator: TokenValidator | None = None,
    connection: AbstractRobustConnection | None = None,
) -> FastAPI:
    """Build the notifier: /api/subscriptions, health, metrics, and delivery in the background."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        broker = connection or await connect_when_up(settings.broker_url.get_secret_value())
        context = NotifierContext(settings, broker)
        token_validator = validator or TokenValidator(settings.oidc_issuer, settings.oidc_audience)
        app.state.notifier = context
        app.state.authenticator = BearerAuthenticator(token_validator)
        await context.start()
        try:
            yield
        finally:
            await context.stop()
            if validator is None:
                await token_validator.aclose()
            if connection is None:
                await broker.close()

    app = FastAPI(
        title="gridgate notifier",
        summary="Webhook subscriptions to job and schedule events (Standard Webhooks).",
        version="0.1.0",
        lifespan=lifespan,
    )
    install_problem_handlers(app)
    app.add_middleware(BodySizeLimitMiddleware, max_bytes=MAX_BODY_BYTES)
    app.include_router(health.router)
    app.include_router(subscriptions.router)
    install_openapi(app)
    return app


async def migrate(settings: NotifierSettings) -> None:
    from gridgate.notifier.schema.migrate import upgrade_schema

    engine = create_engine(settings.database_url.get_secret_value())
    try:
        await upgrade_schema(engine)
    finally:
        await engine.dispose()


def run(argv: list[str] | None = None) -> None:
    """``gridgate-notifier [serve|migrate] [--host H] [--port P]``."""
    argv = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(prog="gridgate-notifier", description=__doc__)
    parser.add_argument("command", nargs="?", default="serve", choices=["serve", "migrate"])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8084)
    args = parser.parse_args(argv)
    settings = NotifierSettings()
    configure_logging(json=settings.log_json, level=settings.log_level)
    if args.command == "migrate":
        asyncio.run(migrate(settings))
        return
    config = uvicorn.Config(
        create_app(settings),
        host=args.host,
        port=args.port,
        log_config=None,
        proxy_headers=True,
        timeout_graceful_shutdown=GRACEFUL_STOP_S,
        ws="none",  # no WebSocket route: do not import the websockets library (ADR 0019)
    )
    uvicorn.Server(config).run()
