"""Building DIRAC job descriptions (JDL) that no user value can subvert.

User parameters never enter the JDL as text: each task's argument vector travels in
``tasks.json`` in the input sandbox, or, for a job of a parametric submission, as its task
document encoded in base64url (an alphabet no ClassAd, shell or DIRAC placeholder gives a
meaning to). A fixed wrapper (``gridgate_task.py``) runs it without a shell. The JDL holds only
our own values, and every string in it is escaped all the same.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field

WRAPPER = "gridgate_task.py"
TASKS_FILE = "tasks.json"
STDOUT = "std.out"
STDERR = "std.err"
TASK_DOCUMENT_ENV = "GRIDGATE_TASK_DOCUMENT"
"""Where a job of a parametric submission finds its own task document (base64url of
``tasks.json``): DIRAC's JobWrapper sets it from the job's ExecutionEnvironment."""
SAFE_NAME = re.compile(r"[^A-Za-z0-9._-]")
BASE64URL = re.compile(r"[A-Za-z0-9_-]+")


def jdl_string(value: str) -> str:
    """A ClassAd string literal: quotes and backslashes escaped, control characters dropped."""
    cleaned = "".join(ch for ch in value if ch >= " " and ch != "\x7f")
    return '"' + cleaned.replace("\\", "\\\\").replace('"', '\\"') + '"'


def jdl_list(values: Sequence[str]) -> str:
    return "{" + ", ".join(jdl_string(v) for v in values) + "}"


def job_group(job_id: str) -> str:
    """The DIRAC JobGroup of a gridgate job: how a redelivered submit finds its DIRAC jobs."""
    return f"gridgate.{job_id}"


def task_name(job_id: str, index: int) -> str:
    """The DIRAC JobName of one task: which gridgate job and task a DIRAC job runs."""
    return f"gridgate.{job_id}.{index}"


@dataclass(frozen=True)
class Slot:
    """One DIRAC job of a submission: task ``task_index`` of gridgate job ``job_id``."""

    job_id: str
    task_index: int


@dataclass(frozen=True)
class JobDescription:
    """What DIRAC needs to know of one submission: one task, or many as a parametric job.

    The tasks of several gridgate jobs of one owner and workflow may share a submission; each
    DIRAC job still carries its own gridgate job id (JobGroup) and task (JobName), so that a
    redelivered submit finds exactly the tasks DIRAC already holds.
    """

    slots: list[Slot]
    cpu_time_s: int
    input_sandbox: list[str]
    output_files: list[str] = field(default_factory=list)
    processors: int = 1
    tags: list[str] = field(default_factory=list)
    platform: str | None = None
    sites: list[str] = field(default_factory=list)
    input_data: list[str] = field(default_factory=list)
    environment: dict[str, str] = field(default_factory=dict)
    slot_documents: list[str] = field(default_factory=list)
    """A parametric job's task document of each slot, base64url-encoded: DIRAC expands each
    job's JDL with its own value only, so that DIRAC job alone receives it."""
    slot_sandboxes: list[str] = field(default_factory=list)
    """Otherwise (a document too large for the environment), the ``SB:`` sandbox of each slot
    holding its ``tasks.json``."""
    packed_sandbox: str | None = None
    """DiracX: the job's wrapper, ``tasks.json`` and input files as one stored archive (its
    ``SB:`` PFN), named in the InputSandbox in place of the separate files."""


def _input_sandbox(description: JobDescription, own_tasks: str | None) -> list[str]:
    if description.packed_sandbox:
        return [description.packed_sandbox]
    return [WRAPPER, *([own_tasks] if own_tasks else []), *description.input_sandbox]


def _own_task_lines(description: JobDescription) -> tuple[list[str], str | None]:
    """How each job of a parametric submission gets its own task: the JDL lines of the
    per-slot list, and the input sandbox entry (``None``: it comes in the environment)."""
    slots = description.slots
    if description.slot_documents:
        if len(description.slot_documents) != len(slots):
            raise ValueError("a parametric job needs one task document of its own per slot")
        for document in description.slot_documents:
            if not BASE64URL.fullmatch(document):
                raise ValueError("a task document must be base64url without padding")
        return [f"Parameters.doc = {jdl_list(description.slot_documents)};"], None
    if len(description.slot_sandboxes) != len(slots):
        raise ValueError("a parametric job needs a task document or a sandbox of its own per slot")
    return [f"Parameters.sandbox = {jdl_list(description.slot_sandboxes)};"], "%(sandbox)s"


def build_jdl(description: JobDescription) -> str:
    """One JDL; several slots become one parametric job of as many DIRAC jobs.

    The wrapper's argument is the slot. Parametric jobs take the gridgate job id from the
    parameter list (``%s``), the task index from a second list (``%(task)s``), the slot from
    DIRAC's own job counter (``%n``) and the slot's own task document from a third: inline
    (``%(doc)s``, into the job's environment) or as a sandbox of its own (``%(sandbox)s``).
    DIRAC expands each job's JDL with its own values only, so no DIRAC job receives another's
    arguments or callback token.
    """
    slots = description.slots
    if not slots:
        raise ValueError("a submission needs at least one task")
    environment = [f"{k}={v}" for k, v in sorted(description.environment.items())]
    if len(slots) == 1:
        lines = [
            f"JobName = {jdl_string(task_name(slots[0].job_id, slots[0].task_index))};",
            f"JobGroup = {jdl_string(job_group(slots[0].job_id))};",
            'Arguments = "0";',
        ]
        # One job's tasks.json travels in its own input sandbox.
        own_tasks: str | None = TASKS_FILE
    else:
        for slot in slots:
            if SAFE_NAME.search(slot.job_id):
                raise ValueError(f"job id {slot.job_id!r} is not a plain name")
        own_lines, own_tasks = _own_task_lines(description)
        lines = [
            f"Parameters = {jdl_list([s.job_id for s in slots])};",
            f"Parameters.task = {jdl_list([str(s.task_index) for s in slots])};",
            *own_lines,
            'JobName = "gridgate.%s.%(task)s";',
            'JobGroup = "gridgate.%s";',
            'Arguments = "%n";',
        ]
        if own_tasks is None:
            environment.append(f"{TASK_DOCUMENT_ENV}=%(doc)s")
    lines += [
        'JobType = "User";',
        f"Executable = {jdl_string(WRAPPER)};",
        f"StdOutput = {jdl_string(STDOUT)};",
        f"StdError = {jdl_string(STDERR)};",
        f"CPUTime = {max(1, int(description.cpu_time_s))};",
        f"InputSandbox = {jdl_list(_input_sandbox(description, own_tasks))};",
        f"OutputSandbox = {jdl_list([STDOUT, STDERR, *description.output_files])};",
    ]
    if description.processors > 1:
        lines.append(f"NumberOfProcessors = {int(description.processors)};")
    if description.tags:
        lines.append(f"Tags = {jdl_list(description.tags)};")
    if description.platform:
        lines.append(f"Platform = {jdl_string(description.platform)};")
    if description.sites:
        lines.append(f"Site = {jdl_list(description.sites)};")
    if description.input_data:
        lines.append(f"InputData = {jdl_list(description.input_data)};")
    if environment:
        lines.append(f"ExecutionEnvironment = {jdl_list(environment)};")
    return "[\n  " + "\n  ".join(lines) + "\n]"
