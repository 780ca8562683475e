"""The gateway as a real process, and a development issuer it can fetch keys from.

Start-up, SIGTERM and outage behaviour belong to the process (uvicorn, signals, the pool),
so tests of them run ``gridgate-gateway`` itself, configured only by environment.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx

from gridgate.iam import DevIssuer
from gridgate.testing.services import free_port

BIN = Path(sys.executable).parent
AUDIENCE = "gridgate"


@contextmanager
def serve_dev_issuer(key_file: Path) -> Iterator[DevIssuer]:
    """Serve a :class:`DevIssuer`'s discovery document and keys on a free local port."""
    port = free_port()
    issuer = DevIssuer(f"http://127.0.0.1:{port}/dev-issuer", key_file)
    documents = {
        "/dev-issuer/.well-known/openid-configuration": issuer.discovery(),
        "/dev-issuer/jwks": issuer.jwks(),
    }

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            document = documents.get(self.path)
            body = json.dumps(document).encode()
            self.send_response(200 if document is not None else 404)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield issuer
    finally:
        server.shutdown()
        server.server_close()


class GatewayProcess:
    """``gridgate-gateway`` on a free port, its stderr in ``log``.

    Parameters
    ----------
    env
        ``GRIDGATE_GATEWAY_*`` settings, added to this process's environment.
    log
        Where the process writes its log.
    """

    def __init__(self, env: dict[str, str], log: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = log
        self.started_at = time.monotonic()
        self.process = subprocess.Popen(
            [str(BIN / "gridgate-gateway"), "--port", str(self.port)],
            env={**os.environ, **env},
            stdout=subprocess.DEVNULL,
            stderr=log.open("wb"),
        )

    def wait_ready(self, timeout_s: float = 30) -> float:
        """Wait for ``/readyz`` to answer 200; return the seconds since the process started."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"the gateway exited: {self.log.read_text()}")
            try:
                if httpx.get(f"{self.url}/readyz", timeout=2).status_code == 200:
                    return time.monotonic() - self.started_at
            except httpx.TransportError:
                pass
            time.sleep(0.05)
        raise AssertionError(f"the gateway was not ready in {timeout_s} s: {self.log.read_text()}")

    def terminate(self) -> None:
        """SIGTERM, as Kubernetes stops a pod."""
        self.process.send_signal(signal.SIGTERM)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def gateway_env(
    tmp_path: Path, broker_url: str, database_url: str, issuer: DevIssuer
) -> dict[str, str]:
    """The settings of a gateway with no other service: jobs can be created and queued."""
    return {
        "GRIDGATE_GATEWAY_BROKER_URL": broker_url,
        "GRIDGATE_GATEWAY_DATABASE_URL": database_url,
        "GRIDGATE_GATEWAY_OIDC_ISSUER": issuer.issuer,
        "GRIDGATE_GATEWAY_OIDC_AUDIENCE": AUDIENCE,
        "GRIDGATE_GATEWAY_RESULTS_DIR": str(tmp_path / "results"),
        "GRIDGATE_GATEWAY_INTERNAL_TOKEN": "s3cret-for-tests",
        "GRIDGATE_GATEWAY_AUTH_URL": f"http://127.0.0.1:{free_port()}",
    }
