"""Defaults of the command line's global options, apart from the session that uses them so
that the ``gridgate`` entry point can name them without loading the client (ADR 0019)."""

from __future__ import annotations

DEFAULT_URL = "http://127.0.0.1:8000"
