"""The stand-in programs, run as the facility runs them: rendered argv, in a work directory."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from gridgate.contracts.tasks import TaskSpec
from gridgate.workflows import WorkflowCatalogue, render_tasks, validate_parameters


def run_task(task: TaskSpec, workdir: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        task.argv,
        cwd=workdir,
        env={**os.environ, **task.env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def tasks_for(workflow_id: str, raw: dict[str, Any]) -> list[TaskSpec]:
    definition = WorkflowCatalogue.shipped().get(workflow_id)
    return render_tasks(definition, validate_parameters(definition, raw), python=sys.executable)


def test_hello_writes_the_greeting_verbatim(tmp_path: Path) -> None:
    name = '"; rm -rf / # {python}'
    (task,) = tasks_for("hello-world", {"name": name, "repeat": "2"})

    result = run_task(task, tmp_path)

    assert result.returncode == 0, result.stderr
    expected = f"Hello, {name}!\n"
    assert (tmp_path / "hello.txt").read_text() == expected * 2
    assert result.stdout.startswith(expected * 2)


def test_hello_exits_with_the_requested_code(tmp_path: Path) -> None:
    (task,) = tasks_for("hello-world", {"exit_code": "3", "sleep_s": "0.1"})

    result = run_task(task, tmp_path)

    assert result.returncode == 3
    assert "exiting with code 3" in result.stderr
    assert (tmp_path / "hello.txt").exists()


def test_cta_mc_run_number_is_first_run_plus_task_index(tmp_path: Path) -> None:
    tasks = tasks_for(
        "cta-mc-production",
        {"number_of_jobs": 3, "first_run_number": 41, "showers_per_job": 50, "primary": "proton"},
    )

    for task in tasks:
        workdir = tmp_path / str(task.index)
        workdir.mkdir()
        result = run_task(task, workdir)
        assert result.returncode == 0, result.stderr

        run_number = 41 + task.index
        (output,) = workdir.glob("run*.simtel.json")
        document = json.loads(output.read_text())
        assert output.name == f"run{run_number:06d}.simtel.json"
        assert document["run_number"] == run_number
        assert document["task_index"] == task.index
        assert document["primary"] == "proton"
        assert document["array_layout"] == "CTA-South"
        assert document["he_interaction_model"] == "SIBYLL"
        assert len(document["energy_sample_tev"]) == 10
        assert f"run {run_number}: wrote" in result.stdout


def test_cta_mc_output_is_deterministic(tmp_path: Path) -> None:
    (task,) = tasks_for("cta-mc-production", {"showers_per_job": 20})
    first, second = tmp_path / "a", tmp_path / "b"
    first.mkdir()
    second.mkdir()

    run_task(task, first)
    run_task(task, second)

    name = "run000001.simtel.json"
    assert (first / name).read_bytes() == (second / name).read_bytes()


def test_corsika_writes_cards_and_showers_within_ranges(tmp_path: Path) -> None:
    (task,) = tasks_for(
        "concordia-corsika",
        {
            "run_number": "12",
            "showers": "30",
            "primary": "iron",
            "energy_min_gev": "100",
            "energy_max_gev": "1000",
            "zenith_min_deg": "10",
            "zenith_max_deg": "30",
            "random_seeds": "9,8",
        },
    )

    result = run_task(task, tmp_path)

    assert result.returncode == 0, result.stderr
    document = json.loads((tmp_path / "DAT000012.json").read_text())
    assert document["run_number"] == 12
    assert document["seeds"] == [9, 8]
    assert "PRMPAR 5626" in document["input_cards"]
    assert "ERANGE 100 1000" in document["input_cards"]
    assert "CERFIL T" in document["input_cards"]
    assert len(document["showers"]) == 30
    assert all(100 <= s["energy_gev"] <= 1000 for s in document["showers"])
    assert all(10 <= s["zenith_deg"] <= 30 for s in document["showers"])
    assert all(s["cherenkov_bunches"] >= 0 for s in document["showers"])


def test_corsika_without_cherenkov_output(tmp_path: Path) -> None:
    (task,) = tasks_for("concordia-corsika", {"cherenkov_output": "off", "showers": 3})

    result = run_task(task, tmp_path)

    assert result.returncode == 0, result.stderr
    document = json.loads((tmp_path / "DAT000001.json").read_text())
    assert document["cherenkov_output"] is False
    assert not any(card.startswith("CERFIL") for card in document["input_cards"])
    assert all("cherenkov_bunches" not in s for s in document["showers"])


def test_input_manifest_describes_each_task_share_of_the_inputs(tmp_path: Path) -> None:
    import zlib

    from gridgate.contracts.tasks import InputFile

    definition = WorkflowCatalogue.shipped().get("input-manifest")
    files = [
        InputFile(scope="user.alice", name=f"ds/f{i}.dat", lfn=f"ds/f{i}.dat") for i in range(4)
    ]
    tasks = render_tasks(
        definition,
        validate_parameters(definition, {"label": "split"}),
        python=sys.executable,
        inputs=[files[:2], files[2:]],
    )

    assert [t.index for t in tasks] == [0, 1]
    assert [[f.name for f in t.inputs] for t in tasks] == [
        ["ds/f0.dat", "ds/f1.dat"],
        ["ds/f2.dat", "ds/f3.dat"],
    ]
    assert tasks[1].env["GRIDGATE_INPUT_FILES"] == '["f2.dat", "f3.dat"]'
    assert tasks[1].env["GRIDGATE_TASK_COUNT"] == "2"
    for name in ("f2.dat", "f3.dat", "unrelated.dat"):
        (tmp_path / name).write_bytes(name.encode())
    result = run_task(tasks[1], tmp_path)

    assert result.returncode == 0, result.stderr
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    assert manifest["label"] == "split" and manifest["task_index"] == 1
    assert [(f["name"], f["size"], f["adler32"]) for f in manifest["files"]] == [
        (n, 6, f"{zlib.adler32(n.encode()):08x}") for n in ("f2.dat", "f3.dat")
    ]


def test_input_manifest_fails_when_an_input_is_missing(tmp_path: Path) -> None:
    (task,) = tasks_for("input-manifest", {})
    result = run_task(
        task.model_copy(update={"env": {**task.env, "GRIDGATE_INPUT_FILES": '["gone.dat"]'}}),
        tmp_path,
    )

    assert result.returncode == 1
    assert "missing input files: gone.dat" in result.stderr
