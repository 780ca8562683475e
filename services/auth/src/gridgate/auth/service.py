"""The proxy service: who may have which proxy, for how long; cached, audited."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from dataclasses import dataclass
from typing import Protocol

import structlog

from gridgate.auth.groups import GroupMap
from gridgate.auth.proxies.base import IssuedProxy, ProxyProvider, ProxyRequest
from gridgate.core.clock import utcnow
from gridgate.core.errors import InvalidRequestError, ProblemError
from gridgate.iam.identity import Identity

audit = structlog.get_logger("gridgate.audit")


class CredentialLifetimeError(ProblemError):
    """The user's credential cannot outlive the job's execution duration plus the margin."""

    slug, title, status = "credential-lifetime-too-short", "Credential lifetime too short", 422


@dataclass(frozen=True)
class LifetimePolicy:
    default_s: int = 7200
    maximum_s: int = 43200
    cache_min_left_s: int = 1800


@dataclass(frozen=True)
class CredentialCheck:
    vo: str
    group: str
    obtainable_s: int


class NoSuchJobError(ProblemError):
    slug, title, status = "job-not-found", "Job not found", 404


@dataclass(frozen=True)
class JobOwner:
    sub: str
    vo: str
    group: str | None
    final: bool


class JobOwners(Protocol):
    """Who owns a job: the gateway answers (it alone keeps job state)."""

    async def owner_of(self, job_id: str) -> JobOwner | None: ...


class ProxyService:
    """Issues proxies for a token's own user, or for a job's owner to our workers."""

    def __init__(
        self,
        provider: ProxyProvider,
        groups: GroupMap,
        jobs: JobOwners,
        policy: LifetimePolicy,
    ) -> None:
        self.provider = provider
        self.groups = groups
        self.jobs = jobs
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

    async def check(
        self, identity: Identity, vo: str, group: str | None, min_lifetime_s: int
    ) -> CredentialCheck:
        """Can this user's proxy for the group last ``min_lifetime_s``? 403 or 422 if not."""
        choice = self.groups.choose(identity, group, vo)
        obtainable = min(
            self.policy.maximum_s,
            await self.provider.max_lifetime_s(identity.sub, choice.vo, choice.dirac_group),
        )
        if obtainable < min_lifetime_s:
            audit.warning(
                "credential check failed",
                sub=identity.sub,
                group=choice.dirac_group,
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
        return CredentialCheck(choice.vo, choice.dirac_group, obtainable)

    async def proxy_for_job(self, job_id: str, lifetime_s: int | None) -> IssuedProxy:
        """A proxy of a job's owner and group, for workers acting on that job.

        The gateway, the single source of job state, says whose job it is: a worker can only
        obtain the proxy of the user who submitted the job, and only while the job is live.
        """
        owner = await self.jobs.owner_of(job_id)
        if owner is None or owner.group is None or owner.final:
            audit.warning(
                "proxy refused",
                job_id=job_id,
                decision="refused",
                reason="no live job with a group",
            )
            raise NoSuchJobError(f"No live job {job_id} with a DIRAC group.")
        return await self._issue(
            ProxyRequest(owner.sub, owner.vo, owner.group, self._lifetime(lifetime_s)),
            job_id=job_id,
        )

    async def _issue(self, request: ProxyRequest, job_id: str | None = None) -> IssuedProxy:
        key = (request.sub, request.group)
        # One lock per (user, group): concurrent requests share one issuance, never cross.
        async with self._locks[key]:
            cached = self._cache.get(key)
            needed = max(self.policy.cache_min_left_s, int(request.lifetime_s * 0.9))
            if cached is not None and cached.seconds_left(utcnow()) >= needed:
                proxy, decision = cached, "cached"
            else:
                proxy, decision = await self.provider.issue(request), "issued"
                self._cache[key] = proxy
        audit.info(
            "proxy issued",
            sub=request.sub,
            group=request.group,
            job_id=job_id,
            serial=proxy.serial,
            not_after=proxy.not_after.isoformat(),
            provider=proxy.provider,
            decision=decision,
            identity=proxy.identity,
        )
        return proxy
