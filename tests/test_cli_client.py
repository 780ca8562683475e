"""The client commands of ``gridgate`` against a running stack, as a user runs them.

Each command runs as its own process (``python -m gridgate.cli``) over HTTP, so the stack's
event loop keeps serving while it runs: the commands are awaited as subprocesses. The CLI
keeps no state of its own, so one database (SQLite) is enough here; the gateway's tests
cover both.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from gridgate.cli import exits
from gridgate.testing.services import free_port

pytestmark = pytest.mark.parametrize("database_kind", ["sqlite"], indirect=True)


@dataclass
class Done:
    code: int
    out: str
    err: str

    def json(self) -> Any:
        return json.loads(self.out)


@pytest.fixture
def config_dir(tmp_path: Path) -> Path:
    return tmp_path / "config"


@pytest.fixture
def cli(stack: Any, token_for: Callable[..., str], config_dir: Path) -> Callable[..., Any]:
    """Run ``gridgate ARGS`` as alice (or ``token=None``: as nobody) against the stack."""
    token = token_for("alice")

    async def run(*args: str, token_: str | None = token) -> Done:
        env = {
            **os.environ,
            "GRIDGATE_URL": stack.url,
            "GRIDGATE_CONFIG_DIR": str(config_dir),
            "COLUMNS": "200",  # rich wraps tables at 80 columns off a terminal
        }
        env.pop("GRIDGATE_TOKEN", None)
        if token_ is not None:
            env["GRIDGATE_TOKEN"] = token_
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "gridgate.cli",
            *args,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=env,
        )
        out, err = await asyncio.wait_for(process.communicate(), 120)
        assert process.returncode is not None
        return Done(process.returncode, out.decode(), err.decode())

    return run


async def test_catalogue_listings_print_json_and_tables(cli: Callable[..., Any]) -> None:
    workflows = await cli("workflows", "--json")
    assert workflows.code == 0, workflows.err
    assert {"hello-world", "cta-mc-production"} <= {w["id"] for w in workflows.json()}
    cta = (await cli("workflows", "--keyword", "sim_telarray", "--json")).json()
    assert [w["id"] for w in cta] == ["cta-mc-production"]
    hello = (await cli("workflow", "hello-world", "--json")).json()
    assert set(hello["parameters"]["properties"]) == {"name", "repeat", "sleep_s", "exit_code"}
    table = await cli("workflow", "hello-world")
    assert "sleep_s" in table.out and "integer" in table.out
    facilities = (await cli("facilities", "--json")).json()
    assert "local" in {f["id"] for f in facilities}
    assert (await cli("facilities", "--min-memory-gb", "100000", "--json")).json() == []
    missing = await cli("workflow", "no-such-workflow")
    assert missing.code == exits.NOT_FOUND
    assert "404" in missing.err


async def test_submit_wait_status_logs_and_verified_results(
    cli: Callable[..., Any], tmp_path: Path
) -> None:
    params = tmp_path / "params.yaml"
    params.write_text("showers_per_job: 5\nprimary: proton\n")
    submitted = await cli(
        "submit", "cta-mc-production", "-f", str(params), "-p", "number_of_jobs=3", "--wait"
    )
    assert submitted.code == exits.OK, submitted.err
    job_id = submitted.out.strip()
    assert f"{job_id} finished: COMPLETED" in submitted.err
    assert "tasks: COMPLETED 3" in submitted.err  # the sweep's tasks per phase

    job = (await cli("status", job_id, "--json")).json()
    assert job["phase"] == "COMPLETED"
    assert job["parameters"]["primary"] == "proton"  # from the file
    assert job["parameters"]["number_of_jobs"] == "3"
    assert len(job["jobInfo"]["tasks"]) == 3
    shown = await cli("status", job_id)
    assert "EXECUTING -> COMPLETED" in shown.out

    log = await cli("logs", job_id, "--task", "1")
    assert log.code == 0
    assert "run 2: simulating 5 proton showers" in log.out

    listing = (await cli("results", job_id, "--json")).json()["results"]
    expected = {r["id"]: r["sha256"] for r in listing}
    out = tmp_path / "out"
    fetched = await cli("results", job_id, "-o", str(out), "--json")
    assert fetched.code == exits.OK, fetched.err
    assert {item["status"] for item in fetched.json()} == {"downloaded"}
    for name, sha in expected.items():
        assert hashlib.sha256((out / name).read_bytes()).hexdigest() == sha

    # Again: nothing is fetched twice.
    again = (await cli("results", job_id, "-o", str(out), "--json")).json()
    assert {item["status"] for item in again} == {"present"}

    # An interrupted download (half a .part left) is resumed with a range request.
    name = next(n for n in expected if n.endswith(".simtel.json"))
    whole = (out / name).read_bytes()
    (out / name).unlink()
    (out / f"{name}.part").write_bytes(whole[: len(whole) // 2])
    resumed = {
        i["id"]: i["status"]
        for i in (await cli("results", job_id, "-o", str(out), "--json")).json()
    }
    assert resumed[name] == "resumed"
    assert (out / name).read_bytes() == whole

    # A .part that does not hold the file's first bytes makes a bad copy: refused, not kept.
    (out / name).unlink()
    (out / f"{name}.part").write_bytes(b"X" * (len(whole) // 2))
    corrupt = await cli("results", job_id, "-o", str(out))
    assert corrupt.code == exits.CHECKSUM
    assert not (out / name).exists() and not (out / f"{name}.part").exists()


async def test_watch_exit_code_is_the_job_outcome(cli: Callable[..., Any]) -> None:
    failing = (await cli("submit", "hello-world", "-p", "exit_code=3", "--run")).out.strip()
    watched = await cli("watch", failing)
    assert watched.code == exits.JOB_ERROR, watched.err
    assert f"{failing} finished: ERROR" in watched.err
    assert "polled instead" not in watched.err  # it followed the job's event stream

    fine = (await cli("submit", "hello-world", "--run")).out.strip()
    watched = await cli("watch", fine)
    assert watched.code == exits.OK, watched.err
    assert "polled instead" not in watched.err


class _NoPolling:
    def follow(self, job_id: str, deadline: float | None = None) -> Any:
        raise AssertionError("fell back to polling")


async def test_job_updates_come_from_the_event_stream(
    cli: Callable[..., Any], stack: Any, token_for: Callable[..., str]
) -> None:
    """Each phase the job passes shows, read again after its event, without polling."""
    from gridgate.cli.api import GridgateApi
    from gridgate.cli.live import StreamingJobUpdates

    job_id = (await cli("submit", "hello-world", "-p", "sleep_s=1", "--run")).out.strip()

    def follow() -> list[str]:
        with GridgateApi(stack.url, token_for("alice")) as api:
            updates = StreamingJobUpdates(api, fallback=_NoPolling())
            return [job["phase"] for job in updates.follow(job_id, time.monotonic() + 60)]

    # The blocking client runs in a thread: the stack serves on this event loop.
    phases = await asyncio.to_thread(follow)
    assert phases[-1] == "COMPLETED", phases
    assert len(phases) == len(set(phases)) and "EXECUTING" in phases, phases


@pytest.mark.parametrize("gateway", ["no-stream", "buffering-proxy"])
async def test_watch_falls_back_to_polling_without_a_stream(
    database_kind: str, gateway: str
) -> None:
    """An older gateway (no event stream route), or a proxy that holds the stream's bytes
    back: the job is followed by polling to its end."""
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    from gridgate.cli.api import GridgateApi
    from gridgate.cli.live import StreamingJobUpdates

    reads: list[str] = []
    release = threading.Event()

    class OldGateway(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            reads.append(self.path)
            if self.path.endswith("/events") and gateway == "buffering-proxy":
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.end_headers()
                release.wait(10)  # nothing passes the "proxy" until the test ends
                return
            if self.path.endswith("/events"):
                # No such route on this gateway: 405 (a 404 would mean "not your job").
                body, status = b'{"title": "Method Not Allowed"}', 405
                kind = "application/problem+json"
            else:
                phase = "COMPLETED" if len(reads) > 3 else "EXECUTING"
                body = json.dumps({"jobId": "j1", "phase": phase}).encode()
                status, kind = 200, "application/json"
            self.send_response(status)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *_: object) -> None:
            return None

    server = ThreadingHTTPServer(("127.0.0.1", free_port()), OldGateway)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        with GridgateApi(f"http://127.0.0.1:{server.server_port}", "t") as api:
            updates = StreamingJobUpdates(api, quiet_s=1)
            phases = await asyncio.to_thread(
                lambda: [job["phase"] for job in updates.follow("j1", time.monotonic() + 30)]
            )
    finally:
        release.set()
        server.shutdown()
    assert phases == ["EXECUTING", "COMPLETED"]
    assert updates.fell_back
    assert ("405" if gateway == "no-stream" else "nothing came") in updates.fell_back
    assert any("WAIT=" in path for path in reads)


async def test_abort_then_delete(cli: Callable[..., Any]) -> None:
    job_id = (await cli("submit", "hello-world", "-p", "sleep_s=120", "--run")).out.strip()
    # It sleeps two minutes: watching it for 2 s ends with the timeout's exit code.
    timed_out = await cli("watch", job_id, "--timeout", "2")
    assert timed_out.code == exits.TIMEOUT, timed_out.err
    assert "after 2 s" in timed_out.err
    aborted = await cli("abort", job_id)
    assert aborted.code == exits.OK, aborted.err
    watched = await cli("watch", job_id)
    assert watched.code == exits.JOB_ABORTED
    assert (await cli("status", job_id, "--json")).json()["phase"] == "ABORTED"

    deleted = await cli("delete", job_id, "--yes")
    assert deleted.code == exits.OK, deleted.err
    gone = await cli("status", job_id)
    assert gone.code == exits.NOT_FOUND
    # Aborting a job that is gone is the same clear failure.
    assert (await cli("abort", job_id)).code == exits.NOT_FOUND


async def test_logs_follow_prints_the_output_as_it_grows_to_the_end(
    cli: Callable[..., Any],
) -> None:
    job_id = (
        await cli("submit", "hello-world", "-p", "repeat=3", "-p", "sleep_s=3", "--run")
    ).out.strip()
    followed = await cli("logs", job_id, "--follow")
    assert followed.code == exits.OK, followed.err
    stored = (await cli("logs", job_id)).out
    assert followed.out == stored
    assert stored.count("Hello, world!") == 3
    assert (await cli("status", job_id, "--json")).json()["phase"] == "COMPLETED"


async def test_logs_follow_wakes_on_the_job_events_and_reads_only_new_bytes(
    cli: Callable[..., Any], stack: Any, token_for: Callable[..., str]
) -> None:
    """With the timer out of play (an hour between reads), the follower still reads the
    whole log as the job ends: its events woke it. Each read asks for the bytes past those
    shown (an HTTP range), and the stored log is served in ranges."""
    import httpx

    from gridgate.cli.api import GridgateApi
    from gridgate.cli.live import LogFollower, StreamingJobUpdates

    job_id = (
        await cli("submit", "hello-world", "-p", "repeat=2", "-p", "sleep_s=1", "--run")
    ).out.strip()
    ranges: list[str | None] = []

    def follow() -> tuple[str, bytes, bool]:
        with GridgateApi(stack.url, token_for("alice")) as api:

            def seen(request: httpx.Request) -> None:
                if request.url.path.endswith("/stdout"):
                    ranges.append(request.headers.get("range"))

            api.http.event_hooks["request"].append(seen)
            follower = LogFollower(
                api,
                interval_s=3600,
                updates=lambda twin: StreamingJobUpdates(twin, fallback=_NoPolling()),
            )
            followed = "".join(follower.follow(job_id, "stdout", 0))
            tail, ranged = api.log_from(job_id, "stdout", 0, 7)
            return followed, tail, ranged

    followed, tail, ranged = await asyncio.to_thread(follow)
    stored = (await cli("logs", job_id)).out
    assert followed == stored and stored.count("Hello, world!") == 2
    # Woken by events only: a read at the start, then one per event at most.
    assert 2 <= len(ranges) <= 6, ranges
    assert all(r is None or r.startswith("bytes=") for r in ranges), ranges
    assert ranged and tail == stored.encode()[7:]


async def test_jobs_listing_json_and_phase_filter(cli: Callable[..., Any]) -> None:
    job_id = (await cli("submit", "hello-world", "--run-id", "listing")).out.strip()
    everything = (await cli("jobs", "--all", "--json")).json()
    assert job_id in {j["jobId"] for j in everything["jobs"]}
    assert everything["total"] >= 1
    pending = (await cli("jobs", "--phase", "pending", "--json")).json()
    assert {j["phase"] for j in pending["jobs"]} == {"PENDING"}
    assert job_id in {j["jobId"] for j in pending["jobs"]}
    completed = (await cli("jobs", "--phase", "COMPLETED", "--json")).json()
    assert job_id not in {j["jobId"] for j in completed["jobs"]}
    table = await cli("jobs", "--limit", "1")
    assert table.code == 0 and "hello-world" in table.out


async def test_submission_is_idempotent_and_refusals_name_the_field(
    cli: Callable[..., Any],
) -> None:
    first = await cli("submit", "hello-world", "--idempotency-key", "cli-key-1")
    second = await cli("submit", "hello-world", "--idempotency-key", "cli-key-1")
    assert first.code == second.code == 0
    assert first.out.strip() == second.out.strip()

    refused = await cli("submit", "hello-world", "-p", "repeat=0")
    assert refused.code == exits.REFUSED
    assert "invalid-parameters" in refused.err and "repeat" in refused.err
    assert (await cli("submit", "hello-world", "-p", "no-equals-sign")).code == exits.USAGE


async def test_without_a_token_or_a_gateway_the_exit_code_says_why(
    cli: Callable[..., Any], token_for: Callable[..., str]
) -> None:
    nobody = await cli("jobs", token_=None)
    assert nobody.code == exits.AUTH
    assert "gridgate login" in nobody.err
    expired = await cli("jobs", token_=token_for("alice", lifetime_s=-60))
    assert expired.code == exits.AUTH
    unreachable = await cli("--url", f"http://127.0.0.1:{free_port()}", "jobs")
    assert unreachable.code == exits.UNREACHABLE


async def test_whoami_and_completion(cli: Callable[..., Any]) -> None:
    me = (await cli("whoami", "--json")).json()
    assert me["sub"] == "alice" and me["accepted"] is True
    assert "/cta" in me["groups"]
    script = await cli("completion", "bash")
    assert "_GRIDGATE_COMPLETE" in script.out
    helped = await cli("submit", "--help")
    assert "gridgate submit hello-world -p name=Ada --wait" in helped.out


async def test_schedules_commands(cli: Callable[..., Any]) -> None:
    created = await cli(
        "schedules",
        "create",
        "hello-world",
        "--every",
        "1h",
        "-p",
        "name=cli",
        "--name",
        "from the cli",
        "--paused",
    )
    assert created.code == 0, created.err
    schedule_id = created.out.strip()
    listed = (await cli("schedules", "list", "--json")).json()
    assert schedule_id in {s["scheduleId"] for s in listed["schedules"]}
    assert "from the cli" in (await cli("schedules", "list")).out
    text = await cli("schedules", "show", schedule_id)
    assert text.code == 0, text.err
    assert "hello-world 1.0.0" in text.out and "interval hours=1" in text.out
    shown = (await cli("schedules", "show", schedule_id, "--json")).json()
    assert shown["paused"] is True and shown["parameters"] == {"name": "cli"}
    assert (await cli("schedules", "resume", schedule_id)).code == 0
    assert (await cli("schedules", "show", schedule_id, "--json")).json()["paused"] is False
    fired = await cli("schedules", "fire", schedule_id)
    assert fired.code == 0, fired.err
    job_id = fired.out.strip()
    assert (await cli("watch", job_id)).code == exits.OK
    runs = (await cli("schedules", "runs", schedule_id, "--json")).json()
    assert job_id in {r.get("jobId") for r in runs}
    assert (await cli("schedules", "delete", schedule_id)).code == 0
    assert (await cli("schedules", "show", schedule_id)).code == exits.NOT_FOUND
    bad = await cli("schedules", "create", "hello-world", "--cron", "not a cron")
    assert bad.code == exits.REFUSED


async def test_submit_notify_is_held_to_the_webhook_rules(cli: Callable[..., Any]) -> None:
    # A job's own webhook to an internal address: refused before any job exists.
    refused = await cli("submit", "hello-world", "--notify", "https://10.1.2.3/hook")
    assert refused.code == exits.REFUSED, refused.err
    assert refused.out == ""
    assert "10.1.2.3" in refused.err and "internal" in refused.err
