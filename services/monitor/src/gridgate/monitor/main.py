"""The monitor worker (``gridgate-monitor``)."""

from __future__ import annotations

import asyncio
import sys
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import httpx
from aio_pika.abc import AbstractIncomingMessage, AbstractRobustConnection

from gridgate.broker import (
    Publisher,
    RpcServer,
    declare_topology,
    is_connected,
    serve_connected,
)
from gridgate.contracts import EVENTS_EXCHANGE
from gridgate.contracts.topology import PEEK_METHOD
from gridgate.core.logging import configure_logging
from gridgate.core.tls import shared_tls_context
from gridgate.dirac.access import DiracAccess
from gridgate.dirac.facility import DiracFacility
from gridgate.diracx.access import DiracXAccess
from gridgate.localfacility import LocalFacility
from gridgate.monitor.config import MonitorSettings
from gridgate.monitor.peeks import Peeker
from gridgate.monitor.scheduler import PollScheduler
from gridgate.monitor.service import LocalStatus, MonitorService
from gridgate.observability import instrument_facility

if TYPE_CHECKING:
    from gridgate.diracx.facility import DiracXFacility


@dataclass
class MonitorWorker:
    settings: MonitorSettings
    connection: AbstractRobustConnection
    scheduler: PollScheduler | None = None
    publisher: Publisher | None = None
    http: httpx.AsyncClient = field(init=False)
    dirac: DiracAccess = field(default_factory=lambda: DiracAccess({}))
    diracx: DiracXAccess = field(default_factory=lambda: DiracXAccess({}))
    peeks: RpcServer | None = None

    async def start(self) -> None:
        channel = await self.connection.channel()
        await declare_topology(channel)
        await channel.close()
        self.publisher = await Publisher.open(self.connection)
        self.http = httpx.AsyncClient(
            base_url=self.settings.gateway_url,
            timeout=30.0,
            verify=shared_tls_context(httpx.create_ssl_context),
        )
        local = instrument_facility(
            LocalFacility(
                self.settings.local_facility_root,
                sys.executable,
                lost_after_s=self.settings.local_lost_after_s,
            )
        )
        # Bulk status and peeks need no owner's proxy: the robot identity reads every job.
        self.dirac = DiracAccess.open(self.settings.dirac_facilities)
        # DiracX: the robot's token comes from the auth service, which holds the exchange key.
        self.diracx = DiracXAccess.open(
            self.settings.diracx_facilities,
            auth_url=self.settings.auth_url,
            internal_token=self.settings.internal_token.get_secret_value(),
        )
        remote: dict[str, DiracFacility | DiracXFacility] = {
            **self.dirac.facilities,
            **self.diracx.facilities,
        }
        service = MonitorService(
            self.publisher,
            self.http,
            {local.name: LocalStatus(local), **remote},
            self.settings.internal_token.get_secret_value(),
        )
        self.peeks = await RpcServer.open(
            self.connection, {PEEK_METHOD: Peeker(local, remote).peek}
        )
        self.scheduler = PollScheduler(
            service, self.settings.min_interval_s, self.settings.max_interval_s
        )
        self.scheduler.start()
        await self._listen_for_new_jobs(self.scheduler)

    async def _listen_for_new_jobs(self, scheduler: PollScheduler) -> None:
        # A queued job will soon change state: poll at the fast rate instead of waiting out
        # an idle interval. The queue is exclusive: a missed wake-up only costs latency.
        channel = await self.connection.channel()
        queue = await channel.declare_queue(exclusive=True, auto_delete=True)
        await queue.bind(EVENTS_EXCHANGE, routing_key="job.*.queued")

        async def on_event(_message: AbstractIncomingMessage) -> None:
            scheduler.poke()

        await queue.consume(on_event, no_ack=True)

    def readiness(self) -> dict[str, bool]:
        """Ready when the broker connection is up (not reconnecting) and the poll loop runs
        (from start to stop: the loop survives every failing round)."""
        return {
            "broker": is_connected(self.connection),
            "poller": self.scheduler is not None,
        }

    async def stop(self) -> None:
        stopping, self.scheduler = self.scheduler, None
        if stopping is not None:
            await stopping.stop()
        if self.publisher is not None:
            await self.publisher.close()
        if self.peeks is not None:
            await self.peeks.close()
        await self.http.aclose()
        await self.dirac.aclose()
        await self.diracx.aclose()


async def _main(settings: MonitorSettings) -> None:
    await serve_connected(
        settings.broker_url.get_secret_value(),
        lambda connection: MonitorWorker(settings, connection),
        health_host=settings.health_host,
        health_port=settings.health_port,
    )


def run() -> None:
    settings = MonitorSettings()
    configure_logging(json=settings.log_json, level=settings.log_level)
    asyncio.run(_main(settings))
