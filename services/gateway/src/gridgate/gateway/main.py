"""The gateway application and its command line (``gridgate-gateway``)."""

from __future__ import annotations

import argparse
import asyncio
import socket
import sys
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import timedelta
from functools import partial

import httpx
import structlog
import uvicorn
from aio_pika.abc import AbstractRobustConnection
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncEngine

from gridgate.broker import (
    Consumer,
    DeadLetterWatcher,
    Publisher,
    RpcClient,
    connect_when_up,
    declare_topology,
)
from gridgate.broker.topology import WORK_QUEUES
from gridgate.contracts import GATEWAY_REPORTS_QUEUE, REPORT_ADAPTER
from gridgate.core.logging import configure_logging
from gridgate.core.periodic import Periodic
from gridgate.core.tls import shared_tls_context
from gridgate.datalake import RucioClient, StorageClient
from gridgate.gateway import cli
from gridgate.gateway.config import GatewaySettings
from gridgate.gateway.consumers.dead_letters import DeadLetterHandler
from gridgate.gateway.consumers.events import EventListener
from gridgate.gateway.consumers.report_batches import MAX_BATCH
from gridgate.gateway.consumers.reports import ReportHandler
from gridgate.gateway.factory import (
    ProcessContext,
    data_lake_policy,
    destroy_expired_jobs,
    fire_due_schedules,
    job_policy,
    schedule_policy,
    seconds_to_next_schedule,
    stream_policy,
    url_signer,
    warn_expiring_credentials,
    watch_stalled_jobs,
)
from gridgate.gateway.handlers import (
    bodies,
    callbacks,
    catalogues,
    diracx_links,
    events,
    health,
    internal,
    jobs,
    logs,
    portal,
    schedules,
    vosi,
)
from gridgate.gateway.handlers.negotiation import operation_id
from gridgate.gateway.handlers.outages import install_database_outage_handler
from gridgate.gateway.relay import OutboxRelay
from gridgate.gateway.schema.engine import create_engine
from gridgate.gateway.schema.outages import is_database_outage
from gridgate.gateway.services.credentials import AuthCredentialChecker
from gridgate.gateway.services.datalake import InputResolver
from gridgate.gateway.services.diracx_links import DiracXLinkRelay
from gridgate.gateway.services.facilities import FacilityCatalogue
from gridgate.gateway.services.group_commit import GroupCommit
from gridgate.gateway.services.notifier import PhaseNotifier
from gridgate.gateway.services.streams import EventHub
from gridgate.iam.validator import TokenValidator
from gridgate.images import RegistryClient
from gridgate.observability import observe_job_event
from gridgate.web import BearerAuthenticator, BodySizeLimitMiddleware, install_problem_handlers
from gridgate.web.openapi import install_openapi
from gridgate.web.semantics import install_http_semantics
from gridgate.workflows import WorkflowCatalogue

log = structlog.get_logger(__name__)


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
            await _upgrade_schema(engine)
        broker = connection or await connect_when_up(settings.broker_url.get_secret_value())
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
        auth_http = httpx.AsyncClient(
            base_url=settings.auth_url,
            timeout=15.0,
            verify=shared_tls_context(httpx.create_ssl_context),
        )
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
        # The streams' journal reads have connections of their own: they must not queue
        # behind the units of work for the shared pool (on SQLite those wait for the write
        # lock). Many streams opening at once wait their turn for these rather than fail.
        stream_engine = create_engine(
            settings.database_url.get_secret_value(), pool_size=4, pool_timeout_s=60
        )
        hub = EventHub(stream_engine, stream_policy(settings))
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
            group_commit=GroupCommit(),
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
            schedule_policy=schedule_policy(settings),
            streams=hub,
            registry=RegistryClient(
                settings.image_registry,
                insecure=settings.image_registry_insecure,
                username=settings.image_registry_username,
                password=settings.image_registry_password.get_secret_value(),
            )
            if settings.image_registry
            else None,
            diracx_links=DiracXLinkRelay(auth_http) if settings.diracx_links else None,
        )
        token_validator = validator or TokenValidator(settings.oidc_issuer, settings.oidc_audience)
        app.state.context = context
        app.state.authenticator = BearerAuthenticator(token_validator)
        app.state.broker = broker
        relay.start()
        reports = Consumer(
            broker,
            GATEWAY_REPORTS_QUEUE,
            REPORT_ADAPTER,
            ReportHandler(context),
            # Observations (and submissions) in flight together are applied in one unit of
            # work: the prefetch bounds the batch (consumers/report_batches.py).
            prefetch=MAX_BATCH,
            # Back-off up to a minute, 20 times: a report outlives a database outage of
            # about a quarter of an hour before it is dead-lettered (and its job failed).
            max_attempts=20,
        )
        await reports.start()
        # Dead letters of every work queue (the gateway's own too) fail their jobs.
        dead_letters = DeadLetterWatcher(broker, WORK_QUEUES, DeadLetterHandler(context))
        await dead_letters.start()
        hub.start()
        listener = EventListener(broker, notifier, on_event=hub.wake)
        await listener.start()
        # The gateway's own rounds: each failing round is logged and the next one still runs.
        rounds = [
            Periodic(
                "credential-watch",
                partial(
                    warn_expiring_credentials,
                    context,
                    timedelta(seconds=settings.credential_warning_s),
                ),
                settings.credential_watch_interval_s,
                done="owners warned of expiring credentials",
            ),
            Periodic(
                "retention-sweep",
                partial(destroy_expired_jobs, context),
                settings.retention_interval_s,
                done="jobs past their destruction time destroyed",
            ),
            Periodic(
                "stall-watch",
                partial(watch_stalled_jobs, context),
                settings.stall_watch_interval_s,
                done="stalled jobs looked at",
            ),
            Periodic(
                "scheduler",
                partial(fire_due_schedules, context),
                settings.schedule_interval_s,
                done="schedules fired",
                # Wake when the next schedule is due, not only every interval: a firing is
                # then late by a round's work, not by up to an interval (docs/benchmarks.md).
                until_next=partial(seconds_to_next_schedule, context),
            ),
        ]
        for periodic in rounds:
            periodic.start()
        try:
            yield
        finally:
            notifier.shutdown()
            await hub.stop()
            for periodic in reversed(rounds):
                await periodic.stop()
            await listener.stop()
            await auth_http.aclose()
            await storage.aclose()
            if context.registry is not None:
                await context.registry.aclose()
            if rucio is not None:
                await rucio.aclose()
            await reports.stop()
            await dead_letters.stop()
            await relay.stop()
            await peeks.close()
            await publisher.close()
            if validator is None:
                await token_validator.aclose()
            if connection is None:
                await broker.close()
            await engine.dispose()
            await stream_engine.dispose()

    app = FastAPI(
        title="gridgate",
        summary="Run catalogued workflows on grid facilities: IVOA UWS 1.1 jobs over HTTP.",
        version="0.1.0",
        lifespan=lifespan,
        generate_unique_id_function=operation_id,
    )
    install_problem_handlers(app)
    install_database_outage_handler(app)
    app.add_middleware(BodySizeLimitMiddleware, max_bytes=settings.max_body_bytes)
    app.include_router(health.router)
    app.include_router(vosi.router)
    app.include_router(events.router)
    app.include_router(jobs.router)
    app.include_router(schedules.router)
    app.include_router(jobs.uws_router)
    install_http_semantics(app, settings.cors_origins)
    app.include_router(logs.router)
    app.include_router(callbacks.router)
    app.include_router(catalogues.router)
    app.include_router(internal.router)
    app.include_router(portal.router)
    if settings.diracx_links:
        app.include_router(diracx_links.router)
    install_openapi(app, bodies.SCHEMAS)
    return app


async def _upgrade_schema(engine: AsyncEngine) -> None:
    # Alembic (and Mako under it) costs a quarter of a second to import; deployments run
    # migrations in a hook Job, so a serving gateway should not pay for it on every start.
    from gridgate.gateway.schema.migrate import upgrade_schema

    # A database that is not up yet (both started together, or an outage) is waited for,
    # as the broker is: exiting would only make the supervisor start us again.
    delay = 1.0
    while True:
        try:
            await upgrade_schema(engine)
            return
        except Exception as exc:
            if not is_database_outage(exc):
                raise
            log.warning("database unreachable at start; trying again", retry_in_s=delay)
        await asyncio.sleep(delay)
        delay = min(10.0, delay * 2)


async def migrate(settings: GatewaySettings) -> None:
    engine = create_engine(settings.database_url.get_secret_value(), timeouts=False)
    try:
        await _upgrade_schema(engine)
    finally:
        await engine.dispose()


GRACEFUL_STOP_S = 5
"""How long open requests may run on after SIGTERM; with the lifespan's own shutdown the
process is gone within 10 s, well inside the chart's termination grace period."""


def begin_shutdown(app: FastAPI) -> None:
    """Answer every blocked WAIT and end every event stream now, and turn readiness false:
    the process is stopping."""
    context = getattr(app.state, "context", None)
    if context is not None:
        context.notifier.shutdown()
        if context.streams is not None:
            context.streams.shutdown()


class GatewayServer(uvicorn.Server):
    """uvicorn, telling the gateway that stopping began before it waits for open requests.

    uvicorn runs the lifespan's shutdown only after open requests finish (or are cancelled at
    ``timeout_graceful_shutdown``), so that is too late to release WAIT long-polls.
    """

    def __init__(self, config: uvicorn.Config, on_stopping: Callable[[], None]) -> None:
        super().__init__(config)
        self.on_stopping = on_stopping

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        self.on_stopping()
        await super().shutdown(sockets)


def run(argv: list[str] | None = None) -> None:
    """``gridgate-gateway [serve|migrate] [--host H] [--port P]``, or ``gridgate-gateway
    dead-letters ...`` (:mod:`gridgate.gateway.cli`)."""
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == [cli.COMMAND]:
        settings = GatewaySettings()
        configure_logging(json=settings.log_json, level=settings.log_level)
        cli.dead_letters(argv[1:], settings)
        return
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
    app = create_app(settings)
    config = uvicorn.Config(
        app,
        host=args.host,
        port=args.port,
        log_config=None,
        proxy_headers=True,
        timeout_graceful_shutdown=GRACEFUL_STOP_S,
        # No route is a WebSocket (streams are server-sent events): "auto" would import the
        # websockets library for nothing (ADR 0019).
        ws="none",
    )
    GatewayServer(config, partial(begin_shutdown, app)).run()
