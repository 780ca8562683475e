"""The ``dirac-proxymanager`` provider: users' proxies from DIRAC's ProxyManager.

The production default. The auth service holds a DIRAC credential, a robot host certificate
named by the DIRAC client root, with the properties FullDelegation (download any user's full
proxy) and ProxyManagement (read how long each user's stored proxy lasts). The DIRAC user is
the one whose Registry option ``ID`` holds the token's ``sub``; the group must be one of that
user's DIRAC groups; the proxy is downloaded with the lifetime asked. Users keep their long
proxies in the ProxyManager as every DIRAC user does (``dirac-proxy-init``): gridgate never
sees their certificate keys. DIRAC records every download in its ProxyDB log.
"""

from __future__ import annotations

import asyncio
import time
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from cryptography import x509

from gridgate.auth.groups import GroupNotHeldError
from gridgate.auth.proxies.base import IssuedProxy, ProxyRequest
from gridgate.auth.proxies.x509 import PROXY_CERT_INFO, slash_dn
from gridgate.core.errors import ProblemError, ServiceUnavailableError, TransientError
from gridgate.dirac.bridge import BridgeCallError, DiracBridge

# A sub's DIRAC user rarely changes; asking the Registry for every proxy would be wasteful.
USER_CACHE_S = 300.0
# A stored proxy only ages (a new upload makes it longer): its lifetime, minus the time since
# we asked, is safe to reuse for a while. Every submission to a DIRAC facility checks it.
STORED_LEFT_CACHE_S = 120.0


class DiracUserUnknownError(ProblemError):
    """No DIRAC user's Registry ID holds the token's subject; the VO's DIRAC administrator must
    register it."""

    slug, title, status = "dirac-user-unknown", "No DIRAC user for this identity", 403


class NoStoredProxyError(ProblemError):
    """The user keeps no proxy in DIRAC's ProxyManager, or none long enough for the job
    (`stored_left_s` says how long); run dirac-proxy-init."""

    slug, title, status = "dirac-proxy-missing", "No proxy in DIRAC's ProxyManager", 403


class DiracRefusedError(ProblemError):
    """DIRAC answered, but not with a proxy, for a reason the user cannot fix (for example
    the robot lacks a property): an operator has to act."""

    slug, title, status = "dirac-refused", "DIRAC refused the request", 502


class DiracUnavailableError(ServiceUnavailableError):
    """DIRAC did not answer in time, or its services were unreachable or overloaded; the same
    request may succeed later."""

    slug, title = "dirac-unavailable", "DIRAC unavailable"


@dataclass(frozen=True)
class DiracUser:
    """A DIRAC user as the Registry describes them."""

    name: str
    dns: tuple[str, ...]
    groups: frozenset[str]


def _first_line(error: Exception) -> str:
    # DIRAC's refusals name DNs and groups, never a secret; one line is enough for a user.
    return str(error).splitlines()[0]


class DiracProxyManagerProvider:
    """Downloads group proxies of the token's user through the DIRAC bridge (as the robot).

    Parameters
    ----------
    bridge
        A bridge whose DIRAC client root authenticates as the robot (no proxy argument).
    user_cache_s
        How long a ``sub`` -> DIRAC user answer is reused.
    """

    name = "dirac-proxymanager"

    def __init__(self, bridge: DiracBridge, *, user_cache_s: float = USER_CACHE_S) -> None:
        self.bridge = bridge
        self.user_cache_s = user_cache_s
        self._users: dict[str, tuple[DiracUser, float]] = {}
        self._stored: dict[tuple[str, str], tuple[int, float]] = {}
        # One question to DIRAC per key at a time: concurrent requests wait for its answer.
        self._locks: defaultdict[object, asyncio.Lock] = defaultdict(asyncio.Lock)

    async def _call(self, op: str, args: dict[str, Any]) -> Any:
        """One bridge call; DIRAC being slow or unreachable is a 503 for our caller, not a
        500 (under load a download can time out, or a DIRAC service refuse connections)."""
        try:
            return await self.bridge.call(op, args)
        except TransientError as exc:
            raise DiracUnavailableError(
                f"DIRAC could not be asked ({op}); try again shortly: {_first_line(exc)}"
            ) from exc

    async def user(self, sub: str) -> DiracUser:
        """The DIRAC user linked to an IAM subject; 403 ``dirac-user-unknown`` if none."""
        async with self._locks[("user", sub)]:
            return await self._user(sub)

    async def _user(self, sub: str) -> DiracUser:
        known = self._users.get(sub)
        if known is not None and known[1] > time.monotonic():
            return known[0]
        found = await self._call("user_dn", {"sub": sub})
        if not found or not found.get("dns"):
            raise DiracUserUnknownError(
                "No DIRAC user is linked to your identity; ask your VO's DIRAC administrators "
                "to add your IAM subject to your DIRAC user (Registry option ID)."
            )
        user = DiracUser(found["user"], tuple(found["dns"]), frozenset(found.get("groups", ())))
        self._users[sub] = (user, time.monotonic() + self.user_cache_s)
        return user

    async def _user_in_group(self, sub: str, group: str) -> DiracUser:
        user = await self.user(sub)
        if group not in user.groups:
            held = ", ".join(sorted(user.groups)) or "none"
            raise GroupNotHeldError(
                f"DIRAC's registry does not put your user {user.name} in {group!r}; "
                f"yours there: {held}.",
                errors=[{"field": "group", "message": f"not held in DIRAC: {group}"}],
            )
        return user

    async def _stored_left(self, user: DiracUser, group: str) -> int:
        key = (user.name, group)
        async with self._locks[("stored", *key)]:
            known = self._stored.get(key)
            now = time.monotonic()
            if known is not None and now - known[1] < STORED_LEFT_CACHE_S:
                return max(0, known[0] - int(now - known[1]))
            left = await self._ask_stored_left(user, group)
            self._stored[key] = (left, now)
            return left

    async def _ask_stored_left(self, user: DiracUser, group: str) -> int:
        try:
            left = await self._call("stored_proxy_left", {"dns": user.dns, "group": group})
        except BridgeCallError as exc:
            raise DiracRefusedError(
                f"DIRAC did not say how long your stored proxy lasts: {_first_line(exc)}"
            ) from exc
        return int(left)

    async def issue(self, request: ProxyRequest) -> IssuedProxy:
        user = await self._user_in_group(request.sub, request.group)
        refusal: BridgeCallError | None = None
        for dn in user.dns:
            try:
                pem = await self._call(
                    "download_proxy",
                    {"dn": dn, "group": request.group, "lifetime_s": request.lifetime_s},
                )
            except BridgeCallError as exc:
                refusal = exc
                continue
            return self._issued(pem.encode(), user)
        left = await self._stored_left(user, request.group)
        if left < request.lifetime_s:
            raise NoStoredProxyError(
                f"DIRAC's ProxyManager holds no proxy of {user.name} that lasts "
                f"{request.lifetime_s} s (the longest has {left} s left). Upload a new one, "
                "e.g. with dirac-proxy-init.",
                stored_left_s=left,
            )
        assert refusal is not None
        raise DiracRefusedError(
            f"DIRAC's ProxyManager gave no {request.group} proxy of {user.name}: "
            f"{_first_line(refusal)}"
        ) from refusal

    def _issued(self, pem: bytes, user: DiracUser) -> IssuedProxy:
        chain = x509.load_pem_x509_certificates(pem)
        proxy = chain[0]
        # the end-entity certificate: the first one that is not an RFC 3820 proxy
        eec = next(
            (c for c in chain if PROXY_CERT_INFO not in {e.oid for e in c.extensions}),
            chain[-1],
        )
        identity = slash_dn(eec.subject)
        if identity not in user.dns:
            raise DiracRefusedError(f"DIRAC returned a proxy of {identity}, not of {user.name}.")
        not_after: datetime = min(c.not_valid_after_utc for c in chain)
        return IssuedProxy(
            pem=pem,
            subject=slash_dn(proxy.subject),
            identity=identity,
            serial=proxy.serial_number,
            not_after=not_after,
            provider=self.name,
        )

    async def max_lifetime_s(self, sub: str, vo: str, group: str) -> int:
        """How long the user's proxy stored in the ProxyManager still lasts, for the group."""
        user = await self._user_in_group(sub, group)
        return await self._stored_left(user, group)

    async def close(self) -> None:
        """Stop the bridge processes."""
        await self.bridge.close()
