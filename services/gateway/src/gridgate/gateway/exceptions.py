"""The gateway's domain errors, each a stable problem type."""

from __future__ import annotations

from gridgate.core.errors import ConflictError, InvalidRequestError, NotFoundError, ProblemError


class JobNotFoundError(NotFoundError):
    """Also what another user's job looks like: its existence is not revealed."""

    slug, title = "job-not-found", "Job not found"


class ResultNotFoundError(NotFoundError):
    """The job has no result of this name."""

    slug, title = "result-not-found", "Result not found"


class InvalidPhaseChangeError(ConflictError):
    """The phase change asked for is not allowed from the job's current phase (see the UWS 1.1
    state machine)."""

    slug, title = "invalid-phase-change", "Illegal phase change"


class JobNotPendingError(ConflictError):
    """The field can only change while the job is PENDING."""

    slug, title = "job-not-pending", "Job is no longer pending"


class JobBusyError(ProblemError):
    """Many concurrent changes of one job kept this one from being recorded; rare."""

    slug, title, status = "job-busy", "Job busy", 503


class IdempotencyKeyReusedError(InvalidRequestError):
    """The Idempotency-Key was used before with a different request."""

    slug, title = "idempotency-key-reused", "Idempotency key reused"


class InvalidIdempotencyKeyError(InvalidRequestError):
    """The Idempotency-Key header is empty, too long or not printable ASCII."""

    slug, title = "invalid-idempotency-key", "Invalid idempotency key"


class UnknownFacilityError(InvalidRequestError):
    """No facility of the catalogue has this id (see /api/facilities)."""

    slug, title = "unknown-facility", "Unknown facility"


class FacilityCannotRunError(InvalidRequestError):
    """The facility lacks what the workflow needs (cores, memory, GPUs, walltime) or does not serve
    the VO; `errors` lists each shortfall."""

    slug, title = "facility-cannot-run-workflow", "Facility cannot meet the workflow's needs"


class InvalidJobFieldError(InvalidRequestError):
    """A UWS field (executionduration, destruction, RUNID, ...) has a value the service refuses."""

    slug, title = "invalid-job-field", "Invalid job field"


class NoVirtualOrganisationError(ProblemError):
    """The token names no group, or not the VO asked for, so no VO can be charged for the job."""

    slug, title, status = "no-virtual-organisation", "No virtual organisation", 403


class InvalidCursorError(InvalidRequestError):
    """The paging cursor was not issued by this service."""

    slug, title = "invalid-cursor", "Invalid paging cursor"


class InternalAuthError(ProblemError):
    """An internal route was called without the right internal token; only gridgate's own services
    call these."""

    slug, title, status = "internal-auth-failed", "Internal authentication failed", 401


class InvalidInputsError(InvalidRequestError):
    """The job's inputs or files_per_job cannot be used as given."""

    slug, title = "invalid-inputs", "Invalid job inputs"


class UnknownInputError(InvalidRequestError):
    """A DID named as input does not exist in the data lake."""

    slug, title = "unknown-input", "Input not found in the data lake"


class InputNotReadableError(ProblemError):
    """The user may not read a DID named as input (another user's private scope, say)."""

    slug, title, status = "input-not-readable", "Input not readable", 403


class DataLakeUnavailableError(ProblemError):
    """Rucio did not answer while the job's inputs were checked; retry later."""

    slug, title, status = "data-lake-unavailable", "Data lake unavailable", 503


class SignedUrlInvalidError(ProblemError):
    """The signature of the download URL does not match: it was altered or signed by another
    gateway key."""

    slug, title, status = "signed-url-invalid", "Invalid signed URL", 403


class SignedUrlExpiredError(ProblemError):
    """The signed download URL is past its expiry; ask the job's results again for a fresh one."""

    slug, title, status = "signed-url-expired", "Signed URL expired", 403


class ResultRemovedError(ProblemError):
    """The job passed its destruction time: its files left the results store."""

    slug, title, status = "result-removed", "Result removed", 410


class ScheduleNotFoundError(NotFoundError):
    """Also what another user's schedule looks like: its existence is not revealed."""

    slug, title = "schedule-not-found", "Schedule not found"


class InvalidScheduleError(InvalidRequestError):
    """The schedule's trigger or policies cannot be used as given (a cron expression that does
    not parse, an unknown time zone, an interval below the operator's minimum, an end before
    the start, a catch-up above the operator's maximum); `errors` names each field."""

    slug, title = "invalid-schedule", "Invalid schedule"


class UnknownPlaceholderError(InvalidRequestError):
    """A parameter of the schedule's job template names a placeholder other than
    `{nominal_time}` and `{previous_success_time}`, or uses a format the template syntax does
    not have (write `{{` and `}}` for literal braces)."""

    slug, title = "unknown-placeholder", "Unknown placeholder"


class ScheduleLimitError(ConflictError):
    """You have as many schedules as the operator allows one user; delete one first."""

    slug, title = "schedule-limit-reached", "Too many schedules"


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


class PortalFileNotFoundError(NotFoundError):
    """The web portal has no file of this name."""

    slug, title = "portal-file-not-found", "Portal file not found"


class NotContainerisedError(NotFoundError):
    """The workflow does not run in a container image, so it has no images to list."""

    slug, title = "not-containerised", "Workflow has no image recipe"


class ImageRegistryUnavailableError(ProblemError):
    """The image registry is not configured here, or did not answer; try again later."""

    slug, title, status = "image-registry-unavailable", "Image registry unavailable", 503
    retry_after_s = 30
