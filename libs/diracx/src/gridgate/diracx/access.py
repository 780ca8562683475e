"""A worker's DiracX facilities, built from its settings and closed with it."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

import httpx

from gridgate.diracx.connection import DiracXConnection
from gridgate.diracx.tokens import AuthServiceTokens

if TYPE_CHECKING:
    from gridgate.diracx.facility import DiracXFacility


@dataclass
class DiracXAccess:
    """DiracX facilities by catalogue id, and the HTTP client that asks auth for tokens."""

    facilities: dict[str, DiracXFacility]
    http: httpx.AsyncClient | None = None

    @classmethod
    def open(
        cls, connections: Mapping[str, DiracXConnection], *, auth_url: str, internal_token: str
    ) -> DiracXAccess:
        if not connections:
            return cls({})
        # The official client (diracx, azure-core, ~8 MiB and 0.3 s) only for a worker that
        # serves a DiracX facility: most deployments have none (issue 16, P4).
        from gridgate.diracx.facility import DiracXFacility

        http = httpx.AsyncClient(base_url=auth_url, timeout=60.0)
        tokens = AuthServiceTokens(http, internal_token)
        facilities = {
            name: DiracXFacility(name, connection, tokens)
            for name, connection in connections.items()
        }
        return cls(facilities, http)

    async def aclose(self) -> None:
        for facility in self.facilities.values():
            await facility.close()
        if self.http is not None:
            await self.http.aclose()
