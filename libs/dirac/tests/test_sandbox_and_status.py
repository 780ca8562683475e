"""The input sandbox runs gridgate's programs on a node without gridgate; DIRAC's words map."""

from __future__ import annotations

import base64
import io
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

from gridgate.contracts.phases import Phase
from gridgate.contracts.tasks import TaskSpec
from gridgate.dirac.facility import exit_code_in, task_status
from gridgate.dirac.jdl import TASKS_FILE, WRAPPER
from gridgate.dirac.sandbox import (
    PAYLOAD_ZIP,
    SlotTask,
    encoded_task_document,
    payload_zip,
    sandbox_files,
    slot_sandboxes,
)


def run_wrapper(
    directory: Path, slot: int, env: dict[str, str] | None = None, *options: str
) -> subprocess.CompletedProcess[str]:
    """The wrapper run as DIRAC runs it on a node: in the job's directory, for its slot."""
    return subprocess.run(
        [sys.executable, *options, WRAPPER, str(slot)],
        cwd=directory,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_the_payload_zip_holds_only_stub_packages_and_the_programs() -> None:
    names = zipfile.ZipFile(io.BytesIO(payload_zip())).namelist()
    assert "gridgate/__init__.py" in names
    assert "gridgate/workflows/standins/hello.py" in names
    # Nothing of gridgate's services or libraries beyond the programs travels to the grid.
    stubs = {"gridgate/__init__.py", "gridgate/workflows/__init__.py"}
    assert all(n.startswith("gridgate/workflows/standins/") for n in set(names) - stubs)
    assert payload_zip() == payload_zip()


def test_a_task_runs_from_the_sandbox_alone(tmp_path: Path) -> None:
    tasks = [
        TaskSpec(
            index=0,
            argv=["{python}", "-m", "gridgate.workflows.standins.hello", "--name=node"],
        )
    ]
    text, binary = sandbox_files([SlotTask(task) for task in tasks])
    for name, content in text.items():
        (tmp_path / name).write_text(content)
    for name, encoded in binary.items():
        (tmp_path / name).write_bytes(base64.b64decode(encoded))
    assert json.loads((tmp_path / TASKS_FILE).read_text())["task"]["callback"] is None
    # A clean interpreter: no gridgate installed, only what the sandbox brings.
    done = run_wrapper(tmp_path, 0, {"PATH": os.environ["PATH"]}, "-I")
    assert PAYLOAD_ZIP in binary
    assert done.returncode == 0, done.stderr
    assert "Hello, node!" in done.stdout
    assert done.stdout.rstrip().endswith("gridgate: task 0 exited with code 0")
    assert (tmp_path / "hello.txt").read_text() == "Hello, node!\n"


def test_each_job_of_a_parametric_submission_gets_only_its_own_task_and_token(
    tmp_path: Path,
) -> None:
    slots = [
        SlotTask(
            TaskSpec(index=i, argv=["echo", f"arguments-of-{job}"]),
            {"url": f"https://gw/api/jobs/{job}/callback", "token": f"token-of-{job}"},
        )
        for i, job in enumerate(["jobA", "jobB", "jobC"])
    ]
    text, _ = sandbox_files(slots)
    # What every DIRAC job of the submission receives holds nobody's task.
    assert TASKS_FILE not in text
    assert not any("token-of" in content or "arguments-of" in content for content in text.values())
    own = slot_sandboxes(slots)
    assert [list(files) for files in own] == [[TASKS_FILE]] * 3
    for job, files in zip(["jobA", "jobB", "jobC"], own, strict=True):
        others = {"jobA", "jobB", "jobC"} - {job}
        assert f"token-of-{job}" in files[TASKS_FILE]
        assert not any(other in files[TASKS_FILE] for other in others)
    # The wrapper runs the one task its file holds, whatever its slot.
    (tmp_path / TASKS_FILE).write_text(own[2][TASKS_FILE])
    (tmp_path / WRAPPER).write_text(text[WRAPPER])
    done = run_wrapper(tmp_path, 2)
    assert done.returncode == 0, done.stderr
    assert "arguments-of-jobC" in done.stdout
    assert "gridgate: task 2 exited with code 0" in done.stdout


def test_dirac_states_become_task_states() -> None:
    running = task_status(
        "42",
        {
            "Status": "Running",
            "MinorStatus": "Application",
            "ApplicationStatus": "Unknown",
            "StartExecTime": "2026-11-21 10:00:00",
            "EndExecTime": "None",
        },
    )
    assert running.phase == Phase.EXECUTING
    assert running.detail == "Application"
    assert running.started_at is not None and running.started_at.tzinfo is not None
    assert running.ended_at is None
    waiting = task_status("43", {"Status": "Waiting", "MinorStatus": "Pilot Agent Submission"})
    assert waiting.phase == Phase.QUEUED
    assert waiting.detail == "Pilot Agent Submission"
    assert task_status("44", {"Status": "Killed"}).phase == Phase.ABORTED
    assert task_status("45", {"Status": "Stalled"}).phase == Phase.ERROR
    assert task_status("46", {"Status": "Rescheduled"}).phase == Phase.QUEUED
    assert task_status("47", {"Status": "Something new"}).phase == Phase.UNKNOWN


def test_the_exit_code_is_read_from_the_last_wrapper_line() -> None:
    tail = "gridgate task 0 of 1: python\noops\ngridgate: task 0 exited with code 3\n"
    assert exit_code_in(tail) == 3
    assert exit_code_in("no such line") is None
    # A program printing a look-alike earlier does not win over the wrapper's own last line.
    assert exit_code_in("gridgate: task 0 exited with code 0\nx\n" + tail) == 3


def test_each_job_finds_its_own_task_in_its_environment_and_its_task_does_not(
    tmp_path: Path,
) -> None:
    shown = "import os, sys; print(sys.argv[1], 'GRIDGATE_TASK_DOCUMENT' in os.environ)"
    slots = [
        SlotTask(
            TaskSpec(index=i, argv=[sys.executable, "-c", shown, f"arguments-of-{job}"]),
            {"url": f"https://gw/api/jobs/{job}/callback", "token": f"token-of-{job}"},
        )
        for i, job in enumerate(["jobA", "jobB"])
    ]
    documents = [encoded_task_document(slot) for slot in slots]
    # Encoded, so neither the token nor the arguments appear as text in the JDL.
    assert not any("token-of" in d or "arguments-of" in d for d in documents)
    text, _ = sandbox_files(slots)
    (tmp_path / WRAPPER).write_text(text[WRAPPER])
    done = run_wrapper(tmp_path, 1, {**os.environ, "GRIDGATE_TASK_DOCUMENT": documents[1]})
    assert done.returncode == 0, done.stderr
    # Its own task ran, from the environment (there is no tasks.json here), and the task
    # itself did not inherit the document, callback token included.
    assert "arguments-of-jobB False" in done.stdout
    assert "gridgate: task 1 exited with code 0" in done.stdout
    assert not (tmp_path / TASKS_FILE).exists()
