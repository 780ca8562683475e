"""The DIRAC testbed (testbeds/dirac) for tests: started once, its client environment read."""

from __future__ import annotations

import subprocess

from gridgate.testing.idp import repository_root


def start_dirac_testbed() -> dict[str, str]:
    """Bring the testbed up (idempotent) and return the variables of its ``env.sh``."""
    root = repository_root()
    subprocess.run(
        [str(root / "testbeds" / "dirac" / "up.sh")], check=True, timeout=900, capture_output=True
    )
    env_file = root / "var" / "testbeds" / "dirac" / "env.sh"
    dump = subprocess.run(
        ["bash", "-c", f"set -a; . {env_file}; env -0"], check=True, capture_output=True, timeout=30
    )
    variables = dict(item.split("=", 1) for item in dump.stdout.decode().split("\0") if "=" in item)
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


def robot_environment(variables: dict[str, str]) -> dict[str, str]:
    """The environment of a DIRAC client acting as gridgate's robot (host) identity."""
    root = variables["GRIDGATE_DIRAC_ROBOT_ROOT"]
    return {
        "DIRAC_ROOT_PATH": root,
        "DIRAC": root,
        "X509_CERT_DIR": variables["X509_CERT_DIR"],
        "X509_VOMS_DIR": variables.get("X509_VOMS_DIR", variables["X509_CERT_DIR"]),
    }
