"""``gridgate submit``, ``jobs``, ``status``, ``watch``, ``logs``, ``abort``, ``delete``."""

from __future__ import annotations

import sys
import time
import uuid
from pathlib import Path
from typing import Any

import click
import yaml
from rich.live import Live
from rich.table import Table

from gridgate.cli import exits
from gridgate.cli.api import ApiError, GridgateApi, Json
from gridgate.cli.display import counts_line, job_summary, live_view, phase_text
from gridgate.cli.live import FINAL_PHASES, LogFollower, StreamingJobUpdates
from gridgate.cli.session import Session, handles_api_errors, pass_session

PHASES = (
    "PENDING",
    "QUEUED",
    "EXECUTING",
    "COMPLETED",
    "ERROR",
    "ABORTED",
    "ARCHIVED",
    "HELD",
    "SUSPENDED",
    "UNKNOWN",
)
SUBMIT_TRIES = 3


def _parameters(pairs: tuple[str, ...], file: Path | None) -> dict[str, Any]:
    parameters: dict[str, Any] = {}
    if file is not None:
        loaded = yaml.safe_load(file.read_text()) or {}
        if not isinstance(loaded, dict):
            raise click.BadParameter("must be a YAML mapping of parameter: value", param_hint="-f")
        parameters.update(loaded)
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name:
            raise click.BadParameter(f"{pair!r} is not key=value", param_hint="-p")
        # Strings as a form would send them: the gateway converts them by the workflow's schema.
        parameters[name] = value
    return parameters


def submit_job(api: GridgateApi, fields: Json, key: str) -> str:
    """POST the job, again after a lost answer or a 503: the same idempotency key makes a
    repeat answer with the job a first attempt may have created."""
    for attempt in range(1, SUBMIT_TRIES + 1):
        try:
            return api.submit(fields, key)
        except ApiError as exc:
            retryable = exc.exit_code == exits.UNREACHABLE or exc.status == 503
            if not retryable or attempt == SUBMIT_TRIES:
                raise
            time.sleep(attempt)
    raise AssertionError("unreachable")


@click.command()
@click.argument("workflow")
@click.option(
    "-p",
    "--param",
    "pairs",
    multiple=True,
    metavar="KEY=VALUE",
    help="A workflow parameter (repeatable).",
)
@click.option(
    "-f",
    "--params-file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="A YAML mapping of parameters (-p values override it).",
)
@click.option("--facility", help="Where to run (default: the gateway's, local).")
@click.option("--version", help="A workflow version other than the latest.")
@click.option("--vo", help="The VO to run as, if your token has several.")
@click.option("--run-id", help="Your own label for the job (UWS RUNID).")
@click.option(
    "--input",
    "inputs",
    multiple=True,
    metavar="SCOPE:NAME",
    help="A data-lake DID to read (repeatable).",
)
@click.option(
    "--run/--no-run",
    "run",
    default=False,
    help="Start it now (PHASE=RUN); otherwise it waits in PENDING.",
)
@click.option("--wait", is_flag=True, help="Start it and watch it to the end; exit code as watch.")
@click.option(
    "--notify",
    metavar="URL",
    help="The job's own webhook: its events are POSTed there, signed with your job-hook "
    "secret (docs/webhooks.md).",
)
@click.option(
    "--idempotency-key",
    help="Reuse a key to make a retried submission safe "
    "(default: a new random key, reused by the automatic retries).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the job's JSON instead of its id.")
@pass_session
@handles_api_errors
def submit(
    session: Session,
    workflow: str,
    pairs: tuple[str, ...],
    params_file: Path | None,
    facility: str | None,
    version: str | None,
    vo: str | None,
    run_id: str | None,
    inputs: tuple[str, ...],
    run: bool,
    wait: bool,
    notify: str | None,
    idempotency_key: str | None,
    as_json: bool,
) -> None:
    """Submit a job of WORKFLOW and print its id.

    \b
    Examples:
      gridgate submit hello-world -p name=Ada --wait
      gridgate submit cta-mc-production -f params.yaml --facility dirac-testbed --run
      JOB=$(gridgate submit hello-world --run) && gridgate watch "$JOB"
    """
    fields: Json = {"workflow": workflow, "parameters": _parameters(pairs, params_file)}
    optional = {
        "facility": facility,
        "version": version,
        "vo": vo,
        "RUNID": run_id,
        "notification_url": notify,
    }
    fields.update({key: value for key, value in optional.items() if value is not None})
    if inputs:
        fields["inputs"] = list(inputs)
    if run or wait:
        fields["PHASE"] = "RUN"
    with session.api() as api:
        job_id = submit_job(api, fields, idempotency_key or uuid.uuid4().hex)
        if as_json:
            session.print_json(api.job(job_id))
        else:
            print(job_id, flush=True)
        if wait:
            sys.exit(watch_job(session, api, job_id, timeout_s=None))


@click.command(name="jobs")
@click.option(
    "--phase",
    "phases",
    multiple=True,
    type=click.Choice(PHASES, case_sensitive=False),
    help="Only jobs in this phase (repeatable).",
)
@click.option(
    "--limit",
    type=click.IntRange(min=1),
    default=100,
    show_default=True,
    help="At most this many, newest first.",
)
@click.option("--all", "everything", is_flag=True, help="Every job, all pages.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_session
@handles_api_errors
def list_jobs(
    session: Session, phases: tuple[str, ...], limit: int, everything: bool, as_json: bool
) -> None:
    """List your jobs, newest first.

    \b
    Example:
      gridgate jobs --phase EXECUTING --phase QUEUED
    """
    with session.api() as api:
        found = api.jobs(tuple(p.upper() for p in phases), None if everything else limit)
    if as_json:
        session.print_json(found)
        return
    table = Table("job", "phase", "workflow", "facility", "created", "run id", box=None)
    for job in found["jobs"]:
        table.add_row(
            job["jobId"],
            phase_text(job["phase"]),
            job["workflow"],
            job["facility"],
            str(job["creationTime"]),
            job.get("runId") or "",
        )
    session.out.print(table)
    session.err.print(f"{len(found['jobs'])} of {found['total']} job(s)")


@click.command()
@click.argument("job_id")
@click.option("--json", "as_json", is_flag=True, help="Print the job's JSON.")
@pass_session
@handles_api_errors
def status(session: Session, job_id: str, as_json: bool) -> None:
    """Show a job: phase, tasks, phase history, results.

    \b
    Example:
      gridgate status 3f2a9c1e
    """
    with session.api() as api:
        job = api.job(job_id)
    if as_json:
        session.print_json(job)
    else:
        session.out.print(job_summary(job))


def watch_job(session: Session, api: GridgateApi, job_id: str, timeout_s: float | None) -> int:
    """Follow the job to its end on the terminal; its outcome as an exit code."""
    deadline = None if timeout_s is None else time.monotonic() + timeout_s
    updates = StreamingJobUpdates(api)
    job: Json | None = None
    live = session.err.is_terminal
    shown: tuple[str, str] | None = None
    display = Live(console=session.err, auto_refresh=False) if live else _Nothing()
    with display as view:
        for job in updates.follow(job_id, deadline):
            if view is not None:
                view.update(live_view(job), refresh=True)
                continue
            tasks = counts_line(job) if len(job["jobInfo"]["tasks"]) > 1 else ""
            if (job["phase"], tasks) != shown:
                shown = (job["phase"], tasks)
                session.err.print(
                    f"{job_id} {job['phase']}" + (f"  tasks: {tasks}" if tasks else "")
                )
    if updates.fell_back:
        session.err.print(f"(no live event stream: {updates.fell_back}; polled instead)")
    if job is None or job["phase"] not in FINAL_PHASES:
        session.err.print(f"{job_id} still {job['phase'] if job else '?'} after {timeout_s:g} s")
        return exits.TIMEOUT
    if job.get("errorSummary"):
        session.err.print(f"error: {job['errorSummary']['message']}")
    session.err.print(f"{job_id} finished: {job['phase']}")
    return exits.PHASE_EXIT.get(job["phase"], exits.JOB_ERROR)


class _Nothing:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *_: object) -> None:
        return None


@click.command()
@click.argument("job_id")
@click.option("--timeout", type=float, help="Give up after this many seconds (exit code 9).")
@pass_session
@handles_api_errors
def watch(session: Session, job_id: str, timeout: float | None) -> None:
    """Follow a job live until it ends; exit 0 COMPLETED, 1 ERROR, 7 ABORTED.

    A sweep shows its tasks per phase and a progress bar.

    \b
    Example:
      gridgate watch 3f2a9c1e && gridgate results 3f2a9c1e -o out/
    """
    with session.api() as api:
        sys.exit(watch_job(session, api, job_id, timeout))


@click.command()
@click.argument("job_id")
@click.option("--task", type=int, default=0, show_default=True, help="Which task of a sweep.")
@click.option("--stderr", "stream", flag_value="stderr", help="Standard error instead.")
@click.option("--stdout", "stream", flag_value="stdout", default=True, hidden=True)
@click.option("--follow", "-F", is_flag=True, help="Keep printing as it grows, to the job's end.")
@pass_session
@handles_api_errors
def logs(session: Session, job_id: str, task: int, stream: str, follow: bool) -> None:
    """Print a task's standard output (or error), live while it runs.

    \b
    Examples:
      gridgate logs 3f2a9c1e
      gridgate logs 3f2a9c1e --task 2 --stderr --follow
    """
    with session.api() as api:
        if not follow:
            sys.stdout.write(api.log(job_id, stream, task))
            return
        for text in LogFollower(api).follow(job_id, stream, task):
            sys.stdout.write(text)
            sys.stdout.flush()


@click.command()
@click.argument("job_id")
@pass_session
@handles_api_errors
def abort(session: Session, job_id: str) -> None:
    """Abort a job (PHASE=ABORT): its tasks are stopped at the facility.

    \b
    Example:
      gridgate abort 3f2a9c1e
    """
    with session.api() as api:
        api.abort(job_id)
        phase = api.job(job_id)["phase"]
    session.err.print(f"{job_id} {phase}" + ("" if phase in FINAL_PHASES else " (aborting)"))


@click.command()
@click.argument("job_id")
@click.option("--yes", "-y", is_flag=True, help="Do not ask.")
@pass_session
@handles_api_errors
def delete(session: Session, job_id: str, yes: bool) -> None:
    """Delete a job, its files on the facility and its results.

    \b
    Example:
      gridgate delete 3f2a9c1e --yes
    """
    if not yes and sys.stdin.isatty():
        click.confirm(f"Delete job {job_id} and its results?", abort=True)
    with session.api() as api:
        api.delete(job_id)
    session.err.print(f"{job_id} deleted")
