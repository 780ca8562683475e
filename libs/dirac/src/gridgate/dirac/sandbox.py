"""What a gridgate job's input sandbox holds besides the user's own files.

- ``gridgate_task.py``: the fixed wrapper that runs one task (see :mod:`gridgate.dirac.jdl`);
- ``tasks.json``: the argument vector, environment and callback of the one task a DIRAC job
  runs. A parametric submission gives each of its DIRAC jobs its own instead: encoded in the
  JDL's per-slot parameters, which DIRAC puts into that job's environment alone
  (:func:`encoded_task_document`), or, when one is too large for an environment variable, in a
  sandbox of its own per job (:func:`slot_sandboxes`). Either way a job never receives another
  job's arguments or callback token, even when the tasks of several gridgate jobs share a
  submission;
- ``gridgate-payload.zip``: gridgate's workflow programs (the stand-ins), importable with
  zipimport on a worker node where gridgate is not installed. The zip holds empty package
  files for ``gridgate`` and ``gridgate.workflows``, so nothing else of gridgate comes along.
"""

from __future__ import annotations

import base64
import io
import json
import zipfile
from dataclasses import dataclass
from functools import cache
from importlib.resources import files
from typing import Any

from gridgate.contracts.commands import SubmitJob
from gridgate.contracts.tasks import TaskSpec
from gridgate.dirac.jdl import TASKS_FILE, WRAPPER

PAYLOAD_ZIP = "gridgate-payload.zip"
_STUB_PACKAGE = '"""Stub package on a worker node: only the workflow programs come along."""\n'
INLINE_DOCUMENT_LIMIT = 16 * 1024
"""The longest encoded task document sent in the JDL (and so in the job's environment, where
Linux allows 128 KiB a variable); a submission with a longer one uploads a sandbox per job."""
# A fixed time stamp: the same programs give the same zip, byte for byte.
_ZIP_TIME = (2020, 1, 1, 0, 0, 0)


def _add(archive: zipfile.ZipFile, name: str, data: bytes) -> None:
    info = zipfile.ZipInfo(name, date_time=_ZIP_TIME)
    info.compress_type = zipfile.ZIP_DEFLATED
    archive.writestr(info, data)


@cache
def payload_zip() -> bytes:
    """The stand-in programs as a zip of the ``gridgate.workflows.standins`` package."""
    standins = files("gridgate.workflows.standins")
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        _add(archive, "gridgate/__init__.py", _STUB_PACKAGE.encode())
        _add(archive, "gridgate/workflows/__init__.py", _STUB_PACKAGE.encode())
        for entry in sorted(standins.iterdir(), key=lambda e: e.name):
            if entry.name.endswith(".py"):
                _add(archive, f"gridgate/workflows/standins/{entry.name}", entry.read_bytes())
    return buffer.getvalue()


@cache
def wrapper_source() -> str:
    return (files("gridgate.dirac") / "payload" / WRAPPER).read_text(encoding="utf-8")


@dataclass(frozen=True)
class SlotTask:
    """What one DIRAC job of a submission runs, and where it reports."""

    task: TaskSpec
    callback: dict[str, str] | None = None
    image: dict[str, Any] | None = None
    """The image to run the task in (reference pinned by digest, network, limits), if any."""


def image_entry(command: SubmitJob) -> dict[str, Any] | None:
    """What the wrapper needs to run a task in the job's image (``tasks.json``): the same for
    DIRAC 8 and DiracX jobs, whose nodes run the same wrapper (apptainer or docker)."""
    image = command.image
    if image is None or not image.reference:
        return None
    return {
        "reference": image.reference,
        "network": image.network,
        "memory_mb": command.limits.memory_mb,
        "cores": command.limits.cores,
    }


def task_document(slot: SlotTask) -> str:
    """``tasks.json`` of one DIRAC job: ``{"task": {argv, env, task_index, callback}}``, and
    ``image`` when the task runs in a container image."""
    entry: dict[str, Any] = {
        "argv": slot.task.argv,
        "env": slot.task.env,
        "task_index": slot.task.index,
        "callback": slot.callback,
    }
    if slot.image:
        entry["image"] = slot.image
    return json.dumps({"task": entry})


def encoded_task_document(slot: SlotTask) -> str:
    """``tasks.json`` of one DIRAC job as base64url without padding: nothing in it means
    anything to a ClassAd, to DIRAC's ``%`` placeholders or to its ``NAME=value`` split."""
    return base64.urlsafe_b64encode(task_document(slot).encode()).decode().rstrip("=")


def slot_sandboxes(slots: list[SlotTask]) -> list[dict[str, str]]:
    """The files each DIRAC job of a parametric submission alone receives, in slot order."""
    return [{TASKS_FILE: task_document(slot)} for slot in slots]


def sandbox_files(slots: list[SlotTask]) -> tuple[dict[str, str], dict[str, str]]:
    """The text and the binary (base64) files every DIRAC job of the submission receives.

    A one-task submission's ``tasks.json`` is among them; a parametric one's go separately
    (:func:`slot_sandboxes`).
    """
    text = {WRAPPER: wrapper_source()}
    if len(slots) == 1:
        text[TASKS_FILE] = task_document(slots[0])
    binary = {PAYLOAD_ZIP: base64.b64encode(payload_zip()).decode()}
    return text, binary
