"""The DiracX testbed (testbeds/diracx) for tests: started once, its client environment read."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from gridgate.diracx.testbed import DiracXTestbed
from gridgate.testing.idp import repository_root


def start_diracx_testbed() -> DiracXTestbed:
    """Bring the testbed up (idempotent) and read its ``env.sh``."""
    root = repository_root()
    subprocess.run(
        [str(root / "testbeds" / "diracx" / "up.sh")], check=True, timeout=900, capture_output=True
    )
    testbeds = Path(os.environ.get("GRIDGATE_TESTBED_DIR", root / "var" / "testbeds"))
    return DiracXTestbed.from_env_file(testbeds / "diracx" / "env.sh")


@contextmanager
def private_diracx(
    state_dir: Path,
    *,
    port: int,
    s3_port: int,
    idp_port: int,
    venv: Path,
    access_minutes: int = 1,
    refresh_minutes: int = 3,
    redis_db: int = 8,
) -> Iterator[DiracXTestbed]:
    """A second DiracX testbed of our own (its ports, state and Redis database), whose VOs log
    in at a private IdP testbed (client ``diracx``, users ``alice`` and ``bob``) and whose
    tokens last minutes: the shared testbed stays as it is. Stopped afterwards."""
    env = {
        **os.environ,
        "GRIDGATE_TESTBED_DIR": str(state_dir),
        "GRIDGATE_DIRACX_PORT": str(port),
        "GRIDGATE_DIRACX_S3_PORT": str(s3_port),
        "GRIDGATE_DIRACX_REDIS_URL": f"redis://127.0.0.1:6379/{redis_db}",
        "GRIDGATE_IDP_PORT": str(idp_port),
        "GRIDGATE_DIRACX_VENV": str(venv),
        "GRIDGATE_DIRACX_IDP_CLIENT_ID": "diracx",
        "GRIDGATE_DIRACX_ALICE_SUB": "alice",
        "GRIDGATE_DIRACX_BOB_SUB": "bob",
        "GRIDGATE_DIRACX_ACCESS_MINUTES": str(access_minutes),
        "GRIDGATE_DIRACX_REFRESH_MINUTES": str(refresh_minutes),
    }
    scripts = repository_root() / "testbeds" / "diracx"
    done = subprocess.run(
        [str(scripts / "up.sh")], env=env, timeout=900, capture_output=True, text=True
    )
    if done.returncode != 0:
        raise RuntimeError(f"testbeds/diracx/up.sh failed: {done.stderr[-2000:]}")
    try:
        yield DiracXTestbed.from_env_file(state_dir / "diracx" / "env.sh")
    finally:
        subprocess.run(
            [str(scripts / "down.sh"), "--purge"], env=env, timeout=300, capture_output=True
        )
