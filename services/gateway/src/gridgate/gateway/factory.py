"""The factory: process-wide resources, and services built from them per unit of work."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from gridgate.gateway.config import GatewaySettings
from gridgate.gateway.relay import OutboxRelay
from gridgate.gateway.services.credentials import CredentialChecker
from gridgate.gateway.services.facilities import FacilityCatalogue
from gridgate.gateway.services.jobs import JobPolicy, JobService
from gridgate.gateway.services.messages import Outbox
from gridgate.gateway.services.notifier import PhaseNotifier
from gridgate.gateway.storage.jobs import JobStore
from gridgate.gateway.storage.outbox import OutboxStore
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


def job_policy(settings: GatewaySettings, python: str) -> JobPolicy:
    return JobPolicy(
        default_destruction=timedelta(days=settings.default_destruction_days),
        worker_python=settings.worker_python or python,
        wait_cap_s=settings.wait_cap_s,
        credential_margin_s=settings.credential_margin_s,
    )


class Factory:
    """Builds services for one unit of work (a request or a message)."""

    def __init__(self, context: ProcessContext, connection: AsyncConnection) -> None:
        self.context = context
        self.connection = connection

    def job_service(self) -> JobService:
        return JobService(
            connection=self.connection,
            jobs=JobStore(self.connection),
            outbox=Outbox(OutboxStore(self.connection)),
            workflows=self.context.workflows,
            facilities=self.context.facilities,
            notifier=self.context.notifier,
            policy=self.context.policy,
            credentials=self.context.credentials,
        )


async def warn_expiring_credentials(context: ProcessContext, warning: timedelta) -> int:
    async with unit_of_work(context) as factory:
        return await factory.job_service().warn_expiring_credentials(warning)


@asynccontextmanager
async def unit_of_work(context: ProcessContext) -> AsyncIterator[Factory]:
    """A connection and a factory around it; rolled back if the work did not commit.

    Core statements on a plain connection: the ORM session's machinery cost more than the
    statements themselves on the submission path (bench/README.md)."""
    async with context.engine.connect() as connection:
        yield Factory(context, connection)
