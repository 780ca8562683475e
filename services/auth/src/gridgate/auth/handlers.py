"""The auth service's routes: the development issuer (when enabled) and health."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from gridgate.core.errors import NotFoundError
from gridgate.iam.dev_issuer import DevIssuer

router = APIRouter()


def _issuer(request: Request) -> DevIssuer:
    issuer: DevIssuer | None = request.app.state.dev_issuer
    if issuer is None:
        raise NotFoundError("The development issuer is not enabled on this deployment.")
    return issuer


@router.get("/dev-issuer/.well-known/openid-configuration")
async def discovery(request: Request) -> dict[str, Any]:
    return _issuer(request).discovery()


@router.get("/dev-issuer/jwks")
async def jwks(request: Request) -> dict[str, Any]:
    return _issuer(request).jwks()


@router.get("/healthz")
async def liveness() -> dict[str, str]:
    return {"status": "alive"}


@router.get("/readyz")
async def readiness() -> dict[str, bool]:
    return {"ready": True}
