"""Users' DiracX links, relayed to the auth service, which alone holds them (ADR 0016).

The gateway is the API users and the portal reach; the auth service stays internal. A link
request goes on to auth's own link routes with the user's bearer token, which auth checks
again: the gateway never sees a DiracX token, only the link's status and end.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import httpx

from gridgate.gateway.services.credentials import CredentialUnavailableError, RemoteProblemError

AUTH_LINKS = "/api/v1/diracx-links"


class DiracXLinkRelay:
    def __init__(self, http: httpx.AsyncClient) -> None:
        self.http = http

    async def start(self, authorization: str, vo: str, group: str | None) -> dict[str, Any]:
        return await self._call("POST", "", authorization, {"vo": vo, "group": group})

    async def complete(self, authorization: str, vo: str, group: str) -> dict[str, Any]:
        return await self._call(
            "POST", f"/{_segment(vo)}/{_segment(group)}/complete", authorization
        )

    async def links(self, authorization: str) -> dict[str, Any]:
        return await self._call("GET", "", authorization)

    async def revoke(self, authorization: str, vo: str, group: str) -> None:
        await self._call("DELETE", f"/{_segment(vo)}/{_segment(group)}", authorization)

    async def _call(
        self, method: str, suffix: str, authorization: str, body: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        try:
            response = await self.http.request(
                method, AUTH_LINKS + suffix, headers={"Authorization": authorization}, json=body
            )
        except httpx.HTTPError as exc:
            raise CredentialUnavailableError(
                "The credential service did not answer; try again shortly."
            ) from exc
        if 400 <= response.status_code < 500 and _is_problem(response):
            raise RemoteProblemError(response.json())
        if response.status_code >= 300:
            raise CredentialUnavailableError(
                f"The credential service answered {response.status_code}."
            )
        return dict(response.json()) if response.content else {}


def _segment(value: str) -> str:
    # a VO or group as one path segment: nothing of it can reach another auth route
    return quote(value, safe="")


def _is_problem(response: httpx.Response) -> bool:
    return str(response.headers.get("content-type", "")).startswith("application/problem+json")
