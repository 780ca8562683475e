"""The DIRAC testbed (testbeds/dirac) for tests: started once, its client environment read."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from gridgate.dirac.testbed import read_env_file
from gridgate.testing.idp import repository_root


def start_dirac_testbed() -> dict[str, str]:
    """Bring the testbed up (idempotent) and return the variables of its ``env.sh``."""
    root = repository_root()
    subprocess.run(
        [str(root / "testbeds" / "dirac" / "up.sh")], check=True, timeout=900, capture_output=True
    )
    # up.sh keeps its state under GRIDGATE_TESTBED_DIR when set (a shared testbed).
    state = Path(os.environ.get("GRIDGATE_TESTBED_DIR", root / "var" / "testbeds"))
    variables = read_env_file(state / "dirac" / "env.sh")
    return {
        k: v for k, v in variables.items() if k.startswith(("GRIDGATE_DIRAC", "X509_", "DIRAC"))
    }


def dirac_script(name: str, *args: str, timeout: float = 300) -> str:
    """Run one of the testbed's helper scripts (trust_ca.sh, register_user.sh, ...)."""
    script = repository_root() / "testbeds" / "dirac" / name
    done = subprocess.run(
        [str(script), *args], check=True, capture_output=True, text=True, timeout=timeout
    )
    return done.stdout
