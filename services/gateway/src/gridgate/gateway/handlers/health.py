"""Liveness, readiness and Prometheus metrics."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from sqlalchemy import text

from gridgate.broker import is_connected
from gridgate.observability import render_latest

DATABASE_CHECK_TIMEOUT_S = 2.0
"""A probe that waits on a silent database would itself time out and say nothing useful."""

router = APIRouter(tags=["health"])


@router.get("/healthz")
async def liveness() -> dict[str, str]:
    return {"status": "alive"}


async def readiness_checks(request: Request) -> dict[str, str]:
    """Each dependency's state, ``"ok"`` or why not: the database answers, the broker
    connection is up (not reconnecting) and the process is not shutting down."""
    context = request.app.state.context
    checks: dict[str, str] = {}
    try:
        async with asyncio.timeout(DATABASE_CHECK_TIMEOUT_S):
            async with context.engine.connect() as connection:
                await connection.execute(text("SELECT 1"))
        checks["database"] = "ok"
    except Exception as exc:
        checks["database"] = f"failed: {type(exc).__name__}"
    connection = getattr(request.app.state, "broker", None)
    checks["broker"] = "ok" if connection is not None and is_connected(connection) else "down"
    # Out of the Service's endpoints before the pod goes: new requests land elsewhere.
    checks["process"] = "shutting down" if context.notifier.closing else "ok"
    return checks


class Readiness(BaseModel):
    ready: bool
    checks: dict[str, str] = Field(description='Each dependency: "ok", or why not.')


@router.get(
    "/readyz",
    response_model=Readiness,
    responses={503: {"model": Readiness, "description": "Not ready: a check failed."}},
)
async def readiness(request: Request) -> JSONResponse:
    """Ready when every check of :func:`readiness_checks` is ok."""
    checks = await readiness_checks(request)
    ready = all(v == "ok" for v in checks.values())
    answer = Readiness(ready=ready, checks=checks)
    return JSONResponse(answer.model_dump(), status_code=200 if ready else 503)


@router.get("/metrics", include_in_schema=False)
async def metrics() -> Response:
    """Prometheus text format: job transitions by phase, report handling, process figures."""
    payload, content_type = render_latest()
    return Response(payload, media_type=content_type)
