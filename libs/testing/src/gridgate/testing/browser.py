"""Debian's chromium for the portal's browser tests, installed the way the testbeds install
their Debian packages: with apt-get, when it is missing (CI machines run as root)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

CHROMIUM = Path(os.environ.get("GRIDGATE_CHROMIUM", "/usr/bin/chromium"))


def chromium() -> Path:
    """The chromium executable, installed first if it is missing."""
    if CHROMIUM.exists():
        return CHROMIUM
    if shutil.which("apt-get") is None or os.geteuid() != 0:
        raise RuntimeError(f"{CHROMIUM} is missing: apt-get install chromium (as root)")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(["apt-get", "update", "-qq"], check=True, env=env, timeout=600)
    subprocess.run(
        ["apt-get", "install", "-y", "-qq", "chromium"], check=True, env=env, timeout=1200
    )
    return CHROMIUM


async def log_in_through_the_idp(page: Any, user: str = "alice") -> None:
    """Click the portal's "Log in" and pass the IdP testbed's own pages (oidc-provider's
    development login, then its consent page); returns once the portal shows the user."""
    from playwright.async_api import expect

    await page.get_by_role("button", name="Log in").click()
    await page.locator("input[name=login]").fill(user)
    await page.locator("input[name=password]").fill("any")
    await page.locator("button[type=submit]").click()
    await page.locator("button[type=submit]").click()
    await expect(page.locator("#who")).to_have_text(f"Signed in as {user}", timeout=20_000)
