"""Smoke test of the Rucio testbed with the official client (run with the testbed venv's python).

Needs ``env.sh`` of both testbeds sourced (``smoke.sh`` does it). Checks, printing PASS/FAIL:

1. gridgate uploads one file to LOCAL_DISK and one to WEBDAV-LOCAL in scope ``user.alice``
   (UploadClient: DID + replica + rule + the bytes); alice may not (generic policy);
2. alice creates a dataset, attaches both, sets fixed-column and free-form (JSON plugin) metadata;
3. the gridgate service account does what gridgate's results service will do: PUT a file to the
   WebDAV storage over plain HTTP at the PFN the server computes (``lfns2pfns``), register it
   (``add_replicas`` = ``POST /replicas``), add a rule with a lifetime owned by alice, attach it
   to alice's dataset;
4. list replicas of the dataset with adler32; download all three (DownloadClient) and compare;
5. alice adds a rule with a lifetime; bob may read alice's DIDs but not add one to user.alice.

Exit code: number of failed checks.
"""

from __future__ import annotations

import logging
import os
import sys
import tempfile
import time
import urllib.error
import urllib.request
import warnings
import zlib
from pathlib import Path

from rucio.client import Client
from rucio.client.downloadclient import DownloadClient
from rucio.client.uploadclient import UploadClient
from rucio.common.exception import AccessDenied
from urllib3.exceptions import InsecureRequestWarning

# rucio.rse.protocols.webdav always sends verify=False; one warning per request is noise here
warnings.filterwarnings("ignore", category=InsecureRequestWarning)

FAILS: list[str] = []
POSIX_RSE = os.environ.get("GRIDGATE_RUCIO_RSE_POSIX", "LOCAL_DISK")
WEBDAV_RSE = os.environ.get("GRIDGATE_RUCIO_RSE_WEBDAV", "WEBDAV-LOCAL")
SCOPE = "user.alice"


def check(label: str, ok: object, detail: object = "") -> None:
    print(
        ("PASS " if ok else "FAIL ") + label + (f"  [{detail}]" if detail != "" else ""), flush=True
    )
    if not ok:
        FAILS.append(label)


def adler32_hex(path: Path) -> str:
    value = 1
    with path.open("rb") as stream:
        for chunk in iter(lambda: stream.read(1 << 20), b""):
            value = zlib.adler32(chunk, value)
    return f"{value & 0xFFFFFFFF:08x}"


def client_for(account: str) -> Client:
    """A Client logged in with ``account``'s userpass identity."""
    # the client reads RUCIO_CONFIG once per process: pass the account's settings explicitly
    password = {"alice": "GRIDGATE_RUCIO_ALICE_PASSWORD", "bob": "GRIDGATE_RUCIO_BOB_PASSWORD"}
    creds = {
        "username": account,
        "password": os.environ[password.get(account, "GRIDGATE_RUCIO_PASSWORD")],
    }
    return Client(
        rucio_host=os.environ["GRIDGATE_RUCIO_URL"],
        auth_host=os.environ["GRIDGATE_RUCIO_URL"],
        account=account,
        auth_type="userpass",
        creds=creds,
    )


def webdav_request(method: str, url: str, data: bytes | None = None) -> int:
    """One plain-HTTP WebDAV request to the storage testbed; returns the status code."""
    request = urllib.request.Request(url, data=data, method=method)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


def main() -> int:
    # UploadClient warns "Scope user.alice not found for the account gridgate" for every upload
    # into a scope gridgate does not own (admin may); keep the output to PASS/FAIL lines
    logging.basicConfig(level=logging.ERROR)
    run = time.strftime("%Y%m%d%H%M%S") + f"_{os.getpid()}"
    work = Path(tempfile.mkdtemp(prefix=f"smoke_{run}_", dir=os.environ.get("GRIDGATE_RUCIO_WORK")))
    (work / "dl").mkdir()
    # Rucio's webdav protocol needs some X.509 proxy file to connect at all (see env.sh)
    os.environ.setdefault("X509_USER_PROXY", os.environ["GRIDGATE_RUCIO_X509_USER_PROXY"])

    alice = client_for("alice")
    gridgate = client_for("gridgate")
    bob = client_for("bob")
    check(
        "userpass login as alice, gridgate, bob",
        [c.whoami()["account"] for c in (alice, gridgate, bob)] == ["alice", "gridgate", "bob"],
    )
    check(
        "server version",
        alice.ping().get("version") == os.environ["GRIDGATE_RUCIO_VERSION"],
        alice.ping(),
    )

    # 1. uploads into user.alice, one per RSE. The generic permission policy lets a plain user add
    #    replicas only on RSEs named *SCRATCHDISK, *USERDISK, *LOCALGROUPDISK or *MOCK, so alice
    #    may not upload here; gridgate (admin) uploads on her behalf.
    probe = work / f"smoke_{run}_alice.dat"
    probe.write_bytes(b"alice")
    try:
        UploadClient(alice).upload(
            [{"path": str(probe), "rse": POSIX_RSE, "did_scope": SCOPE, "did_name": probe.name}]
        )
        denied = False
    except AccessDenied:
        denied = True
    check(f"alice may not upload to {POSIX_RSE} (generic policy)", denied)
    files = {}
    for rse in (POSIX_RSE, WEBDAV_RSE):
        name = f"smoke_{run}_{rse.lower()}.dat"
        path = work / name
        path.write_bytes(os.urandom(256 * 1024 + 7))
        files[name] = (path, rse)
        started = time.monotonic()
        rc = UploadClient(gridgate).upload(
            [{"path": str(path), "rse": rse, "did_scope": SCOPE, "did_name": name}]
        )
        meta = alice.get_metadata(SCOPE, name)
        check(
            f"gridgate uploads to {rse} in {SCOPE}",
            rc == 0 and meta["adler32"] == adler32_hex(path),
            f"{time.monotonic() - started:.2f} s, adler32 {meta['adler32']}",
        )

    # 2. dataset, attach, metadata
    dataset = f"smoke_{run}_ds"
    alice.add_dataset(SCOPE, dataset, meta={"datatype": "RAW"})
    alice.attach_dids(SCOPE, dataset, [{"scope": SCOPE, "name": n} for n in files])
    alice.set_metadata(SCOPE, dataset, "campaign", "smoke")  # fixed DID column
    # free-form keys go to the JSON plugin (PostgreSQL). list_dids() filters cast any value that
    # int()/float() accept (even "2026_01") to a number, so keep string ids non-numeric
    job_id = f"job-{run}"
    alice.set_metadata(SCOPE, dataset, "gridgate_job_id", job_id)
    alice.set_metadata_bulk(SCOPE, dataset, {"gridgate_workflow": "hello-world"})
    column = alice.get_metadata(SCOPE, dataset)
    free = alice.get_metadata(SCOPE, dataset, plugin="JSON")
    check(
        "dataset metadata (DID column + JSON plugin)",
        column.get("campaign") == "smoke"
        and column.get("datatype") == "RAW"
        and free.get("gridgate_job_id") == job_id
        and free.get("gridgate_workflow") == "hello-world",
        {"campaign": column.get("campaign"), **free},
    )
    found = list(alice.list_dids(SCOPE, {"gridgate_job_id": job_id}, did_type="dataset"))
    check("find dataset by JSON metadata", found == [dataset], found)

    # 3. gridgate: bytes over plain HTTP WebDAV, then registration (the results-service path)
    name = f"smoke_{run}_staged.dat"
    path = work / name
    path.write_bytes(os.urandom(64 * 1024))
    files[name] = (path, WEBDAV_RSE)
    did = f"{SCOPE}:{name}"
    pfn = gridgate.lfns2pfns(WEBDAV_RSE, [did], operation="write", scheme="https")[did]
    http_base = os.environ["GRIDGATE_STORAGE_URL"].rstrip("/")
    https_base = os.environ["GRIDGATE_STORAGE_HTTPS_URL"].rstrip("/")
    url = http_base + pfn[len(https_base) :]
    parts = url[len(http_base) :].strip("/").split("/")
    for depth in range(1, len(parts)):
        webdav_request("MKCOL", f"{http_base}/{'/'.join(parts[:depth])}")
    status = webdav_request("PUT", url, path.read_bytes())
    check("gridgate PUTs to WebDAV at the server-computed PFN", status == 201, f"{status} {url}")
    gridgate.add_replicas(
        WEBDAV_RSE,
        [
            {
                "scope": SCOPE,
                "name": name,
                "bytes": path.stat().st_size,
                "adler32": adler32_hex(path),
            }
        ],
    )
    rule_ids = gridgate.add_replication_rule(
        [{"scope": SCOPE, "name": name}],
        copies=1,
        rse_expression=WEBDAV_RSE,
        account="alice",
        lifetime=7 * 86400,
    )
    rule = gridgate.get_replication_rule(rule_ids[0])
    check(
        "gridgate registers the replica and a rule owned by alice",
        rule["state"] == "OK" and rule["account"] == "alice" and rule["expires_at"] is not None,
        f"{rule['state']} account={rule['account']} expires_at={rule['expires_at']}",
    )
    gridgate.attach_dids(SCOPE, dataset, [{"scope": SCOPE, "name": name}])
    content = sorted(f["name"] for f in alice.list_files(SCOPE, dataset))
    check("dataset lists 3 files", content == sorted(files), content)

    # 4. replicas with adler32, then download and compare
    replicas = list(
        alice.list_replicas([{"scope": SCOPE, "name": dataset}], schemes=["file", "https"])
    )
    by_name = {r["name"]: r for r in replicas}
    check(
        "list_replicas: every file AVAILABLE on its RSE with the right adler32",
        all(
            by_name.get(n, {}).get("adler32") == adler32_hex(p)
            and by_name[n]["states"].get(rse) == "AVAILABLE"
            for n, (p, rse) in files.items()
        ),
        {n: (r["adler32"], r["states"]) for n, r in by_name.items()},
    )
    items = [
        {"did": f"{SCOPE}:{n}", "base_dir": str(work / "dl"), "rse": rse}
        for n, (_, rse) in files.items()
    ]
    started = time.monotonic()
    results = DownloadClient(alice).download_dids(items)
    states = sorted(r.get("clientState") for r in results)
    same = all(
        adler32_hex(work / "dl" / SCOPE / n) == adler32_hex(p) for n, (p, _) in files.items()
    )
    check(
        "download all 3 (posix + WebDAV), adler32 equal",
        states == ["DONE"] * 3 and same,
        f"{states} {time.monotonic() - started:.2f} s",
    )

    # 5. a rule with a lifetime, and who may do what
    lifetime = 3600
    rule_ids = alice.add_replication_rule(
        [{"scope": SCOPE, "name": n} for n, (_, r) in files.items() if r == POSIX_RSE],
        copies=1,
        rse_expression=POSIX_RSE,
        lifetime=lifetime,
    )
    rule = alice.get_replication_rule(rule_ids[0])
    check(
        "alice adds a rule with a lifetime",
        rule["state"] == "OK" and rule["expires_at"] is not None,
        f"{rule['state']} expires_at={rule['expires_at']}",
    )
    check(
        "bob can read alice's dataset (Rucio has no read ACL)",
        bob.get_did(SCOPE, dataset)["name"] == dataset,
    )
    try:
        bob.add_dataset(SCOPE, f"smoke_{run}_bob")
        denied = False
    except AccessDenied:
        denied = True
    check("bob may not add a DID in user.alice", denied)

    print(f"{len(FAILS)} failed: {FAILS}" if FAILS else "ALL CHECKS PASSED", flush=True)
    return len(FAILS)


if __name__ == "__main__":
    sys.exit(main())
