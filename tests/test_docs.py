"""Documentation that is generated from code stays in step with it."""

from __future__ import annotations

from pathlib import Path

from gridgate.cli.problems_doc import problem_types
from gridgate.cli.problems_doc import render as render_problems
from gridgate.cli.settings_doc import render

ROOT = Path(__file__).resolve().parents[1]


def test_configuration_reference_matches_the_settings_classes() -> None:
    assert (ROOT / "docs" / "configuration.md").read_text() == render(), (
        "regenerate with: uv run python -m gridgate.cli.settings_doc > docs/configuration.md"
    )


def test_settings_doc_names_required_fields_and_factory_defaults() -> None:
    from pydantic import Field
    from pydantic_settings import BaseSettings

    from gridgate.cli.settings_doc import _field_default

    class Example(BaseSettings):
        needed: str
        mapping: dict[str, str] = Field(default_factory=dict)

    assert _field_default(Example.model_fields["needed"]) == "**required**"
    assert _field_default(Example.model_fields["mapping"]) == "`{}`"
    assert "PydanticUndefined" not in render()


def test_problem_registry_matches_the_problem_types_in_the_code() -> None:
    assert (ROOT / "docs" / "problems.md").read_text() == render_problems(), (
        "regenerate with: uv run python -m gridgate.cli.problems_doc > docs/problems.md"
    )


def test_every_problem_type_says_what_it_means_and_has_one_status() -> None:
    types = problem_types()
    assert len(types) >= 40
    for problem in types:
        assert problem.meaning, f"{problem.slug}: give its class a docstring"
    assert len({p.slug for p in types}) == len(types)
