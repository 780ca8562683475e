"""compose.yaml as Docker Compose v2 itself reads it (`docker compose config`)."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

compose_package = pytest.importorskip("compose", reason="the deploy dependency group is missing")
COMPOSE = Path(compose_package.__file__).parent / "docker-compose"
ROOT = Path(__file__).resolve().parents[2]
WORKERS = ("submitter", "monitor", "results")
LONG_RUNNING = ("rabbitmq", "postgres", "gateway", "auth", *WORKERS)


def config(**env: str) -> dict[str, Any]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("GRIDGATE_", "RABBITMQ_"))}
    result = subprocess.run(
        [str(COMPOSE), "-f", str(ROOT / "compose.yaml"), "config", "--format", "json"],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
        env={**clean, **env},
    )
    assert result.returncode == 0, result.stderr
    return dict(json.loads(result.stdout))


def test_compose_file_is_valid_and_starts_in_dependency_order() -> None:
    services = config()["services"]
    assert set(services) == {*LONG_RUNNING, "migrate", "auth-init"}
    for name in LONG_RUNNING:
        assert services[name]["healthcheck"]["test"], name
    needs = {name: service.get("depends_on", {}) for name, service in services.items()}
    assert needs["migrate"]["postgres"]["condition"] == "service_healthy"
    assert needs["gateway"]["migrate"]["condition"] == "service_completed_successfully"
    assert needs["gateway"]["rabbitmq"]["condition"] == "service_healthy"
    assert needs["auth"]["auth-init"]["condition"] == "service_completed_successfully"
    for worker in WORKERS:
        assert needs[worker]["rabbitmq"]["condition"] == "service_healthy", worker
    assert needs["monitor"]["gateway"]["condition"] == "service_healthy"
    assert services["migrate"]["command"] == ["migrate"]
    assert services["gateway"]["environment"]["GRIDGATE_GATEWAY_RUN_MIGRATIONS"] == "false"


def test_services_share_what_the_local_facility_needs() -> None:
    services = config(GRIDGATE_INTERNAL_TOKEN="t0ken")["services"]

    def mounts(name: str) -> dict[str, bool]:
        return {v["source"]: v.get("read_only", False) for v in services[name].get("volumes", [])}

    for worker in WORKERS:
        assert mounts(worker)["facility"] is False, worker
    assert mounts("results")["results"] is False
    assert mounts("gateway")["results"] is True
    assert services["monitor"]["pid"] == "service:submitter"
    assert services["auth"]["network_mode"] == "service:gateway"
    tokens = {
        services["gateway"]["environment"]["GRIDGATE_GATEWAY_INTERNAL_TOKEN"],
        services["monitor"]["environment"]["GRIDGATE_MONITOR_INTERNAL_TOKEN"],
        services["auth"]["environment"]["GRIDGATE_AUTH_INTERNAL_TOKEN"],
    }
    assert tokens == {"t0ken"}
    issuer = services["gateway"]["environment"]["GRIDGATE_GATEWAY_OIDC_ISSUER"]
    assert issuer == services["auth"]["environment"]["GRIDGATE_AUTH_DEV_ISSUER_URL"]
    for name in ("gateway", "auth", *WORKERS):
        assert services[name]["read_only"] is True, name
        assert services[name]["cap_drop"] == ["ALL"], name


def test_images_and_base_images_come_from_variables() -> None:
    services = config(
        GRIDGATE_IMAGE_PREFIX="registry.example.org/gg-",
        GRIDGATE_IMAGE_TAG="1.2.3",
        GRIDGATE_BASE_IMAGE="127.0.0.1:5000/gridgate/python:3.11",
        RABBITMQ_IMAGE="mirror.example.org/rabbitmq:3.13-management",
        POSTGRES_IMAGE="mirror.example.org/postgres:16",
    )["services"]
    for name in ("gateway", "auth", *WORKERS):
        assert services[name]["image"] == f"registry.example.org/gg-{name}:1.2.3"
        args = services[name]["build"]["args"]
        assert args["SERVICE"] == name
        assert args["BASE_IMAGE"] == args["BUILD_IMAGE"] == "127.0.0.1:5000/gridgate/python:3.11"
    assert services["migrate"]["image"] == "registry.example.org/gg-gateway:1.2.3"
    assert services["rabbitmq"]["image"] == "mirror.example.org/rabbitmq:3.13-management"
    assert services["postgres"]["image"] == "mirror.example.org/postgres:16"
