"""The workflow and facility catalogues."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request

from gridgate.gateway.dependencies import User
from gridgate.gateway.models.facility import Facility
from gridgate.gateway.services.facilities import FacilityCatalogue
from gridgate.workflows import WorkflowCatalogue, WorkflowDefinition

router = APIRouter(prefix="/api", tags=["catalogues"])


def _workflow_json(definition: WorkflowDefinition, versions: list[str]) -> dict[str, Any]:
    body = definition.model_dump(mode="json")
    body["versions"] = versions
    return body


@router.get("/workflows")
async def list_workflows(
    request: Request,
    user: User,
    keyword: Annotated[str | None, Query(description="Match title, description, keywords")] = None,
) -> dict[str, Any]:
    """The latest version of every workflow (``keyword`` filters)."""
    catalogue: WorkflowCatalogue = request.app.state.context.workflows
    found = []
    for definition in catalogue.latest():
        text = " ".join(
            [definition.id, definition.title, definition.description, *definition.keywords]
        ).lower()
        if keyword and keyword.lower() not in text:
            continue
        found.append(_workflow_json(definition, catalogue.versions(definition.id)))
    return {"workflows": found}


@router.get("/workflows/{workflow_id}")
async def get_workflow(
    request: Request,
    workflow_id: str,
    user: User,
    version: Annotated[str | None, Query()] = None,
) -> dict[str, Any]:
    catalogue: WorkflowCatalogue = request.app.state.context.workflows
    definition = catalogue.get(workflow_id, version)
    return _workflow_json(definition, catalogue.versions(workflow_id))


@router.get("/facilities")
async def list_facilities(
    request: Request,
    user: User,
    gpu: Annotated[bool | None, Query()] = None,
    min_memory_gb: Annotated[float | None, Query(ge=0)] = None,
    min_cores: Annotated[int | None, Query(ge=1)] = None,
    min_walltime_s: Annotated[int | None, Query(ge=1)] = None,
    vo: Annotated[str | None, Query()] = None,
) -> dict[str, list[Facility]]:
    """Facilities and their capacity, filtered by GPU, memory, cores, walltime or VO."""
    catalogue: FacilityCatalogue = request.app.state.context.facilities
    return {
        "facilities": catalogue.search(
            gpu=gpu,
            min_memory_gb=min_memory_gb,
            min_cores=min_cores,
            vo=vo,
            min_walltime_s=min_walltime_s,
        )
    }


@router.get("/facilities/{facility_id}")
async def get_facility(request: Request, facility_id: str, user: User) -> Facility:
    catalogue: FacilityCatalogue = request.app.state.context.facilities
    return catalogue.get(facility_id)
