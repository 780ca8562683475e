"""Who a process is, and whether it is provably gone: the facts a launch decision rests on.

A launch lock and a runner claim record the identity of the process that wrote them
(:func:`this_process`). Another process may act on a record only when :func:`is_gone` proves
that its writer can no longer act itself.
"""

from __future__ import annotations

import os
import socket
import time
from pathlib import Path
from typing import Any

BOOT_ID = Path("/proc/sys/kernel/random/boot_id")


def _boot_id() -> str:
    try:
        return BOOT_ID.read_text().strip()
    except OSError:
        return ""


def pid_alive(pid: int) -> bool:
    """``True`` unless process ``pid`` of this host has surely exited."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        # A zombie answers kill(0) but runs no more.
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return True
    return state != "Z"


def this_process() -> dict[str, Any]:
    """The identity of the calling process, with the time of the call (epoch seconds)."""
    return {"host": socket.gethostname(), "boot": _boot_id(), "pid": os.getpid(), "at": time.time()}


def is_gone(record: dict[str, Any] | None) -> bool:
    """``True`` only if the process ``record`` names has provably exited.

    Proof needs the same host: there the process is gone if the host has rebooted since, or if
    its pid is free. A reused pid looks alive and a process of another host cannot be checked;
    both answer ``False``, and callers fall back on the age of the record.
    """
    if record is None or record.get("host") != socket.gethostname():
        return False
    boot = record.get("boot")
    if boot and _boot_id() and boot != _boot_id():
        return True
    pid = record.get("pid")
    return isinstance(pid, int) and not pid_alive(pid)


def age_s(record: dict[str, Any] | None, path: Path) -> float:
    """Seconds since ``record`` was written, by its own time or else by the file's mtime."""
    written = record.get("at") if record is not None else None
    if not isinstance(written, int | float):
        try:
            written = path.stat().st_mtime
        except FileNotFoundError:
            return 0.0
    return time.time() - written
