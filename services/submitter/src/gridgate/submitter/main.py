"""The submitter worker (``gridgate-submitter``)."""

from __future__ import annotations

import asyncio
import sys
from typing import Any

from aio_pika.abc import AbstractRobustConnection

from gridgate.broker import BrokerLeases, QueueWorker, serve_worker
from gridgate.contracts import COMMAND_ADAPTER, SUBMITTER_QUEUE, Command
from gridgate.core.logging import configure_logging
from gridgate.dirac.access import DiracAccess
from gridgate.diracx.access import DiracXAccess
from gridgate.images import BuildLeases, ImageResolver, RegistryClient
from gridgate.images.runtime import docker_client
from gridgate.localfacility import LocalFacility
from gridgate.observability import instrument_facility
from gridgate.submitter.config import SubmitterSettings
from gridgate.submitter.service import SubmitterService
from gridgate.workflows import WorkflowCatalogue


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
    images, closing = image_resolver(settings, BrokerLeases(connection))
    catalogue = (
        WorkflowCatalogue.from_directory(settings.workflows_dir) if settings.workflows_dir else None
    )

    def build(publisher):  # type: ignore[no-untyped-def]
        service = SubmitterService(
            publisher,
            local,
            {**dirac.facilities, **diracx.facilities},
            callback_url=settings.callback_url,
            callback_secret=secret,
            images=images,
            catalogue=catalogue,
            facility_registries=settings.image_facility_registries,
            build_heartbeat_s=settings.image_build_heartbeat_s,
        )
        return service.handle, service.report_usage_error

    return QueueWorker(
        connection,
        SUBMITTER_QUEUE,
        COMMAND_ADAPTER,
        build,
        prefetch=settings.prefetch,
        closing=[dirac.aclose, diracx.aclose, *closing],
    )


def image_resolver(
    settings: SubmitterSettings, leases: BuildLeases | None = None
) -> tuple[ImageResolver | None, list[Any]]:
    """The resolver of containerised workflows' images, when a registry is configured.

    ``leases`` are shared with the other replicas, so an image is built by one of them only.
    """
    if not settings.image_registry:
        return None, []
    password = settings.image_registry_password.get_secret_value()
    registry = RegistryClient(
        settings.image_registry,
        insecure=settings.image_registry_insecure,
        username=settings.image_registry_username,
        password=password,
    )
    credentials = (
        {"username": settings.image_registry_username, "password": password}
        if settings.image_registry_username
        else None
    )
    resolver = ImageResolver(
        registry,
        settings.image_base,
        lambda: docker_client(settings.docker_host),
        push_credentials=credentials,
        build_timeout_s=settings.image_build_timeout_s,
        leases=leases,
        wait_poll_s=settings.image_build_poll_s,
    )
    return resolver, [registry.aclose]


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
