"""structlog set-up: JSON lines in production, readable lines in development.

A redaction step runs last so that a credential passed to a logger by mistake never leaves the
process: any key that names a secret is masked, and bearer values are cut out of strings.
"""

from __future__ import annotations

import functools
import logging
import re
import sys
from collections.abc import MutableMapping
from typing import Any

import structlog

SECRET_KEY_PATTERN = re.compile(
    r"token|secret|password|passwd|authorization|proxy_pem|private|credential|cookie", re.I
)
BEARER_PATTERN = re.compile(r"(?i)(bearer\s+)[A-Za-z0-9._~+/=-]+")
URL_PASSWORD_PATTERN = re.compile(r"(://[^:/@\s]+:)[^@\s]+@")


def redact_value(value: str) -> str:
    """Mask bearer tokens and URL passwords inside a free-text value."""
    # Each pattern needs its mark; most values (ids, names, phases) have neither, and the
    # check is cheaper than the search (this runs for every string of every log line).
    if "bearer" in value.lower():
        value = BEARER_PATTERN.sub(r"\1[redacted]", value)
    if "://" in value:
        value = URL_PASSWORD_PATTERN.sub(r"\1[redacted]@", value)
    return value


@functools.lru_cache(maxsize=1024)
def _names_a_secret(key: str) -> bool:
    # Log keys are few and repeat on every line: each is searched once.
    return SECRET_KEY_PATTERN.search(key) is not None


def redact_secrets(
    _logger: Any, _method: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """structlog processor: mask secret-named keys and credentials embedded in strings."""
    for key, value in list(event_dict.items()):
        if _names_a_secret(key):
            event_dict[key] = "[redacted]"
        elif isinstance(value, str):
            event_dict[key] = redact_value(value)
    return event_dict


class _CurrentStderr:
    """Writes to whatever ``sys.stderr`` is at the time of writing, not at configuration."""

    def write(self, text: str) -> int:
        return sys.stderr.write(text)

    def flush(self) -> None:
        sys.stderr.flush()


def configure_logging(*, json: bool = False, level: str = "INFO") -> None:
    """Configure structlog and the standard library logging to one stream.

    Parameters
    ----------
    json
        Emit one JSON object per line (production) instead of console lines.
    level
        Minimum level name.
    """
    renderer: Any = (
        structlog.processors.JSONRenderer() if json else structlog.dev.ConsoleRenderer(colors=False)
    )
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.format_exc_info,
        redact_secrets,
    ]
    structlog.configure(
        processors=[*shared, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level.upper())),
        logger_factory=structlog.PrintLoggerFactory(_CurrentStderr()),  # type: ignore[arg-type]
        cache_logger_on_first_use=True,
    )
    logging.basicConfig(level=level.upper(), stream=sys.stderr, format="%(name)s %(message)s")
    # Library chatter (aiormq reconnects, httpx requests) at INFO would bury job events.
    for noisy in ("aiormq", "aio_pika", "httpx", "httpcore", "uvicorn.access"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
