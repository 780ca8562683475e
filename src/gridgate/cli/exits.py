"""The exit codes of the ``gridgate`` client commands (documented in docs/cli.md)."""

from __future__ import annotations

OK = 0
"""Done; for ``watch`` and ``submit --wait``: the job COMPLETED."""
JOB_ERROR = 1
"""The job ended in ERROR (``watch``, ``submit --wait``)."""
USAGE = 2
"""The command line is wrong (click's own code for usage errors)."""
UNREACHABLE = 3
"""gridgate (or the identity provider) could not be reached."""
AUTH = 4
"""Not logged in, the token was refused (401), or not allowed (403)."""
NOT_FOUND = 5
"""No such job, workflow, facility or schedule, or it is gone (404, 410)."""
REFUSED = 6
"""The API refused the request: invalid fields, a conflict with the job's state (400, 409,
413, 422)."""
JOB_ABORTED = 7
"""The job was ABORTED (``watch``, ``submit --wait``)."""
CHECKSUM = 8
"""A downloaded result does not match its SHA-256."""
TIMEOUT = 9
"""``--timeout`` passed before the job ended."""
SERVER = 10
"""gridgate failed or is unavailable for now (5xx, 503, 429): try again later."""

PHASE_EXIT = {"COMPLETED": OK, "ERROR": JOB_ERROR, "ABORTED": JOB_ABORTED, "ARCHIVED": OK}
"""A finished job's phase as the command's exit code."""

ALL = {
    name: value
    for name, value in dict(globals()).items()
    if name.isupper() and isinstance(value, int)
}
