"""Submit, watch, cancel, purge and collect tasks of the local facility."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime
from pathlib import Path

from gridgate.contracts.phases import Phase
from gridgate.contracts.tasks import ResourceLimits, TaskSpec, TaskStatus
from gridgate.localfacility.layout import (
    CANCEL_MARK,
    LAUNCH_LOCK,
    SPEC,
    STATUS,
    STDERR,
    STDOUT,
    WORKDIR,
    job_dir,
    read_json,
    split_task_id,
    task_dir,
    task_id,
    write_json_atomic,
)

# A launch lock older than this without a status file means the launcher died before the
# runner started; the task may then be launched again without risk of running twice.
STALE_LAUNCH_S = 30.0

LIVE_STATES = frozenset({"submitted", "staging", "running"})
"""States in which a runner process is at work."""

PHASE_OF_STATE = {
    "submitted": Phase.QUEUED,
    "staging": Phase.QUEUED,
    "running": Phase.EXECUTING,
    "done": Phase.COMPLETED,
    "failed": Phase.ERROR,
    "timeout": Phase.ERROR,
    "lost": Phase.ERROR,
    "cancelled": Phase.ABORTED,
}


def _pid_alive(pid: int) -> bool:
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


def _parse_time(value: object) -> datetime | None:
    return datetime.fromisoformat(value) if isinstance(value, str) else None


class LocalFacility:
    """The local facility rooted at a directory on the worker host.

    Parameters
    ----------
    root
        Directory holding one folder per job; shared by submitter, monitor and results.
    python
        Interpreter that runs the runner (and the ``{python}`` of workflow commands).
    """

    name = "local"

    def __init__(self, root: Path, python: str = sys.executable) -> None:
        self.root = root
        self.python = python
        root.mkdir(parents=True, exist_ok=True)

    def submit(self, job_id: str, tasks: Sequence[TaskSpec], limits: ResourceLimits) -> list[str]:
        """Start every task not started yet; return the facility task ids in task order.

        Idempotent: a redelivered submit finds the tasks already launched and starts nothing.
        """
        ids = []
        launchers = []
        for task in tasks:
            directory = task_dir(self.root, job_id, task.index)
            directory.mkdir(parents=True, exist_ok=True)
            if self._claim_launch(directory):
                write_json_atomic(
                    directory / SPEC,
                    {
                        "argv": task.argv,
                        "env": task.env,
                        "limits": limits.model_dump(),
                        "inputs": [item.model_dump() for item in task.inputs],
                    },
                )
                launchers.append(self._launch(directory))
            ids.append(task_id(job_id, task.index))
        # Launchers start in parallel; each exits as soon as its runner has detached.
        for launcher in launchers:
            launcher.wait(timeout=120)
        return ids

    def _claim_launch(self, directory: Path) -> bool:
        lock = directory / LAUNCH_LOCK
        try:
            fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
        except FileExistsError:
            if (directory / STATUS).exists():
                return False
            if time.time() - lock.stat().st_mtime < STALE_LAUNCH_S:
                return False
            lock.touch()
            return True
        os.close(fd)
        return True

    def _launch(self, directory: Path) -> subprocess.Popen[bytes]:
        write_json_atomic(directory / STATUS, {"state": "submitted"})
        with (directory / "runner.log").open("ab") as log:
            launcher = subprocess.Popen(
                [self.python, "-m", "gridgate.localfacility.runner", "--detach", str(directory)],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=log,
                start_new_session=True,
                close_fds=True,
            )
        return launcher

    def status(self, facility_task_ids: Iterable[str]) -> dict[str, TaskStatus]:
        """Return the status of each known task, in one pass over the files."""
        found = {}
        for facility_task_id in facility_task_ids:
            job_id, index = split_task_id(facility_task_id)
            directory = task_dir(self.root, job_id, index)
            record = read_json(directory / STATUS)
            if record is None:
                continue
            state = str(record.get("state"))
            detail = record.get("detail")
            runner_pid = record.get("runner_pid")
            if state in LIVE_STATES and isinstance(runner_pid, int):
                if not _pid_alive(runner_pid):
                    state, detail = "lost", "the runner process disappeared (host restart?)"
            found[facility_task_id] = TaskStatus(
                facility_task_id=facility_task_id,
                state=state,
                phase=PHASE_OF_STATE.get(state, Phase.UNKNOWN),
                exit_code=record.get("exit_code"),
                detail=detail,
                started_at=_parse_time(record.get("started_at")),
                ended_at=_parse_time(record.get("ended_at")),
            )
        return found

    def cancel(self, job_id: str) -> int:
        """Ask every task of the job to stop; return how many were signalled."""
        signalled = 0
        for directory in self._task_dirs(job_id):
            (directory / CANCEL_MARK).touch()
            record = read_json(directory / STATUS) or {}
            runner_pid = record.get("runner_pid")
            if record.get("state") in LIVE_STATES and isinstance(runner_pid, int):
                try:
                    os.kill(runner_pid, signal.SIGTERM)
                    signalled += 1
                except ProcessLookupError:
                    pass
        return signalled

    def purge(self, job_id: str) -> None:
        """Stop the job if it runs and remove its files."""
        self.cancel(job_id)
        shutil.rmtree(job_dir(self.root, job_id), ignore_errors=True)

    def tail(self, facility_task_id: str, stream: str, limit: int = 65536) -> str:
        """The last ``limit`` bytes a task wrote to ``stdout`` or ``stderr`` so far."""
        job_id, index = split_task_id(facility_task_id)
        path = task_dir(self.root, job_id, index) / (STDOUT if stream == "stdout" else STDERR)
        try:
            with path.open("rb") as handle:
                size = handle.seek(0, os.SEEK_END)
                handle.seek(max(0, size - limit))
                return handle.read().decode("utf-8", errors="replace")
        except FileNotFoundError:
            return ""

    def _task_dirs(self, job_id: str) -> Iterator[Path]:
        directory = job_dir(self.root, job_id)
        if directory.is_dir():
            yield from sorted(p for p in directory.iterdir() if p.name.startswith("task-"))

    def outputs(
        self, job_id: str, task_count: int, patterns: Sequence[str]
    ) -> list[tuple[str, Path, int]]:
        """List ``(result name, path, task index)`` of a job's stdout, stderr and outputs.

        A one-task job's files keep their names; with several tasks each name gets a
        ``task-NNNN/`` prefix so that equal file names of different tasks stay apart.
        """
        files = []
        for index in range(task_count):
            directory = task_dir(self.root, job_id, index)
            prefix = "" if task_count == 1 else f"task-{index:04d}/"
            for name in (STDOUT, STDERR):
                if (directory / name).is_file():
                    files.append((prefix + name, directory / name, index))
            workdir = (directory / WORKDIR).resolve()
            seen: set[Path] = set()
            for pattern in patterns:
                for path in sorted(workdir.glob(pattern)):
                    real = path.resolve()
                    # A symlink in the work dir must not smuggle out a file of the host.
                    if real in seen or not real.is_file() or not real.is_relative_to(workdir):
                        continue
                    seen.add(real)
                    files.append((prefix + str(real.relative_to(workdir)), real, index))
        return files
