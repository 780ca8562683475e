"""The gateway's engine: SQLite (the embedded default) or PostgreSQL (production)."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncEngine

from gridgate.sql import SqlTimeouts
from gridgate.sql import create_engine as create_sql_engine

CONNECT_TIMEOUT_S = 5
"""A new PostgreSQL connection, or a wait for a pooled one, fails after this."""
REQUEST_TIMEOUTS = SqlTimeouts(
    connect_s=CONNECT_TIMEOUT_S,
    # Any statement (COMMIT included) fails after this: a silent database cannot hang a
    # request.
    statement_s=6,
    # Shorter than the statement timeout, so by the time a timed-out COMMIT is reported to
    # the client the server has either committed or given up: a COMMIT stuck in the network
    # cannot land later.
    idle_in_transaction_s=5,
)


def create_engine(
    url: str,
    *,
    pool_size: int = 10,
    timeouts: bool = True,
    pool_timeout_s: float = CONNECT_TIMEOUT_S,
) -> AsyncEngine:
    """The gateway's async engine; ``timeouts=False`` drops the PostgreSQL statement bounds
    (for migrations, which may legitimately run long)."""
    return create_sql_engine(
        url,
        pool_size=pool_size,
        timeouts=REQUEST_TIMEOUTS if timeouts else None,
        pool_timeout_s=pool_timeout_s,
    )
