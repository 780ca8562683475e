"""The link store's engine: SQLite (one replica) or PostgreSQL (several)."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncEngine

from gridgate.sql import SqlTimeouts
from gridgate.sql import create_engine as create_sql_engine

TIMEOUTS = SqlTimeouts(connect_s=5, statement_s=10)


def create_engine(url: str, *, pool_size: int = 10) -> AsyncEngine:
    """The link store's async engine. On SQLite every transaction takes the write lock at
    BEGIN: two replicas refreshing one link then queue up instead of failing when both
    upgrade a read lock."""
    return create_sql_engine(url, pool_size=pool_size, timeouts=TIMEOUTS, write_lock_at_begin=True)
