"""Image recipes: how a containerised workflow's image is built, and from which parameters.

A recipe is a build context kept in the catalogue beside the definition
(``definitions/<id>/<recipe>/``: a ``Dockerfile`` and its files) plus Python modules copied
from this package (the stand-in programs). Users never send Dockerfile text: they choose
typed parameters, and each build argument is one of them, rendered as text. Only parameters
whose every valid value is a safe build-argument value may feed a build argument (an enum of
plain words, a boolean, a bounded integer), so the parameter schema alone refuses hostile
values before anything reaches a builder.

The image of a recipe and its arguments is content-addressed (``gridgate.images.image_key``
hashes the recipe's digest, the argument values and the base image's digest into its tag), so
the same inputs never build twice.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from gridgate.contracts.images import ImageRequest

BUILD_ARG_VALUE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]{0,63}$")
"""What a rendered build-argument value may look like (checked again by the builder)."""

_WORD = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]{0,63}$")
_PY_FILE = re.compile(r"^[a-z_][a-z0-9_]*\.py$")
_STRICT = ConfigDict(extra="forbid", frozen=True)

DIGEST_PATTERN = r"^sha256:[0-9a-f]{64}$"
"""An OCI content digest, as a job may name its image."""


class BuildArgument(BaseModel):
    """One ``ARG`` of the Dockerfile, fed by one typed parameter."""

    model_config = _STRICT

    name: str = Field(pattern=r"^[A-Z][A-Z0-9_]{0,63}$")
    parameter: str


class Container(BaseModel):
    """How a containerised workflow's tasks run: the image recipe and the run policy."""

    model_config = _STRICT

    recipe: str = Field(
        pattern=r"^[a-z][a-z0-9-]{0,63}$",
        description="Folder beside the definition holding the Dockerfile and its files.",
    )
    repository: str = Field(
        pattern=r"^[a-z0-9]+([._-][a-z0-9]+)*(/[a-z0-9]+([._-][a-z0-9]+)*)*$",
        max_length=128,
        description="Repository in the registry, e.g. gridgate/concordia-corsika.",
    )
    build_args: tuple[BuildArgument, ...] = ()
    modules: tuple[str, ...] = Field(
        default=(),
        description="Python packages of gridgate copied into the context (stand-in programs).",
    )
    digest_parameter: str | None = Field(
        default=None,
        description="Optional string parameter (pattern: a sha256 digest) naming an existing "
        "image of the repository to run instead of the one of the build arguments.",
    )
    python: str = Field(default="/usr/bin/python3", description="{python} inside the image.")
    network: bool = Field(default=False, description="Whether tasks may reach the network.")


def render_value(value: Any) -> str:
    """Render a parameter value as text (the rendering module's rules; imported late, since
    that module depends on the definition model, which depends on this one)."""
    from gridgate.workflows.rendering import render_value as render

    return render(value)


def check_build_args(container: Container, schema: Mapping[str, Any]) -> None:
    """Refuse a build argument whose parameter could carry free text.

    Raises
    ------
    ValueError
        Naming the first build argument that is not safe by its schema.
    """
    properties = schema["properties"]
    if container.digest_parameter is not None:
        subschema = properties.get(container.digest_parameter) or {}
        if subschema.get("type") != "string" or subschema.get("pattern") != DIGEST_PATTERN:
            raise ValueError(
                f"digest_parameter {container.digest_parameter}: needs type string and "
                f"pattern {DIGEST_PATTERN}"
            )
    for argument in container.build_args:
        subschema = properties.get(argument.parameter)
        if subschema is None:
            raise ValueError(f"build argument {argument.name}: no parameter {argument.parameter}")
        kind = subschema.get("type")
        if "enum" in subschema:
            bad = [v for v in subschema["enum"] if not _WORD.match(render_value(v))]
            if bad:
                raise ValueError(f"build argument {argument.name}: enum value {bad[0]!r}")
        elif kind == "integer":
            if "minimum" not in subschema or "maximum" not in subschema:
                raise ValueError(f"build argument {argument.name}: integer needs bounds")
        elif kind != "boolean":
            raise ValueError(
                f"build argument {argument.name}: parameter {argument.parameter} must be an "
                "enum, a boolean or a bounded integer"
            )


@dataclass(frozen=True)
class Recipe:
    """A build context as bytes, and the hash that names it."""

    files: dict[str, bytes] = field(repr=False)
    digest: str
    """``sha256:<hex>`` of the container section and every file (name and content)."""


def load_recipe(container: Container, directory: Path | Traversable) -> Recipe:
    """Read the recipe folder and the declared modules into a :class:`Recipe`.

    Raises
    ------
    ValueError
        If the folder has no Dockerfile, or a module is not a package of this distribution.
    """
    files: dict[str, bytes] = {}
    folder = directory / container.recipe
    for entry in sorted(folder.iterdir(), key=lambda item: item.name):
        if entry.is_file() and not entry.name.startswith("."):
            files[entry.name] = entry.read_bytes()
    if "Dockerfile" not in files:
        raise ValueError(f"recipe {container.recipe}: no Dockerfile")
    if container.modules:
        from importlib.resources import files as package_files

        for module in container.modules:
            parts = module.split(".")
            if parts[:2] != ["gridgate", "workflows"]:
                raise ValueError(f"recipe module {module}: not a gridgate.workflows package")
            # Each parent package becomes an empty __init__.py: the copied programs need
            # only the standard library, never the rest of gridgate.
            for depth in range(1, len(parts)):
                files.setdefault("python/" + "/".join(parts[:depth]) + "/__init__.py", b"")
            source = package_files(module)
            for entry in sorted(source.iterdir(), key=lambda item: item.name):
                if entry.is_file() and _PY_FILE.match(entry.name):
                    files["python/" + "/".join(parts) + "/" + entry.name] = entry.read_bytes()
    hasher = hashlib.sha256(container.model_dump_json().encode())
    for name, content in sorted(files.items()):
        hasher.update(b"\0" + name.encode() + b"\0" + hashlib.sha256(content).digest())
    return Recipe(files=files, digest="sha256:" + hasher.hexdigest())


def image_request(
    container: Container, recipe: Recipe, parameters: Mapping[str, Any]
) -> ImageRequest:
    """What a job of validated ``parameters`` asks the submitter for."""
    named = parameters.get(container.digest_parameter) if container.digest_parameter else None
    return ImageRequest(
        repository=container.repository,
        recipe_digest=recipe.digest,
        build_args=build_arguments(container, parameters),
        digest=named or None,
        python=container.python,
        network=container.network,
    )


def build_arguments(container: Container, parameters: Mapping[str, Any]) -> dict[str, str]:
    """The build arguments of validated ``parameters``, as text.

    Raises
    ------
    ValueError
        If a value does not render as a plain word (cannot happen for values the schema
        accepted; a second guard for the builder).
    """
    values = {}
    for argument in container.build_args:
        text = render_value(parameters[argument.parameter])
        if not BUILD_ARG_VALUE.match(text):
            raise ValueError(f"build argument {argument.name}: {text!r} is not a plain word")
        values[argument.name] = text
    return dict(sorted(values.items()))


__all__ = [
    "BUILD_ARG_VALUE",
    "DIGEST_PATTERN",
    "BuildArgument",
    "Container",
    "Recipe",
    "build_arguments",
    "check_build_args",
    "image_request",
    "load_recipe",
]
