"""Proxy providers: (user, DIRAC group, lifetime) -> an RFC 3820 proxy chain DIRAC accepts."""

from gridgate.auth.proxies.base import IssuedProxy, ProxyProvider, ProxyRequest

__all__ = ["IssuedProxy", "ProxyProvider", "ProxyRequest"]
