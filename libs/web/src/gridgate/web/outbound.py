"""Which URLs and addresses a user-chosen outbound call may reach (SSRF rules).

A user chooses a webhook's URL, so whatever calls it must not become a way into the cluster.
The rules live here because two services apply them: the notifier when a subscription is
created and again on every connection it opens (gridgate.notifier.guard), and the gateway
when a job is created with a notification URL, so a bad URL is refused before the job exists
(docs/webhooks.md). They are pure, but for :meth:`OutboundPolicy.resolve`, which asks DNS.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from gridgate.core.errors import ProblemError

MAX_URL_CHARS = 2000
RESOLVE_TIMEOUT_S = 5.0
"""Longest wait for DNS when a URL is checked at creation (a client waits for the answer)."""

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

BLOCKED_NETWORKS: tuple[IPNetwork, ...] = tuple(
    ipaddress.ip_network(cidr)
    for cidr in (
        "0.0.0.0/8",  # "this network", unspecified
        "10.0.0.0/8",
        "100.64.0.0/10",  # carrier-grade NAT
        "127.0.0.0/8",
        "169.254.0.0/16",  # link-local, cloud metadata (169.254.169.254)
        "172.16.0.0/12",
        "192.0.0.0/24",  # IETF protocol assignments
        "192.0.2.0/24",  # documentation
        "192.168.0.0/16",
        "198.18.0.0/15",  # benchmarking
        "198.51.100.0/24",
        "203.0.113.0/24",
        "224.0.0.0/4",  # multicast
        "240.0.0.0/4",  # reserved, broadcast
        "::/128",
        "::1/128",
        "64:ff9b::/96",  # NAT64: embeds an IPv4 address
        "100::/64",  # discard
        "2001:db8::/32",
        "fc00::/7",  # unique local
        "fe80::/10",  # link-local
        "ff00::/8",  # multicast
    )
)


class UnsafeUrlError(ProblemError):
    """The webhook URL (a subscription's, or a job's `notification_url`) may not be called:
    its scheme, its form or the addresses its host resolves to are refused (loopback, private,
    link-local, metadata, multicast...)."""

    slug, title, status = "unsafe-webhook-url", "Webhook URL refused", 422


@dataclass(frozen=True)
class OutboundPolicy:
    """Which endpoints webhooks may call.

    Parameters
    ----------
    allow_http
        Accept plain ``http`` URLs (tests, in-cluster receivers); ``https`` only otherwise.
    allowed_networks
        Networks the operator admits although they are internal (e.g. ``127.0.0.1/32``).
    """

    allow_http: bool = False
    allowed_networks: Sequence[IPNetwork] = field(default_factory=tuple)

    @classmethod
    def build(cls, allow_http: bool, cidrs: Iterable[str]) -> OutboundPolicy:
        return cls(allow_http, tuple(ipaddress.ip_network(cidr, strict=False) for cidr in cidrs))

    def check_url(self, url: str) -> tuple[str, int]:
        """The URL's host and port when its form is acceptable; literal addresses are checked
        here, names when they are resolved."""
        try:
            parts = urlsplit(url)
            port = parts.port
        except ValueError as exc:
            raise UnsafeUrlError(f"Not a valid URL: {exc}.") from None
        schemes = ("https", "http") if self.allow_http else ("https",)
        if parts.scheme not in schemes:
            raise UnsafeUrlError(f"The URL's scheme must be {' or '.join(schemes)}.")
        if parts.username is not None or parts.password is not None:
            raise UnsafeUrlError("The URL may not carry a user name or password.")
        host = parts.hostname
        if not host:
            raise UnsafeUrlError("The URL has no host.")
        if len(url) > MAX_URL_CHARS:
            raise UnsafeUrlError(f"The URL is longer than {MAX_URL_CHARS} characters.")
        literal = _literal_address(host)
        if literal is not None:
            self.check_address(literal)
        return host, port or (443 if parts.scheme == "https" else 80)

    def check_address(self, address: IPAddress) -> None:
        """Refuse an internal address unless the operator allowed its network."""
        # ::ffff:127.0.0.1 and friends are IPv4 in disguise: judge the IPv4 address.
        mapped = getattr(address, "ipv4_mapped", None)
        candidates: list[IPAddress] = [address] if mapped is None else [address, mapped]
        for candidate in candidates:
            if any(candidate in network for network in self.allowed_networks):
                return
        for candidate in candidates:
            if (
                any(candidate.version == n.version and candidate in n for n in BLOCKED_NETWORKS)
                or candidate.is_private
                or candidate.is_loopback
                or candidate.is_link_local
                or candidate.is_multicast
                or candidate.is_unspecified
                or candidate.is_reserved
            ):
                raise UnsafeUrlError(
                    f"The address {address} is internal (loopback, private, link-local, "
                    "metadata or reserved); webhooks may only call public addresses."
                )

    async def resolve(self, host: str, port: int) -> list[IPAddress]:
        """Every address ``host`` resolves to, each checked; refused if any one is internal."""
        literal = _literal_address(host)
        if literal is not None:
            self.check_address(literal)
            return [literal]
        try:
            infos = await asyncio.get_running_loop().getaddrinfo(
                host, port, type=socket.SOCK_STREAM
            )
        except (OSError, UnicodeError) as exc:
            raise UnsafeUrlError(f"The host {host!r} does not resolve: {exc}.") from None
        addresses: list[IPAddress] = []
        for info in infos:
            address = ipaddress.ip_address(str(info[4][0]).split("%", 1)[0])
            if address not in addresses:
                addresses.append(address)
        if not addresses:
            raise UnsafeUrlError(f"The host {host!r} has no address.")
        # All of them: a name with one public and one internal address is refused.
        for address in addresses:
            self.check_address(address)
        return addresses

    async def check(self, url: str) -> None:
        """The whole check of a URL, resolution included (when a subscription or a job with a
        notification URL is created)."""
        host, port = self.check_url(url)
        try:
            # A request waits for this answer: a resolver that does not answer is a refusal.
            async with asyncio.timeout(RESOLVE_TIMEOUT_S):
                await self.resolve(host, port)
        except TimeoutError:
            raise UnsafeUrlError(f"The host {host!r} did not resolve in time.") from None


def _literal_address(host: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None


__all__ = ["BLOCKED_NETWORKS", "MAX_URL_CHARS", "IPAddress", "OutboundPolicy", "UnsafeUrlError"]
