#!/usr/bin/env python3
"""Runs one gridgate task on a grid worker node: ``gridgate_task.py <slot>``.

The task's argument vector and environment come from ``tasks.json`` (in the input sandbox),
never from the JDL, and run without a shell: user parameters cannot inject commands. The
exit code of the task is the exit code of this wrapper, which DIRAC reports.

``tasks.json`` is ``{"task": {"argv": [...], "env": {...}, "task_index": i, "callback":
...}}``: this DIRAC job's task alone. A job of a parametric submission finds the same document
base64url-encoded in ``GRIDGATE_TASK_DOCUMENT`` (DIRAC sets it from that job's JDL alone), or,
when it was too large for that, in a ``tasks.json`` of its own.
With a callback (``{"url": ..., "token": ...}``) the wrapper tells the gateway when the task
starts and ends. The gateway's polling of DIRAC stays the source of truth, so a callback that
fails is only mentioned on stderr.

Standard library only, and no syntax newer than Python 3.6: it runs with whatever Python 3
the worker node has (hence the quoted annotations).
"""

import base64
import json
import os
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request
from datetime import datetime, timezone
from typing import Any

TASKS_FILE = "tasks.json"
TASK_DOCUMENT_ENV = "GRIDGATE_TASK_DOCUMENT"
PAYLOAD_ZIP = "gridgate-payload.zip"
"""gridgate's workflow programs, importable from the zip (zipimport) when it is present."""
PYTHON = "{python}"
"""As a task's program: the node's interpreter, which only the node knows."""
CALLBACK_TIMEOUT_S = 5
CALLBACK_ATTEMPTS = 3
WORKDIR_IN_CONTAINER = "/work"
NOBODY = "65534"
RUNTIME_ENV = "GRIDGATE_CONTAINER_RUNTIME"
"""Set on a node to choose the container runtime (apptainer, singularity, docker, podman)."""
RUNTIMES = ("apptainer", "singularity", "docker", "podman")


def read_document(path: str) -> "Any":
    """This job's task document: from the environment, taken out of it so that the task never
    sees its callback token, or else from the file."""
    encoded = os.environ.pop(TASK_DOCUMENT_ENV, "")
    if encoded:
        return json.loads(base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4)))
    with open(path, encoding="utf-8") as handle:
        return json.load(handle)


def load_task(path: str, slot: int) -> "tuple[dict[str, Any], dict[str, str] | None]":
    """This job's task and its callback (``None``: do not call back).

    Earlier submissions shared one file among their jobs: ``{"tasks": [...], "callback":
    ...}`` or a bare list, this job's entry at its slot.
    """
    document = read_document(path)
    if isinstance(document, dict) and "task" in document:
        task = document["task"]
        return task, task.get("callback")
    if isinstance(document, list):
        return document[slot], None
    task = document["tasks"][slot]
    return task, task.get("callback", document.get("callback"))


def task_command(task: "dict[str, Any]") -> "list[str]":
    argv = list(task["argv"])
    # Only the program itself may be the placeholder: a later "{python}" is a user's value.
    if argv[0] == PYTHON:
        argv[0] = sys.executable
    return argv


def task_environment(task: "dict[str, Any]", index: int) -> "dict[str, str]":
    env = dict(os.environ)
    env.update(task.get("env", {}))
    env["GRIDGATE_TASK_INDEX"] = str(index)
    if os.path.isfile(PAYLOAD_ZIP):
        paths = [os.path.abspath(PAYLOAD_ZIP)]
        if env.get("PYTHONPATH"):
            paths.append(env["PYTHONPATH"])
        env["PYTHONPATH"] = os.pathsep.join(paths)
    return env


def find_runtime() -> "tuple[str, str] | None":
    """``(kind, path)`` of the node's container runtime: apptainer or singularity first (no
    daemon, no privileges), else docker or podman; ``GRIDGATE_CONTAINER_RUNTIME`` chooses."""
    wanted = os.environ.get(RUNTIME_ENV, "")
    for kind in (wanted,) if wanted else RUNTIMES:
        path = shutil.which(kind)
        if path:
            return kind, path
    return None


def container_command(
    task: "dict[str, Any]", argv: "list[str]", env: "dict[str, str]"
) -> "list[str]":
    """The command that runs ``argv`` in the task's image, pinned by digest.

    Apptainer/singularity run ``docker://<registry>/<repo>@sha256:...`` (or the unpacked
    CVMFS copy when the node has it) with a clean environment and only the working directory
    bound; docker/podman run it as an unprivileged user with every capability dropped, a
    read-only root, no network unless allowed, and the job's memory and CPU limits.
    """
    image = task["image"]
    found = find_runtime()
    if found is None:
        raise OSError(2, "no container runtime (apptainer, singularity, docker, podman)")
    kind, program = found
    cwd = os.getcwd()
    passed = {k: v for k, v in env.items() if k.startswith("GRIDGATE_") or k in task.get("env", {})}
    if kind in ("apptainer", "singularity"):
        unpacked = image.get("unpacked")
        source = (
            unpacked if unpacked and os.path.isdir(unpacked) else "docker://" + image["reference"]
        )
        command = [program, "exec", "--containall", "--cleanenv", "--no-home"]
        command += ["--bind", cwd + ":" + WORKDIR_IN_CONTAINER, "--pwd", WORKDIR_IN_CONTAINER]
        if not image.get("network"):
            command += ["--net", "--network", "none"]
        for name, value in sorted(passed.items()):
            command += ["--env", name + "=" + value]
        return [*command, source, *argv]
    user = str(os.getuid()) + ":" + str(os.getgid())
    if os.getuid() == 0:
        # Never root inside: hand the working directory to nobody, who writes the outputs.
        for root, dirs, files in os.walk(cwd):
            for name in [root] + [os.path.join(root, n) for n in dirs + files]:
                os.chown(name, int(NOBODY), int(NOBODY))
        user = NOBODY + ":" + NOBODY
    command = [program, "run", "--rm", "--user", user, "--read-only", "--tmpfs", "/tmp"]  # noqa: S108
    command += ["--cap-drop", "ALL", "--security-opt", "no-new-privileges"]
    command += ["--network", "bridge" if image.get("network") else "none"]
    if image.get("memory_mb"):
        command += ["--memory", str(image["memory_mb"]) + "m"]
    if image.get("cores"):
        command += ["--cpus", str(image["cores"])]
    command += ["-v", cwd + ":" + WORKDIR_IN_CONTAINER, "-w", WORKDIR_IN_CONTAINER]
    for name, value in sorted(passed.items()):
        command += ["-e", name + "=" + value]
    return [*command, image["reference"], *argv]


def call_back(
    callback: "dict[str, str] | None",
    index: int,
    event: str,
    exit_code: "int | None" = None,
    message: "str | None" = None,
) -> None:
    """POST one update to the job's callback; failures are printed, never raised."""
    if not callback:
        return
    url = callback["url"]
    if not url.startswith(("http://", "https://")):
        print("gridgate: the callback URL is not http(s); not calling back", file=sys.stderr)
        return
    # One timestamp for every attempt: the gateway takes a repeat as the same update.
    at = datetime.now(timezone.utc).isoformat()  # noqa: UP017 - datetime.UTC is 3.11+
    body = {"task_index": index, "event": event, "at": at, "exit_code": exit_code}
    if message is not None:
        body["message"] = message
    data = json.dumps(body).encode("utf-8")
    headers = {"Content-Type": "application/json", "Authorization": "Bearer " + callback["token"]}
    problem = ""
    for attempt in range(CALLBACK_ATTEMPTS):
        if attempt:
            time.sleep(attempt)  # 1 s, then 2 s
        # The scheme is checked above: only http(s).
        request = urllib.request.Request(  # noqa: S310
            url, data=data, headers=headers, method="POST"
        )
        try:
            with urllib.request.urlopen(request, timeout=CALLBACK_TIMEOUT_S):  # noqa: S310
                return
        except urllib.error.HTTPError as exc:
            problem = f"HTTP {exc.code}"
            if exc.code < 500:  # refused (token, body): asking again gets the same answer
                break
        except Exception as exc:  # network, timeout, a broken reply: try again
            problem = type(exc).__name__
    # Never the token, nor the headers: the line lands in the job's stderr, which users read.
    print(f"gridgate: callback {event!r} not delivered ({problem})", file=sys.stderr)


def main() -> int:
    # The argument is this DIRAC job's slot in its submission; a submission may carry the tasks
    # of several gridgate jobs, so the task names its own index and callback.
    slot = int(sys.argv[1]) if len(sys.argv) > 1 else 0
    task, callback = load_task(TASKS_FILE, slot)
    index = int(task.get("task_index", slot))
    argv = task_command(task)
    env = task_environment(task, index)
    print(f"gridgate task {index} (slot {slot}): {argv[0]}", flush=True)
    call_back(callback, index, "started")
    try:
        if task.get("image"):
            env["GRIDGATE_IMAGE"] = task["image"]["reference"]
            argv = container_command(task, list(task["argv"]), env)
            print(f"gridgate: in {task['image']['reference']} with {argv[0]}", flush=True)
        code = subprocess.call(argv, env=env)
    except OSError as exc:
        print(f"gridgate: cannot start {argv[0]!r}: {exc.strerror}", file=sys.stderr)
        code = 127
    call_back(callback, index, "ended", exit_code=code)
    # DIRAC records only that the application failed; it keeps the tail of stdout, where the
    # monitor reads the exit status from this line (gridgate.dirac.facility.EXIT_LINE).
    print(f"gridgate: task {index} exited with code {code}", flush=True)
    return code


if __name__ == "__main__":
    sys.exit(main())
