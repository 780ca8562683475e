"""Telling a database outage (unreachable, timed out) from a defect or bad data."""

from __future__ import annotations

from types import TracebackType

from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError

_DRIVERS = ("sqlalchemy.", "asyncpg.", "aiosqlite.")


def _raised_by_driver(tb: TracebackType | None) -> bool:
    # asyncpg lets a refused connection (OSError) and its own timeouts (TimeoutError) out
    # unwrapped; only where they were raised tells them from an HTTP client's or a broker's.
    while tb is not None:
        if str(tb.tb_frame.f_globals.get("__name__", "")).startswith(_DRIVERS):
            return True
        tb = tb.tb_next
    return False


def is_database_outage(exc: BaseException) -> bool:
    """Whether ``exc`` says the database is unreachable, rather than a defect or bad data."""
    if isinstance(exc, DBAPIError):
        return exc.connection_invalidated or isinstance(exc, OperationalError | InterfaceError)
    if isinstance(exc, PoolTimeoutError):
        return True
    if isinstance(exc, OSError):  # TimeoutError and ConnectionError included
        return _raised_by_driver(exc.__traceback__)
    return False
