"""Async engines for SQLite (embedded, one replica) and PostgreSQL (production, replicas)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

SQLITE_BUSY_TIMEOUT_S = 30


@dataclass(frozen=True)
class SqlTimeouts:
    """Bounds on PostgreSQL work, so that a silent database cannot hang a caller."""

    connect_s: float = 5
    """A new connection, or a wait for a pooled one, fails after this."""
    statement_s: float = 6
    """Any statement (COMMIT included) fails after this."""
    idle_in_transaction_s: float | None = None
    """The server aborts a transaction whose next statement has not arrived after this."""


def create_engine(
    url: str,
    *,
    pool_size: int = 10,
    timeouts: SqlTimeouts | None = SqlTimeouts(),
    pool_timeout_s: float | None = None,
    write_lock_at_begin: bool = False,
) -> AsyncEngine:
    """The async engine for ``url``.

    SQLite gets WAL, foreign keys and a busy timeout; with ``write_lock_at_begin`` every
    transaction starts with ``BEGIN IMMEDIATE``. PostgreSQL gets a pool of ``pool_size`` (as
    many again in overflow) and, unless ``timeouts`` is None (migrations may run long), the
    given bounds. ``pool_timeout_s`` defaults to the connect timeout.
    """
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        return _sqlite_engine(url, parsed.database, write_lock_at_begin)
    # No pre-ping: it costs a round trip per request; a dead connection is invalidated on error.
    if timeouts is None:
        return create_async_engine(url, pool_size=pool_size, max_overflow=pool_size)
    server_settings = {}
    if timeouts.idle_in_transaction_s is not None:
        server_settings["idle_in_transaction_session_timeout"] = str(
            int(timeouts.idle_in_transaction_s * 1000)
        )
    return create_async_engine(
        url,
        pool_size=pool_size,
        max_overflow=pool_size,
        pool_timeout=timeouts.connect_s if pool_timeout_s is None else pool_timeout_s,
        connect_args={
            "timeout": timeouts.connect_s,
            "command_timeout": timeouts.statement_s,
            "server_settings": server_settings,
        },
    )


def _sqlite_engine(url: str, database: str | None, write_lock_at_begin: bool) -> AsyncEngine:
    if database and database != ":memory:":
        Path(database).parent.mkdir(parents=True, exist_ok=True)
    engine = create_async_engine(url, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_S})

    @event.listens_for(engine.sync_engine, "connect")
    def _pragmas(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        # WAL lets readers proceed during a write; NORMAL is durable across app crashes.
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_S * 1000}")
        cursor.close()
        if write_lock_at_begin:
            # The driver's own BEGIN is replaced by the one below.
            dbapi_connection.isolation_level = None

    if write_lock_at_begin:

        @event.listens_for(engine.sync_engine, "begin")
        def _immediate(connection: Any) -> None:
            # Take the write lock at BEGIN: two replicas' claims then queue up instead of
            # failing when both upgrade a read lock (SQLITE_BUSY without waiting).
            connection.exec_driver_sql("BEGIN IMMEDIATE")

    return engine
