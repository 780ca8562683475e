"""``gridgate workflows``, ``workflow``, ``facilities``: the catalogues."""

from __future__ import annotations

from typing import Any

import click
from rich.table import Table

from gridgate.cli.session import Session, handles_api_errors, pass_session


@click.command()
@click.option("--keyword", "-k", help="Only workflows whose title, description or keywords match.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_session
@handles_api_errors
def workflows(session: Session, keyword: str | None, as_json: bool) -> None:
    """List the workflow catalogue.

    \b
    Example:
      gridgate workflows --keyword cta
    """
    with session.api() as api:
        found = api.workflows(keyword)
    if as_json:
        session.print_json(found)
        return
    table = Table("id", "version", "title", "keywords", box=None)
    for workflow in found:
        table.add_row(
            workflow["id"], workflow["version"], workflow["title"], ", ".join(workflow["keywords"])
        )
    session.out.print(table)


@click.command()
@click.argument("workflow_id")
@click.option("--version", help="A version other than the latest.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_session
@handles_api_errors
def workflow(session: Session, workflow_id: str, version: str | None, as_json: bool) -> None:
    """Show one workflow: its parameters, their types, defaults and limits.

    \b
    Example:
      gridgate workflow cta-mc-production
    """
    with session.api() as api:
        found = api.workflow(workflow_id, version)
    if as_json:
        session.print_json(found)
        return
    session.out.print(f"[bold]{found['id']}[/] {found['version']}: {found['title']}")
    session.out.print(found["description"])
    if found.get("standin"):
        session.out.print(
            f"[yellow]stand-in:[/] {found.get('standinNote') or found.get('standin_note')}"
        )
    schema = found.get("parameters", {})
    required = set(schema.get("required", []))
    table = Table(
        "parameter", "type", "required", "default", "allowed / limits", "description", box=None
    )
    for name, spec in schema.get("properties", {}).items():
        table.add_row(
            name,
            _type_of(spec),
            "yes" if name in required else "",
            "" if "default" not in spec else str(spec["default"]),
            _limits(spec),
            spec.get("description") or spec.get("title") or "",
        )
    session.out.print(table)


def _type_of(spec: dict[str, Any]) -> str:
    kind = spec.get("type", "")
    return "|".join(kind) if isinstance(kind, list) else str(kind)


def _limits(spec: dict[str, Any]) -> str:
    if "enum" in spec:
        return ", ".join(map(str, spec["enum"]))
    parts = []
    for key, sign in (
        ("minimum", ">="),
        ("exclusiveMinimum", ">"),
        ("maximum", "<="),
        ("exclusiveMaximum", "<"),
        ("maxLength", "len <="),
        ("pattern", "~"),
    ):
        if key in spec:
            parts.append(f"{sign} {spec[key]}")
    return " ".join(parts)


@click.command()
@click.option("--gpu/--no-gpu", default=None, help="Only facilities with (or without) GPUs.")
@click.option("--min-memory-gb", type=float, help="At least this much memory per task.")
@click.option("--min-cores", type=int, help="At least this many cores per task.")
@click.option("--min-walltime-s", type=int, help="At least this long a run, in seconds.")
@click.option("--vo", help="Only facilities serving this VO.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_session
@handles_api_errors
def facilities(
    session: Session,
    gpu: bool | None,
    min_memory_gb: float | None,
    min_cores: int | None,
    min_walltime_s: int | None,
    vo: str | None,
    as_json: bool,
) -> None:
    """List the facilities and what one task there may use.

    \b
    Example:
      gridgate facilities --min-memory-gb 4 --vo cta
    """
    with session.api() as api:
        found = api.facilities(
            gpu=None if gpu is None else str(gpu).lower(),
            min_memory_gb=min_memory_gb,
            min_cores=min_cores,
            min_walltime_s=min_walltime_s,
            vo=vo,
        )
    if as_json:
        session.print_json(found)
        return
    table = Table("id", "kind", "cores", "memory GB", "GPUs", "max walltime s", "VOs", box=None)
    for facility in found:
        gpus = str(facility.get("gpu_count", 0))
        if facility.get("gpu_type"):
            gpus += f" ({facility['gpu_type']})"
        table.add_row(
            facility["id"],
            facility["kind"],
            str(facility["cores"]),
            str(facility["memory_gb"]),
            gpus,
            str(facility["max_walltime_s"]),
            ", ".join(facility.get("vos", [])),
        )
    session.out.print(table)
