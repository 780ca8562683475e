"""The detached runner of one task: ``python -m gridgate.localfacility.runner <task-dir>``.

Its first act is to claim the task (``runner.claim``, created whole or not at all, naming this
process): a launch may be repeated after a submitter crash, and of two runners of one task only
the one holding the claim goes on. Then it starts the task's command in a new session with
resource limits, captures stdout and stderr to files, enforces the wall-clock limit, and records
every state in ``status.json``. SIGTERM (a cancel) stops the task's whole process group.

Crash point ``runner-claimed`` (see :mod:`gridgate.core.crashpoints`) sits right after the
claim, before anything is recorded.
"""

from __future__ import annotations

import os
import resource
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from gridgate.core.crashpoints import crash_point
from gridgate.localfacility.inputs import InputFetchError, fetch_inputs
from gridgate.localfacility.layout import (
    CANCEL_MARK,
    RUNNER_CLAIM,
    SPEC,
    STATUS,
    STDERR,
    STDOUT,
    WORKDIR,
    create_json_exclusive,
    read_json,
    write_json_atomic,
)
from gridgate.localfacility.processes import this_process
from gridgate.localfacility.settings import LocalFacilitySettings

KILL_GRACE_S = 5.0
IMAGE_ENV = "GRIDGATE_IMAGE"
"""Tells a containerised task the image it runs in (``registry/repository@sha256:…``)."""
MB = 1024 * 1024


def _now() -> str:
    return datetime.now(UTC).isoformat()


def _limit_child(memory_mb: int, max_output_mb: int, cores: int) -> None:
    # Runs in the child between fork and exec: keep it to plain syscalls.
    resource.setrlimit(resource.RLIMIT_AS, (memory_mb * MB, memory_mb * MB))
    resource.setrlimit(resource.RLIMIT_FSIZE, (max_output_mb * MB, max_output_mb * MB))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    if hasattr(os, "sched_setaffinity"):
        available = sorted(os.sched_getaffinity(0))
        os.sched_setaffinity(0, available[: max(1, cores)])


def claim_task(directory: Path) -> bool:
    """Claim the task in ``directory`` for this process; ``False`` if it is claimed already."""
    return create_json_exclusive(directory / RUNNER_CLAIM, this_process())


class Runner:
    def __init__(self, directory: Path) -> None:
        self.directory = directory
        spec = read_json(directory / SPEC)
        if spec is None:
            raise SystemExit(f"no readable {SPEC} in {directory}")
        self.spec: dict[str, Any] = spec
        self.child: subprocess.Popen[bytes] | None = None
        self.cancelled = False
        self.started_at = _now()

    def record(self, state: str, **fields: Any) -> None:
        write_json_atomic(
            self.directory / STATUS,
            {"state": state, "runner_pid": os.getpid(), "started_at": self.started_at, **fields},
        )

    def on_sigterm(self, _signum: int, _frame: object) -> None:
        self.cancelled = True
        self.stop_child()

    def stop_child(self) -> None:
        if self.child is None or self.child.poll() is not None:
            return
        try:
            os.killpg(self.child.pid, signal.SIGTERM)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + KILL_GRACE_S
        while time.monotonic() < deadline and self.child.poll() is None:
            time.sleep(0.05)
        if self.child.poll() is None:
            try:
                os.killpg(self.child.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass

    def run(self) -> int:
        limits = self.spec["limits"]
        workdir = self.directory / WORKDIR
        workdir.mkdir(exist_ok=True)
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(workdir),
            "LANG": "C.UTF-8",
            **self.spec.get("env", {}),
        }
        signal.signal(signal.SIGTERM, self.on_sigterm)
        if not self.stage_inputs(workdir):
            return 0
        if self.spec.get("image"):
            return self.run_container(workdir, limits)
        with (
            (self.directory / STDOUT).open("wb") as out,
            (self.directory / STDERR).open("wb") as err,
        ):
            try:
                self.child = subprocess.Popen(
                    self.spec["argv"],
                    cwd=workdir,
                    env=env,
                    stdin=subprocess.DEVNULL,
                    stdout=out,
                    stderr=err,
                    start_new_session=True,
                    preexec_fn=lambda: _limit_child(
                        limits["memory_mb"], limits["max_output_mb"], limits["cores"]
                    ),
                )
            except OSError as exc:
                self.record(
                    "failed",
                    exit_code=None,
                    ended_at=_now(),
                    detail=f"cannot start {self.spec['argv'][0]!r}: {exc.strerror}",
                )
                return 0
            self.record("running", pid=self.child.pid)
            if self.cancelled or (self.directory / CANCEL_MARK).exists():
                self.cancelled = True
                self.stop_child()
            return self.wait(limits["execution_duration_s"])

    def run_container(self, workdir: Path, limits: dict[str, Any]) -> int:
        """Run the task in its image (the spec's ``image``), with the job's limits."""
        from gridgate.images.runtime import docker_client, run_in_container

        image = self.spec["image"]
        # Inside the image only the task's own variables: the host's PATH or HOME mean nothing.
        env = {
            "HOME": "/work",
            "LANG": "C.UTF-8",
            **self.spec.get("env", {}),
            IMAGE_ENV: image["reference"],
        }
        client = docker_client(LocalFacilitySettings().docker_host)
        started: list[str] = []

        def on_start(container_id: str) -> None:
            started.append(container_id[:12])
            self.record("running", container=container_id[:12])

        try:
            outcome = run_in_container(
                client,
                image["reference"],
                self.spec["argv"],
                env,
                workdir,
                name=f"gridgate-{self.directory.parent.name}-{self.directory.name}",
                memory_mb=limits["memory_mb"],
                cores=limits["cores"],
                duration_s=limits["execution_duration_s"],
                network=bool(image.get("network")),
                should_stop=lambda: self.cancelled or (self.directory / CANCEL_MARK).exists(),
                on_start=on_start,
            )
        finally:
            client.close()
        (self.directory / STDOUT).write_bytes(outcome.stdout)
        (self.directory / STDERR).write_bytes(outcome.stderr)
        if outcome.error is not None:
            self.record("failed", exit_code=None, ended_at=_now(), detail=outcome.error[:2000])
        elif outcome.cancelled:
            self.record(
                "cancelled", exit_code=outcome.exit_code, ended_at=_now(), detail="cancelled"
            )
        elif outcome.timed_out:
            self.record(
                "timeout",
                exit_code=outcome.exit_code,
                ended_at=_now(),
                detail=f"killed after the execution duration of {limits['execution_duration_s']} s",
            )
        elif outcome.exit_code == 0:
            # Said in the job's history, so its owner sees where the task ran.
            where = f"in container {started[0]} of " if started else "in "
            self.record("done", exit_code=0, ended_at=_now(), detail=where + image["reference"])
        else:
            self.record(
                "failed",
                exit_code=outcome.exit_code,
                ended_at=_now(),
                detail=f"exit code {outcome.exit_code} in {image['reference']}",
            )
        return 0

    def stage_inputs(self, workdir: Path) -> bool:
        """Fetch the task's input files; ``False`` if the task must not start."""
        inputs = self.spec.get("inputs") or []
        if not inputs:
            return True
        self.record("staging")
        settings = LocalFacilitySettings()
        try:
            fetch_inputs(
                inputs, workdir, ca_file=settings.ca_file, timeout_s=settings.input_timeout_s
            )
        except InputFetchError as exc:
            self.record("failed", exit_code=None, ended_at=_now(), detail=str(exc)[:2000])
            return False
        if self.cancelled or (self.directory / CANCEL_MARK).exists():
            self.record("cancelled", exit_code=None, ended_at=_now(), detail="cancelled")
            return False
        return True

    def wait(self, duration_s: int) -> int:
        assert self.child is not None
        deadline = time.monotonic() + duration_s if duration_s > 0 else None
        while True:
            try:
                code = self.child.wait(timeout=0.2)
                break
            except subprocess.TimeoutExpired:
                if deadline is not None and time.monotonic() >= deadline:
                    self.stop_child()
                    self.record(
                        "timeout",
                        exit_code=self.child.wait(),
                        ended_at=_now(),
                        detail=f"killed after the execution duration of {duration_s} s",
                    )
                    return 0
        if self.cancelled:
            self.record("cancelled", exit_code=code, ended_at=_now(), detail="cancelled")
        elif code == 0:
            self.record("done", exit_code=0, ended_at=_now())
        else:
            reason = f"killed by signal {-code}" if code < 0 else f"exit code {code}"
            self.record("failed", exit_code=code, ended_at=_now(), detail=reason)
        return 0


def main() -> int:
    args = sys.argv[1:]
    detach = args[:1] == ["--detach"]
    if detach:
        args = args[1:]
    if len(args) != 1:
        print(
            "usage: python -m gridgate.localfacility.runner [--detach] <task-dir>", file=sys.stderr
        )
        return 2
    if detach and os.fork() > 0:
        # The launcher waits for this first process only; the runner lives on, adopted by
        # init, so no worker ever holds a zombie and a worker restart never kills a job.
        os._exit(0)
    directory = Path(args[0])
    if not claim_task(directory):
        # A repeated launch: another runner owns the task (or it was reported lost).
        print(f"{directory} is claimed already; this runner leaves it alone", file=sys.stderr)
        return 0
    crash_point("runner-claimed")
    return Runner(directory).run()


if __name__ == "__main__":
    raise SystemExit(main())
