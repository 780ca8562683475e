"""Input manifest: describe the task's input files in ``manifest.json``.

Usage: ``python -m gridgate.workflows.standins.manifest --label=inputs``. The input files are
named by ``GRIDGATE_INPUT_FILES`` (a JSON list, set by gridgate); without it, every regular
file of the working directory is described.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import zlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from gridgate.workflows.standins._common import task_index

OUTPUT = "manifest.json"
INPUT_FILES_ENV = "GRIDGATE_INPUT_FILES"
CHUNK = 1024 * 1024


def describe(path: Path) -> dict[str, Any]:
    """Size, Adler-32 (as Rucio writes it) and SHA-256 of one file."""
    sha, adler, size = hashlib.sha256(), 1, 0
    with path.open("rb") as handle:
        while chunk := handle.read(CHUNK):
            sha.update(chunk)
            adler = zlib.adler32(chunk, adler)
            size += len(chunk)
    return {
        "name": path.name,
        "size": size,
        "adler32": f"{adler & 0xFFFFFFFF:08x}",
        "sha256": sha.hexdigest(),
    }


def input_names() -> list[str]:
    text = os.environ.get(INPUT_FILES_ENV)
    if text:
        names = json.loads(text)
        if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
            raise SystemExit(f"{INPUT_FILES_ENV} must be a JSON list of file names")
        return names
    return sorted(p.name for p in Path().iterdir() if p.is_file() and p.name != OUTPUT)


def main(argv: Sequence[str] | None = None) -> int:
    """Write the manifest; exit 1 if a named input is missing."""
    parser = argparse.ArgumentParser(prog="manifest", description=__doc__)
    parser.add_argument("--label", default="inputs")
    args = parser.parse_args(argv)

    names = input_names()
    missing = [n for n in names if not Path(n).is_file()]
    if missing:
        print(f"missing input files: {', '.join(missing)}", file=sys.stderr, flush=True)
        return 1
    files = [describe(Path(n)) for n in names]
    manifest = {"label": args.label, "task_index": task_index(), "files": files}
    Path(OUTPUT).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    for item in files:
        print(f"{item['name']} {item['size']} {item['adler32']}", flush=True)
    print(f"task {task_index()}: wrote {OUTPUT} with {len(files)} files", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
