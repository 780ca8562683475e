"""The ``local-ca`` provider: our own CA issues the user certificate and the proxy.

For facilities that trust our CA, the testbeds and the embedded default. The CA key is a
secret mounted into the service (never in the image); user keys and certificates live only in
memory and are re-issued after a restart.
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from gridgate.auth.proxies.base import IssuedProxy, ProxyRequest
from gridgate.auth.proxies.x509 import (
    chain_pem,
    new_key,
    parse_slash_dn,
    proxy_certificate,
    slash_dn,
    user_certificate,
)

SAFE_VALUE = re.compile(r"[^A-Za-z0-9 ._@-]")


def dn_for(template: str, sub: str, vo: str) -> str:
    """The user's DN from the template; characters a DN cannot carry safely are replaced."""
    return template.format(sub=SAFE_VALUE.sub("_", sub), vo=SAFE_VALUE.sub("_", vo))


@dataclass
class _UserCredential:
    key: rsa.RSAPrivateKey
    certificate: x509.Certificate


class LocalCAProvider:
    """Issues user certificates (kept in memory) and group proxies from them."""

    name = "local-ca"

    def __init__(
        self,
        ca_cert: x509.Certificate,
        ca_key: rsa.RSAPrivateKey,
        *,
        dn_template: str = "/O=gridgate/OU={vo}/CN={sub}",
        user_cert_lifetime: timedelta = timedelta(days=7),
    ) -> None:
        self.ca_cert = ca_cert
        self.ca_key = ca_key
        self.dn_template = dn_template
        self.user_cert_lifetime = user_cert_lifetime
        self._users: dict[str, _UserCredential] = {}
        self._lock = asyncio.Lock()

    @classmethod
    def from_files(cls, cert_file: Path, key_file: Path, **options: object) -> LocalCAProvider:
        cert = x509.load_pem_x509_certificate(cert_file.read_bytes())
        key = serialization.load_pem_private_key(key_file.read_bytes(), password=None)
        if not isinstance(key, rsa.RSAPrivateKey):
            raise ValueError("the local CA key must be an RSA key")
        return cls(cert, key, **options)  # type: ignore[arg-type]

    def user_dn(self, sub: str, vo: str) -> str:
        return dn_for(self.dn_template, sub, vo)

    async def _user(self, sub: str, vo: str) -> _UserCredential:
        dn = self.user_dn(sub, vo)
        async with self._lock:
            known = self._users.get(dn)
            margin = timedelta(hours=12)
            if known is None or known.certificate.not_valid_after_utc - datetime.now(UTC) < margin:
                key = await asyncio.to_thread(new_key)
                certificate = user_certificate(
                    self.ca_key, self.ca_cert, parse_slash_dn(dn), key, self.user_cert_lifetime
                )
                known = self._users[dn] = _UserCredential(key, certificate)
            return known

    async def issue(self, request: ProxyRequest) -> IssuedProxy:
        user = await self._user(request.sub, request.vo)
        key, proxy = await asyncio.to_thread(
            proxy_certificate,
            user.key,
            user.certificate,
            request.group,
            timedelta(seconds=request.lifetime_s),
        )
        return IssuedProxy(
            pem=chain_pem(proxy, key, [user.certificate]),
            subject=slash_dn(proxy.subject),
            identity=slash_dn(user.certificate.subject),
            serial=proxy.serial_number,
            not_after=proxy.not_valid_after_utc,
            provider=self.name,
        )

    async def max_lifetime_s(self, sub: str, vo: str, group: str) -> int:
        # A user certificate is re-issued whenever needed, so the CA's own expiry is the bound.
        left = self.ca_cert.not_valid_after_utc - datetime.now(UTC)
        return max(0, int(left.total_seconds()))
