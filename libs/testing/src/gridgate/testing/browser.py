"""Debian's chromium for the portal's browser tests, installed the way the testbeds install
their Debian packages: with apt-get, when it is missing (CI machines run as root)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

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
