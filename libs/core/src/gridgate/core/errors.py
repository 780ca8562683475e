"""Domain errors with a stable problem type, and the worker error classes.

Every condition a client can act on is a :class:`ProblemError`; the web layer turns it into
``application/problem+json`` (RFC 9457). Workers class failures by what should happen next:
retry (:class:`TransientError`), tell the user (:class:`UsageError`) or dead-letter
(:class:`FatalError`).
"""

from __future__ import annotations

from typing import Any

PROBLEM_TYPE_PREFIX = "urn:gridgate:problem:"


class ProblemError(Exception):
    """A condition reported to an HTTP client as problem+json.

    Parameters
    ----------
    detail
        Human-readable explanation of this occurrence.
    headers
        HTTP headers the answer carries (``Retry-After``, say).
    extra
        Extension members added to the problem document (for example ``errors``).
    """

    slug: str = "internal-error"
    title: str = "Internal error"
    status: int = 500
    retry_after_s: int | None = None
    """Sent as ``Retry-After``: when the client may usefully try again."""

    def __init__(
        self, detail: str | None = None, *, headers: dict[str, str] | None = None, **extra: Any
    ) -> None:
        super().__init__(detail or self.title)
        self.detail = detail or self.title
        self.headers = dict(headers or {})
        self.extra = extra

    @property
    def type_uri(self) -> str:
        return PROBLEM_TYPE_PREFIX + self.slug

    def to_problem(self, instance: str | None = None) -> dict[str, Any]:
        """Return the RFC 9457 document for this error."""
        body: dict[str, Any] = {
            "type": self.type_uri,
            "title": self.title,
            "status": self.status,
            "detail": self.detail,
        }
        if instance:
            body["instance"] = instance
        body.update(self.extra)
        return body


class NotFoundError(ProblemError):
    """Nothing is at this URL."""

    slug, title, status = "not-found", "Not found", 404


class InvalidRequestError(ProblemError):
    """The request is malformed; `errors` names each bad field."""

    slug, title, status = "invalid-request", "Invalid request", 422


class AuthenticationError(ProblemError):
    """No bearer token, or one that is expired, not signed by the configured issuer, or for another
    audience."""

    slug, title, status = "unauthenticated", "Authentication required", 401


class ForbiddenError(ProblemError):
    """The caller may not do this."""

    slug, title, status = "forbidden", "Forbidden", 403


class ConflictError(ProblemError):
    """The request conflicts with the resource's current state."""

    slug, title, status = "conflict", "Conflict", 409


class ServiceUnavailableError(ProblemError):
    """A dependency is down; the same request may succeed later."""

    slug, title, status = "service-unavailable", "Service unavailable", 503
    retry_after_s = 5


class DatabaseUnavailableError(ServiceUnavailableError):
    """The database did not answer in time or refused the connection.

    For a request that writes, the change was either committed before this answer or it
    never will be; if the failure hit the commit itself the client cannot tell which, so it
    should look (for example list its jobs by RUNID) before submitting again.
    """

    slug, title = "database-unavailable", "Database unavailable"


class WorkerError(Exception):
    """Base of the errors a message handler raises to choose the message's fate."""


class TransientError(WorkerError):
    """Worth retrying later: a service was down, a timeout, a lock."""


class UsageError(WorkerError):
    """The job cannot run as asked; retrying will not help. The user gets the message."""


class FatalError(WorkerError):
    """A defect or corrupt message: dead-letter it and alert an operator."""
