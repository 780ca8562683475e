"""A database outage answers 503 ``database-unavailable`` with ``Retry-After``, not a 500."""

from __future__ import annotations

import structlog
from fastapi import FastAPI, Request
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from starlette.responses import Response

from gridgate.core.errors import DatabaseUnavailableError
from gridgate.gateway.schema.outages import is_database_outage
from gridgate.web import problem_response

log = structlog.get_logger(__name__)


async def _on_database_error(request: Request, exc: Exception) -> Response:
    if not is_database_outage(exc):
        # Re-raised, it reaches the catch-all handler and leaves as an ordinary 500.
        raise exc
    # Why, for the operator: a pool wait that timed out (too many requests at once for the
    # pool) or the driver's own error (SQLite's "database is locked" after its busy timeout,
    # a lost PostgreSQL connection). The driver's message only: never the statement's values.
    cause = exc.orig if isinstance(exc, DBAPIError) else exc
    log.warning(
        "database unavailable",
        path=request.url.path,
        cause=type(cause).__name__,
        reason=str(cause).split("\n", 1)[0][:200] or "(no message)",
    )
    problem = DatabaseUnavailableError(
        "The job database is unreachable; nothing was changed unless a commit was under way."
    )
    headers = {"Retry-After": str(problem.retry_after_s)}
    return problem_response(problem.to_problem(request.url.path), problem.status, headers)


def install_database_outage_handler(app: FastAPI) -> None:
    """Map the driver's connection failures and timeouts to :class:`DatabaseUnavailableError`."""
    for kind in (DBAPIError, PoolTimeoutError, OSError):
        app.add_exception_handler(kind, _on_database_error)
