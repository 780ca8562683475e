"""A worker's DIRAC facilities, built from its settings and closed with it."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import httpx

from gridgate.dirac.connection import DiracConnection
from gridgate.dirac.facility import DiracFacility
from gridgate.dirac.proxies import JobProxies


@dataclass
class DiracAccess:
    """DIRAC facilities by catalogue id, and the HTTP client that fetches owners' proxies."""

    facilities: dict[str, DiracFacility]
    http: httpx.AsyncClient | None = None

    @classmethod
    def open(
        cls,
        connections: Mapping[str, DiracConnection],
        *,
        auth_url: str | None = None,
        internal_token: str = "",
    ) -> DiracAccess:
        """Without ``auth_url`` the facilities act only as the robot (status and peeks)."""
        if not connections:
            return cls({})
        http = None
        proxies = None
        if auth_url:
            http = httpx.AsyncClient(base_url=auth_url, timeout=60.0)
            proxies = JobProxies(http, internal_token)
        facilities = {
            name: DiracFacility(name, connection, proxies)
            for name, connection in connections.items()
        }
        return cls(facilities, http)

    async def aclose(self) -> None:
        for facility in self.facilities.values():
            await facility.close()
        if self.http is not None:
            await self.http.aclose()
