"""The gateway application and its command line (``gridgate-gateway``)."""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from functools import partial

import httpx
import uvicorn
from aio_pika.abc import AbstractRobustConnection
from fastapi import FastAPI

from gridgate.broker import Consumer, Publisher, RpcClient, connect, declare_topology
from gridgate.contracts import GATEWAY_REPORTS_QUEUE, REPORT_ADAPTER
from gridgate.core.logging import configure_logging
from gridgate.core.periodic import Periodic
from gridgate.datalake import RucioClient, StorageClient
from gridgate.gateway.config import GatewaySettings
from gridgate.gateway.consumers.events import EventListener
from gridgate.gateway.consumers.reports import ReportHandler
from gridgate.gateway.factory import (
    ProcessContext,
    data_lake_policy,
    destroy_expired_jobs,
    job_policy,
    url_signer,
    warn_expiring_credentials,
    watch_stalled_jobs,
)
from gridgate.gateway.handlers import callbacks, catalogues, health, internal, jobs, logs
from gridgate.gateway.relay import OutboxRelay
from gridgate.gateway.schema.engine import create_engine
from gridgate.gateway.schema.migrate import upgrade_schema
from gridgate.gateway.services.credentials import AuthCredentialChecker
from gridgate.gateway.services.datalake import InputResolver
from gridgate.gateway.services.facilities import FacilityCatalogue
from gridgate.gateway.services.notifier import PhaseNotifier
from gridgate.iam.validator import TokenValidator
from gridgate.observability import observe_job_event
from gridgate.web import BearerAuthenticator, BodySizeLimitMiddleware, install_problem_handlers
from gridgate.web.semantics import install_http_semantics
from gridgate.workflows import WorkflowCatalogue


def create_app(
    settings: GatewaySettings,
    *,
    validator: TokenValidator | None = None,
    connection: AbstractRobustConnection | None = None,
) -> FastAPI:
    """Build the gateway.

    Parameters
    ----------
    settings
        The gateway's settings.
    validator
        Token validator to use; one for ``settings.oidc_issuer`` when omitted.
    connection
        A broker connection to share (``gridgate dev``); the app opens its own when omitted.
    """

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine = create_engine(settings.database_url.get_secret_value())
        if settings.run_migrations:
            await upgrade_schema(engine)
        broker = connection or await connect(settings.broker_url.get_secret_value())
        channel = await broker.channel()
        await declare_topology(channel)
        await channel.close()
        publisher = await Publisher.open(broker)
        peeks = await RpcClient.open(broker)
        # Each published job event is one phase transition: count them by phase.
        publisher.on_event_published = observe_job_event
        relay = OutboxRelay(engine, publisher, batch=settings.relay_batch)
        notifier = PhaseNotifier()
        notifier.after_notify = relay.wake
        auth_http = httpx.AsyncClient(base_url=settings.auth_url, timeout=15.0)
        lake_policy = data_lake_policy(settings)
        rucio = (
            RucioClient(
                settings.rucio_url,
                settings.rucio_account,
                settings.rucio_username or settings.rucio_account,
                settings.rucio_password.get_secret_value(),
                ca_file=str(settings.rucio_ca_file) if settings.rucio_ca_file else None,
            )
            if settings.rucio_url
            else None
        )
        storage = StorageClient(
            ca_file=str(settings.storage_ca_file) if settings.storage_ca_file else None,
            token=settings.storage_token.get_secret_value() or None,
            username=settings.storage_username or None,
            password=settings.storage_password.get_secret_value() or None,
        )
        context = ProcessContext(
            settings=settings,
            engine=engine,
            workflows=(
                WorkflowCatalogue.from_directory(settings.workflows_dir)
                if settings.workflows_dir
                else WorkflowCatalogue.shipped()
            ),
            facilities=FacilityCatalogue.load(settings.facilities_file),
            notifier=notifier,
            relay=relay,
            policy=job_policy(settings, sys.executable),
            credentials=AuthCredentialChecker(
                auth_http, settings.internal_token.get_secret_value()
            ),
            data_policy=lake_policy,
            inputs=InputResolver(
                rucio,
                lake_policy,
                schemes=settings.rucio_input_schemes,
                max_files=settings.max_input_files,
            )
            if rucio is not None
            else None,
            signer=url_signer(settings),
            storage=storage,
            peeks=peeks,
        )
        token_validator = validator or TokenValidator(settings.oidc_issuer, settings.oidc_audience)
        app.state.context = context
        app.state.authenticator = BearerAuthenticator(token_validator)
        app.state.broker = broker
        relay.start()
        reports = Consumer(
            broker, GATEWAY_REPORTS_QUEUE, REPORT_ADAPTER, ReportHandler(context), prefetch=32
        )
        await reports.start()
        listener = EventListener(broker, notifier)
        await listener.start()
        watch = Periodic(
            "credential-watch",
            partial(
                warn_expiring_credentials, context, timedelta(seconds=settings.credential_warning_s)
            ),
            settings.credential_watch_interval_s,
            done="owners warned of expiring credentials",
        )
        watch.start()
        retention = Periodic(
            "retention-sweep",
            partial(destroy_expired_jobs, context),
            settings.retention_interval_s,
            done="jobs past their destruction time destroyed",
        )
        retention.start()
        stalls = Periodic(
            "stall-watch",
            partial(watch_stalled_jobs, context),
            settings.stall_watch_interval_s,
            done="stalled jobs looked at",
        )
        stalls.start()
        try:
            yield
        finally:
            await stalls.stop()
            await retention.stop()
            await watch.stop()
            await listener.stop()
            await auth_http.aclose()
            await storage.aclose()
            if rucio is not None:
                await rucio.aclose()
            await reports.stop()
            await relay.stop()
            await peeks.close()
            await publisher.close()
            if validator is None:
                await token_validator.aclose()
            if connection is None:
                await broker.close()
            await engine.dispose()

    app = FastAPI(
        title="gridgate",
        summary="Run catalogued workflows on grid facilities: IVOA UWS 1.1 jobs over HTTP.",
        version="0.1.0",
        lifespan=lifespan,
    )
    install_problem_handlers(app)
    app.add_middleware(BodySizeLimitMiddleware, max_bytes=settings.max_body_bytes)
    app.include_router(health.router)
    app.include_router(jobs.router)
    app.include_router(jobs.uws_router)
    install_http_semantics(app, settings.cors_origins)
    app.include_router(logs.router)
    app.include_router(callbacks.router)
    app.include_router(catalogues.router)
    app.include_router(internal.router)
    return app


async def migrate(settings: GatewaySettings) -> None:
    engine = create_engine(settings.database_url.get_secret_value())
    try:
        await upgrade_schema(engine)
    finally:
        await engine.dispose()


def run(argv: list[str] | None = None) -> None:
    """``gridgate-gateway [serve|migrate] [--host H] [--port P]``."""
    parser = argparse.ArgumentParser(prog="gridgate-gateway", description=__doc__)
    parser.add_argument("command", nargs="?", default="serve", choices=["serve", "migrate"])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    args = parser.parse_args(argv)
    settings = GatewaySettings()
    configure_logging(json=settings.log_json, level=settings.log_level)
    if args.command == "migrate":
        asyncio.run(migrate(settings))
        return
    uvicorn.run(
        create_app(settings), host=args.host, port=args.port, log_config=None, proxy_headers=True
    )
