"""Validate bearer tokens as INDIGO IAM access tokens (JWT, RFC 9068 / WLCG profile).

The rules (see docs/adr/0003-token-validation.md):

- keys come from the pinned issuer's discovery document and JWKS, cached by ``kid``, refetched
  when an unknown ``kid`` appears (rate-limited, so random ``kid`` floods cannot hammer IAM);
- the algorithm allow-list is fixed here, never taken from discovery (IAM lists ``none``);
- ``iss`` must equal the pinned issuer exactly; only the discovery document's ``issuer`` may
  differ by one trailing slash, because IAM's discovery always adds one;
- ``aud`` must contain our audience; ``exp``, ``nbf`` and ``iat`` are checked with a leeway;
- ``sub`` is required.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections import OrderedDict
from typing import Any, Final
from urllib.parse import urlsplit

import httpx
from joserfc import jws, jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet
from joserfc.jwt import JWTClaimsRegistry

from gridgate.core.errors import AuthenticationError
from gridgate.core.tls import shared_tls_context
from gridgate.iam.identity import Identity, identity_from_claims

ALLOWED_ALGORITHMS: Final = ("RS256", "ES256", "PS256")
DISCOVERY_PATH: Final = "/.well-known/openid-configuration"


class IssuerUnavailableError(AuthenticationError):
    """The token issuer's keys could not be fetched to check the token; retry later."""

    slug, title, status = "issuer-unavailable", "Token issuer unavailable", 503


def _same_issuer_modulo_slash(a: str, b: str) -> bool:
    return a.removesuffix("/") == b.removesuffix("/")


def _require_secure(url: str) -> None:
    parts = urlsplit(url)
    if parts.scheme == "https":
        return
    if parts.scheme == "http" and parts.hostname in {"127.0.0.1", "localhost", "::1"}:
        return  # development issuers on loopback only
    raise ValueError(f"issuer and key URLs must use https: {url}")


class _KeyCache:
    """The issuer's keys, by kid, with a bounded refresh rate."""

    def __init__(self, ttl_s: float, min_refresh_interval_s: float) -> None:
        self.keys: KeySet | None = None
        self.fetched_at = 0.0
        self.last_attempt = -1e9
        self.ttl_s = ttl_s
        self.min_refresh_interval_s = min_refresh_interval_s
        self.lock = asyncio.Lock()

    def knows(self, kid: str | None) -> bool:
        return self.keys is not None and any(k.kid == kid for k in self.keys.keys)

    def fresh(self) -> bool:
        return self.keys is not None and time.monotonic() - self.fetched_at < self.ttl_s

    def may_refetch(self) -> bool:
        return time.monotonic() - self.last_attempt >= self.min_refresh_interval_s


class TokenValidator:
    """Validates access tokens of one pinned issuer for one audience.

    Parameters
    ----------
    issuer
        The issuer URL exactly as configured for the deployment.
    audience
        Our audience; the token's ``aud`` must contain it.
    leeway_s
        Clock skew tolerated on ``exp``, ``nbf`` and ``iat``.
    """

    def __init__(
        self,
        issuer: str,
        audience: str,
        *,
        http: httpx.AsyncClient | None = None,
        leeway_s: int = 60,
        key_ttl_s: float = 6 * 3600,
        min_refresh_interval_s: float = 60.0,
        cache_size: int = 10_000,
    ) -> None:
        _require_secure(issuer)
        self.issuer = issuer
        self.audience = audience
        self.leeway_s = leeway_s
        self._http = http or httpx.AsyncClient(
            timeout=10.0, verify=shared_tls_context(httpx.create_ssl_context)
        )
        self._owns_http = http is None
        self._keys = _KeyCache(key_ttl_s, min_refresh_interval_s)
        self._jwks_uri: str | None = None
        # Validated tokens by digest: the signature check is the costly part of a request.
        self._accepted: OrderedDict[bytes, Identity] = OrderedDict()
        self._cache_size = cache_size

    async def aclose(self) -> None:
        if self._owns_http:
            await self._http.aclose()

    async def validate(self, token: str) -> Identity:
        """Return the identity a valid token speaks for, or raise AuthenticationError."""
        digest = hashlib.sha256(token.encode()).digest()
        cached = self._accepted.get(digest)
        if cached is not None and cached.expires_at + self.leeway_s > time.time():
            return cached
        claims = await self._verified_claims(token)
        identity = identity_from_claims(claims)
        self._accepted[digest] = identity
        if len(self._accepted) > self._cache_size:
            self._accepted.popitem(last=False)
        return identity

    async def _verified_claims(self, token: str) -> dict[str, Any]:
        try:
            header = jws.extract_compact(token.encode()).headers()
        except (JoseError, ValueError, UnicodeError) as exc:
            raise AuthenticationError("The bearer token is not a well-formed JWT.") from exc
        if header.get("alg") not in ALLOWED_ALGORITHMS:
            raise AuthenticationError(f"Token algorithm {header.get('alg')!r} is not accepted.")
        kid = header.get("kid")
        if not isinstance(kid, str) or not kid:
            raise AuthenticationError("The token header has no key id ('kid').")
        keys = await self._keys_for(kid)
        try:
            decoded = jwt.decode(token, keys, algorithms=list(ALLOWED_ALGORITHMS))
        except JoseError as exc:
            raise AuthenticationError(f"Token signature rejected: {exc.error}.") from exc
        claims = dict(decoded.claims)
        self._check_claims(claims)
        return claims

    def _check_claims(self, claims: dict[str, Any]) -> None:
        iss = claims.get("iss")
        if iss != self.issuer:
            raise AuthenticationError("The token was issued by an issuer we do not trust.")
        registry = JWTClaimsRegistry(
            leeway=self.leeway_s,
            aud={"essential": True, "values": [self.audience]},
            sub={"essential": True},
            exp={"essential": True},
        )
        try:
            registry.validate(claims)
        except JoseError as exc:
            raise AuthenticationError(f"Token rejected: {exc.description or exc.error}.") from exc
        iat = claims.get("iat")
        if isinstance(iat, int | float) and iat > time.time() + self.leeway_s:
            raise AuthenticationError("Token rejected: issued in the future.")

    async def _keys_for(self, kid: str) -> KeySet:
        cache = self._keys
        if cache.fresh() and cache.knows(kid):
            assert cache.keys is not None
            return cache.keys
        async with cache.lock:
            if not (cache.fresh() and cache.knows(kid)) and (
                not cache.fresh() or cache.may_refetch()
            ):
                await self._refresh_keys()
        if not cache.knows(kid):
            raise AuthenticationError("The token was signed with a key the issuer does not list.")
        assert cache.keys is not None
        return cache.keys

    async def _refresh_keys(self) -> None:
        cache = self._keys
        cache.last_attempt = time.monotonic()
        try:
            if self._jwks_uri is None:
                self._jwks_uri = await self._discover_jwks_uri()
            response = await self._http.get(self._jwks_uri)
            response.raise_for_status()
            cache.keys = KeySet.import_key_set(response.json())
            cache.fetched_at = time.monotonic()
        except (httpx.HTTPError, ValueError, JoseError) as exc:
            if cache.keys is None:
                raise IssuerUnavailableError(
                    "The token issuer's keys could not be fetched; try again shortly."
                ) from exc
            # Keep the last good keys: a short IAM outage must not lock every user out.

    async def _discover_jwks_uri(self) -> str:
        response = await self._http.get(self.issuer.rstrip("/") + DISCOVERY_PATH)
        response.raise_for_status()
        document = response.json()
        advertised = document.get("issuer")
        if not isinstance(advertised, str) or not _same_issuer_modulo_slash(
            advertised, self.issuer
        ):
            raise ValueError("discovery document names another issuer")
        jwks_uri = document.get("jwks_uri")
        if not isinstance(jwks_uri, str):
            raise ValueError("discovery document has no jwks_uri")
        _require_secure(jwks_uri)
        return jwks_uri
