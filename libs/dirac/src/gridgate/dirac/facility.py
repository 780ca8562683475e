"""A DIRAC facility: submit, watch, stop, peek at and collect gridgate jobs, as their owners.

Every call that acts on a user's jobs carries that user's proxy (from the auth service); bulk
status and peeks use the service's own robot identity, which may read every job.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path

import structlog

from gridgate.contracts.commands import SubmitJob
from gridgate.contracts.phases import Phase
from gridgate.contracts.tasks import TaskSpec, TaskStatus
from gridgate.core.errors import FatalError
from gridgate.dirac.bridge import DiracBridge
from gridgate.dirac.connection import DiracConnection
from gridgate.dirac.jdl import STDERR, STDOUT, JobDescription, Slot, build_jdl, job_group
from gridgate.dirac.proxies import JobProxies
from gridgate.dirac.sandbox import (
    INLINE_DOCUMENT_LIMIT,
    PAYLOAD_ZIP,
    SlotTask,
    encoded_task_document,
    image_entry,
    sandbox_files,
    slot_sandboxes,
)
from gridgate.dirac.status import phase_of

log = structlog.get_logger(__name__)
# DIRAC records only "Application Finished With Errors", not the exit status: our wrapper
# prints it as its last line, and DIRAC keeps the tail of stdout (the StandardOutput peek).
EXIT_LINE = re.compile(r"^gridgate: task \d+ exited with code (-?\d+)$", re.M)
RENAMED = {STDOUT: "stdout.txt", STDERR: "stderr.txt"}
DIRAC_TIME = "%Y-%m-%d %H:%M:%S"


@dataclass(frozen=True)
class CallbackTarget:
    """Where a job's wrapper reports, and the job-scoped token it presents."""

    url: str
    token: str


def _dirac_time(value: object) -> datetime | None:
    if not isinstance(value, str) or not value or value == "None":
        return None
    try:
        return datetime.strptime(value, DIRAC_TIME).replace(tzinfo=UTC)
    except ValueError:
        return None


def _empty_file(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch()


def exit_code_in(stdout_tail: str) -> int | None:
    """The exit status the wrapper printed last, if the tail holds it."""
    codes = EXIT_LINE.findall(stdout_tail)
    return int(codes[-1]) if codes else None


def task_status(job_id: str, record: dict[str, str]) -> TaskStatus:
    """A DIRAC job's attributes as a task status: its phase, and DIRAC's words as detail."""
    status = record.get("Status", "")
    minor = record.get("MinorStatus", "") or ""
    application = record.get("ApplicationStatus", "") or ""
    parts = [p for p in (minor, application) if p and p.lower() != "unknown"]
    phase = phase_of(status)
    return TaskStatus(
        facility_task_id=job_id,
        state=status,
        phase=phase,
        detail="; ".join(parts) or None,
        started_at=_dirac_time(record.get("StartExecTime")),
        ended_at=_dirac_time(record.get("EndExecTime")),
    )


class DiracFacility:
    """One DIRAC facility of the catalogue, reached through a pool of bridge processes."""

    kind = "dirac"

    def __init__(
        self,
        name: str,
        connection: DiracConnection,
        proxies: JobProxies | None = None,
        *,
        bridge: DiracBridge | None = None,
    ) -> None:
        self.name = name
        self.connection = connection
        self.proxies = proxies
        self.bridge = bridge or DiracBridge(
            connection.environment(), size=connection.bridge_processes
        )
        self._max_parametric: int | None = None
        self._ask_once = asyncio.Lock()

    async def _proxy(self, job_id: str) -> str:
        if self.proxies is None:
            raise RuntimeError("this worker has no access to users' proxies")
        return await self.proxies.for_job(job_id)

    async def find(self, job_id: str, proxy: str) -> list[str]:
        """The DIRAC jobs of a gridgate job (its JobGroup), lowest id first."""
        found = await self.bridge.call(
            "find", {"conditions": {"JobGroup": job_group(job_id)}}, proxy=proxy
        )
        return [str(i) for i in sorted(int(i) for i in found)]

    async def held_tasks(self, job_ids: Sequence[str], proxy: str) -> dict[str, dict[int, str]]:
        """Which tasks of these gridgate jobs DIRAC already holds: job -> task -> DIRAC id."""
        found = await self.bridge.call(
            "find_tasks", {"groups": [job_group(j) for j in job_ids]}, proxy=proxy
        )
        held: dict[str, dict[int, str]] = {}
        for dirac_id, (group, name) in found.items():
            job_id = str(group).removeprefix("gridgate.")
            index = str(name).rsplit(".", 1)[-1]
            if index.isdigit():
                held.setdefault(job_id, {})[int(index)] = str(dirac_id)
        return held

    async def max_parametric(self, proxy: str) -> int:
        """The JobManager's limit on one parametric submission (asked once)."""
        async with self._ask_once:
            if self._max_parametric is None:
                self._max_parametric = max(
                    1, int(await self.bridge.call("max_parametric", {}, proxy=proxy))
                )
        return self._max_parametric

    async def submit(self, command: SubmitJob, callback: CallbackTarget | None) -> list[str]:
        """Submit one gridgate job; its DIRAC ids in task order (see :meth:`submit_many`)."""
        return (await self.submit_many([command], {command.job_id: callback}))[command.job_id]

    async def submit_many(
        self,
        commands: Sequence[SubmitJob],
        callbacks: Mapping[str, CallbackTarget | None],
    ) -> dict[str, list[str]]:
        """Submit the tasks of gridgate jobs of one owner, group and workflow in bulk.

        They go as parametric submissions of up to the JobManager's limit each, never one
        call per job. Idempotent per task: a redelivered command finds the tasks DIRAC already
        holds (by JobGroup and JobName) and submits only the others.

        Returns each gridgate job's DIRAC ids in task order.
        """
        template = commands[0]
        proxy = await self._proxy(template.job_id)
        held = await self.held_tasks([c.job_id for c in commands], proxy)
        missing = [
            (command, task)
            for command in commands
            for task in sorted(command.tasks, key=lambda t: t.index)
            if task.index not in held.get(command.job_id, {})
        ]
        if len(missing) < sum(len(c.tasks) for c in commands):
            log.info(
                "tasks already in DIRAC",
                jobs=len(commands),
                held=sum(len(h) for h in held.values()),
            )
        if missing:
            limit = await self.max_parametric(proxy)
            for start in range(0, len(missing), limit):
                chunk = missing[start : start + limit]
                ids = await self._submit_chunk(template, chunk, callbacks, proxy)
                for (command, task), dirac_id in zip(chunk, ids, strict=True):
                    held.setdefault(command.job_id, {})[task.index] = dirac_id
        return {
            c.job_id: [held[c.job_id][t.index] for t in sorted(c.tasks, key=lambda t: t.index)]
            for c in commands
        }

    async def _submit_chunk(
        self,
        template: SubmitJob,
        chunk: list[tuple[SubmitJob, TaskSpec]],
        callbacks: Mapping[str, CallbackTarget | None],
        proxy: str,
    ) -> list[str]:
        limits = template.limits
        slots = []
        for command, task in chunk:
            target = callbacks.get(command.job_id)
            slots.append(
                SlotTask(
                    task,
                    {"url": target.url, "token": target.token} if target else None,
                    image=image_entry(command),
                )
            )
        documents, own = await self._own_tasks(slots, proxy)
        description = JobDescription(
            slots=[Slot(command.job_id, task.index) for command, task in chunk],
            # DIRAC's CPUTime is in normalised seconds; the wall-clock limit is a fair bound.
            cpu_time_s=limits.execution_duration_s or 86400,
            input_sandbox=[PAYLOAD_ZIP],
            output_files=list(template.outputs),
            processors=limits.cores,
            tags=["GPU"] if limits.gpus else [],
            input_data=sorted({f.lfn for _, task in chunk for f in task.inputs}),
            slot_documents=documents,
            slot_sandboxes=own,
        )
        text, binary = sandbox_files(slots)
        ids = await self.bridge.call(
            "submit",
            {"jdl": build_jdl(description), "files": text, "binary_files": binary},
            proxy=proxy,
        )
        if len(ids) != len(chunk):
            raise FatalError(f"DIRAC answered {len(ids)} job ids for {len(chunk)} tasks")
        # The JobManager answers in the order of the parametric expansion: slot order.
        return [str(i) for i in ids]

    async def _own_tasks(self, slots: list[SlotTask], proxy: str) -> tuple[list[str], list[str]]:
        """How each DIRAC job of a parametric submission gets its own task: its encoded
        document in the JDL (no call at all), or, if one is too long for that, a sandbox per job.
        """
        if len(slots) == 1:
            return [], []
        documents = [encoded_task_document(slot) for slot in slots]
        if max(len(d) for d in documents) <= INLINE_DOCUMENT_LIMIT:
            return documents, []
        return [], await self._upload_slot_sandboxes(slots, proxy)

    async def _upload_slot_sandboxes(self, slots: list[SlotTask], proxy: str) -> list[str]:
        """Each slot's own ``tasks.json`` as a sandbox of its own; their ``SB:`` locations.

        The uploads are spread over the bridge processes, one call per process.
        """
        files = slot_sandboxes(slots)
        per_call = -(-len(files) // max(1, self.bridge.size))
        answers = await asyncio.gather(
            *(
                self.bridge.call(
                    "upload_sandboxes", {"sandboxes": files[i : i + per_call]}, proxy=proxy
                )
                for i in range(0, len(files), per_call)
            )
        )
        locations = [str(location) for answer in answers for location in answer]
        if len(locations) != len(slots):
            raise FatalError(f"DIRAC stored {len(locations)} sandboxes for {len(slots)} tasks")
        return locations

    async def status(self, facility_job_ids: Iterable[str]) -> dict[str, TaskStatus]:
        """Status of many DIRAC jobs, ``status_batch`` per call, as the robot."""
        ids = list(facility_job_ids)
        batch = self.connection.status_batch
        # Batches go out together: each bridge process takes one, so none idles.
        answers = await asyncio.gather(
            *(
                self.bridge.call("status", {"ids": ids[start : start + batch]})
                for start in range(0, len(ids), batch)
            )
        )
        found: dict[str, TaskStatus] = {}
        for records in answers:
            for job_id, record in records.items():
                found[str(job_id)] = task_status(str(job_id), record)
        for job_id, status in list(found.items()):
            if status.phase == Phase.ERROR and status.state == "Failed":
                code = exit_code_in(await self.peek(job_id))
                if code is not None:
                    detail = f"exit code {code}" + (f" ({status.detail})" if status.detail else "")
                    found[job_id] = replace(status, exit_code=code, detail=detail)
        return found

    async def cancel(self, job_id: str) -> list[str]:
        """Kill every DIRAC job of a gridgate job, as its owner; the ids killed."""
        proxy = await self._proxy(job_id)
        ids = await self.find(job_id, proxy)
        if ids:
            await self.bridge.call("kill", {"ids": ids}, proxy=proxy)
        return ids

    async def purge(self, job_id: str) -> list[str]:
        """Kill, then delete, a gridgate job's DIRAC jobs (DIRAC refuses both in one second)."""
        proxy = await self._proxy(job_id)
        ids = await self.find(job_id, proxy)
        if not ids:
            return []
        await self.bridge.call("kill", {"ids": ids}, proxy=proxy)
        await asyncio.sleep(1.5)
        await self.bridge.call("delete", {"ids": ids}, proxy=proxy)
        return ids

    async def peek(self, facility_job_id: str) -> str:
        """The stdout DIRAC last heard from a running job (its watchdog sends a tail)."""
        text = await self.bridge.call("peek", {"id": facility_job_id})
        return str(text or "")

    async def outputs(
        self,
        job_id: str,
        facility_job_ids: Sequence[str],
        destination: Path,
    ) -> list[tuple[str, Path, int]]:
        """Fetch each DIRAC job's output sandbox into ``destination``, as the job's owner.

        Returns ``(result name, path, task index)`` with the local facility's naming: one
        task's files keep their names, several tasks' get a ``task-NNNN/`` prefix; DIRAC's
        ``std.out``/``std.err`` become ``stdout.txt``/``stderr.txt``. Every task that
        returned its stdout has a ``stderr.txt``, empty when the task wrote nothing there.
        """
        proxy = await self._proxy(job_id)
        found = []
        several = len(facility_job_ids) > 1
        for index, dirac_id in enumerate(facility_job_ids):
            prefix = f"task-{index:04d}/" if several else ""
            target = destination / f"task-{index:04d}"
            names = await self.bridge.call(
                "output", {"id": dirac_id, "destination": str(target)}, proxy=proxy
            )
            if STDOUT in names and STDERR not in names:
                # DIRAC's JobWrapper creates std.err at the first line the task (or our
                # wrapper) writes to stderr: none means an empty stderr, kept as for local jobs.
                await asyncio.to_thread(_empty_file, target / STDERR)
                names = [*names, STDERR]
            for name in names:
                shown = RENAMED.get(name, name)
                found.append((prefix + shown, target / name, index))
        return found

    async def close(self) -> None:
        await self.bridge.close()
