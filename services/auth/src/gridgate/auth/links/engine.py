"""The link store's engines: SQLite (one replica) or PostgreSQL (several)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

CONNECT_TIMEOUT_S = 5
STATEMENT_TIMEOUT_S = 10


def create_engine(url: str, *, pool_size: int = 10) -> AsyncEngine:
    """The async engine; SQLite gets WAL and a busy timeout, PostgreSQL bounded statements."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_async_engine(url, connect_args={"timeout": 30})

        @event.listens_for(engine.sync_engine, "connect")
        def _pragmas(dbapi_connection: Any, _record: Any) -> None:
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.close()

        @event.listens_for(engine.sync_engine, "begin")
        def _immediate(connection: Any) -> None:
            # Take the write lock at BEGIN: two replicas' claims then queue up instead of
            # failing when both upgrade a read lock (SQLITE_BUSY without waiting).
            connection.exec_driver_sql("BEGIN IMMEDIATE")

        # The driver's own BEGIN is replaced by the one above.
        @event.listens_for(engine.sync_engine, "connect")
        def _no_autobegin(dbapi_connection: Any, _record: Any) -> None:
            dbapi_connection.isolation_level = None

        return engine
    return create_async_engine(
        url,
        pool_size=pool_size,
        max_overflow=pool_size,
        pool_timeout=CONNECT_TIMEOUT_S,
        connect_args={"timeout": CONNECT_TIMEOUT_S, "command_timeout": STATEMENT_TIMEOUT_S},
    )
