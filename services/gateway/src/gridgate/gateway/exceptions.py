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


class JobBusyError(ProblemError):
    """Many concurrent changes of one job kept this one from being recorded; rare."""

    slug, title, status = "job-busy", "Job busy", 503


class IdempotencyKeyReusedError(InvalidRequestError):
    """The Idempotency-Key was used before with a different request."""

    slug, title = "idempotency-key-reused", "Idempotency key reused"


class InvalidIdempotencyKeyError(InvalidRequestError):
    slug, title = "invalid-idempotency-key", "Invalid idempotency key"


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


class InvalidInputsError(InvalidRequestError):
    slug, title = "invalid-inputs", "Invalid job inputs"


class UnknownInputError(InvalidRequestError):
    slug, title = "unknown-input", "Input not found in the data lake"


class InputNotReadableError(ProblemError):
    """The user may not read a DID named as input (another user's private scope, say)."""

    slug, title, status = "input-not-readable", "Input not readable", 403


class DataLakeUnavailableError(ProblemError):
    slug, title, status = "data-lake-unavailable", "Data lake unavailable", 503


class SignedUrlInvalidError(ProblemError):
    slug, title, status = "signed-url-invalid", "Invalid signed URL", 403


class SignedUrlExpiredError(ProblemError):
    slug, title, status = "signed-url-expired", "Signed URL expired", 403


class ResultRemovedError(ProblemError):
    """The job passed its destruction time: its files left the results store."""

    slug, title, status = "result-removed", "Result removed", 410


class UnrepresentableTextError(InvalidRequestError):
    """A value holds a character XML 1.0 cannot carry (a control character, U+FFFE, ...):
    the job's UWS XML could not be written, so the value is refused."""

    slug, title = "unrepresentable-characters", "Characters not allowed"


class FileParametersUnsupportedError(InvalidRequestError):
    """A multipart file part: this gridgate does not store uploaded job inputs (yet)."""

    slug, title = "file-parameters-unsupported", "File parameters not supported"


class TooManyWaitsError(ProblemError):
    """The user already holds as many blocked WAIT requests as the gateway allows."""

    slug, title, status = "too-many-waits", "Too many waiting requests", 429
