"""Parameter validation: coercion, defaults, every bad field named, cross-field rules."""

from __future__ import annotations

from typing import Any

import pytest

from gridgate.workflows import (
    InvalidParametersError,
    WorkflowCatalogue,
    WorkflowDefinition,
    validate_parameters,
)


def workflow(workflow_id: str) -> WorkflowDefinition:
    return WorkflowCatalogue.shipped().get(workflow_id)


def problems(workflow_id: str, raw: dict[str, Any]) -> dict[str, str]:
    with pytest.raises(InvalidParametersError) as caught:
        validate_parameters(workflow(workflow_id), raw)
    return {error["field"]: error["message"] for error in caught.value.errors}


def test_defaults_fill_missing_parameters() -> None:
    parameters = validate_parameters(workflow("hello-world"), {})

    assert parameters == {"name": "world", "repeat": 1, "sleep_s": 0, "exit_code": 0}


def test_cta_defaults_match_the_seed_form() -> None:
    parameters = validate_parameters(workflow("cta-mc-production"), {})

    assert parameters["number_of_jobs"] == 1
    assert parameters["showers_per_job"] == 1000
    assert parameters["first_run_number"] == 1
    assert parameters["he_interaction_model"] == "SIBYLL"
    assert parameters["le_interaction_model"] == "GHEISHA"
    assert parameters["array_layout"] == "CTA-South"


def test_form_strings_are_coerced_to_schema_types() -> None:
    raw = {
        "showers": "25",
        "energy_min_gev": "1.5e1",
        "cherenkov_output": "false",
        "random_seeds": "11, 22,33",
    }

    parameters = validate_parameters(workflow("concordia-corsika"), raw)

    assert parameters["showers"] == 25
    assert parameters["energy_min_gev"] == 15.0
    assert parameters["cherenkov_output"] is False
    assert parameters["random_seeds"] == [11, 22, 33]


@pytest.mark.parametrize(("text", "expected"), [("1", True), ("0", False), ("TRUE", True)])
def test_boolean_strings(text: str, expected: bool) -> None:
    parameters = validate_parameters(workflow("concordia-corsika"), {"cherenkov_output": text})

    assert parameters["cherenkov_output"] is expected


def test_json_typed_values_pass_and_integral_floats_become_ints() -> None:
    parameters = validate_parameters(
        workflow("cta-mc-production"), {"number_of_jobs": 3.0, "primary": "proton"}
    )

    assert parameters["number_of_jobs"] == 3
    assert isinstance(parameters["number_of_jobs"], int)
    assert parameters["primary"] == "proton"


def test_empty_form_field_means_default() -> None:
    parameters = validate_parameters(workflow("hello-world"), {"repeat": "", "name": "x"})

    assert parameters["repeat"] == 1
    assert parameters["name"] == "x"


def test_every_bad_field_is_named_at_once() -> None:
    found = problems(
        "cta-mc-production",
        {
            "number_of_jobs": "0",
            "showers_per_job": "many",
            "he_interaction_model": "GEANT",
            "first_run_number": 2.5,
        },
    )

    assert set(found) == {
        "number_of_jobs",
        "showers_per_job",
        "he_interaction_model",
        "first_run_number",
    }
    assert found["number_of_jobs"] == "must be at least 1, got 0"
    assert found["showers_per_job"] == "must be an integer, got 'many'"
    assert "SIBYLL, QGSJET, EPOS" in found["he_interaction_model"]
    assert "integer" in found["first_run_number"]


def test_problem_document_carries_the_errors() -> None:
    with pytest.raises(InvalidParametersError) as caught:
        validate_parameters(workflow("hello-world"), {"repeat": "101", "exit_code": "-1"})

    problem = caught.value.to_problem()
    assert problem["status"] == 422
    assert problem["type"] == "urn:gridgate:problem:invalid-parameters"
    assert problem["errors"] == [
        {"field": "repeat", "message": "must be at most 100, got 101"},
        {"field": "exit_code", "message": "must be at least 0, got -1"},
    ]
    assert "repeat" in problem["detail"] and "exit_code" in problem["detail"]


def test_unknown_parameter_is_named_with_the_allowed_names() -> None:
    found = problems("hello-world", {"nmae": "typo", "repeat": "2"})

    assert list(found) == ["nmae"]
    assert found["nmae"] == "unknown parameter; allowed: name, repeat, sleep_s, exit_code"


def test_energy_minimum_must_be_below_maximum() -> None:
    found = problems("concordia-corsika", {"energy_min_gev": "1000", "energy_max_gev": "100"})

    assert found == {"energy_max_gev": "must be greater than energy_min_gev (1000), got 100"}


def test_equal_energies_are_refused_but_a_fixed_zenith_is_allowed() -> None:
    definition = workflow("concordia-corsika")

    found = problems("concordia-corsika", {"energy_min_gev": 50, "energy_max_gev": 50})
    parameters = validate_parameters(definition, {"zenith_min_deg": 40, "zenith_max_deg": 40})

    assert list(found) == ["energy_max_gev"]
    assert parameters["zenith_min_deg"] == parameters["zenith_max_deg"] == 40


def test_several_rules_and_bounds_reported_together() -> None:
    found = problems(
        "concordia-corsika",
        {
            "zenith_min_deg": "60",
            "zenith_max_deg": "10",
            "azimuth_max_deg": "400",
            "cherenkov_wavelength_min_nm": "700",
            "cherenkov_wavelength_max_nm": "300",
        },
    )

    assert found == {
        "zenith_max_deg": "must be greater than or equal to zenith_min_deg (60), got 10",
        "azimuth_max_deg": "must be at most 360, got 400",
        "cherenkov_wavelength_max_nm": (
            "must be greater than cherenkov_wavelength_min_nm (700), got 300"
        ),
    }


def test_array_items_are_checked_one_by_one() -> None:
    found = problems("concordia-corsika", {"random_seeds": "1,x"})
    too_big = problems("concordia-corsika", {"random_seeds": [1, 900000001]})
    too_many = problems("concordia-corsika", {"random_seeds": "1,2,3,4,5"})
    repeated = problems("concordia-corsika", {"random_seeds": "7,7"})

    assert found == {"random_seeds": "item 2: must be an integer, got 'x'"}
    assert too_big == {"random_seeds": "item 2: must be at most 900000000, got 900000001"}
    assert too_many == {"random_seeds": "must have at most 4 items"}
    assert repeated == {"random_seeds": "items must all differ"}


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("nan", "must be a number, got 'nan'"),
        ("inf", "must be a number, got 'inf'"),
        (float("nan"), "must be a finite number"),
        (float("-inf"), "must be a finite number"),
    ],
)
def test_non_finite_numbers_are_refused(value: Any, message: str) -> None:
    found = problems("hello-world", {"sleep_s": value})

    assert found == {"sleep_s": message}


def test_boolean_is_not_an_integer() -> None:
    found = problems("hello-world", {"repeat": True})

    assert found == {"repeat": "must be of type integer, got True"}


def test_nul_character_is_refused() -> None:
    found = problems("hello-world", {"name": "a\x00b"})

    assert found == {"name": "must not contain NUL characters"}


def test_long_values_are_not_echoed_in_full() -> None:
    found = problems("hello-world", {"name": "x" * 10_000, "repeat": "9" * 10_000})

    assert found["name"] == "must be at most 200 characters long"
    assert len(found["repeat"]) < 200


def test_returned_defaults_are_copies() -> None:
    definition = workflow("concordia-corsika")

    first = validate_parameters(definition, {})
    first["random_seeds"].append(99)
    second = validate_parameters(definition, {})

    assert second["random_seeds"] == [1, 2, 3, 4]


def test_parameters_digest_is_stable_and_tells_values_apart() -> None:
    from gridgate.workflows import parameters_digest

    digest = parameters_digest({"b": 1, "a": [1, 2], "name": "é"})
    assert digest == parameters_digest({"name": "é", "a": [1, 2], "b": 1})
    assert digest.startswith("sha256:") and len(digest) == 7 + 64
    assert digest != parameters_digest({"b": 2, "a": [1, 2], "name": "é"})
