"""Swapping tokens for proxies, over HTTP against the running stack (local-ca provider)."""

from __future__ import annotations

import asyncio
import base64
import json
import time

import httpx
import pytest

from gridgate.auth.proxies.x509 import DIRAC_GROUP, PROXY_CERT_INFO, slash_dn
from gridgate.contracts.internal import INTERNAL_TOKEN_HEADER
from gridgate.iam import DevIssuer
from gridgate.testing.x509 import openssl_verify, split_chain

PROXIES = "/auth/api/v1/proxies"


async def test_a_token_becomes_a_group_proxy_that_openssl_verifies(api, stack, tmp_path) -> None:
    http = api("proxy-alice", groups=("cta",))
    response = await http.post(PROXIES, json={"group": "cta_user", "lifetime_s": 3600})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/x-pem-file"
    assert response.headers["cache-control"] == "no-store"
    pem = response.content
    assert b"BEGIN RSA PRIVATE KEY" in pem
    proxy, eec = split_chain(pem)
    assert slash_dn(eec.subject) == "/O=gridgate/OU=cta/CN=proxy-alice"
    assert slash_dn(proxy.subject) == f"/O=gridgate/OU=cta/CN=proxy-alice/CN={proxy.serial_number}"
    group = proxy.extensions.get_extension_for_oid(DIRAC_GROUP)
    assert group.value.value == bytes.fromhex("1608") + b"cta_user"
    info = proxy.extensions.get_extension_for_oid(PROXY_CERT_INFO)
    assert info.critical
    lifetime = (proxy.not_valid_after_utc - proxy.not_valid_before_utc).total_seconds()
    assert 3600 <= lifetime <= 3600 + 15 * 60 + 5
    verified = openssl_verify(tmp_path, stack.data_dir / "dev-ca.pem", pem)
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert verified.stdout.strip().endswith("OK")


async def test_a_group_not_held_is_forbidden(api) -> None:
    http = api("proxy-bob", groups=("cta",))
    refused = await http.post(PROXIES, json={"group": "km3net_user"})
    assert refused.status_code == 403
    assert refused.headers["content-type"] == "application/problem+json"
    assert refused.json()["type"] == "urn:gridgate:problem:group-not-held"
    admin = await http.post(PROXIES, json={"group": "cta_admin"})
    assert admin.status_code == 403
    outside = api("proxy-nobody", groups=("lofar",))
    assert (await outside.post(PROXIES, json={})).status_code == 403


async def test_lifetime_bounds_are_enforced(api) -> None:
    http = api("proxy-carol")
    too_long = await http.post(PROXIES, json={"lifetime_s": 10 * 86400})
    assert too_long.status_code == 422
    assert too_long.json()["errors"][0]["field"] == "lifetime_s"


def _b64(data: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")


def _forged(stack) -> dict[str, str]:
    issuer = DevIssuer(
        f"http://{stack.host}:{stack.port}/auth/dev-issuer", stack.data_dir / "dev-issuer-key.json"
    )
    now = int(time.time())
    good = {
        "iss": issuer.issuer,
        "sub": "mallory",
        "aud": "gridgate",
        "iat": now,
        "exp": now + 600,
        "groups": ["cta"],
    }
    key = issuer._key
    from joserfc import jwt

    def sign(claims: dict, **header: str) -> str:
        return jwt.encode({"alg": "RS256", "kid": key.kid, **header}, claims, key)

    valid = sign(good)
    head, _, signature = valid.split(".")
    stranger = DevIssuer(issuer.issuer, stack.data_dir / "stranger-key.json")
    return {
        "alg none": f"{_b64({'alg': 'none', 'kid': key.kid})}.{_b64(good)}.",
        "wrong issuer": sign(good | {"iss": "https://evil.example.org"}),
        "trailing slash issuer": sign(good | {"iss": issuer.issuer + "/"}),
        "wrong audience": sign(good | {"aud": "rucio"}),
        "expired": sign(good | {"exp": now - 3600}),
        "not yet valid": sign(good | {"nbf": now + 3600}),
        "unknown key": stranger.mint("mallory", groups=["cta"], audience="gridgate"),
        "tampered": f"{head}.{_b64(good | {'sub': 'alice'})}.{signature}",
        "missing sub": sign({k: v for k, v in good.items() if k != "sub"}),
    }


async def test_token_attacks_are_each_refused_with_401(stack) -> None:
    async with httpx.AsyncClient(base_url=stack.url) as http:
        for name, token in _forged(stack).items():
            response = await http.post(
                PROXIES, json={}, headers={"Authorization": f"Bearer {token}"}
            )
            assert response.status_code == 401, name
            assert response.headers["content-type"] == "application/problem+json", name
            assert response.json()["type"] == "urn:gridgate:problem:unauthenticated", name


async def test_parallel_requests_never_cross_users(api) -> None:
    users = [f"parallel-{i}" for i in range(5)]
    clients = {user: api(user) for user in users}

    async def ask(user: str) -> tuple[str, str]:
        response = await clients[user].post(PROXIES, json={"group": "cta_user"})
        assert response.status_code == 200
        return user, response.headers["x-proxy-identity"]

    answers = await asyncio.gather(*(ask(users[i % 5]) for i in range(50)))
    for user, identity in answers:
        assert identity == f"/O=gridgate/OU=cta/CN={user}"
    serials = {}
    for user in users:
        response = await clients[user].post(PROXIES, json={"group": "cta_user"})
        proxy = split_chain(response.content)[0]
        assert slash_dn(proxy.subject).startswith(f"/O=gridgate/OU=cta/CN={user}/CN=")
        serials[user] = proxy.serial_number
    assert len(set(serials.values())) == 5


async def test_workers_get_only_a_live_jobs_owners_proxy(api, stack) -> None:
    owner = api("job-owner", groups=("km3net",))
    created = await owner.post("/api/jobs", data={"workflow": "hello-world", "vo": "km3net"})
    job_id = created.headers["location"].rsplit("/", 1)[1]
    headers = {INTERNAL_TOKEN_HEADER: stack.internal_token}
    async with httpx.AsyncClient(base_url=f"{stack.url}/auth") as http:
        assert (await http.post("/internal/v1/proxies", json={"job_id": job_id})).status_code == 401
        wrong = await http.post(
            "/internal/v1/proxies",
            json={"job_id": job_id},
            headers={INTERNAL_TOKEN_HEADER: "guess"},
        )
        assert wrong.status_code == 401
        # A job on the local facility carries no DIRAC group: nothing to hand out.
        assert (
            await http.post("/internal/v1/proxies", json={"job_id": job_id}, headers=headers)
        ).status_code == 404
        assert (
            await http.post("/internal/v1/proxies", json={"job_id": "feedbeef"}, headers=headers)
        ).status_code == 404
        check = {"sub": "job-owner", "groups": ["/km3net"], "vo": "km3net", "min_lifetime_s": 3600}
        assert (await http.post("/internal/v1/credential-checks", json=check)).status_code == 401
        granted = await http.post("/internal/v1/credential-checks", json=check, headers=headers)
        assert granted.status_code == 200, granted.text
        assert granted.json()["group"] == "km3net_user"
        assert granted.json()["obtainable_s"] == 43200
        too_long = await http.post(
            "/internal/v1/credential-checks",
            headers=headers,
            json=check | {"min_lifetime_s": 400 * 86400},
        )
        assert too_long.status_code == 422
        assert too_long.json()["type"] == "urn:gridgate:problem:credential-lifetime-too-short"
        wrong_group = await http.post(
            "/internal/v1/credential-checks", headers=headers, json=check | {"group": "cta_user"}
        )
        assert wrong_group.status_code == 403


@pytest.mark.usefixtures("stack")
async def test_issuance_is_audited_without_the_credential(api, capsys) -> None:
    http = api("audited-user")
    response = await http.post(PROXIES, json={"group": "cta_user", "lifetime_s": 7200})
    serial = response.headers["x-proxy-serial"]
    captured = capsys.readouterr()
    logged = captured.out + captured.err
    lines = [line for line in logged.splitlines() if "proxy issued" in line and serial in line]
    assert lines, logged[-2000:]
    assert "cta_user" in lines[0] and "audited-user" in lines[0]
    assert "BEGIN" not in logged
    token = http.headers["authorization"].split()[1]
    assert token not in logged
