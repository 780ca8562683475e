"""Copies to ``file://`` URLs: racing copies of one file leave it whole and no temporary behind."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest

from gridgate.datalake import StorageClient, copy_file_atomic


def leftovers(root: Path) -> list[Path]:
    return [path for path in root.rglob("*") if path.name.endswith(".partial")]


async def test_racing_uploads_of_one_name_leave_one_whole_file(tmp_path: Path) -> None:
    sources = []
    for index in range(20):
        source = tmp_path / "sources" / f"f{index}.bin"
        source.parent.mkdir(exist_ok=True)
        source.write_bytes(os.urandom(256 * 1024))
        sources.append(source)
    store = tmp_path / "store"
    async with StorageClient() as storage:
        for _ in range(3):
            # Four copies of every file at once, as from replicas handling one command.
            await asyncio.gather(
                *(
                    storage.upload(source, (store / "job" / "out" / source.name).as_uri())
                    for source in sources
                    for _ in range(4)
                )
            )
            for source in sources:
                assert (store / "job" / "out" / source.name).read_bytes() == source.read_bytes()
            assert leftovers(store) == []


def test_a_failed_copy_leaves_no_temporary_file(tmp_path: Path) -> None:
    source = tmp_path / "a.txt"
    source.write_text("a")
    target = tmp_path / "store" / "a.txt"
    target.mkdir(parents=True)  # the rename onto a directory fails after the bytes are copied
    with pytest.raises(OSError):
        copy_file_atomic(source, target)
    assert leftovers(tmp_path) == []
    assert target.is_dir()
