"""The workflow and facility catalogues."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, Field

from gridgate.gateway.dependencies import User
from gridgate.gateway.factory import image_catalogue
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


class WorkflowImage(BaseModel):
    """One image of a workflow's repository, pinned by digest, with its provenance."""

    reference: str = Field(description="'<registry>/<repository>@sha256:…'.")
    digest: str
    tags: list[str]
    size: int = Field(description="Bytes of its config and layers, as stored.")
    created: datetime | None
    build_args: dict[str, str]
    base_digest: str | None
    recipe_digest: str | None
    current_recipe: bool = Field(
        description="Built from this workflow version's recipe (what its jobs select)."
    )


class WorkflowImageList(BaseModel):
    workflow: str
    version: str
    repository: str
    recipe_digest: str
    images: list[WorkflowImage]


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


@router.get("/workflows/{workflow_id}/images", responses=problem_responses(401, 404, 422, 503))
async def list_workflow_images(
    request: Request,
    workflow_id: str,
    user: User,
    version: Annotated[str | None, Query()] = None,
    current: Annotated[bool, Query(description="Only images of this version's recipe.")] = False,
) -> WorkflowImageList:
    """The images the registry holds for a containerised workflow (newest first): digest,
    size, creation time, build arguments and base image digest. A job names one with the
    workflow's digest parameter, or gives build arguments and gets the matching one (built
    first if none exists)."""
    context = request.app.state.context
    definition = context.workflows.get(workflow_id, version)
    repository, records = await image_catalogue(context).images(
        definition.id, definition.version, current_recipe=current
    )
    recipe = context.workflows.recipe(definition.id, definition.version)
    host = context.registry.host
    return WorkflowImageList(
        workflow=definition.id,
        version=definition.version,
        repository=repository,
        recipe_digest=recipe.digest,
        images=[
            WorkflowImage(
                reference=f"{host}/{repository}@{r.digest}",
                digest=r.digest,
                tags=r.tags,
                size=r.size,
                created=r.created,
                build_args=r.build_args,
                base_digest=r.base_digest,
                recipe_digest=r.recipe_digest,
                current_recipe=r.recipe_digest == recipe.digest,
            )
            for r in records
        ],
    )


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
