"""Shared foundations of gridgate: settings, logging, errors, ids and time. No I/O here."""
