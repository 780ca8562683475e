"""A gateway's process context on a fresh database, with no broker and no relay.

Tests of units of work that race each other use it on SQLite and PostgreSQL. Outbox rows
stay in the database, so a test can count them. Two contexts on one database
(:func:`gateway_database`, then :func:`offline_context` twice) play two gateway replicas.
"""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from pydantic import SecretStr

from gridgate.gateway.config import GatewaySettings
from gridgate.gateway.factory import ProcessContext, job_policy, schedule_policy
from gridgate.gateway.schema.engine import create_engine
from gridgate.gateway.schema.migrate import upgrade_schema
from gridgate.gateway.services.facilities import FacilityCatalogue
from gridgate.gateway.services.notifier import PhaseNotifier
from gridgate.testing.services import create_postgres_database, drop_postgres_database
from gridgate.workflows import WorkflowCatalogue


@asynccontextmanager
async def gateway_database(
    database_kind: str, directory: Path, *, migrated: bool = True
) -> AsyncIterator[str]:
    """The URL of a new ``database_kind`` database ("sqlite": a file in ``directory``;
    "postgresql": a new database, dropped afterwards), at the schema's head unless
    ``migrated`` is false."""
    name = None
    if database_kind == "sqlite":
        url = f"sqlite+aiosqlite:///{directory}/gateway.db"
    else:
        name, url = await create_postgres_database()
    try:
        if migrated:
            engine = create_engine(url)
            try:
                await upgrade_schema(engine)
            finally:
                await engine.dispose()
        yield url
    finally:
        if name is not None:
            await drop_postgres_database(name)


def offline_context(
    url: str, *, settings: dict[str, Any] | None = None, **context: Any
) -> ProcessContext:
    """A process context on ``url`` with its own engine (the caller disposes of it).

    ``settings`` are extra :class:`GatewaySettings` fields; ``context`` extra or replaced
    :class:`ProcessContext` fields (e.g. ``clock``, ``credentials``, ``group_commit``).
    """
    gateway_settings = GatewaySettings(database_url=SecretStr(url), **(settings or {}))
    fields: dict[str, Any] = {
        "settings": gateway_settings,
        "engine": create_engine(url),
        "workflows": WorkflowCatalogue.shipped(),
        "facilities": FacilityCatalogue.load(),
        "notifier": PhaseNotifier(),
        "relay": None,
        "policy": job_policy(gateway_settings, sys.executable),
        "schedule_policy": schedule_policy(gateway_settings),
    }
    return ProcessContext(**{**fields, **context})


@asynccontextmanager
async def offline_gateway(
    database_kind: str,
    directory: Path,
    *,
    settings: dict[str, Any] | None = None,
    **context: Any,
) -> AsyncIterator[ProcessContext]:
    """A migrated ``database_kind`` database and one process context on it (see
    :func:`gateway_database` and :func:`offline_context`)."""
    async with gateway_database(database_kind, directory) as url:
        process = offline_context(url, settings=settings, **context)
        try:
            yield process
        finally:
            await process.engine.dispose()
