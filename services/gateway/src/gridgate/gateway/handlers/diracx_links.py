"""Users link their DiracX account (diracx-user-link): the routes the CLI and portal use."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from gridgate.gateway.dependencies import User
from gridgate.gateway.services.diracx_links import DiracXLinkRelay
from gridgate.web.openapi import problem_responses

router = APIRouter(prefix="/api/diracx-links", tags=["diracx"])


class LinkAsk(BaseModel):
    model_config = ConfigDict(extra="forbid")
    vo: str = Field(min_length=1, max_length=64, description="The VO whose account to link.")
    group: str | None = Field(
        default=None,
        min_length=1,
        max_length=64,
        description="DiracX group; the first one your groups map to if unset.",
    )


class DiracXLink(BaseModel):
    """A link as its owner sees it: never a token."""

    vo: str
    group: str
    status: str = Field(description="pending, linked, revoked or expired.")
    diracx_user: str | None
    expires_at: float | None = Field(description="When the link runs out (Unix time).")
    reason: str | None
    user_code: str | None = Field(default=None, description="While a login is under way.")
    verification_uri: str | None = Field(
        default=None, description="Open it and approve the login at your VO's IdP."
    )
    device_expires_at: float | None = None


class DiracXLinkList(BaseModel):
    links: list[DiracXLink]


def _relay(request: Request) -> DiracXLinkRelay:
    relay: DiracXLinkRelay = request.app.state.context.diracx_links
    return relay


@router.post("", status_code=201, responses=problem_responses(401, 403, 422, 503))
async def start_link(request: Request, user: User, ask: LinkAsk) -> DiracXLink:
    """Start linking your DiracX account: open `verification_uri`, approve the login, then
    `POST .../{vo}/{group}/complete`."""
    auth = request.headers["authorization"]
    return DiracXLink(**await _relay(request).start(auth, ask.vo, ask.group))


@router.post("/{vo}/{group}/complete", responses=problem_responses(401, 403, 409, 422, 503))
async def complete_link(request: Request, user: User, vo: str, group: str) -> DiracXLink:
    """Ask once whether you approved the login: `status` is `linked` once you did."""
    auth = request.headers["authorization"]
    return DiracXLink(**await _relay(request).complete(auth, vo, group))


@router.get("", responses=problem_responses(401, 503))
async def list_links(request: Request, user: User) -> DiracXLinkList:
    """Your DiracX links, their status and when each runs out."""
    auth = request.headers["authorization"]
    return DiracXLinkList(**await _relay(request).links(auth))


@router.delete("/{vo}/{group}", status_code=204, responses=problem_responses(401, 403, 503))
async def revoke_link(request: Request, user: User, vo: str, group: str) -> Response:
    """Unlink: DiracX revokes the refresh token and gridgate forgets it."""
    await _relay(request).revoke(request.headers["authorization"], vo, group)
    return Response(status_code=204)
