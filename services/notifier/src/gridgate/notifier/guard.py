"""Safe outbound calls: the connection side of the rules on which URLs a webhook may reach.

The rules themselves (schemes, literal addresses, resolved addresses) are
:class:`gridgate.web.outbound.OutboundPolicy`, shared with the gateway, which holds a job's
notification URL to them at creation. Here they are applied on every address a name resolves
to at the moment a connection is opened. The connection then goes to the address that was
checked, never to a second lookup, so a name that changes its answer between the check and
the connect (DNS rebinding) gains nothing. TLS still names the host: SNI and certificate
verification use the URL's hostname, not the address.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import httpcore
import httpx
from httpcore import AsyncNetworkStream
from httpcore._backends.auto import AutoBackend

from gridgate.web.outbound import BLOCKED_NETWORKS, OutboundPolicy, UnsafeUrlError

__all__ = [
    "BLOCKED_NETWORKS",
    "GuardedTransport",
    "OutboundPolicy",
    "UnsafeUrlError",
    "guarded_client",
]


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
