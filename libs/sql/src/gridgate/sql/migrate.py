"""Schema upgrades with Alembic on a service's async engine, one replica at a time."""

from __future__ import annotations

from importlib.resources import files

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, text
from sqlalchemy.ext.asyncio import AsyncEngine


def alembic_config(
    package: str, connection: Connection | None = None, *, version_table: str | None = None
) -> Config:
    """The Alembic configuration of ``package``'s ``migrations`` folder."""
    config = Config()
    config.set_main_option("script_location", str(files(package) / "migrations"))
    if version_table is not None:
        config.set_main_option("version_table", version_table)
    if connection is not None:
        config.attributes["connection"] = connection
    return config


async def upgrade_schema(
    engine: AsyncEngine,
    package: str,
    *,
    lock_key: int,
    version_table: str | None = None,
    revision: str = "head",
) -> None:
    """Bring ``package``'s tables to ``revision``; a no-op when they are there already."""

    def run(connection: Connection) -> None:
        command.upgrade(alembic_config(package, connection, version_table=version_table), revision)

    async with engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            # Replicas starting together would each upgrade; one at a time, the later ones
            # find the schema at head and do nothing. The lock ends with the transaction.
            # (SQLite's write lock serialises the DDL by itself.)
            await connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": lock_key})
        await connection.run_sync(run)
