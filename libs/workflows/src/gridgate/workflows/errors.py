"""Errors of the workflow catalogue, each with a stable problem type slug.

The job-creation code reuses these, so a client sees the same ``type`` whether it asked for a
workflow's description or tried to run it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypedDict

from gridgate.core.errors import InvalidRequestError, NotFoundError

# Client-supplied text is echoed in problem documents; cap it so a hostile value cannot
# inflate the response.
_ECHO_LIMIT = 80
_MAX_ERRORS = 50
"""Errors listed in one problem document; a flood of bad fields gets a count of the rest."""


def echo(value: object) -> str:
    """Return ``repr(value)`` shortened to a length fit for an error message.

    Parameters
    ----------
    value
        Any value a client sent.

    Returns
    -------
    str
        The representation, cut at 80 characters with an ellipsis when longer.
    """
    text = repr(value)
    return text if len(text) <= _ECHO_LIMIT else text[: _ECHO_LIMIT - 1] + "…"


class FieldError(TypedDict):
    """One invalid parameter: its name (or a JSON pointer) and what is wrong with it."""

    field: str
    message: str


class UnknownWorkflowError(NotFoundError):
    """No workflow in the catalogue has the requested id.

    Parameters
    ----------
    workflow_id
        The id the client asked for.
    """

    slug, title, status = "unknown-workflow", "Unknown workflow", 404

    def __init__(self, workflow_id: str) -> None:
        super().__init__(f"There is no workflow with id {echo(workflow_id)}.")
        self.workflow_id = workflow_id


class UnknownWorkflowVersionError(NotFoundError):
    """The workflow exists but not in the requested version.

    Parameters
    ----------
    workflow_id
        The workflow's id.
    version
        The version the client asked for.
    available
        The versions the catalogue holds, oldest first; sent as ``available_versions``.
    """

    slug, title, status = "unknown-workflow-version", "Unknown workflow version", 404

    def __init__(self, workflow_id: str, version: str, available: Sequence[str]) -> None:
        super().__init__(
            f"Workflow {echo(workflow_id)} has no version {echo(version)}; "
            f"available: {', '.join(available)}.",
            available_versions=list(available),
        )
        self.workflow_id = workflow_id
        self.version = version
        self.available_versions = list(available)


class InvalidParametersError(InvalidRequestError):
    """One or more job parameters are invalid; ``errors`` names every one of them.

    Parameters
    ----------
    errors
        One entry per problem, in the order of the workflow's parameter schema; sent as the
        ``errors`` member of the problem document.
    """

    slug, title, status = "invalid-parameters", "Invalid parameters", 422

    def __init__(self, errors: Sequence[FieldError]) -> None:
        # Field names are the client's own: shortened, and only the first ones listed.
        copied = [
            FieldError(field=_shorten(error["field"]), message=error["message"])
            for error in errors[:_MAX_ERRORS]
        ]
        fields = list(dict.fromkeys(error["field"] for error in copied))
        more = len(errors) - len(copied)
        detail = f"Invalid parameters: {', '.join(fields)}" + (
            f" and {more} more." if more else "."
        )
        super().__init__(detail, errors=copied)
        self.errors = copied


def _shorten(text: str) -> str:
    return text if len(text) <= _ECHO_LIMIT else text[: _ECHO_LIMIT - 1] + "…"


class WorkflowDefinitionError(ValueError):
    """A workflow definition file is malformed.

    This is a deployment defect, not a client's mistake, so it is no ``ProblemError``: the
    catalogue refuses to load and the service does not start.
    """
