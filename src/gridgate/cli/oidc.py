"""OAuth 2.0 Device Authorization Grant (RFC 8628) and token refresh against an OIDC issuer.

The user's browser does the login at the issuer; this side only asks for a device code,
shows where to go, and polls the token endpoint until the user approved (or refused).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx

from gridgate.cli import exits
from gridgate.cli.api import ApiError
from gridgate.cli.credentials import Credential

DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
DEFAULT_SCOPE = "openid profile wlcg.groups offline_access"


@dataclass
class DeviceCode:
    """What the issuer answered at its device authorization endpoint."""

    device_code: str
    user_code: str
    verification_uri: str
    verification_uri_complete: str | None
    expires_in: int
    interval: int


def _fail(message: str, code: int = exits.AUTH) -> ApiError:
    return ApiError(message, code)


class DeviceFlow:
    """One device login at ``issuer`` as public client ``client_id``."""

    def __init__(
        self,
        issuer: str,
        client_id: str,
        *,
        scope: str = DEFAULT_SCOPE,
        resource: str | None = None,
        http: httpx.Client | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.issuer = issuer.rstrip("/")
        self.client_id = client_id
        self.scope = scope
        self.resource = resource
        self.http = http or httpx.Client(timeout=30.0)
        self.sleep = sleep
        self._metadata: dict[str, Any] | None = None

    def metadata(self) -> dict[str, Any]:
        """The issuer's discovery document (OpenID Connect Discovery 1.0)."""
        if self._metadata is None:
            url = f"{self.issuer}/.well-known/openid-configuration"
            try:
                answer = self.http.get(url)
            except httpx.TransportError as exc:
                raise _fail(
                    f"cannot reach the issuer {self.issuer}: {exc}", exits.UNREACHABLE
                ) from exc
            if not answer.is_success:
                raise _fail(f"{url} answered {answer.status_code}", exits.UNREACHABLE)
            self._metadata = dict(answer.json())
        return self._metadata

    def start(self) -> DeviceCode:
        endpoint = self.metadata().get("device_authorization_endpoint")
        if not endpoint:
            raise _fail(f"the issuer {self.issuer} offers no device authorization endpoint")
        form = {"client_id": self.client_id, "scope": self.scope}
        if self.resource:
            form["resource"] = self.resource
        answer = self.http.post(endpoint, data=form)
        body = answer.json()
        if not answer.is_success:
            raise _fail(f"the issuer refused the device login: {_describe(body)}")
        return DeviceCode(
            device_code=body["device_code"],
            user_code=body["user_code"],
            verification_uri=body["verification_uri"],
            verification_uri_complete=body.get("verification_uri_complete"),
            expires_in=int(body.get("expires_in", 600)),
            interval=int(body.get("interval", 5)),
        )

    def poll(self, code: DeviceCode) -> Credential:
        """Ask for the token every ``interval`` s until approved, refused or expired."""
        token_endpoint = self.metadata()["token_endpoint"]
        deadline = time.monotonic() + code.expires_in
        interval = float(code.interval)
        while time.monotonic() < deadline:
            self.sleep(interval)
            form = {"grant_type": DEVICE_GRANT, "device_code": code.device_code}
            form["client_id"] = self.client_id
            answer = self.http.post(token_endpoint, data=form)
            body = answer.json()
            if answer.is_success:
                return self._credential(body, token_endpoint)
            error = body.get("error")
            if error == "authorization_pending":
                continue
            if error == "slow_down":  # RFC 8628 §3.5: five seconds more from now on
                interval += 5
                continue
            raise _fail(f"login failed: {_describe(body)}")
        raise _fail("login timed out: the code was not approved in time", exits.TIMEOUT)

    def refresh(self, credential: Credential) -> Credential:
        """New tokens from the refresh token (RFC 6749 §6)."""
        if not credential.refresh_token:
            raise _fail("the token expired and there is no refresh token: gridgate login again")
        token_endpoint = credential.token_endpoint or self.metadata()["token_endpoint"]
        form = {
            "grant_type": "refresh_token",
            "refresh_token": credential.refresh_token,
            "client_id": self.client_id,
        }
        if self.resource:
            form["resource"] = self.resource
        answer = self.http.post(token_endpoint, data=form)
        body = answer.json()
        if not answer.is_success:
            raise _fail(f"the token could not be refreshed ({_describe(body)}): gridgate login")
        renewed = self._credential(body, token_endpoint)
        renewed.refresh_token = renewed.refresh_token or credential.refresh_token
        return renewed

    def _credential(self, body: dict[str, Any], token_endpoint: str) -> Credential:
        expires_in = body.get("expires_in")
        return Credential(
            access_token=body["access_token"],
            issuer=self.issuer,
            client_id=self.client_id,
            expires_at=time.time() + float(expires_in) if expires_in else None,
            refresh_token=body.get("refresh_token"),
            token_endpoint=token_endpoint,
        )


def _describe(body: dict[str, Any]) -> str:
    error = body.get("error", "error")
    detail = body.get("error_description")
    return f"{error}: {detail}" if detail else str(error)
