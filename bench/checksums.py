"""What MD5 adds to the results service's one read of each output (issue 18).

Usage: ``uv run python bench/checksums.py [--mb 100] [--rounds 5]``

Writes a file of ``--mb`` random MiB, then times, ``--rounds`` times each, alternating:
``gridgate.results.checksums.digests`` (one read: SHA-256, Adler-32 and MD5), and the same
loop without MD5 (what the service computed before). Prints the median seconds, MiB/s and
the share MD5 adds. The file is read from the page cache after the first round, so this is
the CPU cost, the part that grows; speed is reported here, never asserted.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import statistics
import tempfile
import time
import zlib
from collections.abc import Callable
from pathlib import Path

from gridgate.results.checksums import CHUNK, digests


def without_md5(path: Path) -> tuple[str, str, int]:
    sha = hashlib.sha256()
    adler = 1
    size = 0
    with path.open("rb") as handle:
        while chunk := handle.read(CHUNK):
            sha.update(chunk)
            adler = zlib.adler32(chunk, adler)
            size += len(chunk)
    return sha.hexdigest(), f"{adler & 0xFFFFFFFF:08x}", size


def timed(function: Callable[[Path], object], path: Path) -> float:
    started = time.perf_counter()
    function(path)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--mb", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        path = Path(scratch) / "output.bin"
        with path.open("wb") as handle:
            for _ in range(args.mb):
                handle.write(os.urandom(1024 * 1024))
        without_md5(path)  # into the page cache
        old, new = [], []
        for _ in range(args.rounds):
            old.append(timed(without_md5, path))
            new.append(timed(digests, path))
        before, after = statistics.median(old), statistics.median(new)
        print(f"{args.mb} MiB, median of {args.rounds}:")
        print(f"  sha256 + adler32:       {before:.3f} s  ({args.mb / before:.0f} MiB/s)")
        print(f"  sha256 + adler32 + md5: {after:.3f} s  ({args.mb / after:.0f} MiB/s)")
        print(f"  md5 adds {after - before:.3f} s, {100 * (after - before) / before:.0f} %")


if __name__ == "__main__":
    main()
