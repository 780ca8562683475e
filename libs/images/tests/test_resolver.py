"""Select or build workflow images on the Docker testbed (real dockerd and registry)."""

from __future__ import annotations

import asyncio
import secrets
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from gridgate.contracts.images import ImageRequest
from gridgate.images import BuildFailedError, ImageResolver, ImageUnavailableError, RegistryClient
from gridgate.images.registry import ACCEPT
from gridgate.images.runtime import docker_client, run_in_container
from gridgate.testing.docker import DockerTestbed
from gridgate.workflows import WorkflowCatalogue, validate_parameters
from gridgate.workflows.images import Recipe, image_request

pytestmark = pytest.mark.docker


@pytest.fixture
async def registry(docker_testbed: DockerTestbed) -> AsyncIterator[RegistryClient]:
    client = RegistryClient(docker_testbed.registry, insecure=True)
    yield client
    await client.aclose()


def _resolver(testbed: DockerTestbed, registry: RegistryClient, base: str) -> ImageResolver:
    return ImageResolver(registry, base, lambda: docker_client(testbed.docker_host))


def _tiny_recipe(body: str) -> Recipe:
    """A recipe unique to this test run (a fresh nonce), so it was never built before."""
    nonce = secrets.token_hex(8)
    dockerfile = f"ARG BASE_IMAGE\nFROM ${{BASE_IMAGE}}\nARG COLOUR\n{body}\nLABEL nonce={nonce}\n"
    return Recipe(files={"Dockerfile": dockerfile.encode()}, digest="sha256:" + nonce * 4)


def _request(recipe: Recipe, colour: str = "blue") -> ImageRequest:
    return ImageRequest(
        repository="gridgate-test/tiny", recipe_digest=recipe.digest, build_args={"COLOUR": colour}
    )


async def test_build_then_select_then_find_it_in_the_registry(
    docker_testbed: DockerTestbed, docker_base_image: str, registry: RegistryClient
) -> None:
    resolver = _resolver(docker_testbed, registry, docker_base_image)
    recipe = _tiny_recipe('RUN echo "colour=$COLOUR" > /colour')
    request = _request(recipe)
    assert await resolver.select(request) is None
    building: list[str] = []

    built = await resolver.resolve(request, recipe.files, on_build=building_hook(building))
    assert built.built and resolver.builds == 1 and building == [built.tag]
    assert built.reference == f"{docker_testbed.registry}/gridgate-test/tiny@{built.digest}"
    # The registry itself, asked by digest over the distribution API, holds the manifest.
    async with httpx.AsyncClient() as http:
        answer = await http.head(
            f"http://{docker_testbed.registry}/v2/gridgate-test/tiny/manifests/{built.digest}",
            headers={"Accept": ACCEPT},
        )
    assert answer.status_code == 200
    assert answer.headers["Docker-Content-Digest"] == built.digest
    # Listed with its provenance, read back from the image's labels and config.
    listed = {record.digest: record for record in await registry.images("gridgate-test/tiny")}
    record = listed[built.digest]
    assert record.build_args == {"COLOUR": "blue"}
    assert record.recipe_digest == recipe.digest
    assert record.base_digest == built.base_digest and record.base_digest.startswith("sha256:")
    assert record.size > 0 and record.created is not None and built.tag in record.tags
    # A second identical request selects it: nothing is built.
    again = await _resolver(docker_testbed, registry, docker_base_image).resolve(
        request, recipe.files
    )
    assert (again.digest, again.built) == (built.digest, False)
    # Other arguments are another image.
    other = await resolver.resolve(_request(recipe, "red"), recipe.files)
    assert other.digest != built.digest and resolver.builds == 2


def building_hook(seen: list[str]):  # type: ignore[no-untyped-def]
    async def hook(tag: str) -> None:
        seen.append(tag)

    return hook


async def test_concurrent_identical_requests_share_one_build(
    docker_testbed: DockerTestbed, docker_base_image: str, registry: RegistryClient
) -> None:
    resolver = _resolver(docker_testbed, registry, docker_base_image)
    recipe = _tiny_recipe("RUN sleep 1 && echo $COLOUR > /colour")
    request = _request(recipe)
    results = await asyncio.gather(*(resolver.resolve(request, recipe.files) for _ in range(3)))
    assert resolver.builds == 1
    assert len({r.digest for r in results}) == 1


async def test_a_failing_recipe_reports_its_build_log(
    docker_testbed: DockerTestbed, docker_base_image: str, registry: RegistryClient
) -> None:
    resolver = _resolver(docker_testbed, registry, docker_base_image)
    recipe = _tiny_recipe('RUN echo "compiling CORSIKA for $COLOUR" && exit 3')
    with pytest.raises(BuildFailedError) as failure:
        await resolver.resolve(_request(recipe), recipe.files)
    message = str(failure.value)
    assert "did not build" in message
    assert "compiling CORSIKA for blue" in message  # the log of the failed step
    assert "exit code: 3" in message or "returned a non-zero code: 3" in message


async def test_a_named_digest_must_be_in_the_registry(
    docker_testbed: DockerTestbed, docker_base_image: str, registry: RegistryClient
) -> None:
    resolver = _resolver(docker_testbed, registry, docker_base_image)
    recipe = _tiny_recipe("RUN true")
    missing = _request(recipe).model_copy(update={"digest": "sha256:" + "0" * 64})
    with pytest.raises(ImageUnavailableError):
        await resolver.resolve(missing, {})
    built = await resolver.resolve(_request(recipe), recipe.files)
    named = await resolver.resolve(_request(recipe).model_copy(update={"digest": built.digest}), {})
    assert named.digest == built.digest and named.build_args == {"COLOUR": "blue"}
    assert resolver.builds == 1


async def test_the_corsika_image_runs_hardened_and_writes_its_outputs(
    docker_testbed: DockerTestbed, docker_base_image: str, registry: RegistryClient, tmp_path: Path
) -> None:
    catalogue = WorkflowCatalogue.shipped()
    definition = catalogue.get("concordia-corsika", "2.0.0")
    recipe = catalogue.recipe(definition.id, definition.version)
    assert definition.container is not None and recipe is not None
    parameters = validate_parameters(definition, {"thinning": True, "showers": 3})
    request = image_request(definition.container, recipe, parameters)
    image = await _resolver(docker_testbed, registry, docker_base_image).resolve(
        request, recipe.files
    )
    workdir = tmp_path / "work"
    workdir.mkdir()
    client = docker_client(docker_testbed.docker_host)
    probe = (
        "import os, socket, pathlib, json;"
        "print('uid', os.getuid());"
        "w = pathlib.Path('/work/x.txt'); w.write_text('ok');"
        "ro = True\n"
        "try:\n open('/root-write', 'w')\n ro = False\nexcept OSError: pass\n"
        "print('readonly', ro);"
        "net = True\n"
        "try:\n socket.create_connection(('1.1.1.1', 53), timeout=2)\n"
        "except OSError: net = False\n"
        "print('network', net);"
        "print(open('/opt/concordia/NOTICE').read().splitlines()[0])"
    )
    outcome = await asyncio.to_thread(
        run_in_container,
        client,
        image.reference,
        ["/usr/bin/python3", "-c", probe],
        {},
        workdir,
        name=f"gridgate-test-{secrets.token_hex(4)}",
        memory_mb=256,
        cores=1,
        duration_s=60,
        network=False,
        should_stop=lambda: False,
    )
    client.close()
    text = outcome.stdout.decode()
    assert outcome.exit_code == 0, outcome.stderr.decode()
    assert "uid 0" not in text  # never root inside
    assert "readonly True" in text and "network False" in text
    assert "stand-in" in text
    assert (workdir / "x.txt").read_text() == "ok"


# Run in a child process: build and push, then SIGKILL at the crash point "image-pushed".
BUILD_AND_DIE = """
import asyncio, sys
from gridgate.contracts.images import ImageRequest
from gridgate.core.crashpoints import arm
from gridgate.images import ImageResolver, RegistryClient
from gridgate.images.runtime import docker_client

registry, base, docker_host, dockerfile, digest = sys.argv[1:]
arm("image-pushed")

async def run():
    client = RegistryClient(registry, insecure=True)
    resolver = ImageResolver(client, base, lambda: docker_client(docker_host))
    request = ImageRequest(
        repository="gridgate-test/tiny", recipe_digest=digest, build_args={"COLOUR": "blue"}
    )
    await resolver.resolve(request, {"Dockerfile": dockerfile.encode()})

asyncio.run(run())
"""


async def test_a_builder_killed_after_the_push_leaves_an_image_nobody_builds_again(
    docker_testbed: DockerTestbed, docker_base_image: str, registry: RegistryClient
) -> None:
    recipe = _tiny_recipe("RUN echo $COLOUR > /colour")
    child = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        BUILD_AND_DIE,
        docker_testbed.registry,
        docker_base_image,
        docker_testbed.docker_host,
        recipe.files["Dockerfile"].decode(),
        recipe.digest,
    )
    assert await asyncio.wait_for(child.wait(), 300) == -9  # killed after the push
    resolver = _resolver(docker_testbed, registry, docker_base_image)
    found = await resolver.resolve(_request(recipe), recipe.files)
    assert found.built is False and resolver.builds == 0


async def test_a_container_task_keeps_to_its_time_and_memory_limits_and_stops_on_cancel(
    docker_testbed: DockerTestbed, docker_base_image: str, tmp_path: Path
) -> None:
    client = docker_client(docker_testbed.docker_host)
    limit = (
        "import pathlib; v1 = pathlib.Path('/sys/fs/cgroup/memory/memory.limit_in_bytes');"
        "v2 = pathlib.Path('/sys/fs/cgroup/memory.max');"
        "print('limit', (v1 if v1.exists() else v2).read_text().strip())"
    )

    def run(argv: list[str], duration_s: int, stop: bool = False):  # type: ignore[no-untyped-def]
        return run_in_container(
            client,
            docker_base_image,
            argv,
            {},
            tmp_path,
            name=f"gridgate-test-{secrets.token_hex(4)}",
            memory_mb=96,
            cores=1,
            duration_s=duration_s,
            network=False,
            should_stop=lambda: stop,
        )

    shown = await asyncio.to_thread(run, ["/usr/bin/python3", "-c", limit], 60)
    assert shown.exit_code == 0 and f"limit {96 * 1024 * 1024}" in shown.stdout.decode()
    slow = await asyncio.to_thread(run, ["sleep", "60"], 2)
    assert slow.timed_out and not slow.cancelled
    cancelled = await asyncio.to_thread(run, ["sleep", "60"], 60, True)
    assert cancelled.cancelled and not cancelled.timed_out
    assert client.containers.list(all=True, filters={"label": "org.gridgate.task"}) == []
    client.close()
