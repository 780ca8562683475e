"""The proxy service: who may have which proxy, for how long; cached, audited."""

from __future__ import annotations

import asyncio
import time
from collections import defaultdict
from dataclasses import dataclass

import structlog

from gridgate.auth.grants import Grant, GrantSigner
from gridgate.auth.groups import GroupMap
from gridgate.auth.proxies.base import IssuedProxy, ProxyProvider, ProxyRequest
from gridgate.core.clock import utcnow
from gridgate.core.errors import InvalidRequestError, ProblemError
from gridgate.iam.identity import Identity

audit = structlog.get_logger("gridgate.audit")


class CredentialLifetimeError(ProblemError):
    slug, title, status = "credential-lifetime-too-short", "Credential lifetime too short", 422


@dataclass(frozen=True)
class LifetimePolicy:
    default_s: int = 7200
    maximum_s: int = 43200
    cache_min_left_s: int = 1800


@dataclass(frozen=True)
class GrantAnswer:
    grant: str
    vo: str
    group: str
    obtainable_s: int


class ProxyService:
    """Issues proxies for a token's own user, or for a job through its grant."""

    def __init__(
        self,
        provider: ProxyProvider,
        groups: GroupMap,
        signer: GrantSigner,
        policy: LifetimePolicy,
    ) -> None:
        self.provider = provider
        self.groups = groups
        self.signer = signer
        self.policy = policy
        self._cache: dict[tuple[str, str], IssuedProxy] = {}
        self._locks: defaultdict[tuple[str, str], asyncio.Lock] = defaultdict(asyncio.Lock)

    def _lifetime(self, asked: int | None) -> int:
        lifetime = self.policy.default_s if asked is None else asked
        if not 300 <= lifetime <= self.policy.maximum_s:
            raise InvalidRequestError(
                f"lifetime_s must be between 300 and {self.policy.maximum_s} seconds.",
                errors=[{"field": "lifetime_s", "message": "out of range"}],
            )
        return lifetime

    async def proxy_for_user(
        self, identity: Identity, group: str | None, lifetime_s: int | None
    ) -> IssuedProxy:
        """A proxy for the token's own user (``sub``) and a DIRAC group they hold."""
        try:
            choice = self.groups.choose(identity, group)
        except ProblemError as exc:
            audit.warning(
                "proxy refused", sub=identity.sub, group=group, decision="refused", reason=exc.slug
            )
            raise
        return await self._issue(
            ProxyRequest(identity.sub, choice.vo, choice.dirac_group, self._lifetime(lifetime_s))
        )

    async def grant(
        self, identity: Identity, vo: str, group: str | None, job_id: str, min_lifetime_s: int
    ) -> GrantAnswer:
        """Check a job can get its owner's proxy for long enough; sign a grant for it."""
        choice = self.groups.choose(identity, group, vo)
        obtainable = min(
            self.policy.maximum_s,
            await self.provider.max_lifetime_s(identity.sub, choice.vo, choice.dirac_group),
        )
        if obtainable < min_lifetime_s:
            audit.warning(
                "grant refused",
                sub=identity.sub,
                group=choice.dirac_group,
                job_id=job_id,
                decision="refused",
                reason="lifetime",
                obtainable_s=obtainable,
                needed_s=min_lifetime_s,
            )
            raise CredentialLifetimeError(
                f"A credential for {choice.dirac_group} can last at most {obtainable} s, but the "
                f"job needs {min_lifetime_s} s (its execution duration plus a margin). Shorten "
                "the job's executionduration or renew your long-lived credential.",
                obtainable_s=obtainable,
                needed_s=min_lifetime_s,
            )
        token = self.signer.sign(
            Grant(
                sub=identity.sub,
                vo=choice.vo,
                group=choice.dirac_group,
                job_id=job_id,
                expires_at=int(time.time()) + 30 * 86400,
            )
        )
        audit.info(
            "grant issued",
            sub=identity.sub,
            group=choice.dirac_group,
            job_id=job_id,
            decision="granted",
        )
        return GrantAnswer(token, choice.vo, choice.dirac_group, obtainable)

    async def proxy_for_grant(self, grant_token: str, lifetime_s: int | None) -> IssuedProxy:
        """A proxy for the user and group a grant names (workers acting for a job)."""
        grant = self.signer.verify(grant_token)
        return await self._issue(
            ProxyRequest(grant.sub, grant.vo, grant.group, self._lifetime(lifetime_s)),
            job_id=grant.job_id,
        )

    async def _issue(self, request: ProxyRequest, job_id: str | None = None) -> IssuedProxy:
        key = (request.sub, request.group)
        # One lock per (user, group): concurrent requests share one issuance, never cross.
        async with self._locks[key]:
            cached = self._cache.get(key)
            needed = max(self.policy.cache_min_left_s, int(request.lifetime_s * 0.9))
            if cached is not None and cached.seconds_left(utcnow()) >= needed:
                audit.info(
                    "proxy issued",
                    sub=request.sub,
                    group=request.group,
                    job_id=job_id,
                    serial=cached.serial,
                    not_after=cached.not_after.isoformat(),
                    provider=cached.provider,
                    decision="cached",
                )
                return cached
            issued = await self.provider.issue(request)
            self._cache[key] = issued
        audit.info(
            "proxy issued",
            sub=request.sub,
            group=request.group,
            job_id=job_id,
            serial=issued.serial,
            not_after=issued.not_after.isoformat(),
            provider=issued.provider,
            decision="issued",
            identity=issued.identity,
        )
        return issued
