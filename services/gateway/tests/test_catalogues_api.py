"""Workflow and facility catalogues over HTTP."""

from __future__ import annotations

from pathlib import Path

import yaml

from gridgate.gateway.services.facilities import FacilityCatalogue, require_capacity
from gridgate.workflows import WorkflowCatalogue


async def test_workflow_catalogue_lists_the_shipped_workflows(api) -> None:
    http = api("cat-user")
    body = (await http.get("/api/workflows")).json()
    ids = {w["id"] for w in body["workflows"]}
    assert ids == {"hello-world", "cta-mc-production", "concordia-corsika", "input-manifest"}
    cta = (await http.get("/api/workflows/cta-mc-production")).json()
    assert cta["standin"] is True and cta["standin_note"]
    props = cta["parameters"]["properties"]
    assert props["he_interaction_model"]["enum"] == ["SIBYLL", "QGSJET", "EPOS"]
    assert set(props["le_interaction_model"]["enum"]) == {"GHEISHA", "URQMD", "FLUKA"}
    assert cta["versions"] == ["1.0.0"]
    found = (await http.get("/api/workflows", params={"keyword": "corsika"})).json()
    assert {w["id"] for w in found["workflows"]} >= {"concordia-corsika"}
    missing = await http.get("/api/workflows/hello-world", params={"version": "9.9.9"})
    assert missing.status_code == 404
    assert missing.json()["type"] == "urn:gridgate:problem:unknown-workflow-version"


async def test_facility_catalogue_filters(api) -> None:
    http = api("cat-user")
    everything = (await http.get("/api/facilities")).json()["facilities"]
    local = next(f for f in everything if f["id"] == "local")
    assert local["cores"] >= 1 and local["memory_gb"] > 0 and local["gpu_count"] == 0
    assert (await http.get("/api/facilities", params={"gpu": "true"})).json()["facilities"] == []
    assert [
        f["id"]
        for f in (await http.get("/api/facilities", params={"gpu": "false"})).json()["facilities"]
    ] == ["dirac-testbed", "diracx-testbed", "local"]
    # The testbed serves only the VOs it was set up with.
    vo_filtered = (await http.get("/api/facilities", params={"vo": "lofar"})).json()
    assert [f["id"] for f in vo_filtered["facilities"]] == ["local"]
    huge = await http.get("/api/facilities", params={"min_memory_gb": 100000})
    assert huge.json()["facilities"] == []
    assert (await http.get("/api/facilities", params={"vo": "km3net"})).json()["facilities"]
    bad = await http.get("/api/facilities", params={"min_memory_gb": "lots"})
    assert bad.status_code == 422
    assert bad.headers["content-type"] == "application/problem+json"


async def test_unknown_facility_is_refused(api) -> None:
    http = api("cat-user")
    refused = await http.post("/api/jobs", data={"workflow": "hello-world", "facility": "mars"})
    assert refused.status_code == 422
    assert refused.json()["type"] == "urn:gridgate:problem:unknown-facility"


def _catalogue(tmp_path: Path, **overrides: object) -> FacilityCatalogue:
    record = {
        "id": "gpu-site",
        "title": "GPU site",
        "description": "d",
        "kind": "dirac",
        "runtime_engine": "singularity",
        "runtimes": ["singularity"],
        "cores": 4,
        "memory_gb": 1.0,
        "gpu_count": 2,
        "gpu_type": "A100",
        "max_walltime_s": 300,
        "vos": ["km3net"],
        **overrides,
    }
    path = tmp_path / "facilities.yaml"
    path.write_text(yaml.safe_dump({"facilities": [record]}))
    return FacilityCatalogue.load(path)


def test_a_facility_that_cannot_meet_the_needs_names_each_shortfall(tmp_path: Path) -> None:
    catalogue = _catalogue(tmp_path)
    facility = catalogue.get("gpu-site")
    needs = WorkflowCatalogue.shipped().get("cta-mc-production").requirements
    try:
        require_capacity(facility, needs, "cta", 3600)
    except Exception as exc:
        problem = exc.to_problem()  # type: ignore[attr-defined]
    else:
        raise AssertionError("the facility should have been refused")
    assert problem["type"] == "urn:gridgate:problem:facility-cannot-run-workflow"
    messages = " ".join(e["message"] for e in problem["errors"])
    assert "VO 'cta'" in messages
    assert "GB" in messages
    assert "3600 s" in messages
    assert catalogue.search(gpu=True, vo="km3net")[0].id == "gpu-site"
    assert catalogue.search(gpu=True, vo="cta") == []
