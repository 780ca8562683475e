"""compose.yaml as Docker Compose v2 itself reads it (`docker compose config`)."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

from .service_settings import build_settings

compose_package = pytest.importorskip("compose", reason="the deploy dependency group is missing")
COMPOSE = Path(compose_package.__file__).parent / "docker-compose"
ROOT = Path(__file__).resolve().parents[2]
WORKERS = ("submitter", "monitor", "results")
LONG_RUNNING = ("rabbitmq", "postgres", "gateway", "auth", "notifier", *WORKERS)


def config(*overrides: Path, **env: str) -> dict[str, Any]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("GRIDGATE_", "RABBITMQ_"))}
    files = [arg for path in (ROOT / "compose.yaml", *overrides) for arg in ("-f", str(path))]
    result = subprocess.run(
        [str(COMPOSE), *files, "config", "--format", "json"],
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
        services[name]["environment"][f"GRIDGATE_{name.upper()}_INTERNAL_TOKEN"]
        for name in ("gateway", "auth", *WORKERS)
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
    for name in ("gateway", "auth", "notifier", *WORKERS):
        assert services[name]["image"] == f"registry.example.org/gg-{name}:1.2.3"
        args = services[name]["build"]["args"]
        assert args["SERVICE"] == name
        assert args["BASE_IMAGE"] == args["BUILD_IMAGE"] == "127.0.0.1:5000/gridgate/python:3.11"
    assert services["migrate"]["image"] == "registry.example.org/gg-gateway:1.2.3"
    assert services["rabbitmq"]["image"] == "mirror.example.org/rabbitmq:3.13-management"
    assert services["postgres"]["image"] == "mirror.example.org/postgres:16"


def test_every_variable_is_a_setting_the_service_accepts(monkeypatch: pytest.MonkeyPatch) -> None:
    services = config()["services"]
    for name in ("gateway", "auth", "notifier", *WORKERS):
        build_settings(name, services[name]["environment"], monkeypatch)


def test_the_notifier_shares_the_database_and_the_gateways_network() -> None:
    services = config(GRIDGATE_NOTIFIER_SECRET_KEYS="k3y")["services"]
    notifier = services["notifier"]
    environment = notifier["environment"]
    assert environment["GRIDGATE_NOTIFIER_SECRET_KEYS"] == "k3y"
    assert (
        environment["GRIDGATE_NOTIFIER_DATABASE_URL"]
        == services["gateway"]["environment"]["GRIDGATE_GATEWAY_DATABASE_URL"]
    )
    assert notifier["network_mode"] == "service:gateway"
    assert notifier["read_only"] is True and notifier["cap_drop"] == ["ALL"]
    assert notifier["depends_on"]["migrate"]["condition"] == "service_completed_successfully"


def test_workers_reach_auth_for_proxies_and_dirac_jobs_call_the_gateway_back() -> None:
    services = config()["services"]
    # auth listens on 8001 in the gateway's network namespace
    assert services["auth"]["network_mode"] == "service:gateway"
    assert services["auth"]["command"][-2:] == ["--port", "8001"]
    for worker in ("submitter", "results"):
        environment = services[worker]["environment"]
        assert environment[f"GRIDGATE_{worker.upper()}_AUTH_URL"] == "http://gateway:8001"
    for worker in WORKERS:
        facilities = services[worker]["environment"][f"GRIDGATE_{worker.upper()}_DIRAC_FACILITIES"]
        assert json.loads(facilities) == {}, worker
    # the callback goes to the gateway's published port, or where GRIDGATE_CALLBACK_URL says
    assert services["gateway"]["ports"][0]["published"] == "8000"
    callback = "GRIDGATE_SUBMITTER_CALLBACK_URL"
    assert services["submitter"]["environment"][callback] == "http://127.0.0.1:8000"
    moved = config(GRIDGATE_HTTP_PORT="9000")["services"]["submitter"]["environment"]
    assert moved[callback] == "http://127.0.0.1:9000"
    off = config(GRIDGATE_CALLBACK_URL="")["services"]["submitter"]["environment"]
    assert off[callback] == ""


def test_the_dirac_override_in_the_header_adds_a_facility_to_the_workers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    lines = (ROOT / "compose.yaml").read_text().splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("#   x-dirac:"))
    block = []
    for line in lines[start:]:
        if not line.startswith("#   "):
            break
        block.append(line.removeprefix("#   "))
    override = tmp_path / "compose.override.yaml"
    override.write_text("\n".join(block) + "\n")
    services = config(override)["services"]
    for worker in WORKERS:
        environment = services[worker]["environment"]
        settings = build_settings(worker, environment, monkeypatch)
        facilities = settings.dirac_facilities
        assert {str(f.python) for f in facilities.values()} == {"/opt/dirac/bin/python"}
        mounts = {v["target"]: v.get("read_only", False) for v in services[worker]["volumes"]}
        assert mounts["/opt/dirac"] is True, worker
        assert mounts["/var/lib/gridgate/facility"] is False, worker
