"""Where a task's files live under the facility root, and how its id is spelled."""

from __future__ import annotations

import json
import os
import secrets
from pathlib import Path
from typing import Any

SPEC = "spec.json"
STATUS = "status.json"
STDOUT = "stdout.txt"
STDERR = "stderr.txt"
WORKDIR = "work"
LAUNCH_LOCK = "launch.lock"
RUNNER_CLAIM = "runner.claim"
CANCEL_MARK = "cancel.requested"


def task_id(job_id: str, index: int) -> str:
    """The facility's id for task ``index`` of ``job_id``."""
    return f"{job_id}/{index}"


def split_task_id(facility_task_id: str) -> tuple[str, int]:
    job_id, _, index = facility_task_id.rpartition("/")
    return job_id, int(index)


def job_dir(root: Path, job_id: str) -> Path:
    if not job_id.isalnum():
        # Job ids are ours (hex); anything else would escape the root.
        raise ValueError(f"invalid job id {job_id!r}")
    return root / job_id


def task_dir(root: Path, job_id: str, index: int) -> Path:
    return job_dir(root, job_id) / f"task-{index:04d}"


def _write_temporary(path: Path, data: dict[str, Any]) -> Path:
    # A name of its own in the same directory: two writers of one file (a redelivered submit
    # next to the first one) never write into each other's half-written temporary file. Not
    # mkstemp: its mode 0600 would hide the file from a monitor running as another user.
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(8)}.partial")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(json.dumps(data, default=str))
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    return temporary


def write_json_atomic(path: Path, data: dict[str, Any]) -> None:
    """Write JSON so that a reader never sees half a file (rename is atomic on POSIX)."""
    temporary = _write_temporary(path, data)
    try:
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def create_json_exclusive(path: Path, data: dict[str, Any]) -> bool:
    """Create ``path`` holding ``data`` unless it exists; ``True`` if this call created it.

    The file appears whole or not at all: it is written under a temporary name and hard-linked
    into place, and ``link`` fails if the name exists. An ``O_EXCL`` create followed by a write
    would leave an empty file to whoever is killed between the two.
    """
    temporary = _write_temporary(path, data)
    try:
        os.link(temporary, path)
    except FileExistsError:
        return False
    finally:
        temporary.unlink(missing_ok=True)
    return True


def read_json(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return None
    return data if isinstance(data, dict) else None
