"""The external OpenID provider testbed (testbeds/idp), as tests use it."""

from __future__ import annotations

import os
import signal
import subprocess
from collections.abc import Iterator
from html.parser import HTMLParser
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


def private_idp(
    state_dir: Path,
    port: int,
    portal_redirect_uris: tuple[str, ...] = (),
    access_token_ttl_s: int | None = None,
    diracx_redirect_uris: tuple[str, ...] = (),
) -> Iterator[str]:
    """An instance of the testbed of our own (its own port and state), for tests that need
    this checkout's configuration of oidc-provider (the device flow, dev login pages, short
    token lifetimes) even when the shared instance runs an older one. Stopped afterwards: we
    started it."""
    idp_dir = repository_root() / "testbeds" / "idp"
    env = {**os.environ, "GRIDGATE_IDP_PORT": str(port), "GRIDGATE_TESTBED_DIR": str(state_dir)}
    if access_token_ttl_s is not None:
        env["GRIDGATE_IDP_ACCESS_TOKEN_TTL"] = str(access_token_ttl_s)
    if portal_redirect_uris:
        env["GRIDGATE_IDP_PORTAL_REDIRECT_URIS"] = " ".join(portal_redirect_uris)
    if diracx_redirect_uris:
        env["GRIDGATE_IDP_DIRACX_REDIRECT_URIS"] = " ".join(diracx_redirect_uris)
    done = subprocess.run(
        [str(idp_dir / "up.sh")], env=env, timeout=300, capture_output=True, text=True
    )
    if done.returncode != 0:
        raise RuntimeError(f"testbeds/idp/up.sh failed: {done.stdout}{done.stderr}")
    pid = int((state_dir / "idp" / "pid").read_text())
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        os.kill(pid, signal.SIGTERM)


class _Forms(HTMLParser):
    """The forms of an HTML page: action, and the values of their named inputs."""

    def __init__(self) -> None:
        super().__init__()
        self.forms: list[tuple[str, dict[str, str]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        named = dict(attrs)
        if tag == "form":
            self.forms.append((named.get("action") or "", {}))
        elif tag == "input" and self.forms and named.get("name"):
            self.forms[-1][1][str(named["name"])] = named.get("value") or ""


def approve_device_login(
    verification_uri: str,
    login: str,
    password: str = "any",  # noqa: S107 - dev pages take any
) -> None:
    """Do what a user does in the browser for a device login at the testbed: open the
    verification URI, confirm the code, sign in, consent (oidc-provider's own pages)."""
    with httpx.Client(follow_redirects=True, timeout=10) as browser:
        page = browser.get(verification_uri)
        for _ in range(8):
            parser = _Forms()
            parser.feed(page.text)
            if "Sign-in Success" in page.text or not parser.forms:
                break
            action, fields = parser.forms[0]
            if fields.get("prompt") == "login":
                fields |= {"login": login, "password": password}
            # Named buttons (abort) are left out: a plain submit is the user saying yes.
            page = browser.post(page.url.join(action), data=fields)
        if "Sign-in Success" not in page.text:
            raise RuntimeError(f"device login not approved; last page: {page.text[-500:]}")


def approve_diracx_login(verification_uri: str, login: str, password: str = "any") -> None:  # noqa: S107
    """What a user does in the browser to approve a DiracX device login whose VO's IdP is the
    testbed: open DiracX's verification URI, which sends them to the IdP (authorization code
    with PKCE), sign in, consent, and land on DiracX's "close the window" page."""
    with httpx.Client(follow_redirects=True, timeout=20) as browser:
        page = browser.get(verification_uri)
        for _ in range(8):
            if page.url.path.endswith("/device/complete/finished"):
                return
            parser = _Forms()
            parser.feed(page.text)
            if not parser.forms:
                break
            action, fields = parser.forms[0]
            if fields.get("prompt") == "login":
                fields |= {"login": login, "password": password}
            page = browser.post(page.url.join(action), data=fields)
        if not page.url.path.endswith("/device/complete/finished"):
            raise RuntimeError(
                f"DiracX login not approved; last page {page.url}: {page.text[-300:]}"
            )
