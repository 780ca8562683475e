"""Job owners' proxies, asked of the auth service over its internal route; kept in memory."""

from __future__ import annotations

import asyncio
import time
from datetime import datetime

import httpx

from gridgate.contracts.internal import INTERNAL_TOKEN_HEADER, JOB_PROXY_PATH
from gridgate.core.errors import TransientError, UsageError

# A cached proxy is used while it has this long left; DIRAC calls take seconds, not minutes.
MIN_LEFT_S = 600
CACHE_LIMIT = 10_000


class ProxyRefusedError(UsageError):
    """The auth service gives no proxy for this job (unknown, settled, or no DIRAC group)."""


class JobProxies:
    """The proxy of a job's owner in the job's group, by job id: only our services may ask.

    The PEM stays in this process's memory: never logged, written or put on a queue.
    """

    def __init__(self, http: httpx.AsyncClient, internal_token: str) -> None:
        self.http = http
        self.internal_token = internal_token
        self._cache: dict[str, tuple[str, float]] = {}
        self._locks: dict[str, asyncio.Lock] = {}

    async def for_job(self, job_id: str) -> str:
        lock = self._locks.setdefault(job_id, asyncio.Lock())
        async with lock:
            cached = self._cache.get(job_id)
            if cached is not None and cached[1] - time.time() > MIN_LEFT_S:
                return cached[0]
            pem, expires = await self._ask(job_id)
            if len(self._cache) >= CACHE_LIMIT:
                self._evict()
            self._cache[job_id] = (pem, expires)
        self._locks.pop(job_id, None)
        return pem

    def forget(self, job_id: str) -> None:
        self._cache.pop(job_id, None)

    def _evict(self) -> None:
        now = time.time()
        for job_id, (_, expires) in list(self._cache.items()):
            if expires - now <= MIN_LEFT_S:
                del self._cache[job_id]
        while len(self._cache) >= CACHE_LIMIT:
            del self._cache[next(iter(self._cache))]

    async def _ask(self, job_id: str) -> tuple[str, float]:
        try:
            response = await self.http.post(
                JOB_PROXY_PATH,
                json={"job_id": job_id},
                headers={INTERNAL_TOKEN_HEADER: self.internal_token},
            )
        except httpx.HTTPError as exc:
            raise TransientError(f"the auth service did not answer: {exc!r}") from exc
        if response.status_code in (403, 404, 422):
            detail = response.json().get("detail", "") if response.content else ""
            raise ProxyRefusedError(f"No proxy for job {job_id}: {detail}")
        if response.status_code != 200:
            raise TransientError(f"the auth service answered {response.status_code}")
        not_after = datetime.fromisoformat(response.headers["X-Proxy-Not-After"])
        return response.text, not_after.timestamp()
