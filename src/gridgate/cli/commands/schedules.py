"""``gridgate schedules ...``: list, show, create, pause, resume, fire, runs, delete."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click
import yaml
from rich.table import Table

from gridgate.cli.session import Session, handles_api_errors, pass_session


@click.group()
def schedules() -> None:
    """Schedules: jobs made from a template on a cron, interval or new-data trigger.

    \b
    Examples:
      gridgate schedules list
      gridgate schedules create hello-world --every 1h -p name=nightly
      gridgate schedules create -f schedule.yaml
      gridgate schedules pause SCHEDULE_ID
    """


@schedules.command(name="list")
@click.option("--paused/--active", default=None, help="Only paused (or active) schedules.")
@click.option("--workflow", help="Only schedules of this workflow.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_session
@handles_api_errors
def list_schedules(
    session: Session, paused: bool | None, workflow: str | None, as_json: bool
) -> None:
    """List your schedules."""
    with session.api() as api:
        found = api.schedules(paused, workflow)
    if as_json:
        session.print_json(found)
        return
    table = Table("schedule", "name", "workflow", "paused", "next fire time", box=None)
    for item in found["schedules"]:
        table.add_row(
            item["scheduleId"],
            item.get("name") or "",
            item["workflow"],
            "yes" if item.get("paused") else "",
            str(item.get("nextFireTime") or ""),
        )
    session.out.print(table)


def _trigger(trigger: dict[str, Any]) -> str:
    kind = trigger.get("kind")
    if kind == "cron":
        return f"cron {trigger['expression']} {trigger.get('timezone', 'UTC')}"
    details = " ".join(f"{k}={v}" for k, v in trigger.items() if k != "kind" and v is not None)
    return f"{kind} {details}"


@schedules.command()
@click.argument("schedule_id")
@click.option("--preview", type=int, default=3, show_default=True, help="Next fire times shown.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_session
@handles_api_errors
def show(session: Session, schedule_id: str, preview: int, as_json: bool) -> None:
    """Show one schedule and its next fire times."""
    with session.api() as api:
        found = api.schedule(schedule_id, preview or None)
    if as_json:
        session.print_json(found)
        return
    workflow = found["workflow"]
    session.out.print(f"{'schedule':12} {found['scheduleId']}")
    session.out.print(f"{'workflow':12} {workflow['id']} {workflow['version']}")
    for key in ("name", "facility", "overlap", "paused", "pausedReason", "start", "end"):
        if found.get(key) is not None:
            session.out.print(f"{key:12} {found[key]}")
    session.out.print(f"{'trigger':12} {_trigger(found['trigger'])}")
    session.out.print(f"{'parameters':12} {found.get('parameters')}")
    for when in found.get("preview") or []:
        session.out.print(f"{'next':12} {when}")


def _every(text: str) -> dict[str, Any]:
    units = {"s": "seconds", "m": "minutes", "h": "hours"}
    number, unit = text[:-1], text[-1:]
    if unit not in units or not number.isdigit():
        raise click.BadParameter(
            f"{text!r}: a number and s, m or h, e.g. 30m", param_hint="--every"
        )
    return {"kind": "interval", units[unit]: int(number)}


@schedules.command()
@click.argument("workflow", required=False)
@click.option(
    "-f",
    "--file",
    "body_file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="The whole schedule as YAML or JSON (docs/schedules.md).",
)
@click.option(
    "-p",
    "--param",
    "pairs",
    multiple=True,
    metavar="KEY=VALUE",
    help="A parameter of the jobs ({nominal_time} is replaced).",
)
@click.option("--cron", help="Five-field cron expression.")
@click.option("--timezone", default="UTC", show_default=True, help="For --cron.")
@click.option("--every", help="Interval: 30m, 2h, 90s.")
@click.option("--name")
@click.option("--facility")
@click.option("--overlap", type=click.Choice(["allow", "forbid", "replace"]))
@click.option("--paused", is_flag=True, help="Create it paused.")
@click.option("--json", "as_json", is_flag=True, help="Print the schedule's JSON.")
@pass_session
@handles_api_errors
def create(
    session: Session,
    workflow: str | None,
    body_file: Path | None,
    pairs: tuple[str, ...],
    cron: str | None,
    timezone: str,
    every: str | None,
    name: str | None,
    facility: str | None,
    overlap: str | None,
    paused: bool,
    as_json: bool,
) -> None:
    """Create a schedule of WORKFLOW (or from -f FILE); print its id."""
    body: dict[str, Any] = {}
    if body_file is not None:
        loaded = yaml.safe_load(body_file.read_text())  # YAML reads JSON too
        if not isinstance(loaded, dict):
            raise click.BadParameter("must be a mapping", param_hint="-f")
        body.update(loaded)
    if workflow:
        body["workflow"] = workflow
    if cron:
        body["trigger"] = {"kind": "cron", "expression": cron, "timezone": timezone}
    elif every:
        body["trigger"] = _every(every)
    parameters = dict(body.get("parameters") or {})
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep:
            raise click.BadParameter(f"{pair!r} is not key=value", param_hint="-p")
        parameters[key] = value
    if parameters:
        body["parameters"] = parameters
    for field, given in {"name": name, "facility": facility, "overlap": overlap}.items():
        if given is not None:
            body[field] = given
    if paused:
        body["paused"] = True
    if "workflow" not in body or "trigger" not in body:
        raise click.UsageError("a schedule needs a workflow and a trigger (--cron, --every or -f)")
    with session.api() as api:
        created = api.create_schedule(body)
    if as_json:
        session.print_json(created)
    else:
        print(created["scheduleId"])


def _change(session: Session, schedule_id: str, changes: dict[str, Any], said: str) -> None:
    with session.api() as api:
        api.change_schedule(schedule_id, changes)
    session.err.print(f"{schedule_id} {said}")


@schedules.command()
@click.argument("schedule_id")
@pass_session
@handles_api_errors
def pause(session: Session, schedule_id: str) -> None:
    """Pause a schedule: it fires no more until resumed."""
    _change(session, schedule_id, {"paused": True}, "paused")


@schedules.command()
@click.argument("schedule_id")
@pass_session
@handles_api_errors
def resume(session: Session, schedule_id: str) -> None:
    """Resume a paused schedule."""
    _change(session, schedule_id, {"paused": False}, "resumed")


@schedules.command()
@click.argument("schedule_id")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_session
@handles_api_errors
def fire(session: Session, schedule_id: str, as_json: bool) -> None:
    """Fire a schedule now (its overlap policy applies); print the job id made, if any."""
    with session.api() as api:
        run = api.fire_schedule(schedule_id)
    if as_json:
        session.print_json(run)
    else:
        print(run.get("jobId") or f"skipped: {run.get('outcome')} {run.get('reason') or ''}")


@schedules.command()
@click.argument("schedule_id")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_session
@handles_api_errors
def runs(session: Session, schedule_id: str, as_json: bool) -> None:
    """Every firing of a schedule, newest first."""
    with session.api() as api:
        found = api.schedule_runs(schedule_id)
    if as_json:
        session.print_json(found)
        return
    table = Table("nominal", "fired", "outcome", "job", box=None)
    for run in found:
        table.add_row(
            str(run.get("nominalTime")),
            str(run.get("firedAt")),
            str(run.get("outcome")),
            run.get("jobId") or "",
        )
    session.out.print(table)


@schedules.command(name="delete")
@click.argument("schedule_id")
@pass_session
@handles_api_errors
def delete_schedule(session: Session, schedule_id: str) -> None:
    """Delete a schedule (the jobs it made stay)."""
    with session.api() as api:
        api.delete_schedule(schedule_id)
    session.err.print(f"{schedule_id} deleted")
