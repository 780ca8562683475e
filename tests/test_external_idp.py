"""Tokens from an OpenID provider we did not write (oidc-provider) pass the same validation."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
import pytest_asyncio

from gridgate.cli.stack import AUDIENCE, DevStack, dev_issuer
from gridgate.iam import TokenValidator
from gridgate.testing.idp import idp_token
from gridgate.testing.services import free_port

pytestmark = pytest.mark.idp


async def test_user_token_from_oidc_provider_is_accepted(idp_issuer: str) -> None:
    validator = TokenValidator(idp_issuer, "gridgate")
    identity = await validator.validate(idp_token("alice", ["cta", "cta/production"]))
    assert identity.sub == "alice"
    assert identity.vos == ("cta",)
    assert "cta/production" in identity.groups
    await validator.aclose()


async def test_client_credentials_token_is_accepted(idp_issuer: str) -> None:
    async with httpx.AsyncClient() as http:
        response = await http.post(
            f"{idp_issuer}/token",
            auth=("gridgate-test", "gridgate-test-secret"),
            data={
                "grant_type": "client_credentials",
                "resource": "urn:gridgate",
                "scope": "openid wlcg.groups",
            },
        )
    response.raise_for_status()
    validator = TokenValidator(idp_issuer, "gridgate")
    identity = await validator.validate(response.json()["access_token"])
    assert identity.sub == "gridgate-test"
    await validator.aclose()


async def test_oidc_provider_token_for_another_audience_is_refused(idp_issuer: str) -> None:
    from gridgate.core.errors import AuthenticationError

    validator = TokenValidator(idp_issuer, "not-gridgate")
    with pytest.raises(AuthenticationError):
        await validator.validate(idp_token("alice", ["cta"]))
    await validator.aclose()


@pytest_asyncio.fixture(loop_scope="session")
async def idp_stack(idp_issuer: str, broker_url: str, tmp_path: Path) -> AsyncIterator[DevStack]:
    stack = DevStack(
        data_dir=tmp_path, port=free_port(), broker_url=broker_url, oidc_issuer=idp_issuer
    )
    await stack.start()
    yield stack
    await stack.stop()


async def test_gateway_trusts_the_configured_issuer(idp_stack: DevStack) -> None:
    token = idp_token("idp-user", ["km3net"])
    async with httpx.AsyncClient(
        base_url=idp_stack.url, headers={"Authorization": f"Bearer {token}"}
    ) as http:
        created = await http.post("/api/jobs", data={"workflow": "hello-world"})
        assert created.status_code == 303
        job = (await http.get(created.headers["location"])).json()
        assert job["ownerId"] == "idp-user"
        assert job["jobInfo"]["vo"] == "km3net"
    # The development issuer is not trusted once another issuer is configured.
    foreign = dev_issuer(idp_stack.data_dir, idp_stack.host, idp_stack.port).mint(
        "idp-user", groups=["cta"], audience=AUDIENCE
    )
    async with httpx.AsyncClient(base_url=idp_stack.url) as http:
        refused = await http.get("/api/jobs", headers={"Authorization": f"Bearer {foreign}"})
    assert refused.status_code == 401
