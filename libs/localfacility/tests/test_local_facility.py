"""The local facility with real processes: idempotent submit, limits, cancel, outputs."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

from gridgate.contracts import ResourceLimits, TaskSpec
from gridgate.contracts.phases import Phase
from gridgate.localfacility import LocalFacility, TaskStatus


def wait_final(
    facility: LocalFacility, ids: list[str], timeout: float = 30
) -> dict[str, TaskStatus]:
    deadline = time.monotonic() + timeout
    while True:
        states = facility.status(ids)
        if len(states) == len(ids) and all(
            s.phase in {Phase.COMPLETED, Phase.ERROR, Phase.ABORTED} for s in states.values()
        ):
            return states
        if time.monotonic() > deadline:
            raise AssertionError(f"tasks did not finish: {states}")
        time.sleep(0.05)


def py(code: str) -> list[str]:
    return [sys.executable, "-c", code]


LIMITS = ResourceLimits(execution_duration_s=30, memory_mb=512)


def test_submit_twice_runs_each_task_once(tmp_path: Path) -> None:
    facility = LocalFacility(tmp_path)
    tasks = [
        TaskSpec(index=i, argv=py("import os; open('n', 'a').write('x')"), env={"I": str(i)})
        for i in range(3)
    ]
    ids = facility.submit("job1", tasks, LIMITS)
    again = facility.submit("job1", tasks, LIMITS)
    assert ids == again == ["job1/0", "job1/1", "job1/2"]
    states = wait_final(facility, ids)
    assert {s.phase for s in states.values()} == {Phase.COMPLETED}
    for index in range(3):
        assert (tmp_path / "job1" / f"task-{index:04d}" / "work" / "n").read_text() == "x"


def test_exit_code_stdout_and_stderr_are_kept(tmp_path: Path) -> None:
    facility = LocalFacility(tmp_path)
    ids = facility.submit(
        "job2",
        [
            TaskSpec(
                index=0,
                argv=py("import sys; print('out'); print('err', file=sys.stderr); sys.exit(4)"),
            )
        ],
        LIMITS,
    )
    state = wait_final(facility, ids)["job2/0"]
    assert state.phase == Phase.ERROR
    assert state.exit_code == 4
    assert state.detail == "exit code 4"
    files = {name: path.read_text() for name, path, _ in facility.outputs("job2", 1, [])}
    assert files == {"stdout.txt": "out\n", "stderr.txt": "err\n"}


def test_memory_limit_stops_a_greedy_task(tmp_path: Path) -> None:
    facility = LocalFacility(tmp_path)
    limits = ResourceLimits(execution_duration_s=30, memory_mb=256)
    ids = facility.submit(
        "job3", [TaskSpec(index=0, argv=py("x = bytearray(600 * 2**20)"))], limits
    )
    state = wait_final(facility, ids)["job3/0"]
    assert state.phase == Phase.ERROR
    assert "MemoryError" in (tmp_path / "job3" / "task-0000" / "stderr.txt").read_text()


def test_time_limit_kills_the_task(tmp_path: Path) -> None:
    facility = LocalFacility(tmp_path)
    limits = ResourceLimits(execution_duration_s=1, memory_mb=512)
    started = time.monotonic()
    ids = facility.submit("job4", [TaskSpec(index=0, argv=["sleep", "60"])], limits)
    state = wait_final(facility, ids)["job4/0"]
    assert state.state == "timeout"
    assert state.phase == Phase.ERROR
    assert time.monotonic() - started < 20


def test_cancel_stops_the_process_group(tmp_path: Path) -> None:
    facility = LocalFacility(tmp_path)
    ids = facility.submit("job5", [TaskSpec(index=0, argv=["sh", "-c", "sleep 60 & wait"])], LIMITS)
    deadline = time.monotonic() + 10
    while (
        facility.status(ids).get("job5/0") is None
        or facility.status(ids)["job5/0"].state != "running"
    ):
        assert time.monotonic() < deadline
        time.sleep(0.05)
    child_pid = facility.status(ids)["job5/0"]
    assert child_pid.phase == Phase.EXECUTING
    assert facility.cancel("job5") == 1
    state = wait_final(facility, ids)["job5/0"]
    assert state.phase == Phase.ABORTED


def test_outputs_follow_patterns_and_never_leave_the_work_dir(tmp_path: Path) -> None:
    facility = LocalFacility(tmp_path / "root")
    secret = tmp_path / "secret.txt"
    secret.write_text("host file")
    code = (
        f"import os; open('a.json','w').write('1'); open('b.txt','w').write('2'); "
        f"os.symlink({str(secret)!r}, 'leak.json')"
    )
    ids = facility.submit("job6", [TaskSpec(index=i, argv=py(code)) for i in range(2)], LIMITS)
    wait_final(facility, ids)
    names = sorted(name for name, _, _ in facility.outputs("job6", 2, ["*.json"]))
    assert names == [
        "task-0000/a.json",
        "task-0000/stderr.txt",
        "task-0000/stdout.txt",
        "task-0001/a.json",
        "task-0001/stderr.txt",
        "task-0001/stdout.txt",
    ]


def test_a_vanished_runner_is_reported_lost(tmp_path: Path) -> None:
    facility = LocalFacility(tmp_path)
    ids = facility.submit("job7", [TaskSpec(index=0, argv=["sleep", "60"])], LIMITS)
    deadline = time.monotonic() + 10
    while (state := facility.status(ids).get("job7/0")) is None or state.state != "running":
        assert time.monotonic() < deadline
        time.sleep(0.05)
    import json

    record = json.loads((tmp_path / "job7" / "task-0000" / "status.json").read_text())
    os.kill(record["pid"], 9)
    os.kill(record["runner_pid"], 9)
    time.sleep(0.2)
    assert facility.status(ids)["job7/0"].state == "lost"
    assert facility.status(ids)["job7/0"].phase == Phase.ERROR


def test_purge_removes_the_job(tmp_path: Path) -> None:
    facility = LocalFacility(tmp_path)
    ids = facility.submit("job8", [TaskSpec(index=0, argv=["true"])], LIMITS)
    wait_final(facility, ids)
    facility.purge("job8")
    assert not (tmp_path / "job8").exists()
    assert facility.status(ids) == {}
