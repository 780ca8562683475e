"""Token validation against a real issuer over HTTP: the attacks each fail with 401."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import pytest_asyncio
import uvicorn
from joserfc import jwt
from joserfc.jwk import RSAKey

from gridgate.auth.config import AuthSettings
from gridgate.auth.main import create_app
from gridgate.core.errors import AuthenticationError
from gridgate.iam import DevIssuer, TokenValidator
from gridgate.testing.services import free_port

AUDIENCE = "gridgate"


@dataclass
class IssuerServer:
    app: object
    issuer: DevIssuer
    url: str
    tmp: Path

    def rotate(self) -> DevIssuer:
        """Publish a new key only: the old key disappears from the JWKS."""
        self.issuer = DevIssuer(self.url, self.tmp / f"key-{time.monotonic_ns()}.json")
        self.app.state.dev_issuer = self.issuer  # type: ignore[attr-defined]
        return self.issuer


@pytest_asyncio.fixture(loop_scope="session")
async def server(tmp_path: Path) -> AsyncIterator[IssuerServer]:
    port = free_port()
    url = f"http://127.0.0.1:{port}/dev-issuer"
    issuer = DevIssuer(url, tmp_path / "key.json")
    app = create_app(AuthSettings(), dev_issuer=issuer)
    http = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None))
    task = asyncio.create_task(http.serve())
    while not http.started:  # noqa: ASYNC110 - uvicorn offers no event to await
        await asyncio.sleep(0.02)
    yield IssuerServer(app, issuer, url, tmp_path)
    http.should_exit = True
    await task


def claims(issuer: str, **overrides: object) -> dict[str, object]:
    now = int(time.time())
    base = {
        "iss": issuer,
        "sub": "alice",
        "aud": AUDIENCE,
        "iat": now,
        "exp": now + 600,
        "jti": "j1",
        "client_id": "c",
        "groups": ["cta"],
    }
    base.update(overrides)
    return {k: v for k, v in base.items() if v is not None}


def sign(issuer: DevIssuer, payload: dict[str, object], alg: str = "RS256") -> str:
    key = issuer._key  # the issuer's own signing key, to forge everything but what we test
    return jwt.encode({"alg": alg, "kid": key.kid}, payload, key)


def b64(data: dict[str, object]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")


async def assert_refused(validator: TokenValidator, token: str, reason: str) -> None:
    with pytest.raises(AuthenticationError) as caught:
        await validator.validate(token)
    assert caught.value.status == 401
    assert reason.lower() in caught.value.detail.lower()


async def test_a_good_token_gives_the_identity(server: IssuerServer) -> None:
    validator = TokenValidator(server.url, AUDIENCE)
    token = server.issuer.mint("alice", groups=["cta/production", "km3net"], audience=AUDIENCE)
    identity = await validator.validate(token)
    assert identity.sub == "alice"
    assert identity.groups == ("cta/production", "km3net")
    assert identity.vos == ("cta", "km3net")
    await validator.aclose()


async def test_attacks_are_refused(server: IssuerServer) -> None:
    validator = TokenValidator(server.url, AUDIENCE)
    issuer = server.issuer
    now = int(time.time())
    header_none = b64({"alg": "none", "kid": issuer._key.kid})
    await assert_refused(validator, f"{header_none}.{b64(claims(server.url))}.", "algorithm")
    public_pem = RSAKey.import_key(issuer.jwks()["keys"][0]).as_pem(private=False)
    # The classic confusion: HMAC-sign with the issuer's *public* key as the secret.
    signing_input = f"{b64({'alg': 'HS256', 'kid': issuer._key.kid})}.{b64(claims(server.url))}"
    mac = hmac.new(public_pem, signing_input.encode(), hashlib.sha256).digest()
    hs256 = f"{signing_input}.{base64.urlsafe_b64encode(mac).decode().rstrip('=')}"
    await assert_refused(validator, hs256, "algorithm")
    await assert_refused(validator, sign(issuer, claims("https://evil.example")), "issuer")
    await assert_refused(validator, sign(issuer, claims(server.url + "/")), "issuer")
    await assert_refused(validator, sign(issuer, claims(server.url, aud="rucio")), "aud")
    await assert_refused(validator, sign(issuer, claims(server.url, exp=now - 600)), "expired")
    await assert_refused(
        validator, sign(issuer, claims(server.url, nbf=now + 600)), "not yet valid"
    )
    await assert_refused(validator, sign(issuer, claims(server.url, sub=None)), "sub")
    good = sign(issuer, claims(server.url))
    head, _payload, signature = good.split(".")
    tampered = f"{head}.{b64(claims(server.url, sub='mallory'))}.{signature}"
    await assert_refused(validator, tampered, "signature")
    await validator.aclose()


async def test_leeway_accepts_a_token_just_expired(server: IssuerServer) -> None:
    validator = TokenValidator(server.url, AUDIENCE, leeway_s=60)
    just_expired = sign(server.issuer, claims(server.url, exp=int(time.time()) - 20))
    assert (await validator.validate(just_expired)).sub == "alice"
    await validator.aclose()


async def test_key_rotation_needs_no_restart(server: IssuerServer) -> None:
    validator = TokenValidator(server.url, AUDIENCE, min_refresh_interval_s=0)
    old = server.issuer.mint("alice", groups=["cta"], audience=AUDIENCE)
    assert (await validator.validate(old)).sub == "alice"
    new_issuer = server.rotate()
    new = new_issuer.mint("bob", groups=["cta"], audience=AUDIENCE)
    assert (await validator.validate(new)).sub == "bob"
    stale = server.issuer.mint("carol", groups=["cta"], audience=AUDIENCE)
    del stale
    forged_old = DevIssuer(server.url, server.tmp / "key.json").mint(
        "carol", groups=["cta"], audience=AUDIENCE
    )
    await assert_refused(validator, forged_old, "key")
    await validator.aclose()


async def test_unknown_key_ids_cannot_flood_the_issuer(server: IssuerServer) -> None:
    validator = TokenValidator(server.url, AUDIENCE, min_refresh_interval_s=3600)
    good = server.issuer.mint("alice", groups=["cta"], audience=AUDIENCE)
    await validator.validate(good)
    fetched_at = validator._keys.last_attempt
    stranger = DevIssuer(server.url, server.tmp / "stranger.json")
    for _ in range(5):
        await assert_refused(validator, stranger.mint("eve", groups=[], audience=AUDIENCE), "key")
    assert validator._keys.last_attempt == fetched_at
    await validator.aclose()


def test_plain_http_issuers_are_refused_off_loopback() -> None:
    with pytest.raises(ValueError, match="https"):
        TokenValidator("http://iam.example.org/", AUDIENCE)
