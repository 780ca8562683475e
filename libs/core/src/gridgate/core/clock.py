"""Time and identifiers, in one place so that tests and code agree on their shape."""

from __future__ import annotations

import secrets
import uuid
from datetime import UTC, datetime


def utcnow() -> datetime:
    """Return the current time, timezone-aware, in UTC, to the microsecond."""
    return datetime.now(UTC)


def new_job_id() -> str:
    """Return a new job id: short, URL-safe and unguessable (ids must not leak other jobs)."""
    return secrets.token_hex(8)


def new_message_id() -> str:
    """Return a new message id (a UUID4 string), used for idempotency on the wire."""
    return str(uuid.uuid4())
