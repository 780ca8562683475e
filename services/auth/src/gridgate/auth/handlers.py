"""The auth service's routes: proxies for users and for jobs, checks, the development issuer."""

from __future__ import annotations

import hmac
from dataclasses import asdict
from typing import TYPE_CHECKING, Annotated, Any, Literal

from fastapi import APIRouter, Header, Request
from pydantic import BaseModel, ConfigDict, Field
from starlette.responses import JSONResponse, Response

from gridgate.auth.diracx_tokens import DiracXTokenService, DiracXUnavailableError
from gridgate.auth.links.keys import LINK_ROUTE, LinkKey
from gridgate.auth.proxies.base import IssuedProxy
from gridgate.auth.service import ProxyService
from gridgate.contracts.internal import (
    CREDENTIAL_CHECK_PATH,
    DIRACX_TOKEN_PATH,
    INTERNAL_TOKEN_HEADER,
    JOB_PROXY_PATH,
)
from gridgate.core.errors import InvalidRequestError, NotFoundError, ProblemError
from gridgate.iam.dev_issuer import DevIssuer
from gridgate.iam.identity import Identity

if TYPE_CHECKING:
    # Links (and SQLAlchemy under them) exist only in diracx-user-link mode (ADR 0019).
    from gridgate.auth.links.service import DiracXLinkService

router = APIRouter()
PEM_MEDIA_TYPE = "application/x-pem-file"


class InternalAuthError(ProblemError):
    """An internal route was called without the right internal token; only gridgate's own services
    call these."""

    slug, title, status = "internal-auth-failed", "Internal authentication failed", 401


class ProxyAsk(BaseModel):
    model_config = ConfigDict(extra="forbid")
    group: str | None = Field(default=None, description="DIRAC group; your first one if unset")
    lifetime_s: int | None = None


class CheckAsk(BaseModel):
    model_config = ConfigDict(extra="forbid")
    sub: str
    groups: list[str]
    vo: str
    group: str | None = None
    min_lifetime_s: int = Field(ge=0)
    kind: Literal["dirac", "diracx"] = Field(
        default="dirac", description="The facility's kind: a proxy (dirac) or a DiracX token."
    )


class JobProxyAsk(BaseModel):
    model_config = ConfigDict(extra="forbid")
    job_id: str
    lifetime_s: int | None = None


class ProxiesUnavailableError(ProblemError):
    """This auth service has no proxy provider configured."""

    slug, title, status = "proxies-unavailable", "No proxy provider configured", 503


def _service(request: Request) -> ProxyService:
    service: ProxyService | None = getattr(request.app.state, "proxies", None)
    if service is None:
        raise ProxiesUnavailableError("This auth service has no proxy provider configured.")
    return service


def _check_internal(request: Request, presented: str | None) -> None:
    expected = request.app.state.internal_token
    if not expected or not presented or not hmac.compare_digest(expected, presented):
        raise InternalAuthError("This route is for gridgate's own services.")


def _pem_response(proxy: IssuedProxy) -> Response:
    return Response(
        proxy.pem,
        media_type=PEM_MEDIA_TYPE,
        headers={
            "X-Proxy-Not-After": proxy.not_after.isoformat(),
            "X-Proxy-Serial": str(proxy.serial),
            "X-Proxy-Identity": proxy.identity,
            "Cache-Control": "no-store",
        },
    )


@router.post("/api/v1/proxies")
async def proxy_for_token(request: Request, ask: ProxyAsk) -> Response:
    """Swap your IAM access token for a short-lived x509 proxy of a DIRAC group you hold."""
    identity: Identity = await request.app.state.authenticator(request)
    proxy = await _service(request).proxy_for_user(identity, ask.group, ask.lifetime_s)
    return _pem_response(proxy)


@router.post(CREDENTIAL_CHECK_PATH)
async def check_credential(
    request: Request,
    ask: CheckAsk,
    token: Annotated[str | None, Header(alias=INTERNAL_TOKEN_HEADER)] = None,
) -> dict[str, Any]:
    """The gateway, at submission: can this user's proxy for the group last long enough?"""
    _check_internal(request, token)
    identity = Identity(sub=ask.sub, groups=tuple(g.strip("/") for g in ask.groups), vos=(ask.vo,))
    checker = _diracx(request) if ask.kind == "diracx" else _service(request)
    answer = await checker.check(identity, ask.vo, ask.group, ask.min_lifetime_s)
    return {"vo": answer.vo, "group": answer.group, "obtainable_s": answer.obtainable_s}


@router.post(JOB_PROXY_PATH)
async def proxy_for_job(
    request: Request,
    ask: JobProxyAsk,
    token: Annotated[str | None, Header(alias=INTERNAL_TOKEN_HEADER)] = None,
) -> Response:
    """Workers: the proxy of a live job's owner, in the job's DIRAC group."""
    _check_internal(request, token)
    return _pem_response(await _service(request).proxy_for_job(ask.job_id, ask.lifetime_s))


class DiracXTokenAsk(BaseModel):
    model_config = ConfigDict(extra="forbid")
    job_id: str | None = None
    robot: bool = False


@router.post(DIRACX_TOKEN_PATH)
async def diracx_token(
    request: Request,
    ask: DiracXTokenAsk,
    token: Annotated[str | None, Header(alias=INTERNAL_TOKEN_HEADER)] = None,
) -> JSONResponse:
    """Workers: a DiracX access token of a live job's owner, or of gridgate's robot."""
    _check_internal(request, token)
    service = _diracx(request)
    if ask.robot == (ask.job_id is not None):
        raise InvalidRequestError("Ask for one job_id, or for the robot.")
    issued = await (service.for_robot() if ask.robot else service.for_job(str(ask.job_id)))
    return JSONResponse(
        {"access_token": issued.access_token, "expires_at": issued.expires_at},
        headers={"Cache-Control": "no-store"},
    )


def _diracx(request: Request) -> DiracXTokenService:
    service: DiracXTokenService | None = getattr(request.app.state, "diracx", None)
    if service is None:
        raise DiracXUnavailableError("This auth service has no DiracX credentials configured.")
    return service


class LinkAsk(BaseModel):
    model_config = ConfigDict(extra="forbid")
    vo: str = Field(description="The VO whose DiracX account to link.")
    group: str | None = Field(
        default=None, description="DiracX group; the first one your groups map to if unset."
    )


async def _link_key(
    request: Request, vo: str, group: str | None
) -> tuple[DiracXLinkService, LinkKey]:
    """The caller's link service and key: only groups the caller's IAM token maps to."""
    identity: Identity = await request.app.state.authenticator(request)
    service = _diracx(request)
    if service.links is None:
        raise DiracXUnavailableError("This deployment does not use DiracX links (diracx-exchange).")
    choice = service.groups.choose(identity, group, vo)
    return service.links, LinkKey(identity.sub, choice.vo, choice.dirac_group)


@router.post(LINK_ROUTE, status_code=201)
async def start_diracx_link(request: Request, ask: LinkAsk) -> JSONResponse:
    """Start linking your DiracX account: open `verification_uri` and approve the login, then
    call `.../complete`."""
    links, key = await _link_key(request, ask.vo, ask.group)
    view = await links.start(key)
    return JSONResponse(asdict(view), status_code=201, headers={"Cache-Control": "no-store"})


@router.post(LINK_ROUTE + "/{vo}/{group}/complete")
async def complete_diracx_link(request: Request, vo: str, group: str) -> dict[str, Any]:
    """Ask once whether you approved the login; `status` is `linked` once you did."""
    links, key = await _link_key(request, vo, group)
    return asdict(await links.complete(key))


@router.get(LINK_ROUTE)
async def list_diracx_links(request: Request) -> dict[str, Any]:
    """Your DiracX links and when each runs out (never a token)."""
    identity: Identity = await request.app.state.authenticator(request)
    service = _diracx(request)
    if service.links is None:
        return {"links": []}
    return {"links": [asdict(view) for view in await service.links.links(identity.sub)]}


@router.delete(LINK_ROUTE + "/{vo}/{group}", status_code=204)
async def revoke_diracx_link(request: Request, vo: str, group: str) -> Response:
    """Unlink: DiracX revokes the refresh token and gridgate forgets it."""
    links, key = await _link_key(request, vo, group)
    await links.revoke(key)
    return Response(status_code=204)


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
