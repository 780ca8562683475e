"""Upgrading the notifier's tables (Alembic, ``gridgate.notifier.migrations``)."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncEngine

from gridgate.sql import upgrade_schema as upgrade_tables

LOCK = 0x6E6F7466  # "notf": the advisory lock key of the notifier's schema upgrades
# Its own version table: the notifier may share a PostgreSQL database with the gateway.
VERSION_TABLE = "notifier_alembic_version"


async def upgrade_schema(engine: AsyncEngine, revision: str = "head") -> None:
    """Bring the database to ``revision``; replicas starting together take turns."""
    await upgrade_tables(
        engine, "gridgate.notifier", lock_key=LOCK, version_table=VERSION_TABLE, revision=revision
    )
