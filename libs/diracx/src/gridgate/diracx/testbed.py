"""How gridgate reaches the DiracX testbed (testbeds/diracx), read from its env.sh: the CLI's
``--diracx-testbed``, the tests and the benchmarks."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gridgate.dirac.testbed import read_env_file
from gridgate.diracx.connection import DiracXConnection
from gridgate.diracx.tokens import DiracXIdentity

FACILITY = "diracx-testbed"
DEFAULT_ENV_FILE = Path("var/testbeds/diracx/env.sh")


@dataclass(frozen=True)
class DiracXTestbed:
    """The testbed's connection, the path of its legacy-exchange key, its two users (by name:
    identity and IAM sub) and gridgate's robot."""

    connection: DiracXConnection
    legacy_key_file: Path
    users: dict[str, DiracXIdentity]
    subs: dict[str, str]
    robot: DiracXIdentity
    variables: dict[str, str]

    @classmethod
    def from_env_file(cls, path: Path = DEFAULT_ENV_FILE) -> DiracXTestbed:
        if not path.is_file():
            raise SystemExit(f"{path} is missing: start the DiracX testbed (make testbed-diracx)")
        return cls.from_variables(read_env_file(path))

    @classmethod
    def from_variables(cls, variables: dict[str, str]) -> DiracXTestbed:
        connection = DiracXConnection(url=variables["GRIDGATE_DIRACX_URL"])
        robot = DiracXIdentity(
            user=variables["GRIDGATE_DIRACX_ROBOT_USER"],
            vo=variables["GRIDGATE_DIRACX_ROBOT_VO"],
            group=variables["GRIDGATE_DIRACX_ROBOT_GROUP"],
        )
        users = {
            name: DiracXIdentity(
                user=variables[f"GRIDGATE_DIRACX_{name.upper()}_USER"],
                vo=variables[f"GRIDGATE_DIRACX_{name.upper()}_VO"],
                group=variables[f"GRIDGATE_DIRACX_{name.upper()}_GROUP"],
            )
            for name in ("alice", "bob")
        }
        subs = {name: variables[f"GRIDGATE_DIRACX_{name.upper()}_SUB"] for name in users}
        return cls(
            connection,
            Path(variables["GRIDGATE_DIRACX_LEGACY_KEY_FILE"]),
            users,
            subs,
            robot,
            variables,
        )

    def legacy_key(self) -> str:
        return self.legacy_key_file.read_text().strip()

    def auth_options(self) -> dict[str, Any]:
        """The auth service's diracx-exchange settings for this testbed."""
        return {
            "diracx_url": self.connection.url,
            "diracx_legacy_key": self.legacy_key(),
            "diracx_users": {self.subs[name]: who.user for name, who in self.users.items()},
            "diracx_robot": f"{self.robot.user}:{self.robot.vo}:{self.robot.group}",
        }
