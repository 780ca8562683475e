"""x509 proxies for the DIRAC testbed, in memory (imported by smoke.py, api_checks.py, bootstrap).

What ``dirac-proxy-init -g GROUP`` does, without files: a proxy carrying the DIRAC group for
calls, and a group-less proxy delegated to the ProxyManager, from which the JobAgent later
takes the payload proxy of each job's owner. Import after ``Script.parseCommandLine()``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from DIRAC.Core.Base.Client import Client
from DIRAC.Core.Security.X509Chain import X509Chain

DAY_S = 24 * 3600


def ok(result: dict[str, Any], what: str) -> Any:
    """The value of a DIRAC S_OK, or RuntimeError with the S_ERROR message."""
    if not result["OK"]:
        raise RuntimeError(f"{what}: {result['Message']}")
    return result.get("Value")


def load_credentials(cert: str | Path, key: str | Path) -> X509Chain:
    """A user certificate and its (unencrypted) key as one chain."""
    chain = X509Chain()
    ok(chain.loadChainFromFile(str(cert)), f"load {cert}")
    ok(chain.loadKeyFromFile(str(key)), f"load {key}")
    return chain


def group_proxy_pem(chain: X509Chain, group: str, lifetime_s: int = DAY_S) -> str:
    """A proxy PEM (certificates + key) with the DIRAC group extension."""
    return str(ok(chain.generateProxyToString(lifetime_s, diracGroup=group), "generate proxy"))


def upload_proxy(chain: X509Chain, proxy_pem: str, lifetime_s: int = 7 * DAY_S) -> None:
    """Delegate a group-less proxy of ``chain`` to the ProxyManager, authenticated by the
    in-memory ``proxy_pem`` (ProxyManagerClient.uploadProxy would use the proxy file).
    ``useCertificates=False``: the proxy, even where the process has a host identity."""
    rpc = Client(
        url="Framework/ProxyManager", useCertificates=False, proxyString=proxy_pem, timeout=120
    )
    request = ok(rpc.requestDelegationUpload(), "requestDelegationUpload")
    lifetime_s = min(lifetime_s, int(ok(chain.getRemainingSecs(), "remaining")) - 60)
    delegated = ok(
        chain.generateChainFromRequestString(request["request"], lifetime=lifetime_s),
        "delegate",
    )
    ok(rpc.completeDelegationUpload(request["id"], delegated), "completeDelegationUpload")


def write_proxy(path: Path, pem: str) -> None:
    """A proxy file as DIRAC and grid tools expect it: owner-only."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(pem)
    path.chmod(0o600)
