"""A database outage answers 503 ``database-unavailable`` with ``Retry-After``, not a 500."""

from __future__ import annotations

from types import TracebackType

from fastapi import FastAPI, Request
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from starlette.responses import Response

from gridgate.core.errors import DatabaseUnavailableError
from gridgate.web import problem_response

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


async def _on_database_error(request: Request, exc: Exception) -> Response:
    if not is_database_outage(exc):
        # Re-raised, it reaches the catch-all handler and leaves as an ordinary 500.
        raise exc
    problem = DatabaseUnavailableError(
        "The job database is unreachable; nothing was changed unless a commit was under way."
    )
    headers = {"Retry-After": str(problem.retry_after_s)}
    return problem_response(problem.to_problem(request.url.path), problem.status, headers)


def install_database_outage_handler(app: FastAPI) -> None:
    """Map the driver's connection failures and timeouts to :class:`DatabaseUnavailableError`."""
    for kind in (DBAPIError, PoolTimeoutError, OSError):
        app.add_exception_handler(kind, _on_database_error)
