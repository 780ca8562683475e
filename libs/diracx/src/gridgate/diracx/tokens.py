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

from gridgate.contracts.internal import DIRACX_TOKEN_PATH, INTERNAL_TOKEN_HEADER
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


class DiracXTokens(Protocol):
    """Where a DiracX facility gets its tokens: a job owner's, and the robot's."""

    async def for_job(self, job_id: str) -> str: ...

    async def robot(self) -> str: ...


class ExchangeTokens:
    """Tokens minted here with the legacy-exchange key: the auth service's diracx-exchange
    mode, and the tests' and benchmarks' direct use of the testbed."""

    def __init__(
        self,
        exchange: LegacyExchange,
        owners: dict[str, DiracXIdentity] | None = None,
        robot: DiracXIdentity | None = None,
    ) -> None:
        self.exchange = exchange
        self.owners = owners if owners is not None else {}
        self.robot_identity = robot

    async def for_job(self, job_id: str) -> str:
        identity = self.owners.get(job_id)
        if identity is None:
            raise DiracXTokenRefusedError(f"No DiracX owner known for job {job_id}")
        return await self.exchange.token(identity)

    async def robot(self) -> str:
        if self.robot_identity is None:
            raise DiracXTokenRefusedError("No DiracX robot is configured")
        return await self.exchange.token(self.robot_identity)


class AuthServiceTokens:
    """Tokens asked of the auth service over its internal route; kept in memory only.

    The auth service holds the legacy-exchange key (or the users' linked refresh tokens);
    workers hold only short-lived access tokens, never on disk, a queue or in a log.
    """

    def __init__(self, http: httpx.AsyncClient, internal_token: str) -> None:
        self.http = http
        self.internal_token = internal_token
        self._cache: dict[str, tuple[str, float]] = {}
        self._locks: dict[str, asyncio.Lock] = {}

    async def for_job(self, job_id: str) -> str:
        return await self._get(job_id, {"job_id": job_id})

    async def robot(self) -> str:
        return await self._get("", {"robot": True})

    async def _get(self, key: str, ask: dict[str, object]) -> str:
        lock = self._locks.setdefault(key, asyncio.Lock())
        async with lock:
            cached = self._cache.get(key)
            if cached is not None and cached[1] - time.time() > MIN_LEFT_S:
                return cached[0]
            try:
                response = await self.http.post(
                    DIRACX_TOKEN_PATH,
                    json=ask,
                    headers={INTERNAL_TOKEN_HEADER: self.internal_token},
                )
            except httpx.HTTPError as exc:
                raise TransientError(f"the auth service did not answer: {exc!r}") from exc
            if response.status_code in (403, 404, 422):
                detail = response.json().get("detail", "") if response.content else ""
                raise DiracXTokenRefusedError(f"No DiracX token ({key or 'robot'}): {detail}")
            if response.status_code != 200:
                raise TransientError(f"the auth service answered {response.status_code}")
            body = response.json()
            token, expires = str(body["access_token"]), float(body["expires_at"])
            self._cache[key] = (token, expires)
        self._locks.pop(key, None)
        return token
