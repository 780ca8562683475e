"""Crash points kill the process exactly on the armed pass, and never when unarmed."""

from __future__ import annotations

import signal
import subprocess
import sys

PROGRAM = """
from gridgate.core.crashpoints import crash_point
for i in range(5):
    print(i, flush=True)
    crash_point("loop")
print("end", flush=True)
"""


def run(spec: str | None) -> subprocess.CompletedProcess[str]:
    env = {"PATH": "/usr/bin:/bin"}
    if spec is not None:
        env["GRIDGATE_CRASH_POINTS"] = spec
    return subprocess.run(
        [sys.executable, "-c", PROGRAM], env=env, capture_output=True, text=True, timeout=60
    )


def test_unarmed_point_does_nothing() -> None:
    done = run(None)
    assert done.returncode == 0
    assert done.stdout.split() == ["0", "1", "2", "3", "4", "end"]


def test_armed_point_kills_on_the_counted_pass() -> None:
    done = run("other,loop:3")
    assert done.returncode == -signal.SIGKILL
    assert done.stdout.split() == ["0", "1", "2"]
