"""Where the results service keeps a job's files for download: a directory or a WebDAV server.

With ``store=rucio`` there is no store of gridgate's own: the files live only as replicas on
the Rucio storage element, and :class:`NoStore` stands in.
"""

from __future__ import annotations

import asyncio
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol
from urllib.parse import quote

from gridgate.core.errors import FatalError
from gridgate.datalake import StorageClient, copy_file_atomic


@dataclass(frozen=True)
class StagedFile:
    """A job's file on the worker host, described."""

    name: str
    path: Path
    task_index: int
    size: int
    sha256: str
    adler32: str
    md5: str
    media_type: str
    is_log: bool


def checked_job_id(job_id: str) -> str:
    if not job_id.isalnum():
        raise FatalError(f"invalid job id {job_id!r}")
    return job_id


class ResultStore(Protocol):
    kind: str

    async def put(self, job_id: str, files: list[StagedFile]) -> dict[str, str | None]:
        """Store the files; return each name's location (``None``: the conventional path)."""
        ...

    async def purge(self, job_id: str) -> None:
        """Remove a job's files."""
        ...


class DirectoryStore:
    """``<root>/<job id>/<name>``; the gateway serves from the same directory."""

    kind = "directory"

    def __init__(self, root: Path) -> None:
        self.root = root

    async def put(self, job_id: str, files: list[StagedFile]) -> dict[str, str | None]:
        target = self.root / checked_job_id(job_id)
        await asyncio.to_thread(_copy_all, target, files)
        return {f.name: None for f in files}

    async def purge(self, job_id: str) -> None:
        await asyncio.to_thread(shutil.rmtree, self.root / checked_job_id(job_id), True)


def _copy_all(target: Path, files: list[StagedFile]) -> None:
    for item in files:
        # Under a temporary name of its own, then renamed: a reader never sees half a file,
        # and two replicas collecting the same job at once never share a temporary file.
        copy_file_atomic(item.path, target / item.name)


class WebDavStore:
    """``<base url>/<job id>/<name>`` on a WebDAV server, with gridgate's own credentials."""

    kind = "webdav"

    def __init__(self, base_url: str, storage: StorageClient, concurrency: int = 4) -> None:
        self.base_url = base_url.rstrip("/")
        self.storage = storage
        self._slots = asyncio.Semaphore(concurrency)

    def url(self, job_id: str, name: str) -> str:
        return f"{self.base_url}/{checked_job_id(job_id)}/{quote(name)}"

    async def put(self, job_id: str, files: list[StagedFile]) -> dict[str, str | None]:
        async def one(item: StagedFile) -> tuple[str, str | None]:
            url = self.url(job_id, item.name)
            async with self._slots:
                await self.storage.upload(item.path, url)
            return item.name, url

        return dict(await asyncio.gather(*(one(f) for f in files)))

    async def purge(self, job_id: str) -> None:
        await self.storage.delete(f"{self.base_url}/{checked_job_id(job_id)}/")


class NoStore:
    """store=rucio: the RSE replicas are the only copy."""

    kind = "rucio"

    async def put(self, job_id: str, files: list[StagedFile]) -> dict[str, str | None]:
        return {}

    async def purge(self, job_id: str) -> None:
        # Registered replicas leave through their rule's lifetime, never by a direct delete.
        return None
