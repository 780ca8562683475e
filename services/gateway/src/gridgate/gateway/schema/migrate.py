"""Upgrading the gateway's tables (Alembic, ``gridgate.gateway.migrations``)."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncEngine

from gridgate.sql import upgrade_schema as upgrade_tables

LOCK = 0x67726964  # "grid": the advisory lock key of the gateway's schema upgrades


async def upgrade_schema(engine: AsyncEngine, revision: str = "head") -> None:
    """Bring the database to ``revision``; gateway replicas starting together take turns."""
    await upgrade_tables(engine, "gridgate.gateway", lock_key=LOCK, revision=revision)
