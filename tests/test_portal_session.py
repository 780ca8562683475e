"""A portal session outlives its access tokens: the IdP testbed issues 20-second tokens, and the
portal (Debian's chromium through Playwright) renews them with the refresh token it keeps in
memory, so it goes on working long after the first token expired, with nothing in the
browser's storage.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from urllib.parse import parse_qs

import httpx
import pytest
import pytest_asyncio

from gridgate.cli.stack import DevStack
from gridgate.testing.browser import chromium, log_in_through_the_idp
from gridgate.testing.idp import private_idp
from gridgate.testing.services import free_port

# It waits out a real access token (its lifetime and the gateway's leeway): make test-long.
pytestmark = [pytest.mark.idp, pytest.mark.long]
TOKEN_TTL_S = 20


@pytest.fixture(scope="module")
def gateway_port() -> int:
    return free_port()


@pytest.fixture(scope="module")
def short_token_idp(tmp_path_factory: pytest.TempPathFactory, gateway_port: int) -> Iterator[str]:
    yield from private_idp(
        tmp_path_factory.mktemp("idp"),
        free_port(),
        portal_redirect_uris=(f"http://127.0.0.1:{gateway_port}/",),
        access_token_ttl_s=TOKEN_TTL_S,
    )


@pytest_asyncio.fixture(loop_scope="session")
async def session_stack(
    short_token_idp: str, gateway_port: int, broker_url: str, tmp_path: Path
) -> AsyncIterator[DevStack]:
    stack = DevStack(
        data_dir=tmp_path / "stack",
        port=gateway_port,
        broker_url=broker_url,
        oidc_issuer=short_token_idp,
        gateway_options={"portal_resource": "urn:gridgate"},
    )
    await stack.start()
    yield stack
    await stack.stop()


async def test_a_portal_session_outlives_its_access_token(session_stack: DevStack) -> None:
    from playwright.async_api import Request, async_playwright, expect

    bearers: list[str] = []
    grants: list[str] = []

    def seen(request: Request) -> None:
        if "/api/" in request.url and (auth := request.headers.get("authorization")):
            bearers.append(auth.removeprefix("Bearer "))
        if request.url.endswith("/token") and request.method == "POST":
            grants.extend(parse_qs(request.post_data or "").get("grant_type", []))

    async with async_playwright() as driver:
        browser = await driver.chromium.launch(executable_path=chromium(), headless=True)
        page = await browser.new_page()
        page.on("request", seen)
        try:
            await page.goto(f"{session_stack.url}/#/jobs")
            await log_in_through_the_idp(page)
            await expect(page.get_by_role("heading", name="Jobs")).to_be_visible()
            first = bearers[0]
            started = time.monotonic()
            # Wait (for the condition, however loaded the machine) until the first token
            # has expired and the gateway refuses it.
            async with httpx.AsyncClient(base_url=session_stack.url) as http:
                while True:
                    refused = await http.get(
                        "/api/jobs", headers={"Authorization": f"Bearer {first}"}
                    )
                    if refused.status_code == 401:
                        break
                    assert time.monotonic() - started < 120, "the first token never expired"
                    await asyncio.sleep(1)
            # The portal goes on: a new page's calls carry a renewed token, accepted.
            await page.get_by_role("link", name="Schedules").click()
            await expect(page.get_by_role("heading", name="Schedules")).to_be_visible()
            await page.get_by_role("link", name="Workflows").click()
            await expect(page.locator("#catalogue tbody tr").first).to_be_visible()
            await expect(page.locator("#status")).to_be_empty()
            assert bearers[-1] != first
            assert "refresh_token" in grants
            assert grants[0] == "authorization_code"
            storage = await page.evaluate("localStorage.length + sessionStorage.length")
            assert storage == 0
        finally:
            await browser.close()
