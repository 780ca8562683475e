"""The shared engine against real SQLite files and the machine's PostgreSQL."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from gridgate.sql import SqlTimeouts, create_engine
from gridgate.testing.services import create_postgres_database, drop_postgres_database


async def test_sqlite_runs_in_wal_mode_with_foreign_keys(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'nested' / 'state.db'}")
    try:
        async with engine.connect() as connection:
            mode = (await connection.execute(text("PRAGMA journal_mode"))).scalar_one()
            keys = (await connection.execute(text("PRAGMA foreign_keys"))).scalar_one()
        assert (mode, keys) == ("wal", 1)
    finally:
        await engine.dispose()


async def test_sqlite_write_lock_at_begin_makes_a_second_writer_wait(tmp_path: Path) -> None:
    """With the write lock taken at BEGIN, a second transaction waits for the first instead
    of reading first and failing with SQLITE_BUSY when it upgrades to a write."""
    url = f"sqlite+aiosqlite:///{tmp_path / 'state.db'}"
    engine = create_engine(url, write_lock_at_begin=True)
    try:
        async with engine.begin() as connection:
            await connection.execute(text("CREATE TABLE counter (n INTEGER)"))
            await connection.execute(text("INSERT INTO counter VALUES (0)"))
        order: list[str] = []
        first_holds = asyncio.Event()

        async def first() -> None:
            async with engine.begin() as connection:
                order.append("first began")
                first_holds.set()
                await asyncio.sleep(0.5)
                await connection.execute(text("UPDATE counter SET n = n + 1"))
                order.append("first wrote")

        async def second() -> None:
            await first_holds.wait()
            async with engine.begin() as connection:
                order.append("second began")
                n = (await connection.execute(text("SELECT n FROM counter"))).scalar_one()
                await connection.execute(text("UPDATE counter SET n = :n"), {"n": n + 1})

        await asyncio.gather(first(), second())
        async with engine.connect() as connection:
            total = (await connection.execute(text("SELECT n FROM counter"))).scalar_one()
        assert order == ["first began", "first wrote", "second began"]
        assert total == 2
    finally:
        await engine.dispose()


@pytest.mark.postgres
async def test_postgres_statements_are_bounded() -> None:
    name, url = await create_postgres_database()
    engine = create_engine(
        url, timeouts=SqlTimeouts(connect_s=5, statement_s=1, idle_in_transaction_s=3)
    )
    try:
        async with engine.connect() as connection:
            idle = (
                await connection.execute(text("SHOW idle_in_transaction_session_timeout"))
            ).scalar_one()
            assert idle == "3s"
            with pytest.raises((DBAPIError, TimeoutError)):
                await connection.execute(text("SELECT pg_sleep(3)"))
    finally:
        await engine.dispose()
        await drop_postgres_database(name)


@pytest.mark.postgres
async def test_postgres_without_timeouts_lets_a_long_statement_finish() -> None:
    name, url = await create_postgres_database()
    engine = create_engine(url, timeouts=None)
    try:
        async with engine.connect() as connection:
            await connection.execute(text("SELECT pg_sleep(1.5)"))
            idle = (
                await connection.execute(text("SHOW idle_in_transaction_session_timeout"))
            ).scalar_one()
        assert idle == "0"
    finally:
        await engine.dispose()
        await drop_postgres_database(name)
