"""All six services in one process on the embedded defaults (``gridgate dev``)."""

from __future__ import annotations

import asyncio
import contextlib
import secrets
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

import uvicorn
from aio_pika.abc import AbstractRobustConnection
from pydantic import SecretStr

from gridgate.auth.config import AuthSettings
from gridgate.auth.main import create_app as create_auth_app
from gridgate.auth.proxies.dev_ca import ensure_dev_ca
from gridgate.broker import QueueWorker, connect
from gridgate.dirac.connection import DiracConnection
from gridgate.diracx.connection import DiracXConnection
from gridgate.gateway.config import GatewaySettings
from gridgate.gateway.main import GRACEFUL_STOP_S, GatewayServer, begin_shutdown
from gridgate.gateway.main import create_app as create_gateway_app
from gridgate.iam.dev_issuer import DevIssuer
from gridgate.monitor.config import MonitorSettings
from gridgate.monitor.main import MonitorWorker
from gridgate.results.config import ResultsSettings
from gridgate.results.main import build_worker as build_results_worker
from gridgate.submitter.config import SubmitterSettings
from gridgate.submitter.main import build_worker as build_submitter_worker

if TYPE_CHECKING:
    from gridgate.notifier.factory import NotifierContext

AUDIENCE = "gridgate"


def dev_issuer_url(host: str, port: int) -> str:
    return f"http://{host}:{port}/auth/dev-issuer"


def dev_issuer_key_file(data_dir: Path) -> Path:
    return data_dir / "dev-issuer-key.json"


def dev_issuer(data_dir: Path, host: str, port: int) -> DevIssuer:
    return DevIssuer(dev_issuer_url(host, port), dev_issuer_key_file(data_dir))


@dataclass
class DevStack:
    """Gateway (with the auth service mounted at /auth), submitter, monitor and results."""

    data_dir: Path
    host: str = "127.0.0.1"
    port: int = 8000
    broker_url: str = "amqp://guest:guest@127.0.0.1:5672/"
    database_url: str | None = None
    gateway_options: dict[str, Any] = field(default_factory=dict)
    """Extra gateway settings (a facility catalogue, credential timings) for tests."""
    submitter_options: dict[str, Any] = field(default_factory=dict)
    """Extra submitter settings: the image registry and engine (docs/containers.md)."""
    results_options: dict[str, Any] = field(default_factory=dict)
    """Extra results settings: the results store and Rucio (docs/data-lake.md)."""
    oidc_issuer: str | None = None
    """Trust this issuer instead of the development issuer (e.g. a real IAM)."""
    auth_options: dict[str, Any] = field(default_factory=dict)
    """Extra auth settings: the proxy provider (docs/auth.md)."""
    dirac_facilities: dict[str, DiracConnection] = field(default_factory=dict)
    """DIRAC facilities the workers serve, by catalogue id (e.g. the DIRAC testbed)."""
    notifier_options: dict[str, Any] = field(default_factory=dict)
    """Extra notifier settings (an outbound allow-list, fast retries for tests)."""
    notifier: NotifierContext | None = None
    diracx_facilities: dict[str, DiracXConnection] = field(default_factory=dict)
    """DiracX facilities the workers serve (their tokens come from auth's diracx-exchange)."""
    connection: AbstractRobustConnection | None = None
    server: uvicorn.Server | None = None
    workers: list[Any] = field(default_factory=list)
    internal_token: str = field(default="", repr=False)
    _serve_task: asyncio.Task[None] | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    async def start(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.connection = await connect(self.broker_url)
        issuer = dev_issuer(self.data_dir, self.host, self.port)
        internal_token = self.internal_token = secrets.token_urlsafe(32)
        facility_root = self.data_dir / "local-facility"
        results_dir = self.data_dir / "results"
        gateway_settings = GatewaySettings(
            database_url=SecretStr(
                self.database_url or f"sqlite+aiosqlite:///{self.data_dir / 'gridgate.db'}"
            ),
            oidc_issuer=self.oidc_issuer or issuer.issuer,
            oidc_audience=AUDIENCE,
            results_dir=results_dir,
            internal_token=SecretStr(internal_token),
            auth_url=f"{self.url}/auth",
            **{
                # A job's notification URL is held to the notifier's own outbound rules.
                "notification_allow_http": self.notifier_options.get("allow_http", False),
                "notification_allowed_networks": self.notifier_options.get("allowed_networks", []),
                **self.gateway_options,
            },
        )
        ca_cert, ca_key = ensure_dev_ca(self.data_dir)
        auth_settings = AuthSettings(
            oidc_issuer=gateway_settings.oidc_issuer,
            ca_cert_file=ca_cert,
            ca_key_file=ca_key,
            internal_token=SecretStr(internal_token),
            gateway_url=self.url,
            **self.auth_options,
        )
        app = create_gateway_app(gateway_settings, connection=self.connection)
        app.mount("/auth", create_auth_app(auth_settings, dev_issuer=issuer))
        # The notifier shares the database (its own tables) and serves /api/subscriptions
        # from the gateway's app; the gateway's token check covers both. Imported here, once
        # the broker answered: `gridgate dev` without RabbitMQ must fail fast.
        from gridgate.notifier.config import NotifierSettings
        from gridgate.notifier.factory import NotifierContext
        from gridgate.notifier.handlers import subscriptions as notifier_subscriptions
        from gridgate.notifier.sealing import dev_secret_key

        self.notifier = NotifierContext(
            NotifierSettings(
                database_url=gateway_settings.database_url,
                secret_keys=SecretStr(dev_secret_key(self.data_dir)),
                oidc_issuer=gateway_settings.oidc_issuer,
                oidc_audience=AUDIENCE,
                **self.notifier_options,
            ),
            self.connection,
        )
        await self.notifier.start()
        app.state.notifier = self.notifier
        app.include_router(notifier_subscriptions.router)
        self.server = GatewayServer(
            uvicorn.Config(
                app,
                host=self.host,
                port=self.port,
                log_config=None,
                access_log=False,
                lifespan="on",
                timeout_graceful_shutdown=GRACEFUL_STOP_S,
                ws="none",  # no WebSocket route: do not import websockets (ADR 0019)
            ),
            partial(begin_shutdown, app),
        )
        self._serve_task = asyncio.create_task(self.server.serve(), name="gateway-http")
        while not self.server.started:
            if self._serve_task.done():
                self._serve_task.result()
                raise RuntimeError(f"the API server did not start on {self.url}")
            await asyncio.sleep(0.05)
        # Workers ask the auth service for job owners' proxies (DIRAC facilities only).
        owner_access: dict[str, Any] = {
            "dirac_facilities": self.dirac_facilities,
            "diracx_facilities": self.diracx_facilities,
            "auth_url": f"{self.url}/auth",
            "internal_token": SecretStr(internal_token),
        }
        submitter: QueueWorker[Any] = build_submitter_worker(
            SubmitterSettings(
                local_facility_root=facility_root,
                callback_url=self.url,
                **owner_access,
                **self.submitter_options,
            ),
            self.connection,
        )
        results: QueueWorker[Any] = build_results_worker(
            ResultsSettings(
                results_dir=results_dir,
                local_facility_root=facility_root,
                **owner_access,
                **self.results_options,
            ),
            self.connection,
        )
        monitor = MonitorWorker(
            MonitorSettings(
                gateway_url=self.url,
                internal_token=SecretStr(internal_token),
                local_facility_root=facility_root,
                dirac_facilities=self.dirac_facilities,
                diracx_facilities=self.diracx_facilities,
                auth_url=f"{self.url}/auth",
            ),
            self.connection,
        )
        for worker in (submitter, results, monitor):
            await worker.start()
            self.workers.append(worker)

    async def stop(self) -> None:
        for worker in reversed(self.workers):
            with contextlib.suppress(Exception):
                await worker.stop()
        self.workers.clear()
        if self.server is not None:
            self.server.should_exit = True
        if self._serve_task is not None:
            with contextlib.suppress(Exception):
                await self._serve_task
        if self.notifier is not None:
            with contextlib.suppress(Exception):
                await self.notifier.stop()
        if self.connection is not None:
            await self.connection.close()


def default_data_dir() -> Path:
    return Path(".gridgate")


__all__ = ["AUDIENCE", "DevStack", "default_data_dir", "dev_issuer"]
