"""Select the image of a recipe and its arguments, or build it once.

The image is content-addressed: its tag is :func:`image_key` of the recipe's digest, the build
arguments and the base image's digest, so the registry answers "does it exist?" with one
``HEAD``, and the same inputs never build twice. Concurrent identical requests in one process
share one build (single flight); across processes, the builder of a key holds a lease named
after it (:class:`BuildLeases`, a broker lease in the submitter), and the others wait for the
image to appear in the registry, or for the lease to come free when its holder died (see
docs/adr/0012-container-images.md and docs/adr/0015-one-build-across-replicas.md).

The Docker SDK is blocking: builds and pushes run in a worker thread.

Crash points (:mod:`gridgate.core.crashpoints`): ``image-build-step``, at each "Step" line of
the engine's build output (``image-build-step:5``: killed as the fifth step starts, with the
earlier steps done; its lease comes free and another process builds);
``image-pushed``, after the push, before the caller hears of the image (the redelivered
command then selects it and builds nothing).
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import json
import tarfile
import time
from collections.abc import Callable, Mapping
from typing import Any, Protocol

import structlog

from gridgate.contracts.images import ImageProvenance, ImageRequest
from gridgate.core.crashpoints import crash_point
from gridgate.core.errors import UsageError
from gridgate.images.registry import (
    LABEL_ARGS,
    LABEL_BASE,
    LABEL_KEY,
    LABEL_RECIPE,
    ImageReference,
    RegistryClient,
    RegistryUnavailableError,
)

log = structlog.get_logger(__name__)
LOG_TAIL = 4000
"""Characters of a failed build's log kept in the job's error message."""


class HeldLease(Protocol):
    """A lease this process holds."""

    async def release(self) -> None: ...


class BuildLeases(Protocol):
    """Named leases shared by every process that builds into the same registry.

    ``try_take`` returns the lease, or ``None`` while another live process holds it; a
    holder that dies gives it up.
    """

    async def try_take(self, name: str) -> HeldLease | None: ...


class BuildFailedError(UsageError):
    """The image recipe did not build with the job's arguments; the message holds its log."""


class ImageUnavailableError(UsageError):
    """The job names an image digest the registry does not hold, or no registry is set."""


def image_key(recipe_digest: str, arguments: Mapping[str, str], base_digest: str) -> str:
    """The content address of an image, used as its tag: ``r-`` and 32 hex digits.

    Parameters
    ----------
    recipe_digest
        Hash of the recipe's build context.
    arguments
        Build arguments, as text.
    base_digest
        Digest of the base image the recipe starts from.
    """
    document = json.dumps(
        {"recipe": recipe_digest, "args": dict(sorted(arguments.items())), "base": base_digest},
        sort_keys=True,
        separators=(",", ":"),
    )
    return "r-" + hashlib.sha256(document.encode()).hexdigest()[:32]


def context_tar(files: Mapping[str, bytes]) -> bytes:
    """The build context as a tar: fixed owner, mode and time, so equal files give equal layers."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for name, content in sorted(files.items()):
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.mtime = len(content), 0o644, 0
            tar.addfile(info, io.BytesIO(content))
    return buffer.getvalue()


class ImageResolver:
    """Turns an :class:`ImageRequest` into an image in the registry, pinned by digest.

    Parameters
    ----------
    registry
        The registry that holds the images (read with the distribution API).
    base_image
        ``host/repository:tag`` of the recipes' base image; pinned by digest at each request.
    docker_factory
        Makes a Docker SDK client of the engine that builds (called in the build thread).
    push_credentials
        ``{"username": ..., "password": ...}`` for ``docker push``, if the registry needs them.
    build_timeout_s
        Longest a build and push may take, and longest a caller waits for another process's.
    leases
        Leases shared with the other builders (other replicas); ``None``: this process is
        the only builder.
    wait_poll_s
        While another process builds: how often to look in the registry and at its lease.
    """

    def __init__(
        self,
        registry: RegistryClient,
        base_image: str,
        docker_factory: Callable[[], Any],
        *,
        push_credentials: dict[str, str] | None = None,
        build_timeout_s: float = 3600.0,
        leases: BuildLeases | None = None,
        wait_poll_s: float = 2.0,
    ) -> None:
        self.registry = registry
        self.base = ImageReference.parse(base_image) if base_image else None
        self.docker_factory = docker_factory
        self.push_credentials = push_credentials
        self.build_timeout_s = build_timeout_s
        self.leases = leases
        self.wait_poll_s = wait_poll_s
        self.builds = 0
        """Builds started by this resolver (each shared by every concurrent identical request)."""
        self.waits = 0
        """Times this resolver found another process building the image it needed."""
        self._flights: dict[str, asyncio.Task[ImageProvenance]] = {}

    async def key_of(self, request: ImageRequest) -> tuple[str, str]:
        """``(tag, base digest)`` of a request: where its image is, or will be."""
        if self.base is None:
            raise ImageUnavailableError("No base image is configured for building images here.")
        reference = self.base.tag or self.base.digest or "latest"
        base_digest = self.base.digest or await self._base_registry().digest_of(
            self.base.repository, reference
        )
        if base_digest is None:
            raise RegistryUnavailableError(f"the base image {self.base} is not in its registry")
        return image_key(request.recipe_digest, request.build_args, base_digest), base_digest

    def _base_registry(self) -> RegistryClient:
        assert self.base is not None
        if self.base.host == self.registry.host:
            return self.registry
        raise ImageUnavailableError("The base image must be in the image registry.")

    async def select(self, request: ImageRequest) -> ImageProvenance | None:
        """The existing image of the request; ``None`` when it must be built."""
        if request.digest is not None:
            return await self._named(request)
        tag, base_digest = await self.key_of(request)
        digest = await self.registry.digest_of(request.repository, tag)
        if digest is None:
            return None
        return self._provenance(request, digest, tag, base_digest, built=False)

    async def _named(self, request: ImageRequest) -> ImageProvenance:
        assert request.digest is not None
        record = await self.registry.describe(request.repository, request.digest)
        if record is None:
            raise ImageUnavailableError(
                f"The registry {self.registry.host} holds no image {request.digest} in "
                f"{request.repository}."
            )
        return ImageProvenance(
            reference=f"{self.registry.host}/{request.repository}@{record.digest}",
            digest=record.digest,
            repository=request.repository,
            recipe_digest=record.recipe_digest,
            build_args=record.build_args,
            base_digest=record.base_digest,
        )

    async def resolve(
        self,
        request: ImageRequest,
        files: Mapping[str, bytes],
        on_build: Callable[[str], Any] | None = None,
    ) -> ImageProvenance:
        """Select the image, or build and push it (once for all concurrent identical callers).

        Parameters
        ----------
        request
            What the job asks for.
        files
            The recipe's build context (its digest must be ``request.recipe_digest``).
        on_build
            Awaited with the tag when the caller must wait for a build (its own or a shared one).

        Raises
        ------
        BuildFailedError
            The recipe did not build; the message ends with the build log.
        ImageUnavailableError
            A named digest is not in the registry.
        RegistryUnavailableError
            The registry or engine is unreachable (transient).
        """
        found = await self.select(request)
        if found is not None:
            return found
        tag, base_digest = await self.key_of(request)
        if on_build is not None:
            await on_build(tag)
        flight = self._flights.get(tag)
        if flight is None:
            flight = asyncio.create_task(self._build(request, files, tag, base_digest))
            self._flights[tag] = flight
            flight.add_done_callback(lambda _: self._flights.pop(tag, None))
        return await asyncio.shield(flight)

    async def _build(
        self, request: ImageRequest, files: Mapping[str, bytes], tag: str, base_digest: str
    ) -> ImageProvenance:
        """Build the image under its lease, or wait for the process that holds the lease.

        The registry is the source of truth: it is asked before every attempt at the lease,
        and again once the lease is held (the previous holder may have pushed just before it
        let go). A holder that dies mid-build frees the lease, so a waiter takes over.
        """
        deadline = time.monotonic() + self.build_timeout_s
        waiting = False
        while True:
            digest = await self.registry.digest_of(request.repository, tag)
            if digest is not None:
                return self._provenance(request, digest, tag, base_digest, built=True)
            lease = await self._take_lease(request.repository, tag)
            if lease is not None:
                try:
                    digest = await self.registry.digest_of(request.repository, tag)
                    if digest is None:
                        digest = await self._build_now(request, files, tag, base_digest)
                finally:
                    await lease.release()
                return self._provenance(request, digest, tag, base_digest, built=True)
            if not waiting:
                waiting = True
                self.waits += 1
                log.info("another process builds the image; waiting", image=tag)
            if time.monotonic() > deadline:
                raise RegistryUnavailableError(
                    f"the image {tag} was still being built elsewhere after "
                    f"{self.build_timeout_s:.0f} s"
                )
            await asyncio.sleep(self.wait_poll_s)

    async def _take_lease(self, repository: str, tag: str) -> HeldLease | None:
        if self.leases is None:
            return _NoLease()
        return await self.leases.try_take(f"image-build.{repository}:{tag}")

    async def _build_now(
        self, request: ImageRequest, files: Mapping[str, bytes], tag: str, base_digest: str
    ) -> str:
        assert self.base is not None
        self.builds += 1
        started = time.perf_counter()
        target = f"{self.registry.host}/{request.repository}"
        labels = {
            LABEL_RECIPE: request.recipe_digest,
            LABEL_ARGS: json.dumps(request.build_args, sort_keys=True),
            LABEL_BASE: base_digest,
            LABEL_KEY: tag,
        }
        build_args = {**request.build_args, "BASE_IMAGE": self.base.pinned(base_digest)}
        digest = await asyncio.wait_for(
            asyncio.to_thread(
                self._build_and_push, context_tar(files), target, tag, build_args, labels
            ),
            self.build_timeout_s,
        )
        crash_point("image-pushed")
        log.info(
            "image built",
            image=f"{target}:{tag}",
            digest=digest,
            seconds=round(time.perf_counter() - started, 2),
        )
        return digest

    def _build_and_push(
        self,
        context: bytes,
        target: str,
        tag: str,
        build_args: dict[str, str],
        labels: dict[str, str],
    ) -> str:
        import docker.errors

        client = self.docker_factory()
        lines: list[str] = []
        try:
            try:
                for chunk in client.api.build(
                    fileobj=io.BytesIO(context),
                    custom_context=True,
                    tag=f"{target}:{tag}",
                    buildargs=build_args,
                    labels=labels,
                    rm=True,
                    forcerm=True,
                    decode=True,
                ):
                    if "stream" in chunk:
                        text = str(chunk["stream"]).rstrip("\n")
                        if text:
                            if text.startswith("Step "):
                                crash_point("image-build-step")
                            lines.append(text)
                            log.debug("build", image=tag, line=text)
                    if "error" in chunk or "errorDetail" in chunk:
                        lines.append(str(chunk.get("error") or chunk.get("errorDetail")))
                        raise BuildFailedError(_failure(tag, lines))
            except docker.errors.APIError as exc:
                if exc.status_code is not None and 400 <= exc.status_code < 500:
                    lines.append(str(exc.explanation or exc))
                    raise BuildFailedError(_failure(tag, lines)) from exc
                raise RegistryUnavailableError(f"docker engine: {exc}") from exc
            except docker.errors.DockerException as exc:
                raise RegistryUnavailableError(f"docker engine: {exc}") from exc
            digest = None
            # A failed push does not raise: every chunk must be checked for an error.
            for chunk in client.api.push(
                target, tag=tag, stream=True, decode=True, auth_config=self.push_credentials
            ):
                if "error" in chunk or "errorDetail" in chunk:
                    raise RegistryUnavailableError(f"push of {target}:{tag}: {chunk}")
                aux = chunk.get("aux") or {}
                if aux.get("Digest"):
                    digest = str(aux["Digest"])
            if digest is None:
                raise RegistryUnavailableError(f"push of {target}:{tag} reported no digest")
            return digest
        finally:
            client.close()

    def _provenance(
        self, request: ImageRequest, digest: str, tag: str, base_digest: str, *, built: bool
    ) -> ImageProvenance:
        return ImageProvenance(
            reference=f"{self.registry.host}/{request.repository}@{digest}",
            digest=digest,
            repository=request.repository,
            tag=tag,
            recipe_digest=request.recipe_digest,
            build_args=dict(request.build_args),
            base_digest=base_digest,
            built=built,
        )


class _NoLease:
    """The lease of a process that is the only builder: always free."""

    async def release(self) -> None:
        return None


def _failure(tag: str, lines: list[str]) -> str:
    text = "\n".join(lines)
    if len(text) > LOG_TAIL:
        text = "…" + text[-LOG_TAIL:]
    return f"The image {tag} did not build. Build log:\n{text}"
