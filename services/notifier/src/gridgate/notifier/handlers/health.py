"""Liveness, readiness and Prometheus metrics of the notifier."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse

from gridgate.observability import render_latest

router = APIRouter(tags=["health"])


@router.get("/healthz")
async def liveness() -> dict[str, str]:
    return {"status": "alive"}


@router.get("/readyz")
async def readiness(request: Request) -> JSONResponse:
    """Ready when the database answers, the broker is connected and both loops run."""
    checks = await request.app.state.notifier.readiness()
    ready = all(value == "ok" for value in checks.values())
    return JSONResponse({"ready": ready, "checks": checks}, status_code=200 if ready else 503)


@router.get("/metrics", include_in_schema=False)
async def metrics() -> Response:
    payload, content_type = render_latest()
    return Response(payload, media_type=content_type)
