"""The submitter worker (``gridgate-submitter``)."""

from __future__ import annotations

import asyncio
import sys

from aio_pika.abc import AbstractRobustConnection

from gridgate.broker import QueueWorker, serve_worker
from gridgate.contracts import COMMAND_ADAPTER, SUBMITTER_QUEUE, Command
from gridgate.core.logging import configure_logging
from gridgate.dirac.access import DiracAccess
from gridgate.diracx.access import DiracXAccess
from gridgate.localfacility import LocalFacility
from gridgate.observability import instrument_facility
from gridgate.submitter.config import SubmitterSettings
from gridgate.submitter.service import SubmitterService


def build_worker(
    settings: SubmitterSettings, connection: AbstractRobustConnection
) -> QueueWorker[Command]:
    local = instrument_facility(LocalFacility(settings.local_facility_root, sys.executable))
    secret = settings.internal_token.get_secret_value()
    dirac = DiracAccess.open(
        settings.dirac_facilities, auth_url=settings.auth_url, internal_token=secret
    )

    diracx = DiracXAccess.open(
        settings.diracx_facilities, auth_url=settings.auth_url, internal_token=secret
    )

    def build(publisher):  # type: ignore[no-untyped-def]
        service = SubmitterService(
            publisher,
            local,
            {**dirac.facilities, **diracx.facilities},
            callback_url=settings.callback_url,
            callback_secret=secret,
        )
        return service.handle, service.report_usage_error

    return QueueWorker(
        connection,
        SUBMITTER_QUEUE,
        COMMAND_ADAPTER,
        build,
        prefetch=settings.prefetch,
        closing=[dirac.aclose, diracx.aclose],
    )


def run() -> None:
    settings = SubmitterSettings()
    configure_logging(json=settings.log_json, level=settings.log_level)
    asyncio.run(
        serve_worker(
            settings.broker_url.get_secret_value(),
            lambda connection: build_worker(settings, connection),
            health_host=settings.health_host,
            health_port=settings.health_port,
        )
    )
