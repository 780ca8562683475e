"""Where images are built and kept: a mixin for the settings of the services that use them."""

from __future__ import annotations

from pydantic import BaseModel, Field, SecretStr


class ImageSettings(BaseModel):
    """The registry, its credentials and the engine that builds images.

    Mixed into a service's settings, so the variables carry that service's prefix
    (``GRIDGATE_SUBMITTER_IMAGE_REGISTRY``, ...).
    """

    image_registry: str = Field(
        default="",
        description="Registry (host[:port]) that holds workflow images; empty: containerised "
        "workflows cannot run here.",
    )
    image_registry_insecure: bool = Field(
        default=False, description="Talk plain HTTP to the registry (a loopback test registry)."
    )
    image_registry_username: str = Field(default="", description="Registry user, if any.")
    image_registry_password: SecretStr = Field(
        default=SecretStr(""), description="Registry password or token (a secret)."
    )
    image_base: str = Field(
        default="",
        description="Base image of recipes ('<registry>/<repository>:<tag>'), pinned by "
        "digest at each build.",
    )
    image_facility_registries: dict[str, str] = Field(
        default_factory=dict,
        description="Per facility, the registry host its nodes pull from when it differs from "
        'image_registry (JSON, e.g. {"dirac-testbed": "registry.example.org"}).',
    )
    docker_host: str = Field(
        default="", description="Docker engine that builds images (empty: DOCKER_HOST or default)."
    )
    image_build_timeout_s: float = Field(
        default=3600.0, gt=0, description="Longest an image build and push may take."
    )
