"""charts/gridgate rendered by Helm's own engine (helm-python-sdk binds the Helm v4 Go SDK) and
every manifest checked against the Kubernetes JSON schemas (kubernetes-validate, strict)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from gridgate.dirac.connection import DiracConnection
from gridgate.gateway.services.facilities import FacilityCatalogue

from .service_settings import build_settings

helm = pytest.importorskip("helm_python", reason="the deploy dependency group is not installed")
kubernetes_validate = pytest.importorskip("kubernetes_validate")

CHART = Path(__file__).resolve().parents[2] / "charts" / "gridgate"
KUBERNETES_VERSIONS = ["1.29.0", kubernetes_validate.latest_version()]
# Custom resources: no schema ships in a registry package, so they get the checks below.
CUSTOM = {
    ("keda.sh/v1alpha1", "ScaledObject"),
    ("keda.sh/v1alpha1", "TriggerAuthentication"),
    ("monitoring.coreos.com/v1", "ServiceMonitor"),
}
POD_KINDS = {"Deployment", "Job"}
SERVICES = ("gateway", "auth", "submitter", "monitor", "results")
WORKERS = ("submitter", "monitor", "results")
CTADIRAC = {
    "python": "/opt/dirac/bin/python",
    "root": "/opt/dirac",
    "cert_dir": "/etc/grid-security/certificates",
    "options": ["-o", "/DIRAC/Setup=CTA"],
    "bridge_processes": 3,
}
CLIENT_VOLUME = {
    "name": "dirac-client",
    "mountPath": "/opt/dirac",
    "persistentVolumeClaim": {"claimName": "dirac-client", "readOnly": True},
}


def render(values: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    with helm.Chart.load(str(CHART)) as chart:
        rendered = chart.render(values or {}, name="gg", namespace="grid")
    return [
        doc
        for name, text in sorted(rendered.items())
        if name.endswith((".yaml", ".yml"))
        for doc in yaml.safe_load_all(text)
        if doc
    ]


def production() -> dict[str, Any]:
    return dict(yaml.safe_load((CHART / "values-production.yaml").read_text()))


def proxymanager() -> dict[str, Any]:
    """Production values with users' proxies from DIRAC's ProxyManager."""
    values = production()
    client = {k: values["dirac"]["facilities"]["ctadirac"][k] for k in ("python", "root")}
    values["auth"] = {
        **values["auth"],
        "provider": "dirac-proxymanager",
        "dirac": {**client, "cert_dir": "/etc/grid-security/certificates"},
    }
    return values


def by_kind(docs: list[dict[str, Any]], kind: str) -> dict[str, dict[str, Any]]:
    return {d["metadata"]["name"]: d for d in docs if d["kind"] == kind}


def pod(docs: list[dict[str, Any]], service: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """The pod spec that runs ``service``, and its container of that name."""
    for deployment in by_kind(docs, "Deployment").values():
        spec = deployment["spec"]["template"]["spec"]
        for container in spec["containers"]:
            if container["name"] == service:
                return spec, container
    raise AssertionError(f"no container {service}")


def environment(docs: list[dict[str, Any]], service: str) -> dict[str, str]:
    """What the service's process sees: its ConfigMaps (envFrom), then its own env, which
    wins; a secret reads as ``secret:<key>``."""
    maps = by_kind(docs, "ConfigMap")
    _, container = pod(docs, service)
    seen: dict[str, str] = {}
    for source in container.get("envFrom", []):
        seen.update(maps[source["configMapRef"]["name"]]["data"])
    for variable in container.get("env", []):
        ref = variable.get("valueFrom", {}).get("secretKeyRef")
        seen[variable["name"]] = f"secret:{ref['key']}" if ref else variable["value"]
    return seen


def mounts(docs: list[dict[str, Any]], service: str) -> dict[str, dict[str, Any]]:
    """The service's mounts by path, each with the volume it mounts."""
    spec, container = pod(docs, service)
    volumes = {v["name"]: v for v in spec["volumes"]}
    return {m["mountPath"]: {**m, "volume": volumes[m["name"]]} for m in container["volumeMounts"]}


@pytest.fixture(scope="module", params=["default", "production", "dirac-proxymanager"])
def manifests(request: pytest.FixtureRequest) -> list[dict[str, Any]]:
    values = {"default": None, "production": production, "dirac-proxymanager": proxymanager}
    make = values[request.param]
    return render(make() if make else None)


def test_every_manifest_is_valid_kubernetes(manifests) -> None:
    for doc in manifests:
        if (doc["apiVersion"], doc["kind"]) in CUSTOM:
            continue
        for version in KUBERNETES_VERSIONS:
            kubernetes_validate.validate(doc, version, strict=True)


def test_every_pod_and_container_is_restricted(manifests) -> None:
    pods = [d for d in manifests if d["kind"] in POD_KINDS]
    assert pods
    for doc in pods:
        spec = doc["spec"]["template"]["spec"]
        name = doc["metadata"]["name"]
        assert spec["automountServiceAccountToken"] is False, name
        pod = spec["securityContext"]
        assert pod["runAsNonRoot"] is True, name
        assert pod["seccompProfile"] == {"type": "RuntimeDefault"}, name
        volumes = {v["name"]: v for v in spec["volumes"]}
        assert volumes["tmp"] == {"name": "tmp", "emptyDir": {}}, name
        for container in spec["containers"]:
            context = container["securityContext"]
            where = f"{name}/{container['name']}"
            assert context["allowPrivilegeEscalation"] is False, where
            assert context["readOnlyRootFilesystem"] is True, where
            assert context["capabilities"] == {"drop": ["ALL"]}, where
            assert context["runAsNonRoot"] is True, where
            assert context["seccompProfile"] == {"type": "RuntimeDefault"}, where
            mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
            assert mounts["/tmp"] == "tmp", where
            if doc["kind"] == "Deployment":
                assert container["livenessProbe"]["httpGet"]["path"] == "/healthz", where
                assert container["readinessProbe"]["httpGet"]["path"] == "/readyz", where
                assert container["resources"]["requests"], where


def test_secrets_come_only_from_the_existing_secret(manifests) -> None:
    assert not by_kind(manifests, "Secret")
    database_url_users = set()
    for doc in manifests:
        if doc["kind"] not in POD_KINDS:
            continue
        for container in doc["spec"]["template"]["spec"]["containers"]:
            for variable in container.get("env", []):
                ref = variable.get("valueFrom", {}).get("secretKeyRef")
                if ref:
                    assert ref["name"] == "gridgate"
                if variable["name"] == "GRIDGATE_GATEWAY_DATABASE_URL":
                    database_url_users.add(doc["metadata"]["name"])
                    assert ref == {"name": "gridgate", "key": "database-url"}
            assert "value" not in str(container.get("envFrom", ""))
    assert database_url_users == {"gg-gridgate-gateway", "gg-gridgate-migration"}
    config = by_kind(manifests, "ConfigMap")["gg-gridgate"]["data"]
    assert not [k for k in config if k.endswith(("_URL", "_TOKEN")) and "BROKER" in k]
    assert not [k for k in config if k.endswith("_TOKEN")]
    for service in SERVICES:
        token = environment(manifests, service)[f"GRIDGATE_{service.upper()}_INTERNAL_TOKEN"]
        assert token == "secret:internal-token", service


def test_every_variable_is_a_setting_the_service_accepts(
    manifests, monkeypatch: pytest.MonkeyPatch
) -> None:
    for service in SERVICES:
        build_settings(service, environment(manifests, service), monkeypatch)


def test_migration_is_a_pre_install_and_pre_upgrade_hook(manifests) -> None:
    job = by_kind(manifests, "Job")["gg-gridgate-migration"]
    assert job["metadata"]["annotations"]["helm.sh/hook"] == "pre-install,pre-upgrade"
    container = job["spec"]["template"]["spec"]["containers"][0]
    assert container["args"] == ["migrate"]
    assert container["image"].endswith(("gridgate-gateway:0.1.0",))
    assert "envFrom" not in container  # the release's ConfigMap does not exist yet on install


def test_network_policies_let_only_the_gateway_take_outside_traffic(manifests) -> None:
    policies = by_kind(manifests, "NetworkPolicy")
    deny = policies["gg-gridgate-default-deny"]
    assert deny["spec"]["policyTypes"] == ["Ingress"]
    assert "ingress" not in deny["spec"]
    auth = policies["gg-gridgate-auth"]["spec"]["ingress"]
    assert len(auth) == 1
    peers = auth[0]["from"]
    assert len(peers) == 1 and "namespaceSelector" not in peers[0]
    allowed = peers[0]["podSelector"]["matchExpressions"][0]["values"]
    assert set(allowed) == {"submitter", "monitor", "results", "gateway"}
    gateway = policies["gg-gridgate-gateway"]["spec"]["ingress"]
    own = [rule for rule in gateway if "from" in rule and "podSelector" in rule["from"][0]]
    assert own, "our workers must reach the gateway's internal routes"


def test_default_values_run_the_local_facility_in_one_submitter_pod() -> None:
    docs = render()
    deployments = by_kind(docs, "Deployment")
    assert "gg-gridgate-monitor" not in deployments
    submitter = deployments["gg-gridgate-submitter"]["spec"]
    assert submitter["replicas"] == 1
    assert submitter["strategy"] == {"type": "Recreate"}
    assert submitter["template"]["spec"]["shareProcessNamespace"] is True
    names = [c["name"] for c in submitter["template"]["spec"]["containers"]]
    assert names == ["submitter", "monitor"]
    claims = by_kind(docs, "PersistentVolumeClaim")
    assert claims["gg-gridgate-facility"]["spec"]["accessModes"] == ["ReadWriteMany"]


def test_production_values_scale_workers_on_queue_depth_and_are_scraped() -> None:
    docs = render(production())
    deployments = by_kind(docs, "Deployment")
    assert {"gg-gridgate-monitor", "gg-gridgate-submitter", "gg-gridgate-results"} <= set(
        deployments
    )
    assert "replicas" not in deployments["gg-gridgate-submitter"]["spec"]  # KEDA decides
    scaled = by_kind(docs, "ScaledObject")
    queues = {}
    for name, scaled_object in scaled.items():
        target = scaled_object["spec"]["scaleTargetRef"]["name"]
        assert target in deployments, name
        trigger = scaled_object["spec"]["triggers"][0]
        assert trigger["type"] == "rabbitmq"
        assert trigger["metadata"]["mode"] == "QueueLength"
        assert trigger["authenticationRef"]["name"] == "gg-gridgate-rabbitmq"
        queues[target] = trigger["metadata"]["queueName"]
    assert queues == {
        "gg-gridgate-submitter": "gridgate.submitter",
        "gg-gridgate-results": "gridgate.results",
    }
    auth = by_kind(docs, "TriggerAuthentication")["gg-gridgate-rabbitmq"]["spec"]
    assert auth["secretTargetRef"] == [
        {"parameter": "host", "name": "gridgate", "key": "broker-url"}
    ]
    monitor = by_kind(docs, "ServiceMonitor")["gg-gridgate"]["spec"]
    ports = {p["name"] for s in by_kind(docs, "Service").values() for p in s["spec"]["ports"]}
    assert {e["port"] for e in monitor["endpoints"]} & ports == {"http", "metrics"}
    assert all(e["path"] == "/metrics" for e in monitor["endpoints"])
    ingress = by_kind(docs, "Ingress")["gg-gridgate-gateway"]["spec"]
    paths = [p["path"] for p in ingress["rules"][0]["http"]["paths"]]
    assert "/internal" not in paths and "/metrics" not in paths
    hpa = by_kind(docs, "HorizontalPodAutoscaler")["gg-gridgate-gateway"]
    assert hpa["spec"]["scaleTargetRef"]["name"] == "gg-gridgate-gateway"


@pytest.mark.parametrize("local_facility", [True, False])
def test_a_dirac_facility_reaches_the_three_workers(local_facility: bool) -> None:
    docs = render(
        {
            "localFacility": {"enabled": local_facility},
            "dirac": {"facilities": {"ctadirac": CTADIRAC}, "volumes": [CLIENT_VOLUME]},
        }
    )
    for worker in WORKERS:
        seen = environment(docs, worker)
        prefix = f"GRIDGATE_{worker.upper()}_"
        assert json.loads(seen[f"{prefix}DIRAC_FACILITIES"]) == {"ctadirac": CTADIRAC}, worker
        client = mounts(docs, worker)["/opt/dirac"]
        assert client["readOnly"] is True, worker
        assert client["volume"]["persistentVolumeClaim"]["claimName"] == "dirac-client", worker
        robot = mounts(docs, worker)["/var/run/secrets/gridgate/dirac"]["volume"]["secret"]
        assert robot["items"] == [{"key": "dirac-credential", "path": "credential.pem"}]
    # The settings classes read it as the facility's client set-up.
    connection = DiracConnection.model_validate(CTADIRAC)
    assert connection.environment().env["DIRAC_ROOT_PATH"] == "/opt/dirac"
    assert "/opt/dirac" not in mounts(docs, "gateway")
    assert "/opt/dirac" not in mounts(docs, "auth")  # local-ca needs no DIRAC client


def test_submitter_and_results_ask_the_auth_service_for_proxies() -> None:
    docs = render(production())
    auth = by_kind(docs, "Service")["gg-gridgate-auth"]["spec"]["ports"][0]["port"]
    for worker in ("submitter", "results"):
        seen = environment(docs, worker)
        prefix = f"GRIDGATE_{worker.upper()}_"
        assert seen[f"{prefix}AUTH_URL"] == f"http://gg-gridgate-auth:{auth}", worker
        assert seen[f"{prefix}INTERNAL_TOKEN"] == "secret:internal-token", worker
    assert environment(docs, "auth")["GRIDGATE_AUTH_INTERNAL_TOKEN"] == "secret:internal-token"
    assert environment(docs, "monitor")["GRIDGATE_MONITOR_GATEWAY_URL"] == (
        "http://gg-gridgate-gateway:80"
    )


@pytest.mark.parametrize(
    ("gateway", "callback"),
    [
        ({}, None),
        ({"ingress": {"enabled": True, "host": "gg.example.org"}}, "http://gg.example.org"),
        (
            {
                "ingress": {
                    "enabled": True,
                    "host": "gg.example.org",
                    "tls": [{"secretName": "tls", "hosts": ["gg.example.org"]}],
                }
            },
            "https://gg.example.org",
        ),
        (
            {"publicUrl": "https://api.example.org/", "ingress": {"enabled": True}},
            "https://api.example.org",
        ),
    ],
)
def test_dirac_jobs_call_back_to_the_public_gateway_url(
    gateway: dict[str, Any], callback: str | None
) -> None:
    seen = environment(render({"gateway": gateway}), "submitter")
    assert seen.get("GRIDGATE_SUBMITTER_CALLBACK_URL") == callback


def test_auth_with_dirac_proxymanager_has_the_client_and_the_robot_credential() -> None:
    values = proxymanager()
    docs = render(values)
    seen = environment(docs, "auth")
    assert seen["GRIDGATE_AUTH_PROVIDER"] == "dirac-proxymanager"
    client = values["auth"]["dirac"]
    assert {k: seen[f"GRIDGATE_AUTH_DIRAC_{k.upper()}"] for k in client} == client
    assert "GRIDGATE_AUTH_CA_KEY_FILE" not in seen
    paths = mounts(docs, "auth")
    assert paths["/var/run/secrets/gridgate/dirac"]["readOnly"] is True
    for volume in values["dirac"]["volumes"]:
        assert paths[volume["mountPath"]]["readOnly"] is True
    assert "/var/run/secrets/gridgate/ca" not in paths
    # The default provider keeps the CA and nothing of DIRAC.
    local = render(production())
    assert environment(local, "auth")["GRIDGATE_AUTH_PROVIDER"] == "local-ca"
    assert set(mounts(local, "auth")) == {"/tmp", "/var/run/secrets/gridgate/ca"}


def test_the_gateway_catalogue_names_the_dirac_facilities(tmp_path: Path) -> None:
    values = production()
    docs = render(values)
    seen = environment(docs, "gateway")
    mounted = Path(seen["GRIDGATE_GATEWAY_FACILITIES_FILE"])
    volume = mounts(docs, "gateway")[str(mounted.parent)]["volume"]
    data = by_kind(docs, "ConfigMap")[volume["configMap"]["name"]]["data"]
    (tmp_path / mounted.name).write_text(data[mounted.name])
    catalogue = FacilityCatalogue.load(tmp_path / mounted.name)
    for facility_id in values["dirac"]["facilities"]:
        assert catalogue.get(facility_id).kind == "dirac"
    assert "GRIDGATE_GATEWAY_FACILITIES_FILE" not in environment(render(), "gateway")


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"gateway": {"replicaz": 3}}, "replicaz"),
        ({"dirac": {"facilities": {"ctadirac": {"python": "/p", "root": "/r"}}}}, "cert_dir"),
        ({"dirac": {"facilities": {"ctadirac": {**CTADIRAC, "certDir": "/c"}}}}, "certDir"),
        ({"dirac": {"facilities": {"CTA": CTADIRAC}}}, "CTA"),
        ({"dirac": {"volumes": [{**CLIENT_VOLUME, "name": "tmp"}]}}, "taken"),
        ({"dirac": {"volumes": [{"name": "c", "mountPath": "/c"}]}}, "volumes"),
        (
            {
                "gateway": {
                    "facilities": [{"id": "x", "title": "X", "description": "X", "kind": "dirac"}]
                },
                "dirac": {"facilities": {"ctadirac": CTADIRAC}},
            },
            "no entry of kind dirac",
        ),
        ({"auth": {"provider": "dirac-proxymanager"}}, "auth.dirac.python"),
        ({"auth": {"provider": "iam-proxycert"}}, "provider"),
        ({"auth": {"env": {"GRIDGATE_AUTH_PROVIDER": "local-ca"}}}, "chart sets it"),
        ({"submitter": {"env": {"GRIDGATE_SUBMITTER_DIRAC_FACILITIES": "{}"}}}, "chart sets it"),
        ({"gateway": {"publicUrl": "gridgate.example.org"}}, "publicUrl"),
        ({"config": {"oidcIssuer": "iam.example.org"}}, "oidcIssuer"),
        ({"submitter": {"replicas": 2}}, "localFacility"),
        (
            {
                "localFacility": {"enabled": False},
                "results": {"autoscaling": {"enabled": True}, "keda": {"enabled": True}},
            },
            "not both",
        ),
    ],
)
def test_wrong_values_are_refused(values: dict[str, Any], message: str) -> None:
    with pytest.raises(Exception, match=message):
        render(values)


def test_gateway_grace_period_outlasts_its_pre_stop_and_graceful_stop(manifests) -> None:
    # The gateway stops within 10 s of SIGTERM (GRACEFUL_STOP_S plus its lifespan shutdown),
    # SIGTERM comes after the preStop hook, and both must fit the grace period.
    from gridgate.gateway.main import GRACEFUL_STOP_S

    gateway = next(
        d
        for d in manifests
        if d["kind"] == "Deployment" and d["metadata"]["name"].endswith("gateway")
    )
    spec = gateway["spec"]["template"]["spec"]
    pre_stop = spec["containers"][0]["lifecycle"]["preStop"]["exec"]["command"]
    assert pre_stop[0] == "sleep"
    assert GRACEFUL_STOP_S < 10
    assert spec["terminationGracePeriodSeconds"] > int(pre_stop[1]) + 10


def test_the_notifier_runs_two_replicas_with_its_key_from_the_secret_and_guarded_egress(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    docs = render({"gateway": {"ingress": {"enabled": True}}})
    deployment = by_kind(docs, "Deployment")["gg-gridgate-notifier"]
    assert deployment["spec"]["replicas"] == 2
    variables = environment(docs, "notifier")
    assert variables["GRIDGATE_NOTIFIER_SECRET_KEYS"] == "secret:notifier-secret-keys"
    assert variables["GRIDGATE_NOTIFIER_DATABASE_URL"] == "secret:database-url"
    build_settings("notifier", variables, monkeypatch)
    policy = by_kind(docs, "NetworkPolicy")["gg-gridgate-notifier"]["spec"]
    assert policy["policyTypes"] == ["Ingress", "Egress"]
    internet = next(r for r in policy["egress"] if "ipBlock" in str(r.get("to", "")))
    blocked = internet["to"][0]["ipBlock"]["except"]
    assert {"10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "169.254.0.0/16"} <= set(blocked)
    paths = by_kind(docs, "Ingress")["gg-gridgate-gateway"]["spec"]["rules"][0]["http"]["paths"]
    routed = {p["path"]: p["backend"]["service"]["name"] for p in paths}
    assert routed["/api/subscriptions"] == "gg-gridgate-notifier"
    assert routed["/api"] == "gg-gridgate-gateway"
    assert "gg-gridgate-notifier" not in by_kind(
        render({"notifier": {"enabled": False}}), "Deployment"
    )


def test_the_gateway_holds_notification_urls_to_the_notifiers_outbound_rules(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    allowed = '["10.20.0.0/16"]'
    docs = render({"notifier": {"env": {"GRIDGATE_NOTIFIER_ALLOWED_NETWORKS": allowed}}})
    gateway = build_settings("gateway", environment(docs, "gateway"), monkeypatch)
    notifier = build_settings("notifier", environment(docs, "notifier"), monkeypatch)
    assert gateway.notification_urls is True  # type: ignore[attr-defined]
    assert gateway.notification_allowed_networks == ["10.20.0.0/16"]  # type: ignore[attr-defined]
    assert notifier.allowed_networks == ["10.20.0.0/16"]  # type: ignore[attr-defined]
    assert gateway.notification_allow_http is notifier.allow_http is False  # type: ignore[attr-defined]
    # Without a notifier nothing would call a job's hook: the gateway refuses the field.
    alone = environment(render({"notifier": {"enabled": False}}), "gateway")
    assert build_settings("gateway", alone, monkeypatch).notification_urls is False  # type: ignore[attr-defined]


def test_a_diracx_facility_reaches_the_workers_and_auth_holds_the_exchange_key() -> None:
    facility = {"url": "https://diracx.example.org", "status_batch": 1000}
    docs = render(
        {
            "diracx": {
                "facilities": {"ctadiracx": facility},
                "url": "https://diracx.example.org",
                "users": {"sub-1": "alice"},
                "robot": "gridgate:cta:cta_gridgate",
            }
        }
    )
    for worker in WORKERS:
        seen = environment(docs, worker)
        prefix = f"GRIDGATE_{worker.upper()}_"
        assert json.loads(seen[f"{prefix}DIRACX_FACILITIES"]) == {"ctadiracx": facility}
    assert environment(docs, "monitor")["GRIDGATE_MONITOR_AUTH_URL"].startswith("http://")
    auth = environment(docs, "auth")
    assert auth["GRIDGATE_AUTH_DIRACX_LEGACY_KEY"] == "secret:diracx-legacy-key"
    assert json.loads(auth["GRIDGATE_AUTH_DIRACX_USERS"]) == {"sub-1": "alice"}
    assert auth["GRIDGATE_AUTH_DIRACX_ROBOT"] == "gridgate:cta:cta_gridgate"
    assert "GRIDGATE_AUTH_DIRACX_LEGACY_KEY" not in environment(render(), "auth")
    assert auth["GRIDGATE_AUTH_DIRACX_MODE"] == "exchange"
    assert "GRIDGATE_AUTH_DIRACX_LINK_KEYS" not in auth


def test_the_portal_client_reaches_the_gateway_and_the_ingress_routes_only_its_page() -> None:
    docs = render(
        {
            "gateway": {
                "portal": {"clientId": "esap-gridgate", "resource": "urn:gridgate"},
                "ingress": {"enabled": True},
            }
        }
    )
    gateway = environment(docs, "gateway")
    assert gateway["GRIDGATE_GATEWAY_PORTAL_CLIENT_ID"] == "esap-gridgate"
    assert gateway["GRIDGATE_GATEWAY_PORTAL_RESOURCE"] == "urn:gridgate"
    rules = by_kind(docs, "Ingress")["gg-gridgate-gateway"]["spec"]["rules"][0]["http"]["paths"]
    routed = {p["path"]: p["pathType"] for p in rules}
    # "/" exactly: a prefix would open /internal and /metrics to the outside.
    assert routed["/"] == "Exact" and routed["/portal"] == "Prefix"

    hidden = render({"gateway": {"portal": {"enabled": False}, "ingress": {"enabled": True}}})
    rules = by_kind(hidden, "Ingress")["gg-gridgate-gateway"]["spec"]["rules"][0]["http"]["paths"]
    assert not {"/", "/portal"} & {p["path"] for p in rules}
    assert "GRIDGATE_GATEWAY_PORTAL_RESOURCE" not in environment(hidden, "gateway")


def test_diracx_user_link_gives_auth_its_database_and_sealing_keys() -> None:
    docs = render({"diracx": {"url": "https://diracx.example.org", "mode": "user-link"}})
    auth = environment(docs, "auth")
    assert auth["GRIDGATE_AUTH_DIRACX_MODE"] == "user-link"
    assert auth["GRIDGATE_AUTH_DIRACX_LINK_KEYS"] == "secret:diracx-link-keys"
    assert auth["GRIDGATE_AUTH_DATABASE_URL"] == "secret:database-url"
    # users link through the gateway's /api/diracx-links, relayed to auth
    assert environment(docs, "gateway")["GRIDGATE_GATEWAY_DIRACX_LINKS"] == "true"
