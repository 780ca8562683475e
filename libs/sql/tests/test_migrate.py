"""Schema upgrades: Alembic runs when the database is behind, and is not even imported when
the database is at the head already (a restart), on SQLite and PostgreSQL."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
import textwrap
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from alembic.util.exc import CommandError
from sqlalchemy import inspect, text

from gridgate.sql import create_engine
from gridgate.sql.migrate import head_revision, upgrade_schema
from gridgate.testing.services import create_postgres_database, drop_postgres_database

ENV = """
from alembic import context

context.configure(
    connection=context.config.attributes["connection"],
    version_table=context.config.get_main_option("version_table") or "alembic_version",
)
with context.begin_transaction():
    context.run_migrations()
"""


def _revision(number: int, parent: object, table: str) -> str:
    return textwrap.dedent(f'''
        import sqlalchemy as sa
        from alembic import op

        revision = "{number:04d}"
        down_revision = {parent!r}
        branch_labels = None
        depends_on = None


        def upgrade() -> None:
            op.create_table("{table}", sa.Column("id", sa.Integer, primary_key=True))
    ''')


def scratch_package(root: Path, revisions: list[tuple[int, object]]) -> str:
    """A package with a ``migrations`` folder of the given (revision, down_revision) pairs,
    each creating a table ``t<revision>``; importable from ``root``."""
    name = f"scratch_{secrets.token_hex(4)}"
    versions = root / name / "migrations" / "versions"
    versions.mkdir(parents=True)
    (root / name / "__init__.py").write_text("")
    (root / name / "migrations" / "__init__.py").write_text("")
    (root / name / "migrations" / "env.py").write_text(ENV)
    (versions / "__init__.py").write_text("")
    for number, parent in revisions:
        add_revision(root, name, number, parent)
    return name


def add_revision(root: Path, package: str, number: int, parent: object) -> None:
    script = root / package / "migrations" / "versions" / f"{number:04d}_t{number}.py"
    script.write_text(_revision(number, parent, f"t{number}"))


@pytest.fixture(params=["sqlite", "postgresql"])
async def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'state.db'}"
        return
    name, url = await create_postgres_database()
    try:
        yield url
    finally:
        await drop_postgres_database(name)


def test_head_is_the_revision_no_other_names_as_its_parent(tmp_path: Path) -> None:
    chain = scratch_package(tmp_path, [(1, None), (2, "0001"), (3, "0002")])
    assert head_revision_from(tmp_path, chain) == "0003"


def test_head_is_left_to_alembic_when_it_is_not_plain(tmp_path: Path) -> None:
    two_heads = scratch_package(tmp_path, [(1, None), (2, "0001"), (3, "0001")])
    merge = scratch_package(tmp_path, [(1, None), (2, "0001"), (3, "0001"), (4, ("0002", "0003"))])
    assert head_revision_from(tmp_path, two_heads) is None
    assert head_revision_from(tmp_path, merge) is None


def head_revision_from(root: Path, package: str) -> str | None:
    sys.path.insert(0, str(root))
    try:
        return head_revision(package)
    finally:
        sys.path.remove(str(root))


async def test_behind_is_upgraded_and_current_is_left_without_alembic(
    tmp_path: Path, database_url: str
) -> None:
    package = scratch_package(tmp_path, [(1, None), (2, "0001")])
    upgrade_in_child(tmp_path, package, database_url)
    assert await tables_and_version(database_url) == ({"t1", "t2"}, {"0002"})

    # A new release brings a migration: the next start applies it.
    add_revision(tmp_path, package, 3, "0002")
    assert "alembic loaded" in upgrade_in_child(tmp_path, package, database_url)
    assert await tables_and_version(database_url) == ({"t1", "t2", "t3"}, {"0003"})

    # A restart at the head reads the version and leaves Alembic alone.
    assert "alembic not loaded" in upgrade_in_child(tmp_path, package, database_url)
    assert await tables_and_version(database_url) == ({"t1", "t2", "t3"}, {"0003"})


def upgrade_in_child(root: Path, package: str, url: str) -> str:
    """Run ``upgrade_schema`` in a new interpreter (so that what it imports shows); its
    output says whether Alembic was imported."""
    program = textwrap.dedent(f"""
        import asyncio, sys
        from gridgate.sql import create_engine
        from gridgate.sql.migrate import upgrade_schema

        async def main():
            engine = create_engine({url!r})
            try:
                await upgrade_schema(engine, {package!r}, lock_key=1)
            finally:
                await engine.dispose()

        asyncio.run(main())
        print("alembic loaded" if "alembic" in sys.modules else "alembic not loaded")
    """)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(root), *sys.path])}
    done = subprocess.run(
        [sys.executable, "-c", program], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


async def tables_and_version(url: str) -> tuple[set[str], set[str]]:
    engine = create_engine(url)
    try:
        async with engine.connect() as connection:
            names = await connection.run_sync(lambda c: set(inspect(c).get_table_names()))
            versions = await connection.execute(text("SELECT version_num FROM alembic_version"))
            return names - {"alembic_version"}, set(versions.scalars())
    finally:
        await engine.dispose()


async def test_a_database_ahead_of_the_code_still_fails_as_alembic_says(
    tmp_path: Path, database_url: str
) -> None:
    """An older release started on a newer schema is not waved through by the shortcut."""
    newer = scratch_package(tmp_path, [(1, None), (2, "0001")])
    upgrade_in_child(tmp_path, newer, database_url)
    (tmp_path / newer / "migrations" / "versions" / "0002_t2.py").unlink()
    engine = create_engine(database_url)
    sys.path.insert(0, str(tmp_path))
    try:
        with pytest.raises(CommandError, match="0002"):
            await upgrade_schema(engine, newer, lock_key=1)
    finally:
        sys.path.remove(str(tmp_path))
        await engine.dispose()
