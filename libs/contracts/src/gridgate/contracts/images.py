"""Container images on the wire: what a job asks for, and what it was given."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

DIGEST = r"^sha256:[0-9a-f]{64}$"


class ImageRequest(BaseModel):
    """The image a containerised job's tasks run in: recipe and arguments, or a named digest.

    The submitter selects the image of ``build_args`` from the registry, or builds it
    (content-addressed, once); with ``digest`` set it only checks that the registry holds it.
    """

    model_config = ConfigDict(extra="ignore", frozen=True)

    repository: str = Field(description="Repository in the registry, e.g. gridgate/corsika.")
    recipe_digest: str = Field(pattern=DIGEST, description="Hash of the recipe's build context.")
    build_args: dict[str, str] = Field(default_factory=dict)
    digest: str | None = Field(default=None, pattern=DIGEST, description="Named by the user.")
    python: str = Field(default="/usr/bin/python3", description="{python} inside the image.")
    network: bool = Field(default=False, description="Whether tasks may use the network.")
    reference: str | None = Field(
        default=None,
        description="Set by the submitter once resolved: '<registry>/<repo>@sha256:…' as the "
        "facility's nodes pull it.",
    )


class ImageProvenance(BaseModel):
    """Where a job's image comes from: recorded with the job and its results."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    reference: str = Field(description="'<registry>/<repository>@sha256:…', what facilities run.")
    digest: str = Field(pattern=DIGEST)
    repository: str
    tag: str | None = Field(default=None, description="The content-addressed tag, if any.")
    recipe_digest: str | None = None
    build_args: dict[str, str] = Field(default_factory=dict)
    base_digest: str | None = Field(default=None, description="Digest of the base image.")
    built: bool = Field(default=False, description="Built for this job (else selected).")
