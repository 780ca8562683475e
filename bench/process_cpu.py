"""CPU seconds per program over a window: where a benchmark's machine time went.

On our 2-core machines gridgate, the broker, the databases and a facility testbed share the
cores, so a rate alone does not say what bounds it. :func:`snapshot` reads every process's
user and system time from ``/proc``; :func:`spent` gives the seconds each program used
between two snapshots, grouped by what it is (a DIRAC service by its name, our bridge
processes, MariaDB, RabbitMQ...). Linux only.
"""

from __future__ import annotations

import os
from pathlib import Path

TICK_S = 1 / os.sysconf("SC_CLK_TCK")
Snapshot = dict[int, tuple[str, float]]
"""pid -> (what the process is, CPU seconds used so far)."""
LABELS = (
    ("bridge_main.py", "gridgate's DIRAC bridges"),
    ("dirac_direct_submit.py", "DIRAC API client"),
    ("dirac-executor", "DIRAC optimizers (executor)"),
    ("mariadbd", "MariaDB"),
    ("mysqld", "MariaDB"),
    ("beam.smp", "RabbitMQ"),
    ("postgres", "PostgreSQL"),
)


def _label(pid: int, command: list[str]) -> str:
    if pid == os.getpid():
        return "this process (gridgate's stack)"
    for index, part in enumerate(command):
        if part.endswith(("dirac-service", "dirac-agent")) and index + 1 < len(command):
            return f"DIRAC {command[index + 1]}"
    joined = " ".join(command)
    for mark, label in LABELS:
        if mark in joined:
            return label
    return "other"


def snapshot() -> Snapshot:
    """Every process now: its label and the CPU seconds it used so far."""
    found: Snapshot = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            command = (entry / "cmdline").read_bytes().decode(errors="replace").split("\0")
        except OSError:
            continue  # gone meanwhile
        # The name in parentheses may hold spaces: the fields after it are fixed.
        fields = stat[stat.rindex(")") + 2 :].split()
        seconds = (int(fields[11]) + int(fields[12])) * TICK_S  # utime, stime
        found[int(entry.name)] = (_label(int(entry.name), command), seconds)
    return found


def spent(before: Snapshot, after: Snapshot) -> dict[str, float]:
    """CPU seconds used between the snapshots, by label (a process born in between counts
    from zero; one that ended in between is not seen)."""
    used: dict[str, float] = {}
    for pid, (label, seconds) in after.items():
        start = before.get(pid, (label, 0.0))[1]
        if seconds > start:
            used[label] = used.get(label, 0.0) + seconds - start
    return used


def describe(used: dict[str, float], top: int = 8) -> str:
    ranked = sorted(used.items(), key=lambda item: -item[1])[:top]
    shown = ", ".join(f"{label} {seconds:.1f}" for label, seconds in ranked)
    return f"{sum(used.values()):.1f} CPU s in all: {shown}"
