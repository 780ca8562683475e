"""Engines for SQLite (the embedded default) and PostgreSQL (production)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

CONNECT_TIMEOUT_S = 5
"""A new PostgreSQL connection, or a wait for a pooled one, fails after this."""
STATEMENT_TIMEOUT_S = 6
"""Any statement (COMMIT included) fails after this: a silent database cannot hang a request."""
IDLE_IN_TRANSACTION_TIMEOUT_S = 5
"""PostgreSQL aborts a transaction whose next statement has not arrived after this. Shorter
than the statement timeout, so by the time a timed-out COMMIT is reported to the client the
server has either committed or given up: a COMMIT stuck in the network cannot land later."""


def create_engine(
    url: str,
    *,
    pool_size: int = 10,
    timeouts: bool = True,
    pool_timeout_s: float = CONNECT_TIMEOUT_S,
) -> AsyncEngine:
    """Create the async engine; SQLite gets WAL and a busy timeout, PostgreSQL a pool.

    ``timeouts=False`` drops the PostgreSQL statement bounds (for migrations, which may
    legitimately run long); ``pool_timeout_s`` is how long a caller waits for a pooled
    connection.
    """
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_async_engine(url, connect_args={"timeout": 30})

        @event.listens_for(engine.sync_engine, "connect")
        def _pragmas(dbapi_connection: Any, _record: Any) -> None:
            cursor = dbapi_connection.cursor()
            # WAL lets readers proceed during a write; NORMAL is durable across app crashes.
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.close()

        return engine
    # No pre-ping: it costs a round trip per request; a dead connection is invalidated on error.
    if not timeouts:
        return create_async_engine(url, pool_size=pool_size, max_overflow=pool_size)
    return create_async_engine(
        url,
        pool_size=pool_size,
        max_overflow=pool_size,
        pool_timeout=pool_timeout_s,
        connect_args={
            "timeout": CONNECT_TIMEOUT_S,
            "command_timeout": STATEMENT_TIMEOUT_S,
            "server_settings": {
                "idle_in_transaction_session_timeout": str(IDLE_IN_TRANSACTION_TIMEOUT_S * 1000)
            },
        },
    )
