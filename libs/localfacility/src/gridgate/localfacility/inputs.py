"""Fetching a task's input files into its working directory, before the task starts.

Each input names replica URLs (``https://``, ``http://`` or ``file://``, preferred first); the
first that delivers the right size and Adler-32 wins. Runs in the detached runner process,
so a worker is never blocked by a download.
"""

from __future__ import annotations

import os
import ssl
import urllib.request
import zlib
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

CHUNK = 1024 * 1024


class InputFetchError(Exception):
    """No replica of an input file could be fetched intact."""


def _adler32_of(path: Path) -> tuple[int, str]:
    value, size = 1, 0
    with path.open("rb") as handle:
        while chunk := handle.read(CHUNK):
            value = zlib.adler32(chunk, value)
            size += len(chunk)
    return size, f"{value & 0xFFFFFFFF:08x}"


def _safe_file_name(name: str) -> str:
    file_name = name.rsplit("/", 1)[-1]
    if file_name in ("", ".", "..") or "\x00" in file_name:
        raise InputFetchError(f"input {name!r} has no usable file name")
    return file_name


def _matches(size: int, adler32: str, expected: Mapping[str, Any]) -> bool:
    want_size, want_adler = expected.get("bytes"), expected.get("adler32")
    return (want_size is None or size == want_size) and (
        want_adler is None or adler32 == str(want_adler).lower()
    )


def _download(url: str, target: Path, context: ssl.SSLContext, timeout_s: float) -> None:
    if not url.startswith(("https://", "http://", "file://")):
        raise InputFetchError(f"unsupported URL scheme in {url}")
    request = urllib.request.Request(url, headers={"User-Agent": "gridgate-localfacility"})  # noqa: S310 - schemes checked above
    with (
        urllib.request.urlopen(request, timeout=timeout_s, context=context) as response,  # noqa: S310
        target.open("wb") as out,
    ):
        while chunk := response.read(CHUNK):
            out.write(chunk)


def fetch_inputs(
    inputs: Iterable[Mapping[str, Any]],
    workdir: Path,
    *,
    ca_file: Path | None = None,
    timeout_s: float = 300.0,
) -> list[str]:
    """Place every input in ``workdir`` under its file name; return the names.

    A file already there with the expected size and checksum is kept (a restarted runner
    does not fetch it again).

    Raises
    ------
    InputFetchError
        If an input could not be fetched intact from any of its URLs.
    """
    context = ssl.create_default_context(cafile=str(ca_file) if ca_file else None)
    names = []
    for item in inputs:
        did = f"{item.get('scope')}:{item.get('name')}"
        file_name = _safe_file_name(str(item.get("name", "")))
        target = workdir / file_name
        names.append(file_name)
        if target.is_file() and _matches(*_adler32_of(target), item):
            continue
        problems = []
        for url in item.get("urls") or []:
            partial = workdir / f".{file_name}.partial"
            try:
                _download(str(url), partial, context, timeout_s)
                size, adler32 = _adler32_of(partial)
                if not _matches(size, adler32, item):
                    problems.append(f"{url}: got {size} bytes, adler32 {adler32}")
                    continue
                os.replace(partial, target)
                break
            except (OSError, ValueError) as exc:
                problems.append(f"{url}: {exc}")
            finally:
                partial.unlink(missing_ok=True)
        else:
            detail = "; ".join(problems) or "no replica URL"
            raise InputFetchError(f"input {did} could not be fetched: {detail}")
    return names
