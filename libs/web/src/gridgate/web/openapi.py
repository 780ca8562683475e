"""The OpenAPI document tells the truth: bearer security, problem+json errors, raw bodies.

FastAPI documents what it validates itself. Three things it cannot see are filled in here:
the problem documents every error leaves as (its own 422 schema describes a body we never
send), the security schemes (a dependency that reads ``Authorization`` by hand is invisible),
and request bodies that handlers read by hand (UWS forms, where names are case-insensitive
and unknown names are a workflow's parameters, cannot be a validated pydantic body).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from fastapi.security import HTTPBearer
from pydantic import BaseModel, ConfigDict, Field

from gridgate.core.errors import PROBLEM_TYPE_PREFIX

PROBLEM_MEDIA_TYPE = "application/problem+json"
FORM_MEDIA_TYPE = "application/x-www-form-urlencoded"
JSON_MEDIA_TYPE = "application/json"
EVENT_STREAM_MEDIA_TYPE = "text/event-stream"
SCHEMA_REF = "#/components/schemas/{model}"

BEARER_SCHEME = "bearerAuth"
bearer = HTTPBearer(
    scheme_name=BEARER_SCHEME,
    bearerFormat="JWT",
    description="An access token of the configured issuer (INDIGO IAM), with the service's "
    "audience: `Authorization: Bearer <token>`.",
    # The authenticator answers a missing or malformed header itself, as problem+json.
    auto_error=False,
)
"""The user's bearer token, declared on every operation that depends on it."""


class FieldProblem(BaseModel):
    """One invalid field of a request."""

    field: str = Field(description="The field's name (a dotted path inside a JSON body).")
    message: str = Field(description="What is wrong with it.")


class Problem(BaseModel):
    """An error, as RFC 9457 problem details (``application/problem+json``).

    Branch on ``type``; the list of types is docs/problems.md.
    """

    model_config = ConfigDict(extra="allow")

    type: str = Field(
        description=f"A stable URN, `{PROBLEM_TYPE_PREFIX}<name>`.",
        examples=[f"{PROBLEM_TYPE_PREFIX}job-not-found"],
    )
    title: str = Field(description="A short summary of the type; the same for every occurrence.")
    status: int = Field(description="The HTTP status code of the answer.")
    detail: str = Field(description="What went wrong this time, for a human.")
    instance: str | None = Field(default=None, description="The path that was requested.")
    errors: list[FieldProblem] | None = Field(
        default=None, description="Each invalid field, when the problem is about fields."
    )


PROBLEM_MEANINGS = {
    401: "No bearer token, or one that is expired, for another audience or not signed by the "
    "issuer; `WWW-Authenticate` says so.",
    403: "The token's owner may not do this.",
    404: "Nothing is here, or it is another user's.",
    409: "The resource is in a state that does not allow this change.",
    410: "It was here and has been removed.",
    413: "The request body is larger than the service accepts.",
    422: "A field or parameter is invalid; `errors` names each one.",
    429: "Too many requests of this kind at once; `Retry-After` says when to try again.",
    503: "A dependency (the database, the broker, the data lake) is unavailable; try again after "
    "`Retry-After` seconds.",
}
_HEADERS = {
    401: {"WWW-Authenticate": {"schema": {"type": "string"}, "description": "`Bearer`."}},
    429: {"Retry-After": {"schema": {"type": "integer"}, "description": "Seconds to wait."}},
    503: {"Retry-After": {"schema": {"type": "integer"}, "description": "Seconds to wait."}},
}


def problem_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """The ``responses`` of a route for the problem statuses it can answer.

    Parameters
    ----------
    statuses
        HTTP statuses of :data:`PROBLEM_MEANINGS`.
    """
    responses: dict[int | str, dict[str, Any]] = {}
    for status in statuses:
        response: dict[str, Any] = {
            "description": PROBLEM_MEANINGS[status],
            "content": {PROBLEM_MEDIA_TYPE: {"schema": schema_ref(Problem)}},
        }
        if status in _HEADERS:
            response["headers"] = _HEADERS[status]
        responses[status] = response
    return responses


def schema_ref(model: type[BaseModel]) -> dict[str, str]:
    """A ``$ref`` to ``model`` among the document's schemas (see :func:`install_openapi`)."""
    return {"$ref": SCHEMA_REF.format(model=model.__name__)}


def request_body(
    *,
    form: type[BaseModel] | None = None,
    json: type[BaseModel] | None = None,
    description: str = "",
    required: bool = False,
) -> dict[str, Any]:
    """``openapi_extra`` declaring a body the handler reads by hand, as a form and/or JSON.

    Parameters
    ----------
    form
        The fields of an ``application/x-www-form-urlencoded`` body.
    json
        The fields of an ``application/json`` body.
    description
        What the body is for.
    required
        Whether a body must be sent; UWS also takes the fields in the query string.
    """
    content: dict[str, Any] = {}
    if form is not None:
        content[FORM_MEDIA_TYPE] = {"schema": schema_ref(form)}
    if json is not None:
        content[JSON_MEDIA_TYPE] = {"schema": schema_ref(json)}
    body: dict[str, Any] = {"content": content, "required": required}
    if description:
        body["description"] = description
    return {"requestBody": body}


def install_openapi(app: FastAPI, schemas: Iterable[type[BaseModel]] = ()) -> None:
    """Make ``app.openapi()`` build the completed document (once; it is cached).

    Parameters
    ----------
    app
        The application.
    schemas
        Models referred to by :func:`schema_ref` (request bodies read by hand); the
        :class:`Problem` schema is always added.
    """
    models: list[type[BaseModel]] = [Problem, *schemas]

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = complete(_generated(app), models)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def _generated(app: FastAPI) -> dict[str, Any]:
    return get_openapi(
        title=app.title,
        version=app.version,
        openapi_version=app.openapi_version,
        summary=app.summary,
        description=app.description,
        routes=app.routes,
        servers=app.servers,
        separate_input_output_schemas=app.separate_input_output_schemas,
    )


def complete(document: dict[str, Any], models: Iterable[type[BaseModel]]) -> dict[str, Any]:
    """Add ``models`` to the schemas, and answer every 422 with a :class:`Problem`.

    FastAPI's own 422 documents ``HTTPValidationError``, which the problem handlers replace
    (``gridgate.web.problems``); its schemas are dropped once nothing refers to them.

    A Server-Sent Events stream is described by FastAPI with OpenAPI 3.2's ``itemSchema``,
    which a 3.1 document may not hold: the body is then a string, and the schema of one
    message stays beside it as the extension ``x-itemSchema``.
    """
    components = document.setdefault("components", {})
    schemas: dict[str, Any] = components.setdefault("schemas", {})
    for model in models:
        schema = model.model_json_schema(ref_template=SCHEMA_REF, mode="validation")
        for name, definition in schema.pop("$defs", {}).items():
            schemas.setdefault(name, definition)
        schemas[model.__name__] = schema
    unprocessable = problem_responses(422)[422]
    for path in document.get("paths", {}).values():
        for operation in path.values():
            responses = operation.get("responses", {})
            if "422" in responses:
                responses["422"] = unprocessable
            for response in responses.values():
                stream = response.get("content", {}).get(EVENT_STREAM_MEDIA_TYPE)
                if stream is not None and "itemSchema" in stream:
                    stream["x-itemSchema"] = stream.pop("itemSchema")
                    stream["schema"] = {"type": "string"}
    for name in ("HTTPValidationError", "ValidationError"):
        schemas.pop(name, None)
    return document
