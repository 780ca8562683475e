"""Safe outbound calls: which URLs and addresses a webhook may reach.

A subscriber chooses the URL, so the notifier must not become a way into the cluster (SSRF).
The rules are checked twice: on the URL when a subscription is created (a clear refusal), and
on every address a name resolves to at the moment a connection is opened. The connection then
goes to the address that was checked, never to a second lookup, so a name that changes its
answer between the check and the connect (DNS rebinding) gains nothing. TLS still names the
host: SNI and certificate verification use the URL's hostname, not the address.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import httpcore
import httpx
from httpcore import AsyncNetworkStream
from httpcore._backends.auto import AutoBackend

from gridgate.core.errors import ProblemError

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
    """The webhook URL may not be called: its scheme, its form or the addresses its host
    resolves to are refused (loopback, private, link-local, metadata, multicast...)."""

    slug, title, status = "unsafe-webhook-url", "Webhook URL refused", 422


@dataclass(frozen=True)
class OutboundPolicy:
    """Which endpoints the notifier may call.

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
        if len(url) > 2000:
            raise UnsafeUrlError("The URL is longer than 2000 characters.")
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
        """The whole check of a URL, resolution included (at subscription time)."""
        host, port = self.check_url(url)
        await self.resolve(host, port)


def _literal_address(host: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None


class _GuardedBackend(httpcore.AsyncNetworkBackend):
    """Resolves and checks a host itself, then connects to the checked address."""

    def __init__(self, policy: OutboundPolicy) -> None:
        self._policy = policy
        self._backend = AutoBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109 - httpcore's interface
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> AsyncNetworkStream:
        addresses = await self._policy.resolve(host, port)
        last: Exception | None = None
        for address in addresses:
            try:
                return await self._backend.connect_tcp(
                    str(address),
                    port,
                    timeout=timeout,
                    local_address=local_address,
                    socket_options=socket_options,
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                last = exc
        assert last is not None
        raise last

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,  # noqa: ASYNC109 - httpcore's interface
        socket_options: Iterable[Any] | None = None,
    ) -> AsyncNetworkStream:
        raise UnsafeUrlError("Webhooks never use Unix sockets.")

    async def sleep(self, seconds: float) -> None:
        await self._backend.sleep(seconds)


class GuardedTransport(httpx.AsyncHTTPTransport):
    """httpx's transport on a connection pool whose every new connection is checked.

    The pool is keyed by the URL's host, so TLS (SNI, certificate) uses the hostname while
    the socket goes to an address that passed :class:`OutboundPolicy`. No proxy from the
    environment: a proxy would do the resolving, out of our sight.
    """

    def __init__(self, policy: OutboundPolicy, *, max_connections: int = 100) -> None:
        # One context for the pool we replace and ours: each costs about 0.9 MiB.
        context = httpx.create_ssl_context(trust_env=False)
        super().__init__(verify=context, trust_env=False)
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=context,
            max_connections=max_connections,
            # httpcore checks every pooled connection on each request: keep the pool small.
            max_keepalive_connections=max_connections,
            keepalive_expiry=30.0,
            network_backend=_GuardedBackend(policy),
        )

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        # A URL is checked before a pooled connection is reused too: the policy may have
        # changed, and a literal address never reaches connect_tcp's resolution twice.
        self._policy_check(request)
        return await super().handle_async_request(request)

    def _policy_check(self, request: httpx.Request) -> None:
        backend = self._pool._network_backend
        assert isinstance(backend, _GuardedBackend)
        backend._policy.check_url(str(request.url))


def guarded_client(
    policy: OutboundPolicy, timeout_s: float, *, max_connections: int = 32
) -> httpx.AsyncClient:
    """An HTTP client for webhooks: checked addresses, no redirects, short timeouts."""
    return httpx.AsyncClient(
        transport=GuardedTransport(policy, max_connections=max_connections),
        follow_redirects=False,
        trust_env=False,
        timeout=httpx.Timeout(timeout_s, connect=min(timeout_s, 5.0)),
    )
