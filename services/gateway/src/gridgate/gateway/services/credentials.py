"""Asking the auth service whether a job's owner can have a long-enough credential: a proxy
for DIRAC, a DiracX token (or a live DiracX link) for DiracX."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

import httpx

from gridgate.contracts.internal import CREDENTIAL_CHECK_PATH, INTERNAL_TOKEN_HEADER
from gridgate.core.errors import PROBLEM_TYPE_PREFIX, ProblemError
from gridgate.iam.identity import Identity


@dataclass(frozen=True)
class CredentialCheck:
    vo: str
    group: str
    obtainable_s: int


class CredentialUnavailableError(ProblemError):
    """The auth service did not answer; retry later."""

    slug, title, status = "credential-service-unavailable", "Credential service unavailable", 503


class RemoteProblemError(ProblemError):
    """A problem the auth service reported, passed on to the client as it was."""

    def __init__(self, body: dict[str, Any]) -> None:
        extra = {
            k: v
            for k, v in body.items()
            if k not in {"type", "title", "status", "detail", "instance"}
        }
        super().__init__(str(body.get("detail", "")), **extra)
        self.slug = str(body.get("type", "")).removeprefix(PROBLEM_TYPE_PREFIX) or "auth-error"
        self.title = str(body.get("title", "Credential refused"))
        self.status = int(body.get("status", 403))


class CredentialChecker(Protocol):
    async def check(
        self,
        identity: Identity,
        vo: str,
        group: str | None,
        min_lifetime_s: int,
        kind: str = "dirac",
    ) -> CredentialCheck: ...


class AuthCredentialChecker:
    """The auth service's internal credential check, over HTTP with the shared secret."""

    def __init__(self, http: httpx.AsyncClient, internal_token: str) -> None:
        self.http = http
        self.internal_token = internal_token

    async def check(
        self,
        identity: Identity,
        vo: str,
        group: str | None,
        min_lifetime_s: int,
        kind: str = "dirac",
    ) -> CredentialCheck:
        """``kind`` is the facility's: a proxy (dirac) or a DiracX token or link (diracx)."""
        try:
            response = await self.http.post(
                CREDENTIAL_CHECK_PATH,
                json={
                    "sub": identity.sub,
                    "groups": list(identity.groups),
                    "vo": vo,
                    "group": group,
                    "min_lifetime_s": min_lifetime_s,
                    "kind": kind,
                },
                headers={INTERNAL_TOKEN_HEADER: self.internal_token},
            )
        except httpx.HTTPError as exc:
            raise CredentialUnavailableError(
                "The credential service did not answer; try again shortly."
            ) from exc
        if response.status_code in (403, 422):
            raise RemoteProblemError(response.json())
        if response.status_code != 200:
            raise CredentialUnavailableError(
                f"The credential service answered {response.status_code}."
            )
        body = response.json()
        return CredentialCheck(
            vo=body["vo"], group=body["group"], obtainable_s=int(body["obtainable_s"])
        )
