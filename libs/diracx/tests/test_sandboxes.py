"""Sandbox archives: what we pack is stable, what we unpack stays where it belongs."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

from gridgate.diracx.facility import pack_sandbox, unpack_sandbox


def test_the_same_files_pack_to_the_same_bytes() -> None:
    files = {"b.txt": b"2", "a.txt": b"1"}
    assert pack_sandbox(files) == pack_sandbox(dict(reversed(files.items())))


def test_output_sandbox_extraction_keeps_to_its_directory(tmp_path: Path) -> None:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:bz2") as archive:
        for name in ("../escape.txt", "/abs.txt", "ok/inner.txt"):
            info = tarfile.TarInfo(name)
            info.size = 1
            archive.addfile(info, io.BytesIO(b"x"))
        link = tarfile.TarInfo("link")
        link.type = tarfile.SYMTYPE
        link.linkname = "/etc/passwd"
        archive.addfile(link)

    assert unpack_sandbox(buffer.getvalue(), tmp_path / "t") == ["ok/inner.txt"]
    assert not (tmp_path / "escape.txt").exists()
