"""A gateway's process context on a fresh database, with no broker and no relay.

Tests of units of work that race each other use it on SQLite and PostgreSQL. Outbox rows
stay in the database, so a test can count them.
"""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from pydantic import SecretStr

from gridgate.gateway.config import GatewaySettings
from gridgate.gateway.factory import ProcessContext, job_policy
from gridgate.gateway.schema.engine import create_engine
from gridgate.gateway.schema.migrate import upgrade_schema
from gridgate.gateway.services.facilities import FacilityCatalogue
from gridgate.gateway.services.notifier import PhaseNotifier
from gridgate.testing.services import create_postgres_database, drop_postgres_database
from gridgate.workflows import WorkflowCatalogue


@asynccontextmanager
async def offline_gateway(
    database_kind: str,
    directory: Path,
    *,
    settings: dict[str, Any] | None = None,
    **context: Any,
) -> AsyncIterator[ProcessContext]:
    """A migrated ``database_kind`` database ("sqlite" in ``directory``, or a new PostgreSQL
    database dropped afterwards) and a process context on it.

    ``settings`` are extra :class:`GatewaySettings` fields; ``context`` extra
    :class:`ProcessContext` fields (e.g. ``group_commit``).
    """
    name = None
    if database_kind == "sqlite":
        url = f"sqlite+aiosqlite:///{directory}/gateway.db"
    else:
        name, url = await create_postgres_database()
    try:
        async with context_on(url, settings=settings, **context) as process:
            await upgrade_schema(process.engine)
            yield process
    finally:
        if name is not None:
            await drop_postgres_database(name)


@asynccontextmanager
async def context_on(
    url: str, *, settings: dict[str, Any] | None = None, **context: Any
) -> AsyncIterator[ProcessContext]:
    """A process context on the database at ``url`` as it is (a child process of a test
    works on its parent's database with it)."""
    gateway_settings = GatewaySettings(database_url=SecretStr(url), **(settings or {}))
    process = ProcessContext(
        settings=gateway_settings,
        engine=create_engine(url),
        workflows=WorkflowCatalogue.shipped(),
        facilities=FacilityCatalogue.load(),
        notifier=PhaseNotifier(),
        relay=None,
        policy=job_policy(gateway_settings, sys.executable),
        **context,
    )
    try:
        yield process
    finally:
        await process.engine.dispose()
