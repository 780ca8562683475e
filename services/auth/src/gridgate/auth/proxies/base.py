"""The provider interface, and what an issued proxy is."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol


@dataclass(frozen=True)
class ProxyRequest:
    """Whose proxy, for which DIRAC group, for how long. Identity comes from a token's ``sub``."""

    sub: str
    vo: str
    group: str
    lifetime_s: int


@dataclass(frozen=True)
class IssuedProxy:
    """A proxy chain: proxy certificate, its private key, then the rest of the chain (PEM).

    ``pem`` is a bearer credential: it is never logged, persisted or put on a durable queue.
    """

    pem: bytes = field(repr=False)
    subject: str
    identity: str
    serial: int
    not_after: datetime
    provider: str

    def seconds_left(self, now: datetime) -> float:
        return (self.not_after - now).total_seconds()


class ProxyProvider(Protocol):
    """Where proxies come from: a local CA, DIRAC's ProxyManager, IAM's proxy endpoint..."""

    name: str

    async def issue(self, request: ProxyRequest) -> IssuedProxy:
        """Return a proxy for the request's user and group, valid for about its lifetime."""
        ...

    async def max_lifetime_s(self, sub: str, vo: str, group: str) -> int:
        """The longest lifetime a proxy for this user and group can have right now."""
        ...
