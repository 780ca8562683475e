"""Every error leaves as ``application/problem+json`` (RFC 9457) with a stable type."""

from __future__ import annotations

from typing import Any

import orjson
import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from gridgate.core.errors import PROBLEM_TYPE_PREFIX, AuthenticationError, ProblemError

PROBLEM_MEDIA_TYPE = "application/problem+json"
log = structlog.get_logger(__name__)

HTTP_SLUGS = {
    400: ("bad-request", "Bad request"),
    404: ("not-found", "Not found"),
    405: ("method-not-allowed", "Method not allowed"),
    406: ("not-acceptable", "Not acceptable"),
    413: ("body-too-large", "Request body too large"),
    415: ("unsupported-media-type", "Unsupported media type"),
}


def problem_response(
    body: dict[str, Any], status: int, headers: dict[str, str] | None = None
) -> Response:
    return Response(
        orjson.dumps(body), status_code=status, media_type=PROBLEM_MEDIA_TYPE, headers=headers
    )


async def _on_problem(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ProblemError)
    headers = dict(exc.headers)
    if isinstance(exc, AuthenticationError) and exc.status == 401:
        headers["WWW-Authenticate"] = 'Bearer realm="gridgate"'
    if exc.retry_after_s is not None:
        headers["Retry-After"] = str(exc.retry_after_s)
    return problem_response(exc.to_problem(request.url.path), exc.status, headers)


async def _on_validation(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    errors = [
        {
            "field": ".".join(str(p) for p in err["loc"][1:]) or str(err["loc"][0]),
            "message": err["msg"],
        }
        for err in exc.errors()
    ]
    body = {
        "type": PROBLEM_TYPE_PREFIX + "invalid-request",
        "title": "Invalid request",
        "status": 422,
        "detail": "; ".join(f"{e['field']}: {e['message']}" for e in errors),
        "instance": request.url.path,
        "errors": errors,
    }
    return problem_response(body, 422)


async def _on_http(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    slug, title = HTTP_SLUGS.get(exc.status_code, ("http-error", "HTTP error"))
    body = {
        "type": PROBLEM_TYPE_PREFIX + slug,
        "title": title,
        "status": exc.status_code,
        "detail": str(exc.detail) if exc.detail else title,
        "instance": request.url.path,
    }
    return problem_response(body, exc.status_code, dict(exc.headers or {}))


async def _on_unexpected(request: Request, exc: Exception) -> Response:
    log.exception("unhandled error", path=request.url.path)
    body = {
        "type": PROBLEM_TYPE_PREFIX + "internal-error",
        "title": "Internal error",
        "status": 500,
        "detail": "An unexpected error occurred; it has been logged.",
        "instance": request.url.path,
    }
    return problem_response(body, 500)


def install_problem_handlers(app: FastAPI) -> None:
    """Register the handlers that turn every error into problem+json."""
    app.add_exception_handler(ProblemError, _on_problem)
    app.add_exception_handler(RequestValidationError, _on_validation)
    app.add_exception_handler(StarletteHTTPException, _on_http)
    app.add_exception_handler(Exception, _on_unexpected)
