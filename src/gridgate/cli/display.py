"""How a job looks on the terminal: its summary, and the live view ``watch`` updates."""

from __future__ import annotations

from collections import Counter

from rich.console import Group, RenderableType
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn
from rich.table import Table
from rich.text import Text

from gridgate.cli.api import Json

PHASE_STYLE = {
    "PENDING": "white",
    "QUEUED": "cyan",
    "EXECUTING": "blue",
    "COMPLETED": "green",
    "ERROR": "red",
    "ABORTED": "yellow",
    "ARCHIVED": "dim",
    "HELD": "magenta",
    "SUSPENDED": "magenta",
}
TASK_DONE = {"COMPLETED", "ERROR", "ABORTED"}


def phase_text(phase: str) -> Text:
    return Text(phase, style=PHASE_STYLE.get(phase, ""))


def task_counts(job: Json) -> Counter[str]:
    return Counter(task["phase"] for task in job["jobInfo"]["tasks"])


def counts_line(job: Json) -> str:
    counts = task_counts(job)
    return ", ".join(f"{phase} {n}" for phase, n in sorted(counts.items()))


def job_summary(job: Json) -> RenderableType:
    """``gridgate status``: the job, its tasks, its phase history."""
    info = job["jobInfo"]
    head = Table.grid(padding=(0, 2))
    head.add_row("job", job["jobId"])
    head.add_row("phase", phase_text(job["phase"]))
    head.add_row("workflow", f"{info['workflow']['id']} {info['workflow']['version']}")
    head.add_row("facility", info["facility"])
    head.add_row("created", str(job["creationTime"]))
    if job.get("runId"):
        head.add_row("run id", job["runId"])
    if info.get("pendingReason"):
        head.add_row("waiting", info["pendingReason"])
    if job.get("errorSummary"):
        head.add_row("error", Text(job["errorSummary"]["message"], style="red"))
    parts: list[RenderableType] = [head]
    tasks = Table("task", "phase", "facility job", "exit", "detail", title="tasks", box=None)
    for task in info["tasks"]:
        tasks.add_row(
            str(task["index"]),
            phase_text(task["phase"]),
            task.get("facilityJobId") or "",
            "" if task.get("exitCode") is None else str(task["exitCode"]),
            task.get("detail") or "",
        )
    parts.append(tasks)
    history = Table("at", "change", "source", "detail", title="phase history", box=None)
    for entry in info["history"]:
        change = f"{entry['from'] or '-'} -> {entry['to']}" if entry["to"] else ""
        history.add_row(str(entry["at"]), change, entry["source"], entry.get("detail") or "")
    parts.append(history)
    if job["results"]:
        results = Table("result", "bytes", "sha256", title="results", box=None)
        for result in job["results"]:
            results.add_row(result["id"], str(result["size"]), result["sha256"][:16] + "…")
        parts.append(results)
    return Group(*parts)


def live_view(job: Json) -> RenderableType:
    """``gridgate watch``: the phase, and for a sweep the tasks per phase and a bar."""
    line = Text.assemble(
        ("job ", "dim"),
        job["jobId"],
        "  ",
        phase_text(job["phase"]),
        ("  " + job["jobInfo"]["workflow"]["id"], "dim"),
    )
    tasks = job["jobInfo"]["tasks"]
    if len(tasks) <= 1:
        return line
    progress = Progress(
        TextColumn("tasks"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.description}")
    )
    done = sum(n for phase, n in task_counts(job).items() if phase in TASK_DONE)
    progress.add_task(counts_line(job), total=len(tasks), completed=done)
    return Group(line, progress)
