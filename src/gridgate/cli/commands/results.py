"""``gridgate results``: list a job's results, or download them all, checksums verified."""

from __future__ import annotations

import sys
from pathlib import Path

import click
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TransferSpeedColumn
from rich.table import Table

from gridgate.cli import exits
from gridgate.cli.downloads import download_all
from gridgate.cli.session import Session, handles_api_errors, pass_session


@click.command()
@click.argument("job_id")
@click.option(
    "-o",
    "--output-dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Download every result into this directory (resumes what is there).",
)
@click.option(
    "--parallel",
    type=click.IntRange(1, 16),
    default=4,
    show_default=True,
    help="Downloads at once.",
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_session
@handles_api_errors
def results(
    session: Session, job_id: str, output_dir: Path | None, parallel: int, as_json: bool
) -> None:
    """List a job's results, or download them with -o DIR (SHA-256 checked; exit 8 if not).

    \b
    Examples:
      gridgate results 3f2a9c1e
      gridgate results 3f2a9c1e -o out/
    """
    with session.api() as api:
        listing = api.results(job_id)
        files = listing["results"]
        if output_dir is None:
            if as_json:
                session.print_json(listing)
                return
            table = Table("result", "bytes", "type", "sha256", "DID", box=None)
            for result in files:
                table.add_row(
                    result["id"],
                    str(result["size"]),
                    result.get("mimeType") or "",
                    result["sha256"],
                    result.get("did") or "",
                )
            session.out.print(table)
            return
        output_dir.mkdir(parents=True, exist_ok=True)
        with Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            DownloadColumn(),
            TransferSpeedColumn(),
            console=session.err,
            disable=not session.err.is_terminal,
        ) as bars:
            tasks = {r["id"]: bars.add_task(r["id"], total=r["size"]) for r in files}
            done = download_all(
                api,
                files,
                output_dir,
                parallel=parallel,
                progress=lambda name, n: bars.advance(tasks[name], n),
            )
    if as_json:
        session.print_json(
            [
                {
                    "id": d.id,
                    "path": str(d.path),
                    "size": d.size,
                    "sha256": d.sha256,
                    "status": d.status,
                }
                for d in done
            ]
        )
    else:
        for item in done:
            session.err.print(f"{item.status:18} {item.path}")
    if not all(item.ok for item in done):
        session.err.print("checksum mismatch: the file was not kept; run again to retry")
        sys.exit(exits.CHECKSUM)
