"""DiracX's own OAuth routes, as a client: the device flow, refresh and revocation.

A user links a DiracX account by DiracX's device flow: DiracX sends them to their VO's
identity provider and, once they are back, hands its client an access token and a refresh
token. DiracX rotates refresh tokens: each refresh revokes the one presented and returns a
new one that ends when the first did (DiracX 0.7.0 does not extend a link). Presenting a
revoked refresh token makes DiracX revoke all of that user's refresh tokens, so a caller must
never refresh with one token twice. Nothing here logs or keeps a token.
"""

from __future__ import annotations

import base64
import json
import time
from dataclasses import dataclass
from typing import Any

import httpx

from gridgate.core.errors import TransientError, UsageError

DEVICE_PATH = "/api/auth/device"
TOKEN_PATH = "/api/auth/token"  # noqa: S105 - a route, not a secret
REVOKE_PATH = "/api/auth/revoke"
DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
# DiracX's one client of its own API (DIRACX_SERVICE_AUTH_DIRAC_CLIENT_ID); no secret
DEFAULT_CLIENT_ID = "myDIRACClientID"


class DiracXGrantRefusedError(UsageError):
    """DiracX refuses the grant: a refresh token revoked or run out, a device code expired or
    already used, a user not in the group asked for."""


@dataclass(frozen=True)
class DeviceLogin:
    """What the user needs to approve a device login, and what the client polls with."""

    device_code: str
    user_code: str
    verification_uri: str
    verification_uri_complete: str
    expires_in: int


@dataclass(frozen=True)
class TokenGrant:
    access_token: str
    access_expires_at: float
    refresh_token: str
    refresh_expires_at: float
    username: str


def _claims(token: str) -> dict[str, Any]:
    """A DiracX JWT's claims, unverified: we are its holder, not its audience, and read only
    when it ends and whose it is."""
    try:
        payload = token.split(".")[1]
        return dict(json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))))
    except (IndexError, ValueError) as exc:
        raise TransientError("DiracX answered a token that is not a JWT") from exc


class DiracXOAuth:
    """The device flow, refresh and revocation against one DiracX installation."""

    def __init__(self, http: httpx.AsyncClient, client_id: str = DEFAULT_CLIENT_ID) -> None:
        self.http = http
        self.client_id = client_id

    async def start_device_login(self, vo: str, group: str) -> DeviceLogin:
        body = await self._call(
            "POST",
            DEVICE_PATH,
            params={"client_id": self.client_id, "scope": f"vo:{vo} group:{group}"},
        )
        return DeviceLogin(
            device_code=str(body["device_code"]),
            user_code=str(body["user_code"]),
            verification_uri=str(body["verification_uri"]),
            verification_uri_complete=str(body["verification_uri_complete"]),
            expires_in=int(str(body["expires_in"])),
        )

    async def poll_device_login(self, device_code: str) -> TokenGrant | None:
        """The tokens once the user approved; ``None`` while they have not yet."""
        data = {"grant_type": DEVICE_GRANT, "client_id": self.client_id}
        return await self._grant(data | {"device_code": device_code}, pending_ok=True)

    async def refresh(self, refresh_token: str) -> TokenGrant:
        data = {"grant_type": "refresh_token", "client_id": self.client_id}
        grant = await self._grant(data | {"refresh_token": refresh_token}, pending_ok=False)
        assert grant is not None
        return grant

    async def revoke(self, refresh_token: str) -> None:
        await self._call(
            "POST",
            REVOKE_PATH,
            data={
                "token": refresh_token,
                "token_type_hint": "refresh_token",
                "client_id": self.client_id,
            },
        )

    async def _grant(self, data: dict[str, str], *, pending_ok: bool) -> TokenGrant | None:
        try:
            response = await self.http.post(TOKEN_PATH, data=data)
        except httpx.HTTPError as exc:
            raise TransientError(f"DiracX did not answer its token route: {exc!r}") from exc
        if response.status_code == 400 and pending_ok:
            body = response.json() if response.content else {}
            if body.get("error") == "authorization_pending":
                return None
        if response.status_code in (400, 401, 403):
            raise DiracXGrantRefusedError(
                f"DiracX refuses the grant ({response.status_code}): {_detail(response)}"
            )
        if response.status_code != 200:
            raise TransientError(f"DiracX's token route answered {response.status_code}")
        body = response.json()
        access, refresh = str(body["access_token"]), str(body["refresh_token"])
        refresh_claims, access_claims = _claims(refresh), _claims(access)
        return TokenGrant(
            access_token=access,
            access_expires_at=time.time() + float(body.get("expires_in", 600)),
            refresh_token=refresh,
            refresh_expires_at=float(refresh_claims["exp"]),
            username=str(access_claims.get("preferred_username", "")),
        )

    async def _call(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        try:
            response = await self.http.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            raise TransientError(f"DiracX did not answer {path}: {exc!r}") from exc
        if response.status_code in (400, 401, 403):
            raise DiracXGrantRefusedError(
                f"DiracX refuses {path} ({response.status_code}): {_detail(response)}"
            )
        if response.status_code >= 300:
            raise TransientError(f"DiracX answered {path} with {response.status_code}")
        body = response.json()
        return body if isinstance(body, dict) else {}


def _detail(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return ""
    detail = body.get("detail") or body.get("error") or "" if isinstance(body, dict) else ""
    # DiracX's details name scopes, users and groups, never a token
    return str(detail)[:300]
