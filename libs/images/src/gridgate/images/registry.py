"""A registry read through the OCI distribution API (``/v2/``): tags, manifests, configs."""

from __future__ import annotations

import asyncio
import json
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx

from gridgate.core.errors import TransientError

OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
ACCEPT = ", ".join((OCI_MANIFEST, DOCKER_MANIFEST, OCI_INDEX, DOCKER_LIST))

LABEL_RECIPE = "org.gridgate.image.recipe"
LABEL_ARGS = "org.gridgate.image.build-args"
LABEL_BASE = "org.gridgate.image.base-digest"
LABEL_KEY = "org.gridgate.image.key"
KEY_TAG = re.compile(r"^r-[0-9a-f]{32}$")
"""Tags the resolver gives images (see :func:`gridgate.images.image_key`)."""

_REFERENCE = re.compile(
    r"^(?P<host>[A-Za-z0-9.-]+(:[0-9]+)?)/(?P<repository>[a-z0-9._/-]+)"
    r"(:(?P<tag>[A-Za-z0-9_][A-Za-z0-9._-]{0,127}))?(@(?P<digest>sha256:[0-9a-f]{64}))?$"
)
_CHALLENGE = re.compile(r'(\w+)="([^"]*)"')


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class RegistryUnavailableError(TransientError):
    """The registry did not answer, or answered with a server error: worth a retry."""


@dataclass(frozen=True)
class ImageReference:
    """``host/repository[:tag][@digest]``, split."""

    host: str
    repository: str
    tag: str | None = None
    digest: str | None = None

    @classmethod
    def parse(cls, text: str) -> ImageReference:
        match = _REFERENCE.match(text)
        if match is None:
            raise ValueError(f"not an image reference with a registry host: {text!r}")
        return cls(match["host"], match["repository"], match["tag"], match["digest"])

    def pinned(self, digest: str) -> str:
        return f"{self.host}/{self.repository}@{digest}"


@dataclass(frozen=True)
class ImageRecord:
    """One image of a repository as the registry describes it."""

    repository: str
    digest: str
    tags: list[str]
    size: int
    """Bytes of the config and layers (compressed, as stored)."""
    created: datetime | None
    build_args: dict[str, str] = field(default_factory=dict)
    base_digest: str | None = None
    recipe_digest: str | None = None


class RegistryClient:
    """Reads one registry; basic credentials, or a bearer token obtained with them.

    Parameters
    ----------
    host
        ``host[:port]`` of the registry.
    insecure
        Plain HTTP (a loopback test registry) instead of HTTPS.
    username, password
        Credentials, if the registry needs them; never logged.
    """

    def __init__(
        self,
        host: str,
        *,
        insecure: bool = False,
        username: str = "",
        password: str = "",
        timeout_s: float = 15.0,
    ) -> None:
        self.host = host
        self._basic = (username, password) if username else None
        self._client = httpx.AsyncClient(
            base_url=f"{'http' if insecure else 'https'}://{host}", timeout=timeout_s
        )
        self._tokens: dict[str, str] = {}

    async def aclose(self) -> None:
        await self._client.aclose()

    async def _get(self, path: str, *, head: bool = False, accept: str = ACCEPT) -> httpx.Response:
        headers = {"Accept": accept}
        scope = path.split("/")[2] if path.count("/") > 3 else ""
        for _ in range(2):
            token = self._tokens.get(scope)
            if token:
                headers["Authorization"] = f"Bearer {token}"
            try:
                response = await self._client.request(
                    "HEAD" if head else "GET",
                    path,
                    headers=headers,
                    auth=self._basic if not token and self._basic else httpx.USE_CLIENT_DEFAULT,
                    follow_redirects=True,
                )
            except httpx.HTTPError as exc:
                raise RegistryUnavailableError(f"registry {self.host}: {exc}") from exc
            challenge = response.headers.get("WWW-Authenticate", "")
            if response.status_code == 401 and challenge.startswith("Bearer") and not token:
                self._tokens[scope] = await self._token(challenge)
                continue
            break
        if response.status_code >= 500 or response.status_code in (401, 403, 429):
            raise RegistryUnavailableError(f"registry {self.host}: HTTP {response.status_code}")
        return response

    async def _token(self, challenge: str) -> str:
        fields = dict(_CHALLENGE.findall(challenge))
        params = {k: v for k, v in fields.items() if k in ("service", "scope")}
        try:
            response = await self._client.get(
                fields.get("realm", ""),
                params=params,
                auth=self._basic or httpx.USE_CLIENT_DEFAULT,
            )
            response.raise_for_status()
        except httpx.HTTPError as exc:
            raise RegistryUnavailableError(f"registry {self.host}: token: {exc}") from exc
        body = response.json()
        return str(body.get("token") or body.get("access_token") or "")

    async def digest_of(self, repository: str, reference: str) -> str | None:
        """The manifest digest of ``reference`` (a tag or a digest); ``None`` if absent."""
        response = await self._get(f"/v2/{repository}/manifests/{reference}", head=True)
        if response.status_code == 404:
            return None
        response.raise_for_status()
        digest = response.headers.get("Docker-Content-Digest")
        if digest is None:  # some registries answer HEAD without it: ask with GET
            found = await self.manifest(repository, reference)
            return found[0] if found else None
        return str(digest)

    async def manifest(self, repository: str, reference: str) -> tuple[str, dict[str, Any]] | None:
        """``(digest, manifest)`` of ``reference``; an index resolves to its first manifest."""
        response = await self._get(f"/v2/{repository}/manifests/{reference}")
        if response.status_code == 404:
            return None
        response.raise_for_status()
        document = response.json()
        digest = response.headers.get("Docker-Content-Digest", reference)
        if document.get("mediaType") in (OCI_INDEX, DOCKER_LIST) and document.get("manifests"):
            inner = await self.manifest(repository, document["manifests"][0]["digest"])
            return (digest, inner[1]) if inner else None
        return digest, document

    async def tags(self, repository: str) -> list[str]:
        """Every tag of ``repository`` (an unknown repository has none)."""
        response = await self._get(f"/v2/{repository}/tags/list", accept="application/json")
        if response.status_code == 404:
            return []
        response.raise_for_status()
        return sorted(response.json().get("tags") or [])

    async def describe(self, repository: str, reference: str) -> ImageRecord | None:
        """Digest, size, creation time and gridgate labels of one image; ``None`` if absent."""
        found = await self.manifest(repository, reference)
        if found is None:
            return None
        digest, manifest = found
        config_ref = manifest.get("config", {})
        size = int(config_ref.get("size", 0)) + sum(
            int(layer.get("size", 0)) for layer in manifest.get("layers", [])
        )
        config: dict[str, Any] = {}
        if config_ref.get("digest"):
            response = await self._get(
                f"/v2/{repository}/blobs/{config_ref['digest']}", accept="*/*"
            )
            if response.status_code == 200:
                config = json.loads(response.content)
        labels = (config.get("config") or {}).get("Labels") or {}
        created = config.get("created")
        return ImageRecord(
            repository=repository,
            digest=digest,
            tags=[] if reference.startswith("sha256:") else [reference],
            size=size,
            created=_timestamp(created),
            build_args=_json_labels(labels.get(LABEL_ARGS)),
            base_digest=labels.get(LABEL_BASE),
            recipe_digest=labels.get(LABEL_RECIPE),
        )

    async def images(self, repository: str, *, concurrency: int = 8) -> list[ImageRecord]:
        """The gridgate-built images of ``repository`` (content-addressed tags), one per digest."""
        slots = asyncio.Semaphore(concurrency)

        async def one(tag: str) -> ImageRecord | None:
            async with slots:
                return await self.describe(repository, tag)

        tags = [tag for tag in await self.tags(repository) if KEY_TAG.match(tag)]
        records = [r for r in await asyncio.gather(*(one(t) for t in tags)) if r is not None]
        by_digest: dict[str, ImageRecord] = {}
        for record in records:
            known = by_digest.get(record.digest)
            if known is not None:
                known.tags.extend(record.tags)
            else:
                by_digest[record.digest] = record
        return sorted(
            by_digest.values(), key=lambda r: (r.created is None, r.created), reverse=True
        )


_FRACTION = re.compile(r"(\.\d{6})\d+")


def _timestamp(text: object) -> datetime | None:
    """An image config's ``created`` (RFC 3339, nanoseconds allowed), or ``None``."""
    if not isinstance(text, str):
        return None
    try:
        return datetime.fromisoformat(_FRACTION.sub(r"\1", text.replace("Z", "+00:00")))
    except ValueError:
        return None


def _json_labels(text: str | None) -> dict[str, str]:
    if not text:
        return {}
    try:
        loaded = json.loads(text)
    except json.JSONDecodeError:
        return {}
    return {str(k): str(v) for k, v in loaded.items()} if isinstance(loaded, dict) else {}
