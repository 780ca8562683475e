"""The factory: process-wide resources, and services built from them per unit of work."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from gridgate.core.clock import utcnow
from gridgate.datalake import StorageClient
from gridgate.gateway.config import GatewaySettings
from gridgate.gateway.relay import OutboxRelay
from gridgate.gateway.services.callbacks import CallbackService
from gridgate.gateway.services.credentials import CredentialChecker
from gridgate.gateway.services.datalake import DataLakePolicy, InputResolver
from gridgate.gateway.services.diracx_links import DiracXLinkRelay
from gridgate.gateway.services.downloads import DownloadService, UrlSigner
from gridgate.gateway.services.facilities import FacilityCatalogue
from gridgate.gateway.services.group_commit import GroupCommit
from gridgate.gateway.services.housekeeping import Housekeeping
from gridgate.gateway.services.images import ImageCatalogue
from gridgate.gateway.services.jobs import JobService
from gridgate.gateway.services.ledger import JobLedger
from gridgate.gateway.services.logs import LogService, Peeks
from gridgate.gateway.services.messages import Outbox
from gridgate.gateway.services.notifier import PhaseNotifier
from gridgate.gateway.services.policy import JobPolicy, SchedulePolicy
from gridgate.gateway.services.reports import ReportService
from gridgate.gateway.services.scheduler import Clock, Scheduler
from gridgate.gateway.services.schedules import ScheduleService
from gridgate.gateway.services.streams import (
    EventHub,
    EventStreamer,
    StreamPolicy,
    StreamRequest,
    check_resumable,
    resume_position,
)
from gridgate.gateway.services.waiting import JobWaiter
from gridgate.gateway.storage.callbacks import CallbackStore
from gridgate.gateway.storage.idempotency import IdempotencyStore
from gridgate.gateway.storage.jobs import JobStore
from gridgate.gateway.storage.journal import EventJournalStore
from gridgate.gateway.storage.outbox import OutboxStore
from gridgate.gateway.storage.schedules import ScheduleStore
from gridgate.iam.identity import Identity
from gridgate.images import RegistryClient
from gridgate.web.outbound import OutboundPolicy
from gridgate.workflows import WorkflowCatalogue


@dataclass
class ProcessContext:
    """What lives as long as the gateway process."""

    settings: GatewaySettings
    engine: AsyncEngine
    workflows: WorkflowCatalogue
    facilities: FacilityCatalogue
    notifier: PhaseNotifier
    relay: OutboxRelay | None
    policy: JobPolicy
    credentials: CredentialChecker | None = None
    data_policy: DataLakePolicy = field(default_factory=DataLakePolicy)
    inputs: InputResolver | None = None
    """Resolves input DIDs; ``None`` when no Rucio is configured."""
    signer: UrlSigner = field(default_factory=UrlSigner.random)
    storage: StorageClient | None = None
    """Reads results kept on WebDAV or a storage element."""
    peeks: Peeks | None = None
    """Asks the monitor what a running task wrote so far (request-reply over the broker)."""
    schedule_policy: SchedulePolicy = field(default_factory=SchedulePolicy)
    clock: Clock = utcnow
    """What "now" is to schedules; tests move it."""
    streams: EventHub | None = None
    """Feeds the live event streams of this process."""
    registry: RegistryClient | None = None
    """Reads the image registry (listing workflow images); ``None`` when not configured."""
    group_commit: GroupCommit | None = None
    """Writes concurrent requests' new jobs in one transaction; ``None``: each alone."""
    diracx_links: DiracXLinkRelay | None = None
    """Relays users' DiracX link requests to the auth service; ``None``: no such routes."""


def job_policy(settings: GatewaySettings, python: str) -> JobPolicy:
    return JobPolicy(
        default_destruction=timedelta(days=settings.default_destruction_days),
        max_destruction=timedelta(days=settings.max_destruction_days),
        worker_python=settings.worker_python or python,
        wait_cap_s=settings.wait_cap_s,
        credential_margin_s=settings.credential_margin_s,
        retention=settings.retention_policy,
        retention_rule_lifetime_s=settings.retention_rule_lifetime_s,
        facility_grace_s=settings.facility_grace_s,
        callback_secret=settings.internal_token.get_secret_value() or None,
        stall_after_s=settings.stall_after_s,
        max_redrives=settings.max_redrives,
        idempotency_ttl_s=settings.idempotency_ttl_s,
        event_retention_s=settings.event_retention_s,
        notification_policy=OutboundPolicy.build(
            settings.notification_allow_http, settings.notification_allowed_networks
        )
        if settings.notification_urls
        else None,
    )


def schedule_policy(settings: GatewaySettings) -> SchedulePolicy:
    return SchedulePolicy(
        max_per_user=settings.max_schedules_per_user,
        min_interval_s=settings.min_schedule_interval_s,
        max_catch_up=settings.max_schedule_catch_up,
        misfire_grace_s=settings.schedule_misfire_grace_s,
        credential_failures_to_pause=settings.schedule_failures_to_pause,
    )


def stream_policy(settings: GatewaySettings) -> StreamPolicy:
    return StreamPolicy(
        heartbeat_s=settings.stream_heartbeat_s,
        buffer=settings.stream_buffer,
        poll_s=settings.stream_poll_s,
        max_per_user=settings.max_streams_per_user,
    )


def data_lake_policy(settings: GatewaySettings) -> DataLakePolicy:
    return DataLakePolicy(
        accounts=dict(settings.rucio_accounts),
        output_scope=settings.rucio_output_scope,
        vo_scopes={vo: list(scopes) for vo, scopes in settings.rucio_vo_scopes.items()},
        public_scopes=frozenset(settings.rucio_public_scopes),
    )


def url_signer(settings: GatewaySettings) -> UrlSigner:
    key = settings.signing_key.get_secret_value()
    if not key:
        return UrlSigner.random(settings.signed_url_ttl_s)
    return UrlSigner(key.encode(), settings.signed_url_ttl_s)


def image_catalogue(context: ProcessContext) -> ImageCatalogue:
    """The workflow images service: reads the registry, no database."""
    return ImageCatalogue(context.workflows, context.registry)


class Factory:
    """Builds services for one unit of work (a request or a message)."""

    def __init__(self, context: ProcessContext, connection: AsyncConnection) -> None:
        self.context = context
        self.connection = connection

    def ledger(self) -> JobLedger:
        return JobLedger(
            connection=self.connection,
            jobs=JobStore(self.connection),
            outbox=Outbox(OutboxStore(self.connection)),
            workflows=self.context.workflows,
            facilities=self.context.facilities,
            notifier=self.context.notifier,
            policy=self.context.policy,
            data_policy=self.context.data_policy,
            group=self.context.group_commit,
        )

    def job_service(self) -> JobService:
        return JobService(
            self.ledger(),
            IdempotencyStore(self.connection),
            credentials=self.context.credentials,
            inputs=self.context.inputs,
        )

    def scheduler(self, clock: Clock | None = None) -> Scheduler:
        return Scheduler(
            self.ledger(),
            ScheduleStore(self.connection),
            self.context.schedule_policy,
            clock or self.context.clock,
            credentials=self.context.credentials,
            inputs=self.context.inputs,
        )

    def schedule_service(self) -> ScheduleService:
        scheduler = self.scheduler()
        return ScheduleService(
            scheduler.ledger,
            scheduler.schedules,
            scheduler,
            self.context.schedule_policy,
            self.context.clock,
            credentials=self.context.credentials,
            inputs=self.context.inputs,
        )

    def report_service(self) -> ReportService:
        return ReportService(self.ledger())

    def housekeeping(self) -> Housekeeping:
        return Housekeeping(self.ledger(), IdempotencyStore(self.connection))

    def callback_service(self) -> CallbackService:
        return CallbackService(
            connection=self.connection,
            jobs=JobStore(self.connection),
            callbacks=CallbackStore(self.connection),
            notifier=self.context.notifier,
        )

    def download_service(self) -> DownloadService:
        return DownloadService(
            self.job_service(),
            self.context.signer,
            self.context.settings.results_dir,
            self.context.storage,
            redirect=self.context.settings.download_redirect,
        )

    def log_service(self) -> LogService:
        return LogService(self.job_service(), self.download_service(), self.context.peeks)


def job_waiter(context: ProcessContext) -> JobWaiter:
    """The WAIT service: each of its reads is a unit of work of its own."""

    @asynccontextmanager
    async def reading() -> AsyncIterator[JobService]:
        async with unit_of_work(context) as factory:
            yield factory.job_service()

    return JobWaiter(reading, context.notifier, context.policy)


async def open_event_stream(
    context: ProcessContext,
    identity: Identity,
    job_id: str | None,
    last_event_id: str | None,
) -> StreamRequest:
    """Check a stream may open (the caller's job, a resume id still kept) in a short unit
    of work of its own: a stream holds no database connection while it is open."""
    after = resume_position(last_event_id)
    if context.streams is not None:
        context.streams.check_room(identity.sub)
    async with unit_of_work(context) as factory:
        if job_id is not None:
            await factory.job_service().get_job(identity, job_id, details=False)
        await check_resumable(EventJournalStore(factory.connection), after)
        await factory.connection.rollback()
    return StreamRequest(
        owner=identity.sub, job_id=job_id, after=after, expires_at=identity.expires_at or None
    )


def event_streamer(context: ProcessContext) -> EventStreamer:
    if context.streams is None:
        raise RuntimeError("this gateway has no event hub")
    return EventStreamer(context.streams)


async def destroy_expired_jobs(context: ProcessContext) -> int:
    async with unit_of_work(context) as factory:
        housekeeping = factory.housekeeping()
        destroyed = await housekeeping.destroy_expired()
        await housekeeping.prune()
        return destroyed


async def warn_expiring_credentials(context: ProcessContext, warning: timedelta) -> int:
    async with unit_of_work(context) as factory:
        return await factory.housekeeping().warn_expiring_credentials(warning)


async def watch_stalled_jobs(context: ProcessContext) -> int:
    async with unit_of_work(context) as factory:
        return await factory.housekeeping().watch_stalled()


async def fire_due_schedules(
    context: ProcessContext, clock: Callable[[], datetime] | None = None
) -> int:
    async with unit_of_work(context) as factory:
        return await factory.scheduler(clock).run_due()


async def seconds_to_next_schedule(context: ProcessContext) -> float | None:
    async with unit_of_work(context) as factory:
        return await factory.scheduler().seconds_to_next()


@asynccontextmanager
async def unit_of_work(
    context: ProcessContext, *, on_demand: bool = False
) -> AsyncIterator[Factory]:
    """A connection and a factory around it; rolled back if the work did not commit.

    Core statements on a plain connection: the ORM session's machinery cost more than the
    statements themselves on the submission path (bench/README.md).

    ``on_demand``: the connection is checked out of the pool only when the work first needs
    it (``storage.new_jobs.checked_out``). For new jobs: a grouped job is written on its
    group leader's connection, so the requests waiting for that commit hold none. Held by
    each, 50 concurrent requests ran the pool into its overflow, whose connections are
    opened and closed again every time (about 10 % of a request's CPU, docs/benchmarks.md).
    """
    if not on_demand:
        async with context.engine.connect() as connection:
            yield Factory(context, connection)
        return
    connection = context.engine.connect()  # not checked out yet
    try:
        yield Factory(context, connection)
    finally:
        if connection.sync_connection is not None:
            # What leaving ``async with`` does: roll back and return it, shielded.
            await connection.__aexit__(None, None, None)
