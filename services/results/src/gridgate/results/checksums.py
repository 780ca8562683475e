"""File digests as grid storage computes them: SHA-256, Adler-32 and MD5 (Rucio's checksums)."""

from __future__ import annotations

import hashlib
import zlib
from dataclasses import dataclass
from pathlib import Path

CHUNK = 1024 * 1024


@dataclass(frozen=True)
class Digests:
    """A file's size and checksums, as Rucio and gridgate write them (lowercase hex)."""

    sha256: str
    adler32: str
    """8 hex digits, zero-padded."""
    md5: str
    """32 hex digits: Rucio, FTS and many storages check MD5 where Adler-32 is not offered."""
    size: int


def digests(path: Path) -> Digests:
    """Size, SHA-256, Adler-32 and MD5 of a file, in one read of it."""
    sha = hashlib.sha256()
    # MD5 is a checksum here (what Rucio and FTS compare), not a security measure.
    md5 = hashlib.md5(usedforsecurity=False)
    adler = 1
    size = 0
    with path.open("rb") as handle:
        while chunk := handle.read(CHUNK):
            sha.update(chunk)
            md5.update(chunk)
            adler = zlib.adler32(chunk, adler)
            size += len(chunk)
    return Digests(sha.hexdigest(), f"{adler & 0xFFFFFFFF:08x}", md5.hexdigest(), size)
