"""The services' own settings classes, as the judges of what a deployment hands them."""

from __future__ import annotations

import os

import pytest
from pydantic_settings import BaseSettings

from gridgate.auth.config import AuthSettings
from gridgate.gateway.config import GatewaySettings
from gridgate.monitor.config import MonitorSettings
from gridgate.notifier.config import NotifierSettings
from gridgate.results.config import ResultsSettings
from gridgate.submitter.config import SubmitterSettings

SETTINGS: dict[str, type[BaseSettings]] = {
    "gateway": GatewaySettings,
    "auth": AuthSettings,
    "submitter": SubmitterSettings,
    "monitor": MonitorSettings,
    "results": ResultsSettings,
    "notifier": NotifierSettings,
}
# The dirac-proxymanager provider's client settings are being added to AuthSettings; until
# they are there, these names are let through unchecked (and checked as soon as they exist).
PENDING = {"GRIDGATE_AUTH_DIRAC_PYTHON", "GRIDGATE_AUTH_DIRAC_ROOT", "GRIDGATE_AUTH_DIRAC_CERT_DIR"}


def build_settings(
    service: str, environment: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> BaseSettings:
    """The service's settings as its process would build them from ``environment``.

    Every ``GRIDGATE_<SERVICE>_*`` name must be one of its settings: the classes ignore
    unknown names, so a misspelt one would otherwise pass silently.
    """
    cls = SETTINGS[service]
    prefix = f"GRIDGATE_{service.upper()}_"
    ours = {k: v for k, v in environment.items() if k.startswith(prefix)}
    unknown = {
        name
        for name in ours
        if name[len(prefix) :].lower() not in cls.model_fields and name not in PENDING
    }
    assert not unknown, f"{service}: not settings of {cls.__name__}: {sorted(unknown)}"
    for name in os.environ:
        if name.startswith("GRIDGATE_"):
            monkeypatch.delenv(name)
    for name, value in ours.items():
        monkeypatch.setenv(name, value)
    return cls()
