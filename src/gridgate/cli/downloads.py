"""Result downloads: in parallel, resumable, each file checked against its SHA-256.

A file is written to ``NAME.part`` and renamed once its checksum matched. A ``.part`` left
by an interrupted run is continued with an HTTP range request (the server answers 206), or
started again when the server sends the whole file (200). A file already present with the
right checksum is not fetched again.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from gridgate.cli.api import ApiError, GridgateApi, Json

CHUNK = 1 << 16
PARTIAL_CONTENT = 206

Progress = Callable[[str, int], None]
"""Called with a result's id and the bytes just written."""


@dataclass
class Downloaded:
    """One result's outcome."""

    id: str
    path: Path
    size: int
    sha256: str
    status: str
    """``downloaded``, ``resumed``, ``present`` (already there, checksum matched) or
    ``checksum-mismatch``."""

    @property
    def ok(self) -> bool:
        return self.status != "checksum-mismatch"


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def target_path(directory: Path, result_id: str) -> Path:
    """Where result ``result_id`` goes under ``directory``; never outside it."""
    base = directory.resolve()
    path = (base / result_id).resolve()
    if not path.is_relative_to(base) or path == base:
        raise ApiError(f"refusing to write result {result_id!r} outside {base}", 6)
    return path


def download_result(
    api: GridgateApi, result: Json, directory: Path, progress: Progress | None = None
) -> Downloaded:
    path = target_path(directory, result["id"])
    expected = result["sha256"].lower()
    if path.exists() and sha256_of(path) == expected:
        if progress:
            progress(result["id"], result["size"])
        return Downloaded(result["id"], path, result["size"], expected, "present")
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".part")
    offset = partial.stat().st_size if partial.exists() else 0
    headers = {"Range": f"bytes={offset}-"} if 0 < offset < result["size"] else {}
    if offset >= result["size"]:
        offset = 0
    with api.stream(result["href"], headers=headers) as answer:
        resumed = answer.status_code == PARTIAL_CONTENT
        with partial.open("ab" if resumed else "wb") as out:
            if progress and resumed:
                progress(result["id"], offset)
            for chunk in answer.iter_bytes(CHUNK):
                out.write(chunk)
                if progress:
                    progress(result["id"], len(chunk))
    actual = sha256_of(partial)
    if actual != expected:
        # A bad copy is never kept, not even as a .part to resume from.
        partial.unlink()
        return Downloaded(result["id"], path, result["size"], actual, "checksum-mismatch")
    partial.replace(path)
    return Downloaded(
        result["id"], path, result["size"], actual, "resumed" if resumed else "downloaded"
    )


def download_all(
    api: GridgateApi,
    results: list[Json],
    directory: Path,
    *,
    parallel: int = 4,
    progress: Progress | None = None,
) -> list[Downloaded]:
    """Every result, ``parallel`` at a time (httpx's client is safe across threads)."""
    with ThreadPoolExecutor(max_workers=max(1, parallel)) as pool:
        futures = [
            pool.submit(download_result, api, result, directory, progress) for result in results
        ]
        return [future.result() for future in futures]
