"""The workflow and facility catalogues."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, Field

from gridgate.gateway.dependencies import User
from gridgate.gateway.models.facility import Facility
from gridgate.gateway.services.facilities import FacilityCatalogue
from gridgate.web.openapi import problem_responses
from gridgate.workflows import WorkflowCatalogue, WorkflowDefinition

router = APIRouter(prefix="/api", tags=["catalogues"])


class Workflow(WorkflowDefinition):
    """A workflow of the catalogue; ``parameters`` is the JSON Schema a job's fields meet."""

    versions: list[str] = Field(description="Every version of it the catalogue has.")


class WorkflowList(BaseModel):
    workflows: list[Workflow]


class FacilityList(BaseModel):
    facilities: list[Facility]


def _workflow(definition: WorkflowDefinition, versions: list[str]) -> Workflow:
    # Built from the catalogue's own (already checked) values: no validation a second time.
    return Workflow.model_construct(**dict(definition), versions=versions)


@router.get("/workflows", responses=problem_responses(401, 422))
async def list_workflows(
    request: Request,
    user: User,
    keyword: Annotated[str | None, Query(description="Match title, description, keywords")] = None,
) -> WorkflowList:
    """The latest version of every workflow (``keyword`` filters)."""
    catalogue: WorkflowCatalogue = request.app.state.context.workflows
    found = []
    for definition in catalogue.latest():
        text = " ".join(
            [definition.id, definition.title, definition.description, *definition.keywords]
        ).lower()
        if keyword and keyword.lower() not in text:
            continue
        found.append(_workflow(definition, catalogue.versions(definition.id)))
    return WorkflowList(workflows=found)


@router.get("/workflows/{workflow_id}", responses=problem_responses(401, 404, 422))
async def get_workflow(
    request: Request,
    workflow_id: str,
    user: User,
    version: Annotated[str | None, Query()] = None,
) -> Workflow:
    """One workflow (the latest version unless ``version`` names one)."""
    catalogue: WorkflowCatalogue = request.app.state.context.workflows
    definition = catalogue.get(workflow_id, version)
    return _workflow(definition, catalogue.versions(workflow_id))


@router.get("/facilities", responses=problem_responses(401, 422))
async def list_facilities(
    request: Request,
    user: User,
    gpu: Annotated[bool | None, Query()] = None,
    min_memory_gb: Annotated[float | None, Query(ge=0)] = None,
    min_cores: Annotated[int | None, Query(ge=1)] = None,
    min_walltime_s: Annotated[int | None, Query(ge=1)] = None,
    vo: Annotated[str | None, Query()] = None,
) -> FacilityList:
    """Facilities and their capacity, filtered by GPU, memory, cores, walltime or VO."""
    catalogue: FacilityCatalogue = request.app.state.context.facilities
    return FacilityList(
        facilities=catalogue.search(
            gpu=gpu,
            min_memory_gb=min_memory_gb,
            min_cores=min_cores,
            vo=vo,
            min_walltime_s=min_walltime_s,
        )
    )


@router.get("/facilities/{facility_id}", responses=problem_responses(401, 404))
async def get_facility(request: Request, facility_id: str, user: User) -> Facility:
    """One facility and what one task there may use."""
    catalogue: FacilityCatalogue = request.app.state.context.facilities
    return catalogue.get(facility_id)
