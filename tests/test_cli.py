"""The command line: the demo end to end, a token, and a clear failure without RabbitMQ."""

from __future__ import annotations

import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

from gridgate.testing.services import free_port


def gridgate(*args: str, timeout: float = 180) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "gridgate.cli", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def test_demo_prints_a_completed_job_with_its_history_and_result(
    tmp_path: Path, broker_url: str
) -> None:
    done = gridgate(
        "demo", "--data-dir", str(tmp_path), "--port", str(free_port()), "--broker-url", broker_url
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "finished: COMPLETED" in done.stdout
    assert "PENDING -> QUEUED" in done.stdout
    assert "EXECUTING -> COMPLETED" in done.stdout
    assert "Hello, gridgate!" in done.stdout


def test_demo_schedule_fires_twice_then_deletes_the_schedule(
    tmp_path: Path, broker_url: str
) -> None:
    done = gridgate(
        "demo",
        "--schedule",
        "--every-s",
        "4",
        "--data-dir",
        str(tmp_path),
        "--port",
        str(free_port()),
        "--broker-url",
        broker_url,
        timeout=240,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "fired 2 time(s)" in done.stdout
    nominal = [
        datetime.fromisoformat(line.split()[1].replace("Z", "+00:00"))
        for line in done.stdout.splitlines()
        if line.strip().startswith("nominal ")
    ]
    assert len(nominal) == 2 and (nominal[1] - nominal[0]).total_seconds() == 4
    assert done.stdout.count("  COMPLETED") == 2
    assert "the run of " in done.stdout
    assert "(gone)" in done.stdout


def test_without_rabbitmq_it_fails_within_ten_seconds_and_says_how_to_start_it(
    tmp_path: Path,
) -> None:
    started = time.monotonic()
    done = gridgate(
        "dev",
        "--data-dir",
        str(tmp_path),
        "--port",
        str(free_port()),
        "--broker-url",
        "amqp://guest:guest@127.0.0.1:1/",
    )
    assert time.monotonic() - started < 10
    assert done.returncode == 3
    assert "rabbitmq-server -detached" in done.stderr


def test_dev_token_prints_a_token_of_the_dev_issuer(tmp_path: Path) -> None:
    done = gridgate("dev-token", "--user", "alice", "--group", "cta", "--data-dir", str(tmp_path))
    assert done.returncode == 0
    token = done.stdout.strip()
    from joserfc import jwt
    from joserfc.jwk import KeySet

    from gridgate.cli.stack import dev_issuer

    keys = KeySet.import_key_set(dev_issuer(tmp_path, "127.0.0.1", 8000).jwks())
    claims = jwt.decode(token, keys, algorithms=["RS256"]).claims
    assert claims["sub"] == "alice"
    assert claims["wlcg.groups"] == ["/cta"]
    assert claims["iss"] == "http://127.0.0.1:8000/auth/dev-issuer"
    assert (tmp_path / "dev-issuer-key.json").stat().st_mode & 0o077 == 0


def test_dev_token_mints_for_a_standalone_auth_service_issuer(tmp_path: Path) -> None:
    from joserfc import jwt
    from joserfc.jwk import KeySet

    from gridgate.iam import DevIssuer

    issuer_url = "http://127.0.0.1:8001/dev-issuer"
    key_file = tmp_path / "auth" / "issuer-key.json"
    served = DevIssuer(issuer_url, key_file)  # the key the auth service serves
    done = gridgate(
        "dev-token", "--user", "bob", "--issuer", issuer_url, "--key-file", str(key_file)
    )
    assert done.returncode == 0, done.stderr
    keys = KeySet.import_key_set(served.jwks())
    claims = jwt.decode(done.stdout.strip(), keys, algorithms=["RS256"]).claims
    assert claims["iss"] == issuer_url
    assert claims["sub"] == "bob"
