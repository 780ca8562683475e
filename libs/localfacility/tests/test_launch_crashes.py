"""A submitter SIGKILLed anywhere in a launch loses no task and runs none twice.

Every test runs the submit in a child process, kills it at a named crash point
(``GRIDGATE_CRASH_POINTS``), submits again from a fresh process as a redelivered SubmitJob
would, and counts the lines each task appends to a shared file.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from gridgate.contracts.phases import Phase
from gridgate.contracts.tasks import TaskStatus
from gridgate.localfacility import LocalFacility

TASKS = 3
FINAL = {Phase.COMPLETED, Phase.ERROR, Phase.ABORTED}

SUBMIT = """
import sys
from pathlib import Path
from gridgate.contracts import ResourceLimits, TaskSpec
from gridgate.localfacility import LocalFacility

root, job_id, count, ran = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
tasks = [
    TaskSpec(index=i, argv=[sys.executable, "-c", f"open({ran!r}, 'a').write('{i}\\\\n')"])
    for i in range(count)
]
limits = ResourceLimits(execution_duration_s=30, memory_mb=512)
print(LocalFacility(Path(root)).submit(job_id, tasks, limits))
"""


def submit_in_child(
    root: Path, ran: Path, job_id: str = "job1", crash: str | None = None
) -> subprocess.Popen[str]:
    """Start ``LocalFacility.submit`` of a ``TASKS``-task job in a child process."""
    env = {"PATH": "/usr/bin:/bin"}
    if crash is not None:
        env["GRIDGATE_CRASH_POINTS"] = crash
    return subprocess.Popen(
        [sys.executable, "-c", SUBMIT, str(root), job_id, str(TASKS), str(ran)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def finish(child: subprocess.Popen[str]) -> int:
    child.communicate(timeout=60)
    return child.returncode


def task_ids(job_id: str = "job1") -> list[str]:
    return [f"{job_id}/{index}" for index in range(TASKS)]


def wait_final(
    facility: LocalFacility, ids: list[str], timeout: float = 20
) -> dict[str, TaskStatus]:
    deadline = time.monotonic() + timeout
    while True:
        states = facility.status(ids)
        if len(states) == len(ids) and all(s.phase in FINAL for s in states.values()):
            return states
        assert time.monotonic() < deadline, f"tasks did not finish: {states}"
        time.sleep(0.05)


def runs(ran: Path) -> Counter[int]:
    """How many times each task ran, by the lines the tasks appended."""
    lines = ran.read_text().split() if ran.exists() else []
    return Counter(int(line) for line in lines)


def settle() -> None:
    # Long enough for a duplicate runner, had one gone past its claim, to write its line.
    time.sleep(0.5)


@pytest.mark.parametrize(
    "crash",
    [
        "launch-claimed",
        "launch-claimed:2",
        "launch-status-written",
        "launch-status-written:3",
        "launch-spawned",
        "launch-spawned:2",
    ],
)
def test_a_killed_launch_is_completed_by_the_redelivery(tmp_path: Path, crash: str) -> None:
    root, ran = tmp_path / "root", tmp_path / "ran.txt"
    assert finish(submit_in_child(root, ran, crash=crash)) == -signal.SIGKILL
    assert finish(submit_in_child(root, ran)) == 0
    states = wait_final(LocalFacility(root), task_ids())
    settle()
    assert {s.phase for s in states.values()} == {Phase.COMPLETED}
    assert runs(ran) == {index: 1 for index in range(TASKS)}


def test_a_runner_killed_after_its_claim_is_lost_and_never_rerun(tmp_path: Path) -> None:
    root, ran = tmp_path / "root", tmp_path / "ran.txt"
    # The runners inherit the armed point: each dies right after claiming its task.
    assert finish(submit_in_child(root, ran, crash="runner-claimed")) == 0
    claims = [root / "job1" / f"task-{index:04d}" / "runner.claim" for index in range(TASKS)]
    deadline = time.monotonic() + 10
    # The runners detach: wait until each has claimed its task (and died) before redelivering.
    while not all(claim.exists() for claim in claims):
        assert time.monotonic() < deadline
        time.sleep(0.02)
    assert finish(submit_in_child(root, ran)) == 0
    states = wait_final(LocalFacility(root), task_ids())
    settle()
    assert {s.state for s in states.values()} == {"lost"}
    assert all("runner process disappeared" in (s.detail or "") for s in states.values())
    assert runs(ran) == {}


def test_an_unclaimed_launch_is_reported_lost_and_stays_lost(tmp_path: Path) -> None:
    root, ran = tmp_path / "root", tmp_path / "ran.txt"
    assert finish(submit_in_child(root, ran, crash="launch-status-written")) == -signal.SIGKILL
    facility = LocalFacility(root, lost_after_s=2.0)
    ids = task_ids()
    assert facility.status(ids)["job1/0"].state == "submitted"
    # Tasks 1 and 2 were never launched: nothing to report until a submit comes.
    assert list(facility.status(ids)) == ["job1/0"]
    deadline = time.monotonic() + 5
    while (state := facility.status(ids)["job1/0"]).state != "lost":
        assert time.monotonic() < deadline, state
        time.sleep(0.05)
    assert state.phase == Phase.ERROR
    assert "no runner started the task within 2 s" in (state.detail or "")
    # A redelivery that comes too late launches the rest but keeps the verdict on task 0.
    assert finish(submit_in_child(root, ran)) == 0
    states = wait_final(facility, ids)
    settle()
    assert states["job1/0"].state == "lost"
    assert {states["job1/1"].phase, states["job1/2"].phase} == {Phase.COMPLETED}
    assert runs(ran) == {1: 1, 2: 1}


def test_concurrent_submits_of_one_job_run_each_task_once(tmp_path: Path) -> None:
    root, ran = tmp_path / "root", tmp_path / "ran.txt"
    children = [submit_in_child(root, ran) for _ in range(3)]
    assert [finish(child) for child in children] == [0, 0, 0]
    states = wait_final(LocalFacility(root), task_ids())
    settle()
    assert {s.phase for s in states.values()} == {Phase.COMPLETED}
    assert runs(ran) == {index: 1 for index in range(TASKS)}


def test_of_runners_started_together_for_one_task_only_one_runs_it(tmp_path: Path) -> None:
    # A stale launch repeated while the first runner is still starting: several runners of
    # one task race for its claim.
    root, ran = tmp_path / "root", tmp_path / "ran.txt"
    assert finish(submit_in_child(root, ran, crash="launch-status-written")) == -signal.SIGKILL
    directory = root / "job1" / "task-0000"
    runners = [
        subprocess.Popen(
            [sys.executable, "-m", "gridgate.localfacility.runner", str(directory)],
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(4)
    ]
    messages = [runner.communicate(timeout=30)[1] for runner in runners]
    assert [runner.returncode for runner in runners] == [0, 0, 0, 0]
    assert sum("claimed already" in message for message in messages) == 3
    claim = json.loads((directory / "runner.claim").read_text())
    assert claim["pid"] in {runner.pid for runner in runners}
    assert LocalFacility(root).status(["job1/0"])["job1/0"].state == "done"
    assert runs(ran) == {0: 1}
