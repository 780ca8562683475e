"""The DiracX testbed (testbeds/diracx) for tests: started once, its client environment read."""

from __future__ import annotations

import os
import subprocess
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
