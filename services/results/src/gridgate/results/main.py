"""The results worker (``gridgate-results``)."""

from __future__ import annotations

import asyncio
import sys

from aio_pika.abc import AbstractRobustConnection

from gridgate.broker import QueueWorker, serve_worker
from gridgate.contracts import COMMAND_ADAPTER, RESULTS_QUEUE, Command
from gridgate.core.logging import configure_logging
from gridgate.localfacility import LocalFacility
from gridgate.observability import instrument_facility
from gridgate.results.config import ResultsSettings
from gridgate.results.factory import DataLake
from gridgate.results.service import ResultsService


class ResultsWorker(QueueWorker[Command]):
    """The queue worker, closing the storage and Rucio clients when it stops."""

    lake: DataLake | None = None

    async def stop(self) -> None:
        await super().stop()
        if self.lake is not None:
            await self.lake.aclose()


def build_worker(
    settings: ResultsSettings, connection: AbstractRobustConnection
) -> QueueWorker[Command]:
    local = instrument_facility(LocalFacility(settings.local_facility_root, sys.executable))
    lake = DataLake.from_settings(settings)

    def build(publisher):  # type: ignore[no-untyped-def]
        service = ResultsService(publisher, lake.store, local, lake.registrar)
        return service.handle, service.report_usage_error

    worker = ResultsWorker(
        connection, RESULTS_QUEUE, COMMAND_ADAPTER, build, prefetch=settings.prefetch
    )
    worker.lake = lake
    return worker


def run() -> None:
    settings = ResultsSettings()
    configure_logging(json=settings.log_json, level=settings.log_level)
    asyncio.run(
        serve_worker(
            settings.broker_url.get_secret_value(),
            lambda connection: build_worker(settings, connection),
            health_host=settings.health_host,
            health_port=settings.health_port,
        )
    )
