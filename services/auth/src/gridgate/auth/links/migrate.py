"""Upgrading the link store's tables (Alembic, ``gridgate.auth.links.migrations``)."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncEngine

from gridgate.sql import upgrade_schema as upgrade_tables

LOCK = 0x61757468  # "auth": the advisory lock key of the auth service's schema upgrades
# Its own version table: the auth service may share a PostgreSQL database with the gateway.
VERSION_TABLE = "auth_alembic_version"


async def upgrade_schema(engine: AsyncEngine, revision: str = "head") -> None:
    """Bring the database to ``revision``; replicas starting together take turns."""
    await upgrade_tables(
        engine, "gridgate.auth.links", lock_key=LOCK, version_table=VERSION_TABLE, revision=revision
    )
