"""Outputs as Rucio's own client fetches them: register N outputs, then ``rucio download``.

Usage: ``uv run python bench/rucio_official_download.py [--files 50] [--kib 64]``

Needs the Rucio and WebDAV storage testbeds (``make testbed-rucio``). Writes ``--files`` files of
``--kib`` KiB, registers them as one job's outputs in ``user.alice`` on WEBDAV-LOCAL with the
results service's registrar (the production path: PUT at Rucio's PFN, replicas with Adler-32
and MD5, dataset, metadata, rule), then downloads the dataset with the official client
(``rucio download``, the testbed's client venv, as alice) and checks every file's MD5. Prints
the seconds of each. Speed is reported here, never asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import os
import secrets
import subprocess
import tempfile
import time
from pathlib import Path

from gridgate.contracts import CollectResults
from gridgate.datalake import RucioClient, StorageClient
from gridgate.results.checksums import digests
from gridgate.results.registrar import RucioRegistrar
from gridgate.results.stores import StagedFile
from gridgate.testing.rucio import read_env_file, testbed_dir


async def register(env: dict[str, str], files: list[StagedFile], job_id: str) -> str:
    storage_env = read_env_file(testbed_dir() / "storage" / "env.sh")
    async with (
        RucioClient(
            env["GRIDGATE_RUCIO_URL"],
            env["GRIDGATE_RUCIO_ACCOUNT"],
            env["GRIDGATE_RUCIO_USERNAME"],
            env["GRIDGATE_RUCIO_PASSWORD"],
        ) as rucio,
        StorageClient(ca_file=storage_env["GRIDGATE_STORAGE_CA_FILE"]) as storage,
    ):
        registrar = RucioRegistrar(rucio, storage, env["GRIDGATE_RUCIO_RSE_WEBDAV"])
        command = CollectResults(
            job_id=job_id,
            owner="alice",
            vo="cta",
            facility="local",
            task_count=len(files),
            workflow_id="bench",
            workflow_version="1.0.0",
            data_scope="user.alice",
            data_account="alice",
        )
        return str((await registrar.register(command, files)).dataset)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--files", type=int, default=50)
    parser.add_argument("--kib", type=int, default=64)
    args = parser.parse_args()
    env = read_env_file(testbed_dir() / "rucio" / "env.sh")
    job_id = secrets.token_hex(8)
    with tempfile.TemporaryDirectory() as scratch:
        work = Path(scratch)
        files = []
        for index in range(args.files):
            path = work / f"out{index:04d}.dat"
            path.write_bytes(os.urandom(args.kib * 1024))
            found = digests(path)
            name = f"task-{index:04d}/{path.name}"
            files.append(
                StagedFile(
                    name,
                    path,
                    index,
                    found.size,
                    found.sha256,
                    found.adler32,
                    found.md5,
                    "application/octet-stream",
                    is_log=False,
                )
            )
        started = time.perf_counter()
        dataset = asyncio.run(register(env, files, job_id))
        registered = time.perf_counter() - started
        target = work / "dl"
        client_env = {
            **os.environ,
            "RUCIO_CONFIG": f"{env['GRIDGATE_RUCIO_CONFIG_DIR']}/alice.cfg",
            "X509_USER_PROXY": env["GRIDGATE_RUCIO_X509_USER_PROXY"],
        }
        started = time.perf_counter()
        subprocess.run(
            [f"{env['GRIDGATE_RUCIO_VENV']}/bin/rucio", "download", "--dir", str(target), dataset],
            env=client_env,
            check=True,
            capture_output=True,
        )
        downloaded = time.perf_counter() - started
        got = {p.name: p for p in target.rglob("*") if p.is_file()}
        wanted = {f"{dataset.split(':')[1]}.{f.name.replace('/', '.')}": f.md5 for f in files}
        intact = all(
            hashlib.md5(got[n].read_bytes(), usedforsecurity=False).hexdigest() == md5
            for n, md5 in wanted.items()
        )
        print(f"{args.files} outputs of {args.kib} KiB, dataset {dataset}:")
        print(f"  registered by gridgate in {registered:.2f} s")
        print(f"  rucio download (official client) in {downloaded:.2f} s; all MD5 equal: {intact}")


if __name__ == "__main__":
    main()
