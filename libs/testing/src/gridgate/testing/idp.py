"""The external OpenID provider testbed (testbeds/idp), as tests use it."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx

IDP_PORT = int(os.environ.get("GRIDGATE_IDP_PORT", "9400"))
IDP_ISSUER = f"http://127.0.0.1:{IDP_PORT}"


def repository_root() -> Path:
    here = Path(__file__).resolve()
    for parent in here.parents:
        if (parent / "testbeds" / "idp" / "up.sh").exists():
            return parent
    raise RuntimeError("testbeds/idp not found above the gridgate.testing package")


def external_idp() -> Iterator[str]:
    """Start the testbed if it is not running; stop it afterwards only if we started it."""
    idp_dir = repository_root() / "testbeds" / "idp"
    pid_file = repository_root() / "var" / "testbeds" / "idp" / "pid"
    was_running = pid_file.exists()
    subprocess.run([str(idp_dir / "up.sh")], check=True, timeout=300, capture_output=True)
    try:
        yield IDP_ISSUER
    finally:
        if not was_running:
            subprocess.run([str(idp_dir / "down.sh")], check=False, timeout=60, capture_output=True)


def idp_token(sub: str, groups: list[str], ttl: int = 600) -> str:
    """A user access token issued by oidc-provider itself (its testbed-only route)."""
    response = httpx.post(
        f"{IDP_ISSUER}/testbed/token",
        json={"sub": sub, "groups": groups, "ttl": ttl},
        timeout=10,
    )
    response.raise_for_status()
    return str(response.json()["access_token"])
