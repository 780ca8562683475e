"""The OpenAPI document tells the truth: a validator accepts it, and a client generated from
it (openapi-python-client) runs a job against the real stack."""

from __future__ import annotations

import asyncio
import hashlib
import importlib
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
from openapi_spec_validator import validate

FINAL = {"COMPLETED", "ERROR", "ABORTED"}
PUBLIC = {"/healthz", "/readyz", "/availability", "/capabilities"}
PROBLEM = "application/problem+json"
GENERATOR_CONFIG = """\
package_name_override: gridgate_api_client
post_hooks: []
# The generator reads no XML; the UWS XML answers are strings to it.
content_type_overrides:
  application/xml: text/plain
"""


async def served_document(stack) -> dict[str, Any]:
    async with httpx.AsyncClient(base_url=stack.url) as http:
        response = await http.get("/openapi.json")
    assert response.status_code == 200
    return response.json()


def operations(document: dict[str, Any]):
    for path, item in document["paths"].items():
        for method, operation in item.items():
            yield path, method, operation


async def test_the_document_is_valid_openapi_and_declares_what_each_operation_takes(
    stack,
) -> None:
    document = await served_document(stack)
    validate(document)
    assert document["openapi"].startswith("3.1")
    schemes = document["components"]["securitySchemes"]
    assert schemes["bearerAuth"] == {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "JWT",
        "description": schemes["bearerAuth"]["description"],
    }
    ids = [op["operationId"] for _, _, op in operations(document)]
    assert len(ids) == len(set(ids))
    for path, method, operation in operations(document):
        where = f"{method.upper()} {path}"
        responses = operation["responses"]
        if path in PUBLIC:
            assert "security" not in operation, where
            continue
        if path.endswith("/callback"):
            assert operation["security"] == [{"jobToken": []}], where
        elif path.endswith("/results/{name}"):
            # The owner's token, or a signed URL and no token at all.
            assert operation["security"] == [{"bearerAuth": []}, {}], where
        else:
            assert operation["security"] == [{"bearerAuth": []}], where
        for status, response in responses.items():
            if status.startswith(("4", "5")):
                assert list(response["content"]) == [PROBLEM], (where, status)
                assert response["content"][PROBLEM]["schema"] == {
                    "$ref": "#/components/schemas/Problem"
                }
        assert "401" in responses, where
        # "run now", "redeliver" and the job-hook secret's rotation take none.
        if method in {"post", "patch"} and not path.endswith(
            ("/run", "/redeliver", "/job-hook-secret")
        ):
            assert operation["requestBody"]["content"], where
    assert "HTTPValidationError" not in document["components"]["schemas"]

    create = document["paths"]["/api/jobs"]["post"]
    content = create["requestBody"]["content"]
    assert set(content) == {"application/x-www-form-urlencoded", "application/json"}
    assert "/api/workflows/{id}" in create["requestBody"]["description"]
    creation = document["components"]["schemas"]["JobCreation"]
    assert {"workflow", "RUNID", "PHASE", "executionduration", "destruction", "inputs"} <= set(
        creation["properties"]
    )
    assert creation["additionalProperties"]
    for root in ("/api/jobs", "/uws/jobs"):
        for suffix in ("", "/{job_id}", "/{job_id}/parameters", "/{job_id}/results"):
            answer = document["paths"][root + suffix]["get"]["responses"]["200"]
            assert set(answer["content"]) == {"application/json", "application/xml"}, suffix
            assert "UWS-v1.1.xsd" in answer["description"]


def generate_client(document: dict[str, Any], directory: Path) -> Any:
    """Generate a client package from ``document`` and import it."""
    (directory / "openapi.json").write_bytes(httpx.Response(200, json=document).content)
    (directory / "config.yaml").write_text(GENERATOR_CONFIG)
    generated = subprocess.run(
        [
            str(Path(sys.executable).with_name("openapi-python-client")),
            "generate",
            "--path",
            str(directory / "openapi.json"),
            "--config",
            str(directory / "config.yaml"),
            "--meta",
            "none",
            "--output-path",
            str(directory / "gridgate_api_client"),
            "--fail-on-warning",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert generated.returncode == 0, generated.stdout + generated.stderr
    sys.path.insert(0, str(directory))
    try:
        return importlib.import_module("gridgate_api_client")
    finally:
        sys.path.remove(str(directory))


async def test_a_generated_client_runs_a_job_and_reads_its_results(
    stack, token_for, tmp_path
) -> None:
    document = await served_document(stack)
    package = await asyncio.to_thread(generate_client, document, tmp_path)
    name = package.__name__
    client_module = importlib.import_module(f"{name}.client")
    models = importlib.import_module(f"{name}.models")
    create_job = importlib.import_module(f"{name}.api.jobs.create_job")
    get_job = importlib.import_module(f"{name}.api.jobs.get_job")
    get_results = importlib.import_module(f"{name}.api.jobs.get_results")
    get_result = importlib.import_module(f"{name}.api.jobs.get_result")
    list_jobs = importlib.import_module(f"{name}.api.jobs.list_jobs")
    get_workflow = importlib.import_module(f"{name}.api.catalogues.get_workflow")

    client = client_module.AuthenticatedClient(
        base_url=stack.url, token=token_for("generated-client"), timeout=httpx.Timeout(90.0)
    )
    async with client:
        workflow = await get_workflow.asyncio("hello-world", client=client)
        assert isinstance(workflow, models.Workflow)
        assert "name" in workflow.parameters.to_dict()["properties"]

        body = models.JobCreation.from_dict(
            {"workflow": "hello-world", "PHASE": "RUN", "RUNID": "generated"}
        )
        body.additional_properties["name"] = "generated client"
        created = await create_job.asyncio_detailed(client=client, body=body)
        assert created.status_code == 303, created.content
        job_id = created.headers["location"].rsplit("/", 1)[1]

        for _ in range(60):
            job = await get_job.asyncio(job_id, client=client, wait=5)
            assert isinstance(job, models.JobSummary), job
            if job.phase.value in FINAL:
                break
        assert job.phase.value == "COMPLETED", job
        assert job.run_id == "generated"
        assert job.parameters.additional_properties["name"] == "generated client"
        assert job.job_info.tasks[0].exit_code == 0

        listing = await list_jobs.asyncio(client=client)
        assert isinstance(listing, models.JobList)
        assert [ref.job_id for ref in listing.jobs] == [job_id]

        results = await get_results.asyncio(job_id, client=client)
        assert isinstance(results, models.Results)
        assert results.results
        for result in results.results:
            download = await get_result.asyncio_detailed(job_id, result.id, client=client)
            assert download.status_code == 200
            assert hashlib.sha256(download.content).hexdigest() == result.sha256
        stdout = next(r for r in results.results if r.id.endswith("stdout.txt"))
        download = await get_result.asyncio_detailed(job_id, stdout.id, client=client)
        assert b"generated client" in download.content

        missing = await get_job.asyncio("no-such-job", client=client)
        assert isinstance(missing, models.Problem)
        assert missing.type_ == "urn:gridgate:problem:job-not-found"
