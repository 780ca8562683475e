"""Documentation that is generated from code stays in step with it."""

from __future__ import annotations

from pathlib import Path

from gridgate.cli.settings_doc import render

ROOT = Path(__file__).resolve().parents[1]


def test_configuration_reference_matches_the_settings_classes() -> None:
    assert (ROOT / "docs" / "configuration.md").read_text() == render(), (
        "regenerate with: uv run python -m gridgate.cli.settings_doc > docs/configuration.md"
    )
