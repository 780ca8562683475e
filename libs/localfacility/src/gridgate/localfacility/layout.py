"""Where a task's files live under the facility root, and how its id is spelled."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

SPEC = "spec.json"
STATUS = "status.json"
STDOUT = "stdout.txt"
STDERR = "stderr.txt"
WORKDIR = "work"
LAUNCH_LOCK = "launch.lock"
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


def write_json_atomic(path: Path, data: dict[str, Any]) -> None:
    """Write JSON so that a reader never sees half a file (rename is atomic on POSIX)."""
    partial = path.with_suffix(path.suffix + ".partial")
    partial.write_text(json.dumps(data, default=str))
    os.replace(partial, path)


def read_json(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return None
    return data if isinstance(data, dict) else None
