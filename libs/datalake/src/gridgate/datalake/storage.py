"""Files at storage URLs: WebDAV over ``http(s)://`` and local or shared paths as ``file://``.

This is how gridgate writes outputs to a WebDAV store or to a Rucio storage element's PFN, and
how the gateway streams them back. Credentials are gridgate's own (a bearer token or a user
and password for the storage); a user's token is never sent to storage.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import shutil
import ssl
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit, urlunsplit

import httpx

from gridgate.core.tls import shared_tls_context

CHUNK = 1024 * 1024


class StorageError(Exception):
    """The storage refused a request (not worth repeating as is)."""


class StorageUnavailableError(StorageError):
    """The storage did not answer or had a server error: try again later."""


class StoredFileMissingError(StorageError):
    """No file at that URL."""


def tls_context(ca_file: str | None) -> ssl.SSLContext:
    """Verify servers against ``ca_file``, or the system's CAs when it is ``None`` (one
    context for the process, :mod:`gridgate.core.tls`)."""
    if ca_file:
        return ssl.create_default_context(cafile=ca_file)
    return shared_tls_context(ssl.create_default_context)


def local_path(url: str) -> Path | None:
    """The path of a ``file://`` URL (``file:///p`` or ``file://localhost/p``), else ``None``."""
    parts = urlsplit(url)
    if parts.scheme != "file":
        return None
    if parts.netloc not in ("", "localhost"):
        raise StorageError(f"{url!r} names another host; only local file URLs are readable")
    return Path(unquote(parts.path))


def _parents(url: str) -> list[str]:
    """Collection URLs above ``url``, outermost first (``/a/``, ``/a/b/``)."""
    parts = urlsplit(url)
    elements = [p for p in parts.path.split("/") if p][:-1]
    return [
        urlunsplit((parts.scheme, parts.netloc, "/" + "/".join(elements[: i + 1]) + "/", "", ""))
        for i in range(len(elements))
    ]


async def _file_chunks(path: Path) -> AsyncIterator[bytes]:
    # File reads run in a thread: the event loop keeps serving while gigabytes go out.
    handle = await asyncio.to_thread(path.open, "rb")
    try:
        while chunk := await asyncio.to_thread(handle.read, CHUNK):
            yield chunk
    finally:
        await asyncio.to_thread(handle.close)


class StorageClient:
    """Upload, stream and delete files by URL.

    Parameters
    ----------
    ca_file
        CA bundle for ``https`` storage; the system's when ``None``.
    token
        Bearer token for the storage (e.g. a WLCG token of gridgate's service identity).
    username, password
        HTTP basic credentials, when the storage takes those instead.
    timeout_s
        Connect and read timeout.
    """

    def __init__(
        self,
        *,
        ca_file: str | None = None,
        token: str | None = None,
        username: str | None = None,
        password: str | None = None,
        timeout_s: float = 60.0,
    ) -> None:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        auth = httpx.BasicAuth(username, password or "") if username else None
        self._http = httpx.AsyncClient(
            timeout=httpx.Timeout(timeout_s),
            verify=tls_context(ca_file),
            headers=headers,
            auth=auth,
            follow_redirects=True,
        )

    def __repr__(self) -> str:  # never show credentials
        return "StorageClient()"

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> StorageClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def _send(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        try:
            return await self._http.request(method, url, **kwargs)
        except httpx.HTTPError as exc:
            raise StorageUnavailableError(f"{method} {url}: {exc}") from exc

    async def upload(self, source: Path, url: str) -> None:
        """Write ``source`` at ``url``, replacing what is there; parents are created."""
        target = local_path(url)
        if target is not None:
            await asyncio.to_thread(copy_file_atomic, source, target)
            return
        size = (await asyncio.to_thread(source.stat)).st_size
        # No temporary name on the server: a whole-file PUT is the server's to make atomic.
        # Apache mod_dav_fs (the storage testbed) writes it to a temporary file of its own and
        # renames it on completion, so racing PUTs of one name each leave a whole file. RFC 4918
        # promises no such thing, and other grid storages are not checked here; duplicate
        # collections PUT the same bytes, so the last writer leaves the same content.
        for attempt in (1, 2):
            response = await self._send(
                "PUT",
                url,
                content=_file_chunks(source),
                headers={"Content-Length": str(size)},
            )
            if response.status_code in (200, 201, 204):
                return
            if response.status_code == 409 and attempt == 1:
                # The parent collection is missing (plain WebDAV): make it, then PUT again.
                await self.make_collections(url)
                continue
            raise self._error("PUT", url, response)

    async def make_collections(self, url: str) -> None:
        for parent in _parents(url):
            response = await self._send("MKCOL", parent)
            # 405: it exists; 403/401 on an outer level the service may not write (a prefix).
            if response.status_code not in (201, 405, 403, 401, 301, 302):
                raise self._error("MKCOL", parent, response)

    @asynccontextmanager
    async def open(self, url: str) -> AsyncIterator[AsyncIterator[bytes]]:
        """Open a stored file for reading, as an async iterator of chunks."""
        path = local_path(url)
        if path is not None:
            if not await asyncio.to_thread(path.is_file):
                raise StoredFileMissingError(f"no file at {url}")
            yield _file_chunks(path)
            return
        request = self._http.build_request("GET", url)
        try:
            response = await self._http.send(request, stream=True)
        except httpx.HTTPError as exc:
            raise StorageUnavailableError(f"GET {url}: {exc}") from exc
        try:
            if response.status_code == 404:
                raise StoredFileMissingError(f"no file at {url}")
            if response.status_code != 200:
                raise self._error("GET", url, response)
            yield response.aiter_bytes(CHUNK)
        finally:
            await response.aclose()

    async def read(self, url: str) -> bytes:
        """The whole file (small files: tests, manifests)."""
        chunks = []
        async with self.open(url) as stream:
            async for chunk in stream:
                chunks.append(chunk)
        return b"".join(chunks)

    async def delete(self, url: str) -> bool:
        """Delete a file or a collection (recursively); ``False`` if nothing was there."""
        path = local_path(url)
        if path is not None:
            return await asyncio.to_thread(_remove, path)
        response = await self._send("DELETE", url)
        if response.status_code == 404:
            return False
        if response.status_code >= 300:
            raise self._error("DELETE", url, response)
        return True

    @staticmethod
    def _error(method: str, url: str, response: httpx.Response) -> StorageError:
        text = f"{method} {url}: {response.status_code} {response.reason_phrase}"
        if response.status_code >= 500:
            return StorageUnavailableError(text)
        return StorageError(text)


def copy_file_atomic(source: Path, target: Path) -> None:
    """Copy ``source`` to ``target``, creating its parents; all of it appears at once or nothing.

    The bytes go to a temporary name of this call's own in the target's directory, then
    ``os.replace`` puts them in place: a reader never sees half a file, and two copies racing to
    one target (a redelivered command on two replicas) never write into one temporary file. The
    last rename wins; copies of the same content leave the same file. A failed copy removes its
    temporary file.
    """
    target.parent.mkdir(parents=True, exist_ok=True)
    # Hidden, so that a listing of the directory never offers a half-copied file.
    temporary = target.with_name(f".{target.name}.{secrets.token_hex(8)}.partial")
    try:
        shutil.copyfile(source, temporary)
        os.replace(temporary, target)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def _remove(path: Path) -> bool:
    if path.is_dir():
        shutil.rmtree(path, ignore_errors=True)
        return True
    try:
        path.unlink()
    except FileNotFoundError:
        return False
    return True
