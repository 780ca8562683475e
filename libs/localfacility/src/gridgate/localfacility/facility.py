"""Submit, watch, cancel, purge and collect tasks of the local facility.

A launch is safe to repeat, so a crash at any point of it loses no task and runs none twice:

* the submitter takes the task's launch lock (``launch.lock``, created whole or not at all,
  naming the launcher's host, boot and pid), writes ``spec.json``, creates ``status.json`` as
  ``submitted`` if it does not exist yet, and starts the detached runner;
* the runner's first act is to claim the task (``runner.claim``, same atomic create); a second
  runner of the task finds the claim and exits, so two runners of one task cannot both run it;
* a redelivered submit launches again every task that no runner has claimed if the lock's
  launcher is provably dead (same host, pid gone or host rebooted) or the lock is older than
  :data:`STALE_LAUNCH_S`; a launcher that is merely slow is left alone;
* :meth:`LocalFacility.status` reports a task that no runner claimed within ``lost_after_s`` of
  its launch as ``lost``, and seals that verdict by taking the runner claim itself, so a task
  once reported lost never starts later.

Crash points (:func:`gridgate.core.crashpoints.crash_point`) in the launch window, for fault
injection tests:

``launch-claimed``
    in :meth:`LocalFacility.submit`, right after the launch lock of a task is taken;
``launch-status-written``
    in :meth:`LocalFacility._launch`, after ``status.json`` is written, before the runner starts;
``launch-spawned``
    in :meth:`LocalFacility._launch`, after the runner's launcher process has started;
``runner-claimed``
    in :func:`gridgate.localfacility.runner.main`, right after the runner claimed its task.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime
from pathlib import Path

from gridgate.contracts.images import ImageRequest
from gridgate.contracts.phases import Phase
from gridgate.contracts.tasks import ResourceLimits, TaskSpec, TaskStatus
from gridgate.core.crashpoints import crash_point
from gridgate.localfacility.layout import (
    CANCEL_MARK,
    LAUNCH_LOCK,
    RUNNER_CLAIM,
    SPEC,
    STATUS,
    STDERR,
    STDOUT,
    WORKDIR,
    create_json_exclusive,
    job_dir,
    read_json,
    split_task_id,
    task_dir,
    task_id,
    write_json_atomic,
)
from gridgate.localfacility.processes import age_s, is_gone, pid_alive, this_process

STALE_LAUNCH_S = 30.0
"""Age after which an unclaimed launch is repeated even if its launcher cannot be proved dead
(another host, or its pid reused); the runner claim keeps the repeat from running twice."""

LOST_AFTER_S = 120.0
"""Default time a launched task may wait for its runner before it is reported ``lost``."""

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
    lost_after_s
        Seconds a launched task may wait for a runner to claim it before :meth:`status`
        reports it ``lost``; long enough for a redelivered submit to launch it again.
    """

    name = "local"

    def __init__(
        self, root: Path, python: str = sys.executable, lost_after_s: float = LOST_AFTER_S
    ) -> None:
        self.root = root
        self.python = python
        self.lost_after_s = lost_after_s
        root.mkdir(parents=True, exist_ok=True)

    def submit(
        self,
        job_id: str,
        tasks: Sequence[TaskSpec],
        limits: ResourceLimits,
        image: ImageRequest | None = None,
    ) -> list[str]:
        """Start every task not started yet; return the facility task ids in task order.

        With a resolved ``image`` (its ``reference`` pinned by digest) each task runs in a
        container of it (:mod:`gridgate.images.runtime`).

        Idempotent: a redelivered submit starts only the tasks whose launch died before a
        runner claimed them (see the module's docstring), and no task runs twice.
        """
        ids = []
        launchers = []
        for task in tasks:
            directory = task_dir(self.root, job_id, task.index)
            directory.mkdir(parents=True, exist_ok=True)
            if self._claim_launch(directory):
                crash_point("launch-claimed")
                write_json_atomic(
                    directory / SPEC,
                    {
                        "argv": task.argv,
                        "env": task.env,
                        "limits": limits.model_dump(),
                        "inputs": [item.model_dump() for item in task.inputs],
                        **(
                            {"image": {"reference": image.reference, "network": image.network}}
                            if image is not None and image.reference
                            else {}
                        ),
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
        if create_json_exclusive(lock, this_process()):
            return True
        if (directory / RUNNER_CLAIM).exists():
            # A runner owns the task (or status() sealed it lost): nothing left to launch.
            return False
        launcher = read_json(lock)
        if not is_gone(launcher) and age_s(launcher, lock) < STALE_LAUNCH_S:
            return False
        # Two redeliveries may both take the launch over here and both start a runner: the
        # runner claim lets exactly one of them run the task.
        write_json_atomic(lock, this_process())
        return True

    def _launch(self, directory: Path) -> subprocess.Popen[bytes]:
        # Created only if absent: a repeated launch must never overwrite a runner's state.
        create_json_exclusive(directory / STATUS, {"state": "submitted"})
        crash_point("launch-status-written")
        with (directory / "runner.log").open("ab") as log:
            launcher = subprocess.Popen(
                [self.python, "-m", "gridgate.localfacility.runner", "--detach", str(directory)],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=log,
                start_new_session=True,
                close_fds=True,
            )
        crash_point("launch-spawned")
        return launcher

    def status(self, facility_task_ids: Iterable[str]) -> dict[str, TaskStatus]:
        """Return the status of each known task, in one pass over the files.

        A task launched more than ``lost_after_s`` ago that no runner has claimed is reported
        ``lost``; this call then takes the runner claim in the task's name, so that no runner
        started later (by a late redelivery) can run a task already reported lost.
        """
        found = {}
        for facility_task_id in facility_task_ids:
            job_id, index = split_task_id(facility_task_id)
            directory = task_dir(self.root, job_id, index)
            record = read_json(directory / STATUS)
            if record is None:
                if not (directory / LAUNCH_LOCK).exists():
                    continue
                # Launched, killed before its status was written: pending a redelivery.
                record = {"state": "submitted"}
            state = str(record.get("state"))
            detail = record.get("detail")
            runner_pid = record.get("runner_pid")
            if state == "submitted" and not isinstance(runner_pid, int):
                state, detail = self._unstarted_state(directory)
            elif state in LIVE_STATES and isinstance(runner_pid, int):
                if not pid_alive(runner_pid):
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

    def _unstarted_state(self, directory: Path) -> tuple[str, str | None]:
        """State and detail of a task that no runner has reported on yet."""
        claim = read_json(directory / RUNNER_CLAIM)
        if claim is None:
            lock = directory / LAUNCH_LOCK
            waited = age_s(read_json(lock), lock)
            if waited < self.lost_after_s:
                return "submitted", None
            detail = (
                f"no runner started the task within {self.lost_after_s:g} s of its launch "
                "(the submitter was stopped during the launch)"
            )
            try:
                sealed = create_json_exclusive(
                    directory / RUNNER_CLAIM, {"lost": detail, **this_process()}
                )
            except OSError:
                # A read-only view of the root, or a purge under way: the verdict stands, unsealed.
                return "lost", detail
            if sealed:
                return "lost", detail
            # A runner claimed the task at this very moment: judge by its claim.
            claim = read_json(directory / RUNNER_CLAIM)
        if claim is None:
            return "submitted", None
        if isinstance(claim.get("lost"), str):
            return "lost", claim["lost"]
        if is_gone(claim):
            return "lost", "the runner process disappeared before it started the task"
        return "submitted", None

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
