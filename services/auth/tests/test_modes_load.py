"""What the auth service loads follows its configuration (ADR 0019): SQLAlchemy only for
diracx-user-link's link store, the DIRAC bridge only for dirac-proxymanager."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

from cryptography.fernet import Fernet


def loaded_after_create_app(environment: dict[str, str]) -> set[str]:
    """Build the auth app in a new interpreter (so that what it imports shows) from
    ``environment``; the top-level names of the modules loaded that this test asks about."""
    program = textwrap.dedent("""
        import sys
        from gridgate.auth.config import AuthSettings
        from gridgate.auth.main import create_app

        app = create_app(AuthSettings())
        links = getattr(getattr(app.state, "diracx", None), "links", None)
        print("links:", type(links).__name__)
        for name in ("sqlalchemy", "gridgate.dirac", "gridgate.auth.links.service"):
            if name in sys.modules:
                print("loaded:", name)
    """)
    env = {key: value for key, value in os.environ.items() if not key.startswith("GRIDGATE_AUTH_")}
    done = subprocess.run(
        [sys.executable, "-c", program],
        env=env | environment,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return {line.split(": ", 1)[1] for line in done.stdout.splitlines()}


def test_exchange_mode_loads_neither_sql_nor_dirac() -> None:
    loaded = loaded_after_create_app(
        {
            "GRIDGATE_AUTH_DIRACX_URL": "http://127.0.0.1:9",
            "GRIDGATE_AUTH_DIRACX_LEGACY_KEY": "not-a-real-key",
        }
    )
    assert loaded == {"NoneType"}


def test_user_link_mode_builds_its_link_store(tmp_path: Path) -> None:
    loaded = loaded_after_create_app(
        {
            "GRIDGATE_AUTH_DIRACX_URL": "http://127.0.0.1:9",
            "GRIDGATE_AUTH_DIRACX_MODE": "user-link",
            "GRIDGATE_AUTH_DIRACX_LINK_KEYS": Fernet.generate_key().decode(),
            "GRIDGATE_AUTH_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/links.db",
        }
    )
    assert loaded == {"DiracXLinkService", "sqlalchemy", "gridgate.auth.links.service"}
