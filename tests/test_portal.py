"""The web portal at / in a real browser: Debian's chromium, headless, driven by Playwright.

Login through the IdP testbed (authorization code + PKCE, oidc-provider's own login and
consent pages), the catalogue search, the form generated from hello-world's JSON Schema
with the API's field error shown at its field, the facility choice with unfit facilities
and their reasons, the job reaching COMPLETED on its page, its log, a result downloaded
and checked, the job list and the schedules page. Screenshots go to var/artifacts/portal/.
"""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
import pytest_asyncio

from gridgate.cli.stack import DevStack
from gridgate.testing.browser import chromium, log_in_through_the_idp
from gridgate.testing.idp import private_idp, repository_root
from gridgate.testing.services import free_port

ARTIFACTS = repository_root() / "var" / "artifacts" / "portal"

pytestmark = pytest.mark.idp

FACILITIES = """
facilities:
  - {id: local, title: Local worker host, description: This host., kind: local,
     runtime_engine: process, cores: null, memory_gb: null, max_walltime_s: 86400, vos: ["*"]}
  - {id: tiny, title: A tiny site, description: Too little memory for anything., kind: dirac,
     runtime_engine: process, cores: 1, memory_gb: 0.25, max_walltime_s: 600, vos: ["*"]}
  - {id: km3net-site, title: KM3NeT only, description: Serves one VO., kind: dirac,
     runtime_engine: process, cores: 4, memory_gb: 8, max_walltime_s: 86400, vos: ["km3net"]}
"""


@pytest.fixture(scope="module")
def browser_path() -> Path:
    return chromium()


@pytest.fixture(scope="module")
def gateway_port() -> int:
    return free_port()


@pytest.fixture(scope="module")
def portal_idp(tmp_path_factory: pytest.TempPathFactory, gateway_port: int) -> Iterator[str]:
    yield from private_idp(
        tmp_path_factory.mktemp("idp"),
        free_port(),
        portal_redirect_uris=(f"http://127.0.0.1:{gateway_port}/",),
    )


@pytest_asyncio.fixture(loop_scope="session")
async def portal_stack(
    portal_idp: str, gateway_port: int, broker_url: str, tmp_path: Path
) -> AsyncIterator[DevStack]:
    facilities = tmp_path / "facilities.yaml"
    facilities.write_text(FACILITIES)
    stack = DevStack(
        data_dir=tmp_path / "stack",
        port=gateway_port,
        broker_url=broker_url,
        oidc_issuer=portal_idp,
        gateway_options={"portal_resource": "urn:gridgate", "facilities_file": facilities},
    )
    await stack.start()
    yield stack
    await stack.stop()


async def test_portal_page_has_a_strict_content_security_policy(portal_stack: DevStack) -> None:
    async with httpx.AsyncClient(base_url=portal_stack.url) as http:
        page = await http.get("/")
        assert page.status_code == 200
        policy = page.headers["content-security-policy"]
        assert "default-src 'none'" in policy and "script-src 'self'" in policy
        assert "frame-ancestors 'none'" in policy
        assert "unsafe-inline" not in policy and "unsafe-eval" not in policy
        assert (await http.head("/")).status_code == 200
        assert (
            (await http.get("/portal/app.js")).headers["content-type"].startswith("text/javascript")
        )
        config = (await http.get("/portal/config.json")).json()
        assert config["clientId"] == "gridgate-portal"
        missing = await http.get("/portal/../main.py")
        assert missing.status_code == 404
        assert (await http.get("/portal/nothing.js")).status_code == 404


async def test_login_submit_watch_log_and_download_in_a_browser(
    portal_stack: DevStack, portal_idp: str, browser_path: Path, tmp_path: Path
) -> None:
    from playwright.async_api import async_playwright, expect

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    problems: list[str] = []
    async with async_playwright() as driver:
        browser = await driver.chromium.launch(executable_path=browser_path, headless=True)
        context = await browser.new_context(
            accept_downloads=True, viewport={"width": 1200, "height": 900}
        )
        page = await context.new_page()
        page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: problems.append(str(e)))
        requests: list[str] = []
        page.on("request", lambda r: requests.append(r.url))
        try:
            await page.goto(f"{portal_stack.url}/")
            await log_in_through_the_idp(page)
            assert await page.evaluate("localStorage.length") == 0

            # By keyboard: type into the labelled search field, Enter.
            await page.get_by_label("Search workflows").fill("hello")
            await page.get_by_label("Search workflows").press("Enter")
            await expect(page.locator("#catalogue tbody tr")).to_have_count(1)
            await page.screenshot(path=ARTIFACTS / "catalogue.png", full_page=True)

            await page.get_by_role("link", name="Hello World (hello-world 1.0.0)").click()
            await expect(page.get_by_role("heading", name="Hello World")).to_be_visible()
            # Facilities that cannot run it are shown, disabled, with the reason.
            await expect(page.locator("#facility-tiny")).to_be_disabled()
            await expect(page.locator("#facility-tiny-why")).to_contain_text("0.25 GB memory")
            await expect(page.locator("#facility-km3net-site-why")).to_contain_text(
                "does not serve cta"
            )
            await expect(page.locator("#facility-local")).to_be_checked()

            # A value the API refuses: its message appears at the field.
            await page.get_by_label("Repeat").fill("0")
            await page.get_by_role("button", name="Submit and run").click()
            await expect(page.locator("#param-repeat-error")).not_to_be_empty()
            await expect(page.locator("#param-repeat")).to_have_attribute("aria-invalid", "true")
            await page.screenshot(path=ARTIFACTS / "form-error.png", full_page=True)

            await page.get_by_label("Repeat").fill("2")
            await page.get_by_label("Name").fill("Portal")
            await page.get_by_role("button", name="Submit and run").click()
            await expect(page.locator("#phase")).to_have_text("COMPLETED", timeout=60_000)
            job_id = page.url.rsplit("/", 1)[-1]
            # Kept current by the job's event stream, not by the long poll.
            await expect(page.locator("#live")).to_have_text("Live updates: streamed.")
            assert any(url.endswith(f"/api/jobs/{job_id}/events") for url in requests)
            assert not [url for url in requests if "WAIT=" in url]

            await page.get_by_role("button", name="Show log of task 0").click()
            await expect(page.locator("#log")).to_contain_text("Hello, Portal!")
            await page.screenshot(path=ARTIFACTS / "job.png", full_page=True)

            async with page.expect_download() as download_info:
                await page.get_by_role("link", name="hello.txt").click()
            download = await download_info.value
            saved = tmp_path / "hello.txt"
            await download.save_as(saved)
            listed = await page.evaluate(
                f"fetch('/api/jobs/{job_id}/results', {{headers: {{}}}}).then(r => r.status)"
            )
            assert listed == 401  # no cookie carries the token: only the portal's calls do
            assert b"Hello, Portal!" in saved.read_bytes()
            sha = hashlib.sha256(saved.read_bytes()).hexdigest()
            assert await page.locator(f"code:text('{sha}')").count() == 1

            await page.get_by_role("link", name="Jobs").click()
            await expect(page.get_by_role("link", name=job_id)).to_be_visible()
            await page.screenshot(path=ARTIFACTS / "jobs.png", full_page=True)
            # A job made elsewhere (the API) appears in the open list and reaches COMPLETED,
            # by the events of GET /api/events: the list's polling never started.
            await expect(page.locator("#live")).to_have_text("Live updates: streamed.")
            other = await _job_for_alice(portal_stack.url, portal_idp)
            row = page.locator("tbody tr", has=page.get_by_role("link", name=other))
            await expect(row).to_contain_text("COMPLETED", timeout=60_000)
            await expect(page.locator("#live")).to_have_text("Live updates: streamed.")
            assert any(url.endswith("/api/events") for url in requests)

            # Where the stream cannot be opened (an older gateway), the list polls instead.
            await page.route(
                "**/api/events",
                lambda route: route.fulfill(status=404, content_type="text/plain", body="no"),
            )
            await page.get_by_role("link", name="Schedules").click()
            await page.get_by_role("link", name="Jobs").click()
            await expect(page.locator("#live")).to_have_text("Live updates: polled.")
            polled = await _job_for_alice(portal_stack.url, portal_idp)
            row = page.locator("tbody tr", has=page.get_by_role("link", name=polled))
            await expect(row).to_contain_text("COMPLETED", timeout=60_000)
            await page.unroute("**/api/events")

            await _schedule_for_alice(portal_stack.url, portal_idp)
            await page.get_by_role("link", name="Schedules").click()
            await expect(page.get_by_role("heading", name="Schedules")).to_be_visible()
            await page.get_by_role("button", name="Pause nightly greeting").click()
            await expect(page.get_by_role("button", name="Resume nightly greeting")).to_be_visible()
            await page.screenshot(path=ARTIFACTS / "schedules.png", full_page=True)
        finally:
            await page.screenshot(path=ARTIFACTS / "last.png", full_page=True)
            await browser.close()
    assert not [p for p in problems if "Content Security Policy" in p], problems


async def _alice(issuer: str) -> str:
    async with httpx.AsyncClient() as http:
        minted = await http.post(f"{issuer}/testbed/token", json={"sub": "alice", "ttl": 600})
        return str(minted.json()["access_token"])


async def _job_for_alice(gateway: str, issuer: str) -> str:
    async with httpx.AsyncClient() as http:
        created = await http.post(
            f"{gateway}/api/jobs",
            headers={"Authorization": f"Bearer {await _alice(issuer)}"},
            data={"workflow": "hello-world", "PHASE": "RUN"},
        )
        assert created.status_code == 303, created.text
        return created.headers["location"].rsplit("/", 1)[-1]


async def _schedule_for_alice(gateway: str, issuer: str) -> None:
    token = await _alice(issuer)
    async with httpx.AsyncClient() as http:
        created = await http.post(
            f"{gateway}/api/schedules",
            headers={"Authorization": f"Bearer {token}"},
            json={
                "name": "nightly greeting",
                "workflow": "hello-world",
                "parameters": {"name": "night"},
                "trigger": {"kind": "cron", "expression": "0 2 * * *", "timezone": "UTC"},
            },
        )
        assert created.status_code == 201, created.text


async def test_jobs_past_a_page_and_schedules_created_edited_deleted(
    portal_stack: DevStack, portal_idp: str, browser_path: Path
) -> None:
    from playwright.async_api import async_playwright, expect

    token = await _alice(portal_idp)
    async with httpx.AsyncClient(
        base_url=portal_stack.url, headers={"Authorization": f"Bearer {token}"}, timeout=60
    ) as http:
        for _ in range(103):  # PENDING jobs (no PHASE=RUN): more than a page of the list
            created = await http.post("/api/jobs", data={"workflow": "hello-world"})
            assert created.status_code == 303, created.text
    problems: list[str] = []
    async with async_playwright() as driver:
        browser = await driver.chromium.launch(executable_path=browser_path, headless=True)
        page = await browser.new_page(viewport={"width": 1200, "height": 900})
        page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
        try:
            await page.goto(f"{portal_stack.url}/#/jobs")
            await log_in_through_the_idp(page)
            rows = page.locator("#main tbody tr")
            await expect(rows).to_have_count(100)
            await expect(page.locator("#jobs-count")).to_have_text("100 of 103 job(s) shown")
            # By keyboard: the "more" button, then focus on the first job it added.
            await page.get_by_role("button", name="Show 100 more jobs").focus()
            await page.keyboard.press("Enter")
            await expect(rows).to_have_count(103)
            await expect(page.get_by_role("button", name="Show 100 more jobs")).to_have_count(0)
            focused = await page.evaluate("document.activeElement.textContent")
            assert focused == await rows.nth(100).get_by_role("link").text_content()

            # This stack has no image registry: a containerised workflow's form says so and
            # still offers the image of its build options.
            await page.goto(f"{portal_stack.url}/#/workflows/concordia-corsika")
            await expect(page.locator("#images-unavailable")).to_contain_text(
                "No image registry is configured here."
            )
            await expect(page.get_by_label("The image of these build options")).to_be_checked()

            await page.get_by_role("link", name="Schedules").click()
            await page.get_by_role("link", name="New schedule").click()
            await page.get_by_label("Name").fill("portal hourly")
            await page.get_by_label("Workflow").select_option("hello-world")
            await page.get_by_label("Parameters (JSON)").fill('{"name": "Cron"}')
            await page.get_by_label("Cron expression").fill("61 * * * *")
            await page.get_by_role("button", name="Create schedule").click()
            # The API's refusal is shown at its field.
            await expect(page.locator("#schedule-trigger-expression-error")).not_to_be_empty()
            expression = page.locator("#schedule-trigger-expression")
            await expect(expression).to_have_attribute("aria-invalid", "true")
            await expect(expression).to_be_focused()
            await page.get_by_label("Parameters (JSON)").fill('{"repeat": 0}')
            await expression.fill("5 * * * *")
            await page.get_by_role("button", name="Create schedule").click()
            await expect(page.locator("#schedule-parameters-error")).to_contain_text("repeat")
            await page.screenshot(path=ARTIFACTS / "schedule-error.png", full_page=True)
            await page.get_by_label("Parameters (JSON)").fill('{"name": "Cron"}')
            await page.get_by_role("button", name="Create schedule").click()
            await expect(page.get_by_role("heading", name="Schedules")).to_be_visible()
            await expect(page.get_by_role("link", name="portal hourly")).to_be_visible()

            # Edit: every 90 minutes under a new name.
            await page.get_by_role("link", name="portal hourly").click()
            await expect(page.get_by_label("Workflow")).to_be_disabled()
            await page.get_by_label("Name").fill("portal ninety")
            await page.get_by_label("Trigger").select_option("interval")
            await page.get_by_label("Every (minutes)").fill("90")
            await page.screenshot(path=ARTIFACTS / "schedule-form.png", full_page=True)
            await page.get_by_role("button", name="Save schedule").click()
            await expect(page.get_by_role("link", name="portal ninety")).to_be_visible()
            async with httpx.AsyncClient(
                base_url=portal_stack.url, headers={"Authorization": f"Bearer {token}"}
            ) as http:
                listed = (await http.get("/api/schedules")).json()["schedules"]
                [saved] = [s for s in listed if s["name"] == "portal ninety"]
                view = (await http.get(f"/api/schedules/{saved['scheduleId']}")).json()
                assert view["trigger"] == {"kind": "interval", "minutes": 90}
                assert view["parameters"] == {"name": "Cron"}

            page.once("dialog", lambda dialog: dialog.accept())
            await page.get_by_role("button", name="Delete portal ninety").click()
            await expect(page.get_by_role("link", name="portal ninety")).to_have_count(0)
            await expect(page.locator("#status")).to_have_text("Schedule portal ninety deleted.")
        finally:
            await page.screenshot(path=ARTIFACTS / "last-more.png", full_page=True)
            await browser.close()
    assert not [p for p in problems if "Content Security Policy" in p], problems
