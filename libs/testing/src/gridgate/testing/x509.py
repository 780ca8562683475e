"""Checking proxy chains the way grid middleware does: ``openssl verify -allow_proxy_certs``."""

from __future__ import annotations

import subprocess
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding


def split_chain(pem: bytes) -> list[x509.Certificate]:
    """The certificates of a PEM chain, proxy first (the private key is skipped)."""
    return x509.load_pem_x509_certificates(pem)


def openssl_verify(workdir: Path, ca: Path, pem: bytes) -> subprocess.CompletedProcess[str]:
    """Verify a proxy chain against a CA file; the chain's issuers are the untrusted set."""
    certs = split_chain(pem)
    (workdir / "proxy.pem").write_bytes(pem)
    untrusted = workdir / "untrusted.pem"
    untrusted.write_bytes(b"".join(c.public_bytes(Encoding.PEM) for c in certs[1:]))
    return subprocess.run(
        [
            "openssl",
            "verify",
            "-allow_proxy_certs",
            "-CAfile",
            str(ca),
            "-untrusted",
            str(untrusted),
            str(workdir / "proxy.pem"),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
