"""The results worker (``gridgate-results``)."""

from __future__ import annotations

import asyncio
import sys
from typing import TYPE_CHECKING

from aio_pika.abc import AbstractRobustConnection

from gridgate.broker import QueueWorker, serve_worker
from gridgate.contracts import COMMAND_ADAPTER, RESULTS_QUEUE, Command
from gridgate.core.logging import configure_logging
from gridgate.dirac.access import DiracAccess
from gridgate.dirac.facility import DiracFacility
from gridgate.diracx.access import DiracXAccess
from gridgate.localfacility import LocalFacility
from gridgate.observability import instrument_facility
from gridgate.results.config import ResultsSettings
from gridgate.results.factory import DataLake
from gridgate.results.service import ResultsService

if TYPE_CHECKING:
    # Annotations only: the official DiracX client loads when a DiracX facility is served.
    from gridgate.diracx.facility import DiracXFacility


def build_worker(
    settings: ResultsSettings, connection: AbstractRobustConnection
) -> QueueWorker[Command]:
    local = instrument_facility(LocalFacility(settings.local_facility_root, sys.executable))
    lake = DataLake.from_settings(settings)
    dirac = DiracAccess.open(
        settings.dirac_facilities,
        auth_url=settings.auth_url,
        internal_token=settings.internal_token.get_secret_value(),
    )

    diracx = DiracXAccess.open(
        settings.diracx_facilities,
        auth_url=settings.auth_url,
        internal_token=settings.internal_token.get_secret_value(),
    )
    remote: dict[str, DiracFacility | DiracXFacility] = {**dirac.facilities, **diracx.facilities}

    def build(publisher):  # type: ignore[no-untyped-def]
        service = ResultsService(publisher, lake.store, local, lake.registrar, remote)
        return service.handle, service.report_usage_error

    return QueueWorker(
        connection,
        RESULTS_QUEUE,
        COMMAND_ADAPTER,
        build,
        prefetch=settings.prefetch,
        closing=[lake.aclose, dirac.aclose, diracx.aclose],
    )


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
