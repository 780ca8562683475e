"""Credentials never leave the process through a log line."""

from __future__ import annotations

import json

import structlog

from gridgate.core.logging import configure_logging


def test_secret_fields_and_embedded_bearer_tokens_are_masked(capsys) -> None:
    configure_logging(json=True)
    log = structlog.get_logger("t")
    log.info(
        "request",
        authorization="Bearer eyJhbGciOi.abc.def",
        access_token="eyJ.x.y",
        proxy_pem="-----BEGIN CERTIFICATE-----",
        detail="retrying with Bearer eyJhbGciOi.abc.def",
        url="amqp://guest:hunter2@rabbit:5672/",
        job_id="j1",
    )
    line = json.loads(capsys.readouterr().err.strip().splitlines()[-1])
    assert line["authorization"] == "[redacted]"
    assert line["access_token"] == "[redacted]"
    assert line["proxy_pem"] == "[redacted]"
    assert line["detail"] == "retrying with Bearer [redacted]"
    assert line["url"] == "amqp://guest:[redacted]@rabbit:5672/"
    assert line["job_id"] == "j1"
