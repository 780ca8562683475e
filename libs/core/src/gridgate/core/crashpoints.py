"""Named crash points: let a fault-injection run SIGKILL a process at an exact line.

Random kills under load mostly land at quiet moments; the windows that matter (after a launch
is claimed, between a commit and an acknowledgement) are a few microseconds wide. Code marks
such a window with :func:`crash_point`; a chaos run names the points to arm in the
``GRIDGATE_CRASH_POINTS`` environment variable, for example ``"launch-claimed:3,report-
committed"``: the process kills itself (SIGKILL, no clean-up) on the third pass through
``launch-claimed`` or the first through ``report-committed``. With the variable unset (every
deployment) a crash point costs one dictionary look-up.
"""

from __future__ import annotations

import os
import signal

ENVIRONMENT_VARIABLE = "GRIDGATE_CRASH_POINTS"


def _parse(spec: str) -> dict[str, int]:
    armed: dict[str, int] = {}
    for item in spec.split(","):
        name, _, count = item.strip().partition(":")
        if name:
            armed[name] = int(count) if count.isdigit() and int(count) > 0 else 1
    return armed


_armed = _parse(os.environ.get(ENVIRONMENT_VARIABLE, ""))


def crash_point(name: str) -> None:
    """SIGKILL this process here if ``name`` is armed and its count has run down."""
    left = _armed.get(name)
    if left is None:
        return
    if left > 1:
        _armed[name] = left - 1
        return
    os.kill(os.getpid(), signal.SIGKILL)


def arm(spec: str) -> None:
    """Arm crash points in this process (tests that run the code in a child process)."""
    _armed.clear()
    _armed.update(_parse(spec))


__all__ = ["ENVIRONMENT_VARIABLE", "arm", "crash_point"]
