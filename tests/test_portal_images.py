"""The portal's image choice for a containerised workflow, in a real browser (Debian's
chromium through Playwright) against a stack with the Docker testbed's engine and registry:
the form of concordia-corsika submitted with a build option builds its image (the job page
shows it waiting for the build), the new image is then listed on the form (digest, size,
build arguments) and picked, and the second job names and runs exactly that image.
Screenshots go to var/artifacts/portal/.
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
from collections.abc import AsyncIterator, Iterator
from importlib.resources import as_file, files
from pathlib import Path

import pytest
import pytest_asyncio

from gridgate.cli.stack import DevStack
from gridgate.testing.browser import chromium, log_in_through_the_idp
from gridgate.testing.docker import DockerTestbed
from gridgate.testing.idp import private_idp, repository_root
from gridgate.testing.services import free_port

ARTIFACTS = repository_root() / "var" / "artifacts" / "portal"
WORKFLOW = "concordia-corsika"

pytestmark = [pytest.mark.idp, pytest.mark.docker]


def _catalogue(root: Path) -> Path:
    """The shipped catalogue, its CORSIKA recipe new to the registry (a nonce in its context)
    and slow to build, so that the job page is seen waiting for the build."""
    with as_file(files("gridgate.workflows") / "definitions") as shipped:
        shutil.copytree(shipped, root, ignore=shutil.ignore_patterns("__pycache__"))
    image = root / WORKFLOW / "image"
    (image / "NONCE").write_text(secrets.token_hex(16))
    dockerfile = (image / "Dockerfile").read_text()
    (image / "Dockerfile").write_text(dockerfile.replace("USER 65534", "RUN sleep 8\nUSER 65534"))
    return root


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


@pytest.fixture(scope="module")
def runner_uses_the_testbed_engine(docker_testbed: DockerTestbed) -> Iterator[None]:
    """Local-facility runners (children of this process) start containers on the testbed."""
    name = "GRIDGATE_LOCALFACILITY_DOCKER_HOST"
    before = os.environ.get(name)
    os.environ[name] = docker_testbed.docker_host
    yield
    if before is None:
        os.environ.pop(name, None)
    else:
        os.environ[name] = before


@pytest_asyncio.fixture(loop_scope="session")
async def image_stack(
    portal_idp: str,
    gateway_port: int,
    broker_url: str,
    docker_testbed: DockerTestbed,
    docker_base_image: str,
    runner_uses_the_testbed_engine: None,
    tmp_path: Path,
) -> AsyncIterator[DevStack]:
    catalogue = _catalogue(tmp_path / "workflows")
    registry = {"image_registry": docker_testbed.registry, "image_registry_insecure": True}
    stack = DevStack(
        data_dir=tmp_path / "stack",
        port=gateway_port,
        broker_url=broker_url,
        oidc_issuer=portal_idp,
        gateway_options={"portal_resource": "urn:gridgate", "workflows_dir": catalogue, **registry},
        submitter_options={
            "workflows_dir": catalogue,
            "image_base": docker_base_image,
            "docker_host": docker_testbed.docker_host,
            **registry,
        },
    )
    await stack.start()
    yield stack
    await stack.stop()


async def test_build_an_image_then_pick_it_in_the_portal(image_stack: DevStack) -> None:
    from playwright.async_api import async_playwright, expect

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    problems: list[str] = []
    async with async_playwright() as driver:
        browser = await driver.chromium.launch(executable_path=chromium(), headless=True)
        page = await browser.new_page(viewport={"width": 1200, "height": 900})
        page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: problems.append(str(e)))
        try:
            await page.goto(f"{image_stack.url}/#/workflows/{WORKFLOW}")
            await log_in_through_the_idp(page)
            await expect(page.get_by_role("group", name="Image")).to_be_visible()
            # Its tasks ask for 2 h (the workflow's default duration), which local allows.
            await expect(page.locator("#facility-local")).to_be_checked()
            # Nothing of this recipe yet: the build options are the choice, and the form says
            # whether older images exist.
            await expect(page.get_by_label("The image of these build options")).to_be_checked()
            await page.get_by_label("Thinning").check()
            await page.get_by_label("Showers").fill("2")
            await page.get_by_role("button", name="Submit and run").click()

            # The job waits while its image is built, and says so; then it runs in it.
            await expect(page.locator("#pending")).to_contain_text(
                re.compile("building image gridgate/concordia-corsika:r-", re.IGNORECASE),
                timeout=120_000,
            )
            await page.screenshot(path=ARTIFACTS / "image-building.png", full_page=True)
            await expect(page.locator("#phase")).to_have_text("COMPLETED", timeout=300_000)
            await expect(page.locator("#image")).to_contain_text("built for this job")
            await expect(page.locator("#image")).to_contain_text("THINNING=true")
            line = await page.locator("#image").text_content() or ""
            digest = re.search(r"@(sha256:[0-9a-f]{64})", line)
            assert digest, line
            built = digest.group(1)

            # Back on the form, the image is listed with its provenance, and picked by its
            # (labelled) radio button: the build options then show the image's own.
            await page.goto(f"{image_stack.url}/#/workflows/{WORKFLOW}")
            row = page.locator("#images tbody tr", has=page.locator(f"label[title='{built}']"))
            await expect(row).to_contain_text("THINNING=true")
            await expect(row).to_contain_text("this version")
            await expect(row).to_contain_text("MB")
            await row.get_by_role("radio").check()
            await expect(page.get_by_label("Thinning")).to_be_checked()
            await expect(page.get_by_label("Thinning")).to_be_disabled()
            await page.get_by_role("group", name="Image").screenshot(path=ARTIFACTS / "images.png")
            await page.get_by_label("Run number").fill("9")
            await page.get_by_role("button", name="Submit and run").click()
            await expect(page.locator("#phase")).to_have_text("COMPLETED", timeout=300_000)
            await expect(page.locator("#image")).to_contain_text(f"@{built} (selected")
            await expect(page.get_by_role("link", name="DAT000009.json")).to_be_visible()
            history = page.locator("table", has=page.get_by_role("columnheader", name="Source"))
            await expect(history).not_to_contain_text("building image")
        finally:
            await page.screenshot(path=ARTIFACTS / "last-images.png", full_page=True)
            await browser.close()
    assert not [p for p in problems if "Content Security Policy" in p], problems
