"""The Rucio and WebDAV storage testbeds (testbeds/rucio, testbeds/storage), as tests use them.

Both ``up.sh`` scripts are idempotent: a session fixture runs them (quick when the servers
already answer), reads the ``env.sh`` they write, and stops afterwards only what it started.
"""

from __future__ import annotations

import os
import shlex
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from gridgate.testing.idp import repository_root


def testbed_dir() -> Path:
    return Path(os.environ.get("GRIDGATE_TESTBED_DIR", repository_root() / "var" / "testbeds"))


def read_env_file(path: Path) -> dict[str, str]:
    """The ``export NAME="value"`` lines of a testbed's env.sh."""
    values = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if not line.startswith("export "):
            continue
        name, _, raw = line.removeprefix("export ").partition("=")
        parts = shlex.split(raw)
        values[name] = parts[0] if parts else ""
    return values


@dataclass(frozen=True)
class StorageTestbed:
    """The WebDAV server: plain HTTP and TLS on one document root, no authentication."""

    url: str
    https_url: str
    ca_file: Path
    root: Path


@dataclass(frozen=True)
class RucioTestbed:
    """The Rucio server, its accounts and its two storage elements."""

    url: str
    account: str
    username: str
    password: str
    passwords: dict[str, str]
    posix_rse: str
    posix_dir: Path
    webdav_rse: str
    webdav_url: str
    storage: StorageTestbed
    client_venv: Path
    """The venv of the official Rucio client (``bin/rucio``), the server's version."""
    client_config_dir: Path
    """``<account>.cfg``: the official client's configuration for each account."""
    x509_user_proxy: Path
    """Some X.509 proxy file: the client's WebDAV protocol will not connect without one."""

    def client_environment(self, account: str) -> dict[str, str]:
        """The environment that runs the official client as ``account``."""
        return {
            **os.environ,
            "RUCIO_CONFIG": str(self.client_config_dir / f"{account}.cfg"),
            "X509_USER_PROXY": str(self.x509_user_proxy),
        }


def _up(name: str) -> tuple[bool, dict[str, str]]:
    """Run ``testbeds/<name>/up.sh``; return whether it ran before and its env.sh values."""
    script = repository_root() / "testbeds" / name / "up.sh"
    pid_files = {"rucio": "server.pid", "storage": "run/httpd.pid"}
    was_running = (testbed_dir() / name / pid_files[name]).exists()
    done = subprocess.run([str(script)], check=False, timeout=1800, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"testbeds/{name}/up.sh failed:\n{done.stderr[-4000:]}")
    return was_running, read_env_file(testbed_dir() / name / "env.sh")


def _down(name: str) -> None:
    script = repository_root() / "testbeds" / name / "down.sh"
    subprocess.run([str(script)], check=False, timeout=120, capture_output=True)


def start_storage() -> Iterator[StorageTestbed]:
    was_running, env = _up("storage")
    try:
        yield StorageTestbed(
            url=env["GRIDGATE_STORAGE_URL"],
            https_url=env["GRIDGATE_STORAGE_HTTPS_URL"],
            ca_file=Path(env["GRIDGATE_STORAGE_CA_FILE"]),
            root=Path(env["GRIDGATE_STORAGE_ROOT"]),
        )
    finally:
        if not was_running:
            _down("storage")


def start_rucio(storage: StorageTestbed) -> Iterator[RucioTestbed]:
    was_running, env = _up("rucio")
    passwords = {
        "gridgate": env["GRIDGATE_RUCIO_PASSWORD"],
        "root": env["GRIDGATE_RUCIO_ROOT_PASSWORD"],
        "alice": env["GRIDGATE_RUCIO_ALICE_PASSWORD"],
        "bob": env["GRIDGATE_RUCIO_BOB_PASSWORD"],
    }
    try:
        yield RucioTestbed(
            url=env["GRIDGATE_RUCIO_URL"],
            account=env["GRIDGATE_RUCIO_ACCOUNT"],
            username=env["GRIDGATE_RUCIO_USERNAME"],
            password=env["GRIDGATE_RUCIO_PASSWORD"],
            passwords=passwords,
            posix_rse=env["GRIDGATE_RUCIO_RSE_POSIX"],
            posix_dir=Path(env["GRIDGATE_RUCIO_RSE_POSIX_DIR"]),
            webdav_rse=env["GRIDGATE_RUCIO_RSE_WEBDAV"],
            webdav_url=env["GRIDGATE_RUCIO_RSE_WEBDAV_URL"],
            storage=storage,
            client_venv=Path(env["GRIDGATE_RUCIO_VENV"]),
            client_config_dir=Path(env["GRIDGATE_RUCIO_CONFIG_DIR"]),
            x509_user_proxy=Path(env["GRIDGATE_RUCIO_X509_USER_PROXY"]),
        )
    finally:
        if not was_running:
            _down("rucio")


@pytest.fixture(scope="session")
def storage_testbed() -> Iterator[StorageTestbed]:
    """The WebDAV storage testbed (Apache httpd + mod_dav), started for the session."""
    yield from start_storage()


@pytest.fixture(scope="session")
def rucio_testbed(storage_testbed: StorageTestbed) -> Iterator[RucioTestbed]:
    """The Rucio testbed (a real Rucio server with two RSEs), started for the session."""
    yield from start_rucio(storage_testbed)
