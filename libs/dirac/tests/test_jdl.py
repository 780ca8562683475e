"""JDL: our values only, every string escaped; sweeps become one parametric job."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from gridgate.dirac.jdl import JobDescription, Slot, build_jdl, jdl_string, job_group, task_name

PAYLOAD = Path(__file__).parents[1] / "src" / "gridgate" / "dirac" / "payload"


def test_strings_cannot_break_out_of_their_quotes() -> None:
    hostile = 'x"; Executable = "/bin/rm"; Arguments = "-rf /'
    literal = jdl_string(hostile)
    assert literal.startswith('"') and literal.endswith('"')
    inner = literal[1:-1]
    # Every quote inside is escaped, so the literal ends only at its last character.
    assert inner.count('"') == inner.count('\\"')
    assert jdl_string("a\\b") == '"a\\\\b"'
    assert jdl_string("line\nbreak]\x00") == '"linebreak]"'


def test_a_sweep_is_one_parametric_job() -> None:
    jdl = build_jdl(
        JobDescription(
            slots=[Slot("abc123", i) for i in range(19)],
            cpu_time_s=3600,
            input_sandbox=[],
            tags=["GPU"],
            processors=4,
            slot_sandboxes=[f"SB:SandboxSE|/SandBox/a/{i}.tar.bz2" for i in range(19)],
        )
    )
    assert 'Parameters = {"abc123", "abc123",' in jdl
    assert 'Parameters.task = {"0", "1", "2",' in jdl
    # Each DIRAC job gets its gridgate job (JobGroup), its task (JobName) and its slot.
    assert 'JobGroup = "gridgate.%s";' in jdl
    assert 'JobName = "gridgate.%s.%(task)s";' in jdl
    assert 'Arguments = "%n";' in jdl
    # ... and its own tasks.json, from a sandbox no other DIRAC job of the submission gets.
    assert 'Parameters.sandbox = {"SB:SandboxSE|/SandBox/a/0.tar.bz2", "SB:' in jdl
    assert 'InputSandbox = {"gridgate_task.py", "%(sandbox)s"};' in jdl
    assert "tasks.json" not in jdl
    assert 'Tags = {"GPU"};' in jdl
    assert "NumberOfProcessors = 4;" in jdl
    assert "CPUTime = 3600;" in jdl


def test_a_parametric_job_can_carry_each_slots_task_in_its_own_environment() -> None:
    documents = ["eyJ0YXNrIjogMH0", "eyJ0YXNrIjogMX0"]
    jdl = build_jdl(
        JobDescription(
            slots=[Slot("abc123", 0), Slot("def456", 0)],
            cpu_time_s=60,
            input_sandbox=["gridgate-payload.zip"],
            environment={"MODE": "test"},
            slot_documents=documents,
        )
    )
    assert 'Parameters.doc = {"eyJ0YXNrIjogMH0", "eyJ0YXNrIjogMX0"};' in jdl
    # DIRAC's JobWrapper sets each job's ExecutionEnvironment: its own document only.
    assert 'ExecutionEnvironment = {"MODE=test", "GRIDGATE_TASK_DOCUMENT=%(doc)s"};' in jdl
    # No per-job sandbox and no shared tasks.json: the input sandbox is the same for all.
    assert 'InputSandbox = {"gridgate_task.py", "gridgate-payload.zip"};' in jdl
    assert "sandbox)s" not in jdl and "tasks.json" not in jdl


@pytest.mark.parametrize("document", ['x"; Executable = "rm', "a%sb", "a=b", "a+b/c", ""])
def test_a_task_document_must_be_unpadded_base64url(document: str) -> None:
    with pytest.raises(ValueError, match="base64url"):
        build_jdl(
            JobDescription(
                slots=[Slot("abc123", 0), Slot("abc123", 1)],
                cpu_time_s=60,
                input_sandbox=[],
                slot_documents=["eyJ0YXNrIjogMH0", document],
            )
        )


def test_a_parametric_job_needs_a_sandbox_of_its_own_per_slot() -> None:
    slots = [Slot("abc123", 0), Slot("def456", 0)]
    with pytest.raises(ValueError, match="sandbox of its own"):
        build_jdl(JobDescription(slots=slots, cpu_time_s=60, input_sandbox=[]))


def test_one_task_is_a_plain_job_named_after_its_gridgate_job() -> None:
    jdl = build_jdl(JobDescription(slots=[Slot("abc123", 0)], cpu_time_s=60, input_sandbox=[]))
    assert "Parameters" not in jdl
    assert f'JobGroup = "{job_group("abc123")}";' in jdl
    assert f'JobName = "{task_name("abc123", 0)}";' in jdl
    assert 'Arguments = "0";' in jdl
    assert 'InputSandbox = {"gridgate_task.py", "tasks.json"};' in jdl


def test_jobs_of_a_submission_must_have_plain_ids() -> None:
    with pytest.raises(ValueError, match="plain name"):
        build_jdl(
            JobDescription(slots=[Slot("a", 0), Slot('b", "c', 0)], cpu_time_s=60, input_sandbox=[])
        )


def test_user_values_travel_in_tasks_json_and_run_without_a_shell(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    hostile = f"$(touch {marker}); touch {marker}; `touch {marker}`"
    tasks = [{"argv": [sys.executable, "-c", "import sys; print(sys.argv[1])", hostile], "env": {}}]
    (tmp_path / "tasks.json").write_text(json.dumps(tasks))
    done = subprocess.run(
        [sys.executable, str(PAYLOAD / "gridgate_task.py"), "0"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0
    assert hostile in done.stdout
    assert not marker.exists()


def test_the_wrapper_returns_the_task_exit_code(tmp_path: Path) -> None:
    tasks = [{"argv": ["{python}", "-c", "import sys; sys.exit(7)"], "env": {}}]
    (tmp_path / "tasks.json").write_text(json.dumps(tasks))
    done = subprocess.run(
        [sys.executable, str(PAYLOAD / "gridgate_task.py"), "0"], cwd=tmp_path, check=False
    )
    assert done.returncode == 7
