"""Input files reach a task's working directory before it starts, intact, from real storage."""

from __future__ import annotations

import secrets
import sys
import time
import zlib
from pathlib import Path

import httpx
import pytest

from gridgate.contracts import InputFile, ResourceLimits, TaskSpec
from gridgate.contracts.phases import Phase
from gridgate.localfacility import LocalFacility, TaskStatus
from gridgate.testing.rucio import StorageTestbed

LIMITS = ResourceLimits(execution_duration_s=30, memory_mb=512)
LIST_FILES = (
    "import os, json; print(json.dumps({n: open(n).read() for n in sorted(os.listdir('.'))}))"
)


def wait_final(facility: LocalFacility, task_id: str, timeout: float = 30) -> TaskStatus:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        state = facility.status([task_id]).get(task_id)
        if state is not None and state.phase in {Phase.COMPLETED, Phase.ERROR, Phase.ABORTED}:
            return state
        time.sleep(0.05)
    raise AssertionError(f"task {task_id} did not finish")


def put(storage: StorageTestbed, path: str, payload: bytes) -> str:
    """Store bytes over plain HTTP; return their https URL (what a Rucio PFN looks like)."""
    response = httpx.put(f"{storage.url.rstrip('/')}/{path}", content=payload, timeout=10)
    assert response.status_code in (201, 204)
    return f"{storage.https_url.rstrip('/')}/{path}"


def item(name: str, payload: bytes, *urls: str) -> InputFile:
    return InputFile(
        scope="user.alice",
        name=name,
        lfn=name,
        bytes=len(payload),
        adler32=f"{zlib.adler32(payload):08x}",
        urls=list(urls),
    )


def test_inputs_are_fetched_over_https_and_from_files_before_the_task_runs(
    tmp_path: Path, storage_testbed: StorageTestbed, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GRIDGATE_LOCALFACILITY_CA_FILE", str(storage_testbed.ca_file))
    run = secrets.token_hex(4)
    a, b = b"first input\n", b"second input\n"
    local = tmp_path / "replica-b.dat"
    local.write_bytes(b)
    url_a = put(storage_testbed, f"gridgate/test-{run}/a.dat", a)
    facility = LocalFacility(tmp_path / "facility")
    inputs = [
        # The first URL is dead: the next replica is taken.
        item(f"runs/{run}/a.dat", a, "https://127.0.0.1:9/nothing/a.dat", url_a),
        item(f"runs/{run}/b.dat", b, local.as_uri()),
    ]
    (task_id,) = facility.submit(
        "inputs1",
        [TaskSpec(index=0, argv=[sys.executable, "-c", LIST_FILES], inputs=inputs)],
        LIMITS,
    )
    state = wait_final(facility, task_id)

    assert state.phase == Phase.COMPLETED, state.detail
    stdout = (tmp_path / "facility" / "inputs1" / "task-0000" / "stdout.txt").read_text()
    assert stdout.strip() == '{"a.dat": "first input\\n", "b.dat": "second input\\n"}'


def test_a_corrupt_replica_fails_the_task_without_running_it(
    tmp_path: Path, storage_testbed: StorageTestbed, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GRIDGATE_LOCALFACILITY_CA_FILE", str(storage_testbed.ca_file))
    run = secrets.token_hex(4)
    url = put(storage_testbed, f"gridgate/test-{run}/c.dat", b"tampered")
    facility = LocalFacility(tmp_path)
    marker = tmp_path / "ran"
    (task_id,) = facility.submit(
        "inputs2",
        [
            TaskSpec(
                index=0,
                argv=[sys.executable, "-c", f"open({str(marker)!r}, 'w')"],
                inputs=[item("c.dat", b"original", url)],
            )
        ],
        LIMITS,
    )
    state = wait_final(facility, task_id)

    assert state.phase == Phase.ERROR
    assert state.detail is not None and "user.alice:c.dat could not be fetched" in state.detail
    assert "adler32" in state.detail
    assert not marker.exists()
