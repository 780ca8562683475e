"""The task wrapper as a worker node runs it: a subprocess in a sandbox directory."""

from __future__ import annotations

import json
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

PAYLOAD = Path(__file__).parents[1] / "src" / "gridgate" / "dirac" / "payload"


def run_wrapper(directory: Path, document: Any, index: int = 0) -> subprocess.CompletedProcess[str]:
    (directory / "tasks.json").write_text(json.dumps(document))
    return subprocess.run(
        [sys.executable, str(PAYLOAD / "gridgate_task.py"), str(index)],
        cwd=directory,
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )


def test_only_the_program_is_the_python_placeholder(tmp_path: Path) -> None:
    show = "import sys; print(sys.argv[1:]); sys.exit(9)"
    document = {
        "tasks": [
            {"argv": ["true"], "env": {}},
            {"argv": ["{python}", "-c", show, "{python}", "x{python}"], "env": {}},
        ],
        "callback": None,
    }
    done = run_wrapper(tmp_path, document, index=1)
    assert done.returncode == 9
    # A user's value equal to the placeholder reaches the program as it was written.
    assert "['{python}', 'x{python}']" in done.stdout


def test_the_payload_zip_comes_first_on_the_python_path(tmp_path: Path) -> None:
    with zipfile.ZipFile(tmp_path / "gridgate-payload.zip", "w") as archive:
        archive.writestr("zipped_greeting.py", "print('from the zip')\n")
    document = {
        "tasks": [
            {
                "argv": ["{python}", "-c", "import sys, zipped_greeting; print(sys.path[1])"],
                "env": {"PYTHONPATH": "/opt/elsewhere"},
            }
        ],
        "callback": None,
    }
    done = run_wrapper(tmp_path, document)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines.index("from the zip") + 1 == lines.index(str(tmp_path / "gridgate-payload.zip"))


def test_an_unreachable_gateway_changes_nothing_but_stderr(tmp_path: Path) -> None:
    document = {
        "tasks": [{"argv": ["{python}", "-c", "import sys; sys.exit(5)"], "env": {}}],
        # Nothing listens on the loopback's discard port: every attempt is refused.
        "callback": {"url": "http://127.0.0.1:9/api/jobs/x/callback", "token": "job-token-x"},
    }
    done = run_wrapper(tmp_path, document)
    assert done.returncode == 5
    assert "callback 'started' not delivered (URLError)" in done.stderr
    assert "callback 'ended' not delivered (URLError)" in done.stderr
    assert "job-token-x" not in done.stdout + done.stderr


def test_a_task_that_cannot_start_is_127(tmp_path: Path) -> None:
    document = {"tasks": [{"argv": [str(tmp_path / "missing")], "env": {}}], "callback": None}
    done = run_wrapper(tmp_path, document)
    assert done.returncode == 127
    assert "cannot start" in done.stderr
