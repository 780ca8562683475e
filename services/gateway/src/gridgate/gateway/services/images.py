"""The images of a containerised workflow's recipe, as the registry holds them.

Read-only: the gateway lists what is there (OCI distribution API) and never builds; builds
belong to the submitter, which the gateway commands over the broker.
"""

from __future__ import annotations

from gridgate.gateway.exceptions import ImageRegistryUnavailableError, NotContainerisedError
from gridgate.images import ImageRecord, RegistryClient, RegistryUnavailableError
from gridgate.workflows import WorkflowCatalogue


class ImageCatalogue:
    """Lists the images of a workflow's repository, newest first.

    Parameters
    ----------
    workflows
        The catalogue the recipes come from.
    registry
        The registry client; ``None`` when no registry is configured.
    """

    def __init__(self, workflows: WorkflowCatalogue, registry: RegistryClient | None) -> None:
        self.workflows = workflows
        self.registry = registry

    async def images(
        self, workflow_id: str, version: str | None = None, *, current_recipe: bool = False
    ) -> tuple[str, list[ImageRecord]]:
        """``(repository, images)`` of a workflow; with ``current_recipe`` only the images
        of this version's recipe (the ones a job with build arguments would select)."""
        definition = self.workflows.get(workflow_id, version)
        recipe = self.workflows.recipe(definition.id, definition.version)
        if definition.container is None or recipe is None:
            raise NotContainerisedError(
                f"{definition.id} {definition.version} runs without a container image."
            )
        if self.registry is None:
            raise ImageRegistryUnavailableError("No image registry is configured here.")
        try:
            records = await self.registry.images(definition.container.repository)
        except RegistryUnavailableError as exc:
            raise ImageRegistryUnavailableError(
                "The image registry did not answer; try again later."
            ) from exc
        if current_recipe:
            records = [r for r in records if r.recipe_digest == recipe.digest]
        return definition.container.repository, records
