"""How gridgate reaches the DIRAC testbed (testbeds/dirac), read from its env.sh: the CLI's
``--dirac-testbed``, the tests and the benchmarks."""

from __future__ import annotations

import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gridgate.dirac.connection import DiracConnection

FACILITY = "dirac-testbed"
DEFAULT_ENV_FILE = Path("var/testbeds/dirac/env.sh")


def read_env_file(path: Path) -> dict[str, str]:
    """The ``export NAME="value"`` lines of a shell file, without running it."""
    variables = {}
    for line in path.read_text().splitlines():
        words = shlex.split(line, comments=True)
        if len(words) == 2 and words[0] == "export" and "=" in words[1]:
            name, value = words[1].split("=", 1)
            variables[name] = value
    return variables


@dataclass(frozen=True)
class DiracTestbed:
    """How the stack reaches the testbed: the workers' connection and the auth provider's."""

    connection: DiracConnection
    alice_sub: str
    variables: dict[str, str]

    @classmethod
    def from_env_file(cls, path: Path = DEFAULT_ENV_FILE) -> DiracTestbed:
        if not path.is_file():
            raise SystemExit(f"{path} is missing: start the DIRAC testbed (make testbed-dirac)")
        return cls.from_variables(read_env_file(path))

    @classmethod
    def from_variables(cls, variables: dict[str, str]) -> DiracTestbed:
        # The robot (a registered DIRAC host) reads the CS and every job; users' proxies come
        # from the ProxyManager, which lets the robot download them (FullDelegation).
        connection = DiracConnection(
            python=Path(variables["GRIDGATE_DIRAC_PYTHON"]),
            root=Path(variables["GRIDGATE_DIRAC_ROBOT_ROOT"]),
            cert_dir=Path(variables["X509_CERT_DIR"]),
        )
        return cls(connection, variables["GRIDGATE_DIRAC_ALICE_SUB"], variables)

    def auth_options(self) -> dict[str, Any]:
        return {
            "provider": "dirac-proxymanager",
            "dirac_python": self.connection.python,
            "dirac_root": self.connection.root,
            "dirac_cert_dir": self.connection.cert_dir,
        }
