"""Provision the Rucio testbed through its REST API as root (idempotent).

Run by ``up.sh`` with the testbed venv's python and ``RUCIO_CONFIG`` = the root client config:

- service account ``gridgate`` (admin attribute: may add DIDs in any scope, rules for other
  accounts, replicas), user accounts ``alice`` and ``bob``; one userpass identity each;
- scopes ``user.alice`` (alice), ``user.bob`` (bob), ``cta`` (gridgate);
- RSE ``LOCAL_DISK`` (posix, ``file://`` under ``--posix-dir``) and RSE ``WEBDAV-LOCAL``
  (``rucio.rse.protocols.webdav.Default`` on the storage testbed's ``https://`` URL);
- unlimited local account limits for gridgate, alice and bob on both RSEs (rules need quota);
- the meta-convention value ``datatype=RAW`` (dataset ``datatype`` is validated against it).
"""

from __future__ import annotations

import argparse
import os
import sys
from urllib.parse import urlsplit

from rucio.client import Client
from rucio.common.exception import Duplicate, RSEProtocolNotSupported, RSEProtocolPriorityError

ACCOUNTS = {"gridgate": "SERVICE", "alice": "USER", "bob": "USER"}
SCOPES = {"user.alice": "alice", "user.bob": "bob", "cta": "gridgate"}
DOMAINS = {
    "lan": {"read": 1, "write": 1, "delete": 1},
    "wan": {
        "read": 1,
        "write": 1,
        "delete": 1,
        "third_party_copy_read": 1,
        "third_party_copy_write": 1,
    },
}


def ignore_duplicate(call, *args, **kwargs) -> bool:
    """Call a Rucio add_* method; return False if the thing already existed."""
    try:
        call(*args, **kwargs)
    except Duplicate:
        return False
    return True


def ensure_identity(client: Client, account: str, password: str) -> None:
    """Add the userpass identity ``account``/``password``, mapped to ``account``."""
    known = {(i["identity"], i["type"]) for i in client.list_identities(account)}
    if (account, "USERPASS") not in known:
        client.add_identity(
            account=account,
            identity=account,
            authtype="USERPASS",
            email=f"{account}@gridgate.invalid",
            default=True,
            password=password,
        )


def ensure_protocol(client: Client, rse: str, protocol: dict) -> None:
    """Register ``protocol`` on ``rse``; replace a same-scheme protocol that differs."""
    try:
        existing_protocols = client.get_protocols(rse)
    except RSEProtocolNotSupported:  # none yet
        existing_protocols = []
    for existing in existing_protocols:
        if existing["scheme"] != protocol["scheme"]:
            continue
        same = all(existing[k] == protocol[k] for k in ("hostname", "port", "prefix", "impl"))
        if same:
            return
        client.delete_protocols(rse, protocol["scheme"])
    try:
        client.add_protocol(rse, protocol)
    except (Duplicate, RSEProtocolPriorityError):
        pass


def ensure_rse(client: Client, rse: str, protocol: dict, site: str) -> None:
    """Add a deterministic DISK RSE with one protocol and the usual attributes."""
    ignore_duplicate(client.add_rse, rse, deterministic=True, volatile=False, rse_type="DISK")
    ensure_protocol(client, rse, protocol)
    attributes = {
        "site": site,
        "type": "DISK",
        "istape": False,
        "lfn2pfn_algorithm": "hash",
        "verify_checksum": True,
    }
    current = client.list_rse_attributes(rse)
    for key, value in attributes.items():
        if current.get(key) != value:
            client.add_rse_attribute(rse, key, value)
    for account in ACCOUNTS:
        client.set_local_account_limit(account, rse, -1)  # -1: no limit


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--passwords", required=True, help="account=password,...")
    parser.add_argument("--posix-dir", required=True)
    parser.add_argument("--webdav-url", required=True, help="https://host:port/prefix/")
    args = parser.parse_args()
    passwords = dict(item.split("=", 1) for item in args.passwords.split(","))

    client = Client()
    if client.whoami()["account"] != "root":
        print("provision.py: must run as root", file=sys.stderr)
        return 1

    for account, account_type in ACCOUNTS.items():
        ignore_duplicate(client.add_account, account, account_type, f"{account}@gridgate.invalid")
        ensure_identity(client, account, passwords[account])
    # generic permission policy: an "admin" account attribute (any value) grants root-like rights
    ignore_duplicate(client.add_account_attribute, "gridgate", "admin", "True")
    for scope, owner in SCOPES.items():
        ignore_duplicate(client.add_scope, owner, scope)

    os.makedirs(args.posix_dir, exist_ok=True)
    ensure_rse(
        client,
        "LOCAL_DISK",
        {
            "scheme": "file",
            "hostname": "localhost",
            "port": 0,
            "prefix": args.posix_dir.rstrip("/") + "/",
            "impl": "rucio.rse.protocols.posix.Default",
            "domains": DOMAINS,
        },
        site="GRIDGATE_TESTBED",
    )
    webdav = urlsplit(args.webdav_url)
    ensure_rse(
        client,
        "WEBDAV-LOCAL",
        {
            # rucio.rse.protocols.webdav.Default only works with scheme https: its path2pfn()
            # prefixes every PFN that does not start with "https" a second time
            "scheme": "https",
            "hostname": webdav.hostname,
            "port": webdav.port or 443,
            "prefix": webdav.path.rstrip("/") + "/",
            "impl": "rucio.rse.protocols.webdav.Default",
            "domains": DOMAINS,
        },
        site="GRIDGATE_TESTBED",
    )

    ignore_duplicate(client.add_key, "datatype", "ALL")
    ignore_duplicate(client.add_value, "datatype", "RAW")

    print(
        "provision.py: accounts",
        sorted(ACCOUNTS),
        "scopes",
        sorted(SCOPES),
        "RSEs",
        sorted(r["rse"] for r in client.list_rses()),
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
