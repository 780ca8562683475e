"""Schema upgrades with Alembic on a service's async engine, one replica at a time.

Alembic (with Mako and the migration scripts under it) costs about 6 MiB of resident memory
and 0.1-0.4 s at every start. Most starts find the schema current, so
:func:`upgrade_schema` first compares the database's recorded revision with the head of the
migration files, read with :mod:`ast`, and imports Alembic only when they differ or the head
cannot be told that simply (ADR 0019).
"""

from __future__ import annotations

import ast
from importlib.resources import files
from typing import TYPE_CHECKING

from sqlalchemy import Connection, column, inspect, select, table, text
from sqlalchemy.ext.asyncio import AsyncEngine

if TYPE_CHECKING:
    from alembic.config import Config

DEFAULT_VERSION_TABLE = "alembic_version"


def alembic_config(
    package: str, connection: Connection | None = None, *, version_table: str | None = None
) -> Config:
    """The Alembic configuration of ``package``'s ``migrations`` folder."""
    from alembic.config import Config  # deferred: see the module's docstring

    config = Config()
    config.set_main_option("script_location", str(files(package) / "migrations"))
    if version_table is not None:
        config.set_main_option("version_table", version_table)
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def head_revision(package: str) -> str | None:
    """The one head of ``package``'s migrations, from each file's ``revision`` and
    ``down_revision``; None when it takes Alembic to tell (several heads, a merge, a
    revision that is not a plain string)."""
    revisions: set[str] = set()
    parents: set[str] = set()
    for script in (files(package) / "migrations" / "versions").iterdir():
        if not script.name.endswith(".py") or script.name == "__init__.py":
            continue
        values = _constants(script.read_text(encoding="utf-8"))
        revision, parent = values.get("revision"), values.get("down_revision")
        if not isinstance(revision, str) or not (parent is None or isinstance(parent, str)):
            return None
        revisions.add(revision)
        if parent is not None:
            parents.add(parent)
    heads = revisions - parents
    return heads.pop() if len(heads) == 1 else None


def _constants(source: str) -> dict[str, object]:
    """The module-level ``name = ...`` assignments of a script: the literal's value, or the
    expression itself when it is not a literal (which the caller then declines)."""
    values: dict[str, object] = {}
    for node in ast.parse(source).body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1:
            target, value = node.targets[0], node.value
        elif isinstance(node, ast.AnnAssign) and node.value is not None:
            target, value = node.target, node.value
        else:
            continue
        if isinstance(target, ast.Name):
            try:
                values[target.id] = ast.literal_eval(value)
            except (ValueError, TypeError, SyntaxError):
                values[target.id] = value
    return values


def recorded_revisions(connection: Connection, version_table: str) -> set[str]:
    """The revisions the database says it is at (none for a new database)."""
    if not inspect(connection).has_table(version_table):
        return set()
    versions = table(version_table, column("version_num"))
    return set(connection.execute(select(versions.c.version_num)).scalars())


async def upgrade_schema(
    engine: AsyncEngine,
    package: str,
    *,
    lock_key: int,
    version_table: str | None = None,
    revision: str = "head",
) -> None:
    """Bring ``package``'s tables to ``revision``; a no-op when they are there already."""
    if revision == "head" and (head := head_revision(package)) is not None:
        async with engine.connect() as connection:
            recorded = await connection.run_sync(
                recorded_revisions, version_table or DEFAULT_VERSION_TABLE
            )
        if recorded == {head}:
            return

    def run(connection: Connection) -> None:
        from alembic import command  # deferred: see the module's docstring

        command.upgrade(alembic_config(package, connection, version_table=version_table), revision)

    async with engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            # Replicas starting together would each upgrade; one at a time, the later ones
            # find the schema at head and do nothing. The lock ends with the transaction.
            # (SQLite's write lock serialises the DDL by itself.)
            await connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": lock_key})
        await connection.run_sync(run)
