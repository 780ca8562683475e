"""File digests as grid storage computes them: SHA-256 and Adler-32 (Rucio's checksum)."""

from __future__ import annotations

import hashlib
import zlib
from pathlib import Path

CHUNK = 1024 * 1024


def digests(path: Path) -> tuple[str, str, int]:
    """Return ``(sha256 hex, adler32 as 8 hex digits, size)`` in one read of the file."""
    sha = hashlib.sha256()
    adler = 1
    size = 0
    with path.open("rb") as handle:
        while chunk := handle.read(CHUNK):
            sha.update(chunk)
            adler = zlib.adler32(chunk, adler)
            size += len(chunk)
    return sha.hexdigest(), f"{adler & 0xFFFFFFFF:08x}", size
