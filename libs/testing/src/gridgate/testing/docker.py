"""The Docker testbed (testbeds/docker) as tests use it: a real dockerd and registry, the local
Python base image, and an image of every service built from the repository's Dockerfile.

Base images cannot come from Docker Hub here. ``testbeds/docker/base-image.sh`` makes one with
debootstrap and caches it in the local registry (once per machine); uv comes from the uv binary
that runs the tests, in a ``FROM scratch`` image; and when the machine trusts extra CA
certificates (a TLS-inspecting proxy between it and the package index), the build stage gets
them through ``BUILD_IMAGE``, never the final image.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import tarfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gridgate.testing.idp import repository_root

SERVICES = ("gateway", "auth", "submitter", "monitor", "results", "notifier")
IMAGE_TAG = "test"
CA_BUNDLE = Path(os.environ.get("SSL_CERT_FILE", "/etc/ssl/certs/ca-certificates.crt"))


@dataclass
class DockerTestbed:
    """A running engine and registry; ``client`` is a docker SDK client."""

    client: Any
    registry: str
    docker_host: str


@dataclass
class ServiceImages:
    """What the Dockerfile was built with, the images, and how long each step took (s)."""

    docker: Any
    """The docker SDK client of the engine that holds the images."""
    base: str
    build: str
    uv: str
    services: dict[str, str]
    timings: dict[str, float] = field(default_factory=dict)

    def image(self, service: str) -> str:
        return self.services[service]


def _testbed_dir() -> Path:
    return repository_root() / "testbeds" / "docker"


def docker_testbed() -> Iterator[DockerTestbed]:
    """Start dockerd and the registry if they are not running; stop afterwards what we started."""
    import docker  # the SDK is a dev dependency, imported only where the engine is used

    state = Path(os.environ.get("GRIDGATE_DOCKER_STATE", "/var/lib/gridgate-testbeds/docker"))
    started_here = not any((state / f"{name}.pid").exists() for name in ("dockerd", "registry"))
    up = subprocess.run(
        [str(_testbed_dir() / "up.sh")], check=False, capture_output=True, text=True, timeout=600
    )
    if up.returncode != 0:
        raise RuntimeError(f"testbeds/docker/up.sh failed:\n{up.stderr}")
    env = dict(line.split("=", 1) for line in up.stdout.split() if "=" in line)
    client = docker.DockerClient(base_url=env["DOCKER_HOST"], timeout=300)
    client.ping()
    try:
        yield DockerTestbed(client, env["GRIDGATE_REGISTRY"], env["DOCKER_HOST"])
    finally:
        client.close()
        if started_here and os.environ.get("GRIDGATE_DOCKER_KEEP") != "1":
            subprocess.run(
                [str(_testbed_dir() / "down.sh")], check=False, capture_output=True, timeout=120
            )


def _context(files: dict[str, bytes | Path], dockerfile: str) -> io.BytesIO:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for name, content in {"Dockerfile": dockerfile.encode(), **files}.items():
            data = content.read_bytes() if isinstance(content, Path) else content
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = 0o755
            tar.addfile(info, io.BytesIO(data))
    buffer.seek(0)
    return buffer


def _uv_binary() -> Path:
    # `uv run` names its own binary in $UV; pyenv's `uv` on PATH may be a shell shim.
    for candidate in (os.environ.get("UV"), shutil.which("uv")):
        if candidate and Path(candidate).read_bytes()[:4] == b"\x7fELF":
            return Path(candidate)
    raise RuntimeError("no uv binary found (run the tests with `uv run`, or set UV)")


def base_image(testbed: DockerTestbed) -> str:
    """The Python base image of the testbed (debootstrap, cached in the registry once per
    machine): what workflow image recipes start from in tests."""
    return subprocess.run(
        [str(_testbed_dir() / "base-image.sh")],
        check=True,
        capture_output=True,
        text=True,
        timeout=900,
        env={**os.environ, "GRIDGATE_REGISTRY": testbed.registry},
    ).stdout.strip()


def build_service_images(testbed: DockerTestbed) -> ServiceImages:
    """Build the base, uv and build-stage images, then one image per service."""
    client, timings = testbed.client, {}
    started = time.perf_counter()
    base = subprocess.run(
        [str(_testbed_dir() / "base-image.sh")],
        check=True,
        capture_output=True,
        text=True,
        timeout=900,
        env={**os.environ, "GRIDGATE_REGISTRY": testbed.registry},
    ).stdout.strip()
    timings["base image"] = time.perf_counter() - started

    started = time.perf_counter()
    uv_path = _uv_binary()
    version = subprocess.run(
        [str(uv_path), "--version"], check=True, capture_output=True, text=True
    ).stdout.split()[1]
    uv_image = f"{testbed.registry}/gridgate/uv:{version}"
    client.images.build(
        fileobj=_context({"uv": uv_path}, "FROM scratch\nCOPY uv /uv\n"),
        custom_context=True,
        tag=uv_image,
        rm=True,
    )
    build_image = base
    if CA_BUNDLE.is_file():
        build_image = f"gridgate/python-build:{IMAGE_TAG}"
        client.images.build(
            fileobj=_context(
                {"ca-certificates.crt": CA_BUNDLE},
                f"FROM {base}\n"
                "COPY ca-certificates.crt /etc/ssl/certs/ca-certificates.crt\n"
                "ENV SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt UV_NATIVE_TLS=1\n",
            ),
            custom_context=True,
            tag=build_image,
            rm=True,
        )
    timings["uv and build-stage images"] = time.perf_counter() - started

    services = {}
    for service in SERVICES:
        started = time.perf_counter()
        tag = f"gridgate-{service}:{IMAGE_TAG}"
        client.images.build(
            path=str(repository_root()),
            dockerfile="Dockerfile",
            tag=tag,
            rm=True,
            forcerm=True,
            buildargs={
                "SERVICE": service,
                "BASE_IMAGE": base,
                "BUILD_IMAGE": build_image,
                "UV_IMAGE": uv_image,
            },
        )
        services[service] = tag
        timings[f"image {service}"] = time.perf_counter() - started
    images = ServiceImages(client, base, build_image, uv_image, services, timings)
    record = repository_root() / "var" / "testbeds" / "docker" / "build-timings.json"
    record.parent.mkdir(parents=True, exist_ok=True)
    record.write_text(json.dumps({k: round(v, 2) for k, v in timings.items()}, indent=2) + "\n")
    return images
