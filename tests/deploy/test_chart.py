"""charts/gridgate rendered by Helm's own engine (helm-python-sdk binds the Helm v4 Go SDK) and
every manifest checked against the Kubernetes JSON schemas (kubernetes-validate, strict)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

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


def by_kind(docs: list[dict[str, Any]], kind: str) -> dict[str, dict[str, Any]]:
    return {d["metadata"]["name"]: d for d in docs if d["kind"] == kind}


@pytest.fixture(scope="module", params=["default", "production"])
def manifests(request: pytest.FixtureRequest) -> list[dict[str, Any]]:
    return render(None if request.param == "default" else production())


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


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"gateway": {"replicaz": 3}}, "replicaz"),
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
