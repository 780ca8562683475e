"""The gateway's domain errors, each a stable problem type."""

from __future__ import annotations

from gridgate.core.errors import ConflictError, InvalidRequestError, NotFoundError, ProblemError


class JobNotFoundError(NotFoundError):
    """Also what another user's job looks like: its existence is not revealed."""

    slug, title = "job-not-found", "Job not found"


class ResultNotFoundError(NotFoundError):
    slug, title = "result-not-found", "Result not found"


class InvalidPhaseChangeError(ConflictError):
    slug, title = "invalid-phase-change", "Illegal phase change"


class JobNotPendingError(ConflictError):
    slug, title = "job-not-pending", "Job is no longer pending"


class UnknownFacilityError(InvalidRequestError):
    slug, title = "unknown-facility", "Unknown facility"


class FacilityCannotRunError(InvalidRequestError):
    slug, title = "facility-cannot-run-workflow", "Facility cannot meet the workflow's needs"


class InvalidJobFieldError(InvalidRequestError):
    slug, title = "invalid-job-field", "Invalid job field"


class NoVirtualOrganisationError(ProblemError):
    slug, title, status = "no-virtual-organisation", "No virtual organisation", 403


class InvalidCursorError(InvalidRequestError):
    slug, title = "invalid-cursor", "Invalid paging cursor"


class InternalAuthError(ProblemError):
    slug, title, status = "internal-auth-failed", "Internal authentication failed", 401
