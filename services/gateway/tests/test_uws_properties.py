"""Property: whatever a client sends as a shipped workflow's parameters, the gateway answers
without a 5xx, and a job it accepted stays valid UWS XML (alone and in the job list)."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gridgate.workflows import WorkflowCatalogue

from .uws_schema import assert_valid_uws

WORKFLOWS = sorted({d.id for d in WorkflowCatalogue.shipped().latest()})

# Any Unicode text: control characters, U+FFFE, surrogates (which JSON cannot carry).
anything_text = st.text(st.characters(codec=None), max_size=300)
scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | anything_text
)
values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=5), max_leaves=10)


def schema_values(schema: dict[str, Any]) -> st.SearchStrategy[Any]:
    """Values near what the parameter's schema describes, and anything at all."""
    if "enum" in schema:
        near: st.SearchStrategy[Any] = st.sampled_from(schema["enum"])
    elif schema.get("type") == "integer":
        near = st.integers(
            min_value=int(schema.get("minimum", -(10**6))) - 2,
            max_value=int(schema.get("maximum", 10**6)) + 2,
        )
    elif schema.get("type") == "number":
        near = st.floats(
            min_value=float(schema.get("minimum", -1e6)) - 1,
            max_value=float(schema.get("maximum", 1e6)) + 1,
        )
    elif schema.get("type") == "array":
        near = st.lists(schema_values(schema.get("items", {})), max_size=6)
    else:
        near = anything_text
    # Form posts send strings: the same values as text.
    return near | near.map(str) | values


def run_property(base_url: str, token: str, workflow: str, properties: dict[str, Any]) -> None:
    parameters = st.fixed_dictionaries(
        {}, optional={k: schema_values(v) for k, v in properties.items()}
    )
    with httpx.Client(
        base_url=base_url, headers={"Authorization": f"Bearer {token}"}, timeout=30
    ) as http:

        @settings(
            max_examples=30,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        @given(parameters, st.none() | anything_text, st.booleans())
        def check(params: dict[str, Any], run_id: str | None, as_form: bool) -> None:
            fields: dict[str, Any] = {"workflow": workflow, **({"RUNID": run_id} if run_id else {})}
            try:
                if as_form:
                    data = {**fields, **{k: str(v) for k, v in params.items()}}
                    created = http.post("/uws/jobs", data=data)
                else:
                    created = http.post("/uws/jobs", json={**fields, "parameters": params})
            except UnicodeEncodeError:
                return  # lone surrogates: the client cannot even send them
            assert created.status_code < 500, created.text
            assert created.status_code in (303, 404, 409, 413, 422), created.text
            if created.status_code == 303:
                url = created.headers["location"]
                assert_valid_uws(http.get(url).content)
                changed = http.post(f"{url}/parameters", json=params)
                assert changed.status_code in (303, 422), changed.text
                assert_valid_uws(http.get(url).content)
                assert http.delete(url).status_code == 303

        check()
        assert_valid_uws(http.get("/uws/jobs").content)


@pytest.mark.parametrize("workflow", WORKFLOWS)
async def test_generated_parameters_never_break_the_gateway(
    stack, token_for, workflow: str
) -> None:
    token = token_for(f"prop-{workflow}")
    async with httpx.AsyncClient(
        base_url=stack.url,
        headers={"Authorization": f"Bearer {token}", "Accept": "application/json"},
    ) as http:
        properties = (await http.get(f"/api/workflows/{workflow}")).json()["parameters"][
            "properties"
        ]
    await asyncio.to_thread(run_property, stack.url, token, workflow, properties)
