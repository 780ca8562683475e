"""Loading definitions from a directory: semantic-version order and loud failures."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from gridgate.workflows import WorkflowCatalogue, WorkflowDefinitionError

MINIMAL: dict[str, Any] = {
    "id": "demo",
    "version": "1.0.0",
    "title": "Demo",
    "description": "A demo workflow.",
    "source_ref": "tests",
    "standin": False,
    "requirements": {"walltime_s": 60},
    "parameters": {
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "count": {
                "type": "integer",
                "title": "Count",
                "description": "How many.",
                "default": 1,
                "minimum": 1,
                "maximum": 5,
            }
        },
    },
    "execution": {
        "command": ["{python}", "-c", "pass", "--count={count}"],
        "outputs": ["*.txt"],
        "default_execution_duration_s": 60,
    },
}


def write_definition(root: Path, document: dict[str, Any]) -> None:
    directory = root / document["id"]
    directory.mkdir(parents=True, exist_ok=True)
    (directory / f"{document['version']}.yaml").write_text(yaml.safe_dump(document))


def variant(**changes: Any) -> dict[str, Any]:
    document = copy.deepcopy(MINIMAL)
    document.update(changes)
    return document


def test_versions_sort_semantically_and_latest_is_highest(tmp_path: Path) -> None:
    for version in ("1.9.0", "1.10.0", "1.2.3"):
        write_definition(tmp_path, variant(version=version))

    catalogue = WorkflowCatalogue.from_directory(tmp_path)

    assert catalogue.versions("demo") == ["1.2.3", "1.9.0", "1.10.0"]
    assert catalogue.get("demo").version == "1.10.0"
    assert catalogue.get("demo", "1.9.0").version == "1.9.0"
    assert [d.version for d in catalogue.list()] == ["1.2.3", "1.9.0", "1.10.0"]
    assert [d.version for d in catalogue.latest()] == ["1.10.0"]


def test_misspelt_key_fails_at_load(tmp_path: Path) -> None:
    document = variant()
    document["execution"]["output"] = document["execution"].pop("outputs")
    write_definition(tmp_path, document)

    with pytest.raises(WorkflowDefinitionError, match="output"):
        WorkflowCatalogue.from_directory(tmp_path)


def test_placeholder_naming_no_parameter_fails_at_load(tmp_path: Path) -> None:
    document = variant()
    document["execution"]["command"].append("--size={size}")
    write_definition(tmp_path, document)

    with pytest.raises(WorkflowDefinitionError, match=r"\{size\}"):
        WorkflowCatalogue.from_directory(tmp_path)


def test_invalid_json_schema_fails_at_load(tmp_path: Path) -> None:
    document = variant()
    document["parameters"]["properties"]["count"]["minimum"] = "one"
    write_definition(tmp_path, document)

    with pytest.raises(WorkflowDefinitionError, match="JSON Schema"):
        WorkflowCatalogue.from_directory(tmp_path)


def test_schema_allowing_extra_properties_fails_at_load(tmp_path: Path) -> None:
    document = variant()
    del document["parameters"]["additionalProperties"]
    write_definition(tmp_path, document)

    with pytest.raises(WorkflowDefinitionError, match="additionalProperties"):
        WorkflowCatalogue.from_directory(tmp_path)


def test_default_outside_its_bounds_fails_at_load(tmp_path: Path) -> None:
    document = variant()
    document["parameters"]["properties"]["count"]["default"] = 50
    write_definition(tmp_path, document)

    with pytest.raises(WorkflowDefinitionError, match="default"):
        WorkflowCatalogue.from_directory(tmp_path)


def test_file_name_must_match_declared_version(tmp_path: Path) -> None:
    write_definition(tmp_path, variant())
    (tmp_path / "demo" / "1.0.0.yaml").rename(tmp_path / "demo" / "2.0.0.yaml")

    with pytest.raises(WorkflowDefinitionError, match=r"expected demo 2\.0\.0"):
        WorkflowCatalogue.from_directory(tmp_path)


def test_output_pattern_escaping_the_work_directory_fails(tmp_path: Path) -> None:
    document = variant()
    document["execution"]["outputs"] = ["../secrets/*"]
    write_definition(tmp_path, document)

    with pytest.raises(WorkflowDefinitionError, match="relative"):
        WorkflowCatalogue.from_directory(tmp_path)


def test_unbounded_task_count_fails_at_load(tmp_path: Path) -> None:
    document = variant()
    del document["parameters"]["properties"]["count"]["maximum"]
    document["execution"]["tasks_from"] = "count"
    write_definition(tmp_path, document)

    with pytest.raises(WorkflowDefinitionError, match="maximum"):
        WorkflowCatalogue.from_directory(tmp_path)


def test_yaml_float_version_is_refused(tmp_path: Path) -> None:
    directory = tmp_path / "demo"
    directory.mkdir()
    text = yaml.safe_dump(variant()).replace("version: 1.0.0", "version: 1.0")
    (directory / "1.0.yaml").write_text(text)

    with pytest.raises(WorkflowDefinitionError, match="version"):
        WorkflowCatalogue.from_directory(tmp_path)
