"""Registry credentials: a real registry (Debian's docker-registry, the CNCF distribution)
with htpasswd authentication, started for this module on a free loopback port."""

from __future__ import annotations

import asyncio
import secrets
import subprocess
import time
import warnings
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest

from gridgate.contracts.images import ImageRequest
from gridgate.images import ImageResolver, RegistryClient, RegistryUnavailableError
from gridgate.images.runtime import docker_client
from gridgate.testing.docker import DockerTestbed
from gridgate.testing.services import free_port

pytestmark = pytest.mark.docker
USER, PASSWORD = "builder", secrets.token_urlsafe(12)


def _bcrypt(password: str) -> str:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        import crypt  # the C library's bcrypt ($2b$), what htpasswd files hold

        return crypt.crypt(password, crypt.mksalt(crypt.METHOD_BLOWFISH))  # noqa: S324


@pytest.fixture(scope="module")
def private_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    folder = tmp_path_factory.mktemp("registry")
    (folder / "htpasswd").write_text(f"{USER}:{_bcrypt(PASSWORD)}\n")
    address = f"127.0.0.1:{free_port()}"
    (folder / "config.yml").write_text(
        "version: 0.1\nlog: {level: warn}\n"
        f"storage: {{filesystem: {{rootdirectory: {folder / 'data'}}}}}\n"
        f"http: {{addr: {address}}}\n"
        f"auth: {{htpasswd: {{realm: gridgate-test, path: {folder / 'htpasswd'}}}}}\n"
    )
    process = subprocess.Popen(
        ["docker-registry", "serve", str(folder / "config.yml")],
        stdout=subprocess.DEVNULL,
        stderr=(folder / "registry.log").open("wb"),
    )
    try:
        for _ in range(100):
            try:
                if httpx.get(f"http://{address}/v2/", timeout=1).status_code == 401:
                    break
            except httpx.TransportError:
                time.sleep(0.1)
        yield address
    finally:
        process.terminate()
        process.wait(timeout=10)


@pytest.fixture
async def authorised(private_registry: str) -> AsyncIterator[RegistryClient]:
    client = RegistryClient(private_registry, insecure=True, username=USER, password=PASSWORD)
    yield client
    await client.aclose()


async def test_without_credentials_the_registry_is_unavailable(private_registry: str) -> None:
    client = RegistryClient(private_registry, insecure=True)
    with pytest.raises(RegistryUnavailableError, match="HTTP 401"):
        await client.tags("gridgate/anything")
    await client.aclose()


async def test_a_build_pushes_with_the_credentials_and_lists_with_them(
    docker_testbed: DockerTestbed,
    docker_base_image: str,
    private_registry: str,
    authorised: RegistryClient,
    tmp_path: Path,
) -> None:
    # The base image comes from the testbed's open registry; the build goes to the private one.
    base = docker_testbed.client.images.pull(docker_base_image)
    private_base = f"{private_registry}/gridgate/python:base"
    base.tag(private_base)
    pushed = docker_testbed.client.images.push(
        private_base, auth_config={"username": USER, "password": PASSWORD}
    )
    assert '"error"' not in pushed
    resolver = ImageResolver(
        authorised,
        private_base,
        lambda: docker_client(docker_testbed.docker_host),
        push_credentials={"username": USER, "password": PASSWORD},
    )
    nonce = secrets.token_hex(8)
    files = {"Dockerfile": f"ARG BASE_IMAGE\nFROM ${{BASE_IMAGE}}\nLABEL n={nonce}\n".encode()}
    request = ImageRequest(repository="gridgate/private", recipe_digest="sha256:" + nonce * 4)
    image = await resolver.resolve(request, files)
    assert image.built and image.reference.startswith(f"{private_registry}/gridgate/private@")
    listed = await authorised.images("gridgate/private")
    assert image.digest in {record.digest for record in listed}
    assert await asyncio.wait_for(resolver.select(request), 30) is not None
