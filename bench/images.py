"""Time to a runnable image digest: select (the image exists) vs build (it must be built),
and how much the engine's build cache saves. Docker testbed (testbeds/docker) needed.

    uv run --frozen python bench/images.py [--rounds 3]

Cases, each on the real concordia-corsika recipe, with the resolver the submitter uses:

* select: the image of the recipe and arguments is in the registry (HEAD of the base image
  and of the content-addressed tag);
* cold build: a recipe no engine has seen (a unique RUN right after FROM), so every step runs,
  then the push;
* warm build, other arguments: the same recipe with other build arguments; the COPY layers
  come from the cache, the steps that use the arguments run again;
* cache-only build: a new context-only file changes the recipe digest (a new tag) while every
  step is a cache hit: what a replica racing another one on the same key pays.

Prints medians and the machine's load (uptime); nothing is asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import secrets
import statistics
import subprocess
import time
from typing import Any

from gridgate.contracts.images import ImageRequest
from gridgate.images import ImageResolver, RegistryClient
from gridgate.images.runtime import docker_client
from gridgate.workflows import WorkflowCatalogue, validate_parameters
from gridgate.workflows.images import Recipe, image_request

REGISTRY = "127.0.0.1:5000"


def _cold(base: Recipe) -> Recipe:
    """A recipe no engine has built: a unique step right after FROM misses every cache."""
    text = base.files["Dockerfile"].decode()
    nonce = "FROM ${BASE_IMAGE}\nRUN echo " + secrets.token_hex(8) + "\n"
    text = text.replace("FROM ${BASE_IMAGE}\n", nonce)
    return _new({**base.files, "Dockerfile": text.encode()})


def _cache_only(base: Recipe) -> Recipe:
    """Another recipe digest (a new tag) whose every build step is a cache hit."""
    return _new({**base.files, "BENCH_NONCE": secrets.token_hex(8).encode()})


def _new(files: dict[str, bytes]) -> Recipe:
    return Recipe(files=files, digest="sha256:" + secrets.token_hex(32))


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    base_image = _base_image()
    catalogue = WorkflowCatalogue.shipped()
    definition = catalogue.get("concordia-corsika", "2.0.0")
    shipped = catalogue.recipe(definition.id, definition.version)
    assert definition.container is not None and shipped is not None
    registry = RegistryClient(REGISTRY, insecure=True)
    resolver = ImageResolver(registry, base_image, lambda: docker_client(""))

    def request(recipe: Recipe, thinning: bool) -> ImageRequest:
        parameters = validate_parameters(definition, {"thinning": thinning})
        return replace_digest(image_request(definition.container, recipe, parameters), recipe)

    timings: dict[str, list[float]] = {}

    async def timed(name: str, req: ImageRequest, files: dict[str, bytes]) -> Any:
        started = time.perf_counter()
        image = await resolver.resolve(req, files)
        timings.setdefault(name, []).append(time.perf_counter() - started)
        return image

    await resolver.resolve(request(shipped, False), shipped.files)  # make sure it exists
    for _ in range(args.rounds):
        for _ in range(5):
            await timed("select (image exists)", request(shipped, False), shipped.files)
        cold = _cold(shipped)
        first = await timed("cold build + push", request(cold, False), cold.files)
        assert first.built
        await timed("warm build, other arguments", request(cold, True), cold.files)
        cached = _cache_only(cold)
        await timed("cache-only build + push", request(cached, False), cached.files)
    await registry.aclose()
    load = _uptime()
    print(f"rounds: {args.rounds}; builds: {resolver.builds}; {load}")
    print(f"{'case':34} {'median s':>9} {'min s':>7} {'max s':>7} {'n':>3}")
    for name, values in timings.items():
        print(
            f"{name:34} {statistics.median(values):9.3f} {min(values):7.3f} "
            f"{max(values):7.3f} {len(values):3d}"
        )


def _base_image() -> str:
    subprocess.run(["testbeds/docker/up.sh"], check=True, capture_output=True)
    return subprocess.run(
        ["testbeds/docker/base-image.sh"], check=True, capture_output=True, text=True
    ).stdout.strip()


def _uptime() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()


def replace_digest(request: ImageRequest, recipe: Recipe) -> ImageRequest:
    return request.model_copy(update={"recipe_digest": recipe.digest})


if __name__ == "__main__":
    asyncio.run(main())
