"""CONCORDIA in a container on real DIRAC (testbeds/dirac): the job wrapper on the worker node
runs the task in the job's image, pinned by digest, with the node's container runtime.

The testbed's worker node is this host; it has Docker (testbeds/docker) and neither apptainer
nor singularity, so this proves the wrapper's docker path. The apptainer/singularity command
is checked for its shape only (test_wrapper_uses_apptainer_first)."""

from __future__ import annotations

import json
import os
import stat
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
import pytest_asyncio

from gridgate.cli.stack import AUDIENCE, DevStack, dev_issuer
from gridgate.contracts.tasks import TaskSpec
from gridgate.dirac.sandbox import SlotTask, task_document
from gridgate.dirac.testbed import FACILITY, DiracTestbed
from gridgate.testing.docker import DockerTestbed
from gridgate.testing.services import free_port, rabbitmq_vhost

FINAL = {"COMPLETED", "ERROR", "ABORTED"}
WRAPPER = Path(__file__).parents[1] / "libs/dirac/src/gridgate/dirac/payload/gridgate_task.py"


@pytest_asyncio.fixture(loop_scope="session", scope="module")
async def dirac_containers(
    dirac_testbed: dict[str, str],
    docker_testbed: DockerTestbed,
    docker_base_image: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[DevStack]:
    testbed = DiracTestbed.from_variables(dirac_testbed)
    with rabbitmq_vhost() as vhost_url:
        stack = DevStack(
            data_dir=tmp_path_factory.mktemp("dirac-containers"),
            port=free_port(),
            broker_url=vhost_url,
            dirac_facilities={FACILITY: testbed.connection},
            auth_options=testbed.auth_options(),
            gateway_options={
                "image_registry": docker_testbed.registry,
                "image_registry_insecure": True,
            },
            submitter_options={
                "image_registry": docker_testbed.registry,
                "image_registry_insecure": True,
                "image_base": docker_base_image,
                "docker_host": docker_testbed.docker_host,
            },
        )
        await stack.start()
        try:
            yield stack
        finally:
            await stack.stop()


@pytest.mark.dirac
@pytest.mark.docker
async def test_concordia_runs_in_its_image_on_a_dirac_worker_node(
    dirac_containers: DevStack, dirac_testbed: dict[str, str]
) -> None:
    issuer = dev_issuer(dirac_containers.data_dir, dirac_containers.host, dirac_containers.port)
    token = issuer.mint(
        dirac_testbed["GRIDGATE_DIRAC_ALICE_SUB"], groups=["cta"], audience=AUDIENCE
    )
    async with httpx.AsyncClient(
        base_url=dirac_containers.url, headers={"Authorization": f"Bearer {token}"}, timeout=90
    ) as http:
        created = await http.post(
            "/api/jobs",
            data={
                "PHASE": "RUN",
                "facility": FACILITY,
                "workflow": "concordia-corsika",
                "high_energy_model": "SIBYLL-2.3d",
                "showers": "4",
                "run_number": "42",
            },
        )
        assert created.status_code == 303, created.text
        url = created.headers["location"]
        job = (await http.get(url)).json()
        for _ in range(60):
            if job["phase"] in FINAL:
                break
            job = (await http.get(url, params={"WAIT": 10, "PHASE": job["phase"]})).json()
        assert job["phase"] == "COMPLETED", job
        image = job["jobInfo"]["image"]
        assert image["buildArgs"]["HE_MODEL"] == "SIBYLL-2.3d"
        results = {r["id"]: r for r in job["results"]}
        output = (await http.get(results["DAT000042.json"]["href"])).json()
        # Written inside the image on the worker node, which says which image it was.
        assert output["image"] == image["reference"]
        assert output["image_build"]["high_energy_model"] == "SIBYLL-2.3d"
        stdout = (await http.get(f"{url}/stdout")).text
        assert f"gridgate: in {image['reference']} with " in stdout
        assert "docker" in stdout.split(f"gridgate: in {image['reference']} with ", 1)[1]


def _fake_runtime(folder: Path, name: str) -> None:
    """A stand-in runtime binary that prints the command it was given, as JSON."""
    program = folder / name
    program.write_text(f"#!{sys.executable}\nimport json, sys\nprint(json.dumps(sys.argv))\n")
    program.chmod(program.stat().st_mode | stat.S_IXUSR)


@pytest.mark.parametrize("runtime", ["apptainer", "singularity"])
def test_wrapper_uses_apptainer_first(tmp_path: Path, runtime: str) -> None:
    """Shape only: no apptainer or singularity is installed here (see the module docstring)."""
    import subprocess

    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name in (runtime, "docker"):
        _fake_runtime(bin_dir, name)
    work = tmp_path / "work"
    work.mkdir()
    reference = "registry.example.org/gridgate/concordia-corsika@sha256:" + "a" * 64
    task = TaskSpec(index=0, argv=["/usr/bin/python3", "-m", "x"], env={"A": "1"})
    image = {"reference": reference, "network": False}
    # The tasks.json the submitter writes for this DIRAC job.
    (work / "tasks.json").write_text(task_document(SlotTask(task, None, image=image)))
    done = subprocess.run(
        [sys.executable, str(WRAPPER), "0"],
        cwd=work,
        env={"PATH": f"{bin_dir}:/usr/bin:/bin", "HOME": str(tmp_path)},
        capture_output=True,
        text=True,
        check=True,
    )
    command = json.loads(next(line for line in done.stdout.splitlines() if line.startswith("[")))
    assert Path(command[0]).name == runtime
    assert command[1:5] == ["exec", "--containall", "--cleanenv", "--no-home"]
    assert f"docker://{reference}" in command
    assert command[-3:] == ["/usr/bin/python3", "-m", "x"]
    assert ["--network", "none"] == command[command.index("--net") + 1 : command.index("--net") + 3]
    assert "A=1" in command and f"GRIDGATE_IMAGE={reference}" in command
    assert f"{os.fspath(work)}:/work" in command
