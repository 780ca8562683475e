"""DiracX access tokens: minted with the operator's legacy-exchange key, kept in memory.

DiracX issues its own tokens and offers no token exchange (RFC 8693); the one non-interactive
way for a service to act as a user is the operator-held legacy-exchange key. Holding it is the
same trust as DIRAC's robot with FullDelegation: it can act as any registered user. Tokens
live only in this process's memory; they are never logged, written or put on a queue.
"""

from __future__ import annotations

import asyncio
import base64
import time
from dataclasses import dataclass
from typing import Protocol

import httpx

from gridgate.core.errors import TransientError, UsageError

# A cached token is used while it has this long left (DiracX access tokens last 20 minutes).
MIN_LEFT_S = 120
LEGACY_EXCHANGE_PATH = "/api/auth/legacy-exchange"


class DiracXTokenRefusedError(UsageError):
    """DiracX refuses a token for this user and group (unknown user, wrong group, no key)."""


@dataclass(frozen=True)
class DiracXIdentity:
    """Who a token acts as: a DiracX username, in one VO and group."""

    user: str
    vo: str
    group: str

    @property
    def scope(self) -> str:
        return f"vo:{self.vo} group:{self.group}"


class JobTokens(Protocol):
    """Access tokens of a gridgate job's owner (the submitter and results act as owners)."""

    async def for_job(self, job_id: str) -> str: ...


class LegacyExchange:
    """Mints and caches access tokens for DiracX users with the legacy-exchange key."""

    def __init__(self, http: httpx.AsyncClient, key: str) -> None:
        self.http = http
        self._authorization = (
            "Bearer diracx:legacy:" + base64.urlsafe_b64encode(key.strip().encode()).decode()
        )
        self._cache: dict[DiracXIdentity, tuple[str, float]] = {}
        self._locks: dict[DiracXIdentity, asyncio.Lock] = {}

    async def token(self, identity: DiracXIdentity) -> str:
        lock = self._locks.setdefault(identity, asyncio.Lock())
        async with lock:
            cached = self._cache.get(identity)
            if cached is not None and cached[1] - time.time() > MIN_LEFT_S:
                return cached[0]
            token, expires = await self._mint(identity)
            self._cache[identity] = (token, expires)
            return token

    async def expires_at(self, identity: DiracXIdentity) -> float | None:
        cached = self._cache.get(identity)
        return cached[1] if cached else None

    async def _mint(self, identity: DiracXIdentity) -> tuple[str, float]:
        try:
            response = await self.http.get(
                LEGACY_EXCHANGE_PATH,
                params={"preferred_username": identity.user, "scope": identity.scope},
                headers={"Authorization": self._authorization},
            )
        except httpx.HTTPError as exc:
            raise TransientError(f"DiracX did not answer the token exchange: {exc!r}") from exc
        if response.status_code in (400, 401, 403):
            raise DiracXTokenRefusedError(
                f"DiracX gives no token for {identity.user} in {identity.group}: "
                f"{response.status_code}"
            )
        if response.status_code != 200:
            raise TransientError(f"DiracX answered the token exchange {response.status_code}")
        body = response.json()
        return str(body["access_token"]), time.time() + float(body.get("expires_in", 600))
