"""Container images of workflow recipes.

:class:`RegistryClient` reads a registry through the OCI distribution API (tags, manifests,
image configs); :class:`ImageResolver` selects the image of a recipe and its build arguments
or builds it once with the Docker SDK and pushes it, content-addressed by
:func:`image_key`; :mod:`gridgate.images.runtime` runs a task in an image.
"""

from gridgate.images.registry import (
    ImageRecord,
    ImageReference,
    RegistryClient,
    RegistryUnavailableError,
)
from gridgate.images.resolver import (
    BuildFailedError,
    BuildLeases,
    ImageResolver,
    ImageUnavailableError,
    image_key,
)
from gridgate.images.settings import ImageSettings

__all__ = [
    "BuildFailedError",
    "BuildLeases",
    "ImageRecord",
    "ImageReference",
    "ImageResolver",
    "ImageSettings",
    "ImageUnavailableError",
    "RegistryClient",
    "RegistryUnavailableError",
    "image_key",
]
