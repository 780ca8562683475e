"""Run one task in a container with the Docker SDK, hardened and limited.

The container runs as an unprivileged user with every capability dropped, no new
privileges, a read-only root file system (a small ``/tmp`` tmpfs aside), the job's CPU,
memory and process limits, and no network unless the workflow allows it. The task's working
directory is the only mount, read-write at ``/work``.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

WORKDIR_IN_CONTAINER = "/work"
NOBODY = 65534
POLL_S = 0.2
STOP_GRACE_S = 5


@dataclass(frozen=True)
class ContainerOutcome:
    """How a containerised task ended."""

    exit_code: int | None
    timed_out: bool
    cancelled: bool
    stdout: bytes
    stderr: bytes
    error: str | None = None
    """Why the container could not start (image not pullable, engine down)."""


def docker_client(docker_host: str = "") -> Any:
    """A Docker SDK client of ``docker_host`` (``DOCKER_HOST`` or the default socket if empty)."""
    import docker

    if docker_host:
        return docker.DockerClient(base_url=docker_host, timeout=300)
    return docker.from_env(timeout=300)


def task_user(workdir: Path) -> str:
    """The user the container runs as: the runner's own, or ``nobody`` if that is root.

    A root runner hands the working directory to ``nobody`` so the task can write its
    outputs there and nowhere else.
    """
    if os.getuid() != 0:
        return f"{os.getuid()}:{os.getgid()}"
    for path in (workdir, *workdir.rglob("*")):
        os.chown(path, NOBODY, NOBODY)
    return f"{NOBODY}:{NOBODY}"


def run_in_container(
    client: Any,
    reference: str,
    argv: Sequence[str],
    env: Mapping[str, str],
    workdir: Path,
    *,
    name: str,
    memory_mb: int,
    cores: int,
    duration_s: int,
    network: bool,
    should_stop: Callable[[], bool],
    on_start: Callable[[str], None] | None = None,
) -> ContainerOutcome:
    """Run ``argv`` in ``reference`` until it exits, times out or ``should_stop()`` is true.

    Returns
    -------
    ContainerOutcome
        Exit code, whether it was stopped, and its output.
    """
    import docker.errors

    try:
        stale = client.containers.get(name)
        stale.remove(force=True)  # a leftover of a runner that died: never two of one task
    except docker.errors.NotFound:
        pass
    except docker.errors.DockerException as exc:
        return ContainerOutcome(None, False, False, b"", b"", f"docker engine: {exc}")
    try:
        container = client.containers.run(
            reference,
            list(argv),
            name=name,
            detach=True,
            user=task_user(workdir),
            working_dir=WORKDIR_IN_CONTAINER,
            environment=dict(env),
            volumes={str(workdir.resolve()): {"bind": WORKDIR_IN_CONTAINER, "mode": "rw"}},
            read_only=True,
            tmpfs={"/tmp": "rw,noexec,nosuid,size=64m"},  # noqa: S108 - inside the container
            cap_drop=["ALL"],
            security_opt=["no-new-privileges"],
            privileged=False,
            network_mode="bridge" if network else "none",
            mem_limit=f"{memory_mb}m",
            memswap_limit=f"{memory_mb}m",
            nano_cpus=int(max(1, cores) * 1e9),
            pids_limit=1024,
            labels={"org.gridgate.task": name},
        )
    except docker.errors.ImageNotFound as exc:
        return ContainerOutcome(None, False, False, b"", b"", f"image not found: {exc}")
    except docker.errors.DockerException as exc:
        return ContainerOutcome(None, False, False, b"", b"", f"cannot start: {exc}")
    if on_start is not None:
        on_start(container.id)
    deadline = time.monotonic() + duration_s if duration_s > 0 else None
    timed_out = cancelled = False
    try:
        while True:
            container.reload()
            if container.status in ("exited", "dead"):
                break
            if should_stop():
                cancelled = True
            elif deadline is not None and time.monotonic() >= deadline:
                timed_out = True
            if cancelled or timed_out:
                container.stop(timeout=STOP_GRACE_S)
                break
            time.sleep(POLL_S)
        code = container.wait().get("StatusCode")
        stdout = container.logs(stdout=True, stderr=False)
        stderr = container.logs(stdout=False, stderr=True)
    finally:
        try:
            container.remove(force=True)
        except docker.errors.DockerException:
            pass
    return ContainerOutcome(code, timed_out, cancelled, stdout, stderr)
