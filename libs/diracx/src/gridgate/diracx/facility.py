"""A DiracX facility: submit, watch, stop and collect gridgate jobs, as their owners.

Every call that acts on a user's jobs carries that user's DiracX access token; bulk status
uses gridgate's robot, a JobAdministrator, which may read every job.

A job already at DiracX outlives its owner's credential when that is a DiracX link that runs
out or is revoked mid-job: nothing new may then be submitted for the owner (submission asks
for the owner's token only), but what DiracX already holds is still followed to its end.
Reading its outputs and stopping it fall back to the robot, whose JobAdministrator property
already lets it read every job's status; the robot never submits.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import io
import json
import tarfile
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from pathlib import Path, PurePosixPath
from typing import Any, cast

import httpx
import structlog
from azure.core.exceptions import AzureError, HttpResponseError

from diracx.client.aio import AsyncDiracClient
from diracx.core.preferences import DiracxPreferences
from gridgate.contracts.commands import SubmitJob
from gridgate.contracts.tasks import TaskSpec, TaskStatus
from gridgate.core.clock import utcnow
from gridgate.core.errors import FatalError, TransientError
from gridgate.dirac.facility import RENAMED, CallbackTarget
from gridgate.dirac.jdl import TASKS_FILE, JobDescription, Slot, build_jdl, job_group
from gridgate.dirac.sandbox import (
    PAYLOAD_ZIP,
    SlotTask,
    image_entry,
    sandbox_files,
    task_document,
)
from gridgate.dirac.status import phase_of
from gridgate.diracx.connection import DiracXConnection
from gridgate.diracx.tokens import DiracXTokenRefusedError, DiracXTokens

log = structlog.get_logger(__name__)
STATUS_FIELDS = ["JobID", "Status", "MinorStatus", "ApplicationStatus", "StartExecTime",
                 "EndExecTime"]  # fmt: skip
# The official client reads a credentials file; we hand it none (tokens stay in memory) and
# give each call its owner's token instead.
CONNECT_TIMEOUT_S = 10
NO_CREDENTIALS_FILE = Path("/nonexistent/gridgate-diracx/credentials.json")


def _time(value: object) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=utcnow().tzinfo)


def task_status(record: Mapping[str, Any]) -> TaskStatus:
    """A DiracX job's attributes as a task status: DIRAC's phase mapping, its words as detail."""
    status = str(record.get("Status") or "")
    parts = [
        str(p)
        for p in (record.get("MinorStatus"), record.get("ApplicationStatus"))
        if p and str(p).lower() != "unknown"
    ]
    return TaskStatus(
        facility_task_id=str(record["JobID"]),
        state=status,
        phase=phase_of(status),
        detail="; ".join(parts) or None,
        started_at=_time(record.get("StartExecTime")),
        ended_at=_time(record.get("EndExecTime")),
    )


def pack_sandbox(files: Mapping[str, bytes]) -> bytes:
    """The input sandbox as DiracX stores it: one tar.bz2, the same bytes for the same files."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:bz2") as archive:
        for name in sorted(files):
            info = tarfile.TarInfo(name)
            info.size = len(files[name])
            info.mode = 0o644
            archive.addfile(info, io.BytesIO(files[name]))
    return buffer.getvalue()


def unpack_sandbox(data: bytes, target: Path) -> list[str]:
    """Extract an output sandbox: regular files only, none outside ``target``; their names."""
    target.mkdir(parents=True, exist_ok=True)
    names = []
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:*") as archive:
        for member in archive.getmembers():
            path = PurePosixPath(member.name)
            if not member.isfile() or path.is_absolute() or ".." in path.parts:
                continue
            extracted = archive.extractfile(member)
            if extracted is None:
                continue
            destination = target.joinpath(*path.parts)
            destination.parent.mkdir(parents=True, exist_ok=True)
            destination.write_bytes(extracted.read())
            names.append(str(path))
    return names


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _json_body(value: object) -> io.BytesIO:
    return io.BytesIO(json.dumps(value).encode())


class DiracXFacility:
    """One DiracX facility of the catalogue, reached with the official ``diracx-client``."""

    kind = "diracx"

    def __init__(
        self,
        name: str,
        connection: DiracXConnection,
        tokens: DiracXTokens,
        *,
        http: httpx.AsyncClient | None = None,
    ) -> None:
        self.name = name
        self.connection = connection
        self.tokens = tokens
        verify: bool | str = str(connection.ca_file) if connection.ca_file else True
        # For the pre-signed S3 URLs DiracX hands out (sandbox upload and download).
        self.http = http or httpx.AsyncClient(timeout=120.0, verify=verify)
        self._own_http = http is None
        self._client: AsyncDiracClient | None = None
        self._client_once = asyncio.Lock()

    async def client(self) -> AsyncDiracClient:
        async with self._client_once:
            if self._client is None:
                preferences = DiracxPreferences(
                    url=self.connection.url,
                    credentials_path=NO_CREDENTIALS_FILE,
                    ca_path=self.connection.ca_file,
                )
                # The constructor reads DiracX's OpenID discovery document, synchronously.
                # Bounded waits: a DiracX call that hangs becomes an error and a retry.
                self._client = await asyncio.to_thread(
                    AsyncDiracClient,
                    endpoint=self.connection.url,
                    diracx_preferences=preferences,
                    connection_timeout=CONNECT_TIMEOUT_S,
                    read_timeout=self.connection.read_timeout_s,
                )
        return self._client

    async def _token(self, job_id: str) -> str:
        return await self.tokens.for_job(job_id)

    async def _robot_token(self) -> str:
        return await self.tokens.robot()

    async def _token_for_held(self, job_id: str, action: str) -> str:
        """The owner's token for work on jobs DiracX already holds; the robot's when the
        owner has none any more (a link that ran out or was revoked mid-job)."""
        try:
            return await self._token(job_id)
        except DiracXTokenRefusedError as exc:
            log.info(
                "owner has no DiracX token: acting as the robot",
                job_id=job_id,
                action=action,
                reason=str(exc),
            )
            return await self._robot_token()

    async def _search(
        self, token: str, conditions: list[dict[str, Any]], fields: list[str]
    ) -> list[dict[str, Any]]:
        """Every job matching ``conditions``: 1,000 a page (a page is one call)."""
        client = await self.client()
        found: list[dict[str, Any]] = []
        page = 1
        while True:
            try:
                rows = await client.jobs.search(
                    parameters=fields,
                    search=cast(Any, conditions),  # our dicts are its TypedDicts
                    page=page,
                    per_page=self.connection.status_batch,
                    headers=_bearer(token),
                )
            except AzureError as exc:
                if getattr(exc, "status_code", None) == 416:  # asked past the last page
                    break
                raise _error("search", exc) from exc
            found.extend(rows)
            if len(rows) < self.connection.status_batch:
                break
            page += 1
        return found

    async def held_tasks(self, job_ids: Sequence[str], token: str) -> dict[str, dict[int, str]]:
        """Which tasks of these gridgate jobs DiracX already holds: job -> task -> DiracX id."""
        rows = await self._search(
            token,
            [
                {
                    "parameter": "JobGroup",
                    "operator": "in",
                    "values": [job_group(j) for j in job_ids],
                }
            ],
            ["JobID", "JobGroup", "JobName", "Status"],
        )
        held: dict[str, dict[int, str]] = {}
        for row in rows:
            if row.get("Status") == "Deleted":
                continue
            job_id = str(row["JobGroup"]).removeprefix("gridgate.")
            index = str(row.get("JobName", "")).rsplit(".", 1)[-1]
            if index.isdigit():
                held.setdefault(job_id, {})[int(index)] = str(row["JobID"])
        return held

    async def submit(self, command: SubmitJob, callback: CallbackTarget | None) -> list[str]:
        return (await self.submit_many([command], {command.job_id: callback}))[command.job_id]

    async def submit_many(
        self,
        commands: Sequence[SubmitJob],
        callbacks: Mapping[str, CallbackTarget | None],
    ) -> dict[str, list[str]]:
        """Submit the tasks of gridgate jobs of one owner, group and workflow in bulk.

        One call per ``submit_batch`` tasks (a list of JDLs); idempotent per task like
        the DIRAC 8 facility: a redelivered command finds the tasks DiracX already holds (by
        JobGroup and JobName) and submits only the others.
        """
        template = commands[0]
        token = await self._token(template.job_id)
        held = await self.held_tasks([c.job_id for c in commands], token)
        missing = [
            (command, task)
            for command in commands
            for task in sorted(command.tasks, key=lambda t: t.index)
            if task.index not in held.get(command.job_id, {})
        ]
        if len(missing) < sum(len(c.tasks) for c in commands):
            log.info("tasks already in DiracX", jobs=len(commands))
        limit = self.connection.submit_batch
        for start in range(0, len(missing), limit):
            chunk = missing[start : start + limit]
            ids = await self._submit_chunk(template, chunk, callbacks, token)
            for (command, task), diracx_id in zip(chunk, ids, strict=True):
                held.setdefault(command.job_id, {})[task.index] = diracx_id
        return {
            c.job_id: [held[c.job_id][t.index] for t in sorted(c.tasks, key=lambda t: t.index)]
            for c in commands
        }

    async def _submit_chunk(
        self,
        template: SubmitJob,
        chunk: list[tuple[SubmitJob, TaskSpec]],
        callbacks: Mapping[str, CallbackTarget | None],
        token: str,
    ) -> list[str]:
        limits = template.limits
        text, binary = sandbox_files([])  # what every job receives: the wrapper, the payload
        shared = {name: body.encode() for name, body in text.items()}
        shared |= {name: base64.b64decode(body) for name, body in binary.items()}
        # One sandbox per DiracX job, holding its own tasks.json only (its callback token is
        # no other job's business), as on DIRAC 8; a list of one-task JDLs in one call, since
        # DiracX 0.7.0 leaves a parametric JDL in "Submitting" with no route to confirm it.
        # A containerised job's tasks.json names its image (pinned by digest), which the
        # wrapper runs with apptainer or docker on the node, as on DIRAC 8.
        archives = []
        for command, task in chunk:
            target = callbacks.get(command.job_id)
            slot = SlotTask(
                task,
                {"url": target.url, "token": target.token} if target else None,
                image=image_entry(command),
            )
            archives.append(pack_sandbox(shared | {TASKS_FILE: task_document(slot).encode()}))
        # the uploads go together: each is two short calls, mostly waiting
        pfns = await asyncio.gather(*(self.upload_sandbox(a, token) for a in archives))
        jdls = [
            build_jdl(
                JobDescription(
                    slots=[Slot(command.job_id, task.index)],
                    cpu_time_s=limits.execution_duration_s or 86400,
                    input_sandbox=[PAYLOAD_ZIP],
                    output_files=list(template.outputs),
                    processors=limits.cores,
                    tags=["GPU"] if limits.gpus else [],
                    input_data=sorted({f.lfn for f in task.inputs}),
                    packed_sandbox=pfn,
                )
            )
            for (command, task), pfn in zip(chunk, pfns, strict=True)
        ]
        client = await self.client()
        try:
            inserted = await client.jobs.submit_jdl_jobs(_json_body(jdls), headers=_bearer(token))
        except AzureError as exc:
            raise _error("submission", exc) from exc
        if len(inserted) != len(chunk):
            raise FatalError(f"DiracX answered {len(inserted)} job ids for {len(chunk)} tasks")
        # DiracX answers in the order of the JDLs: slot order.
        return [str(job.job_id) for job in inserted]

    async def upload_sandbox(self, archive: bytes, token: str) -> str:
        """Put one tar.bz2 into DiracX's sandbox store; its ``SB:`` PFN (stored once by hash)."""
        client = await self.client()
        info = {
            "checksum_algorithm": "sha256",
            "checksum": hashlib.sha256(archive).hexdigest(),
            "size": len(archive),
            "format": "tar.bz2",
        }
        try:
            answer = await client.jobs.initiate_sandbox_upload(
                _json_body(info), headers=_bearer(token)
            )
        except AzureError as exc:
            raise _error("sandbox upload", exc) from exc
        if answer.url:
            try:
                response = await self.http.post(
                    answer.url,
                    data=dict(answer.fields or {}),
                    files={"file": ("sandbox.tar.bz2", archive, "application/x-bzip2")},
                )
            except httpx.HTTPError as exc:
                raise TransientError(f"the sandbox store did not answer: {exc!r}") from exc
            if response.status_code >= 300:
                raise TransientError(f"the sandbox store answered {response.status_code}")
        return str(answer.pfn)

    async def status(self, facility_job_ids: Iterable[str]) -> dict[str, TaskStatus]:
        """Status of many DiracX jobs as the robot: one search per 1,000 jobs, together."""
        ids = [int(i) for i in facility_job_ids]
        batch = self.connection.status_batch
        token = await self._robot_token()
        calls = [
            self._search(
                token,
                [{"parameter": "JobID", "operator": "in", "values": ids[start : start + batch]}],
                STATUS_FIELDS,
            )
            for start in range(0, len(ids), batch)
        ]
        found: dict[str, TaskStatus] = {}
        for rows in await asyncio.gather(*calls):
            for row in rows:
                found[str(row["JobID"])] = task_status(row)
        return found

    async def _set_status(self, ids: list[str], status: str, token: str) -> list[str]:
        """Set a status on DiracX jobs; the ids DiracX refused it for (e.g. Killed after Done:
        nothing left to stop)."""
        client = await self.client()
        now = utcnow().isoformat()
        body = {
            i: {now: {"Status": status, "MinorStatus": "by gridgate", "Source": "gridgate"}}
            for i in ids
        }
        try:
            answer = await client.jobs.set_job_statuses(_json_body(body), headers=_bearer(token))
        except AzureError as exc:
            if getattr(exc, "status_code", None) == 404:  # DiracX: none could be updated
                return ids
            raise _error(f"setting {status}", exc) from exc
        refused = sorted((answer.failed or {}).keys())
        if refused:
            log.info("DiracX kept its status", status=status, jobs=len(refused))
        return [str(i) for i in refused]

    async def _owned(self, job_id: str, token: str) -> list[str]:
        held = await self.held_tasks([job_id], token)
        return [held[job_id][i] for i in sorted(held.get(job_id, {}))]

    async def cancel(self, job_id: str) -> list[str]:
        """Kill every DiracX job of a gridgate job, as its owner (or the robot, when the
        owner's credential is gone); the ids killed."""
        token = await self._token_for_held(job_id, "cancel")
        ids = await self._owned(job_id, token)
        if ids:
            await self._set_status(ids, "Killed", token)
        return ids

    async def purge(self, job_id: str) -> list[str]:
        """Kill, then delete, a gridgate job's DiracX jobs."""
        token = await self._token_for_held(job_id, "purge")
        ids = await self._owned(job_id, token)
        if ids:
            await self._set_status(ids, "Killed", token)
            await self._set_status(ids, "Deleted", token)
        return ids

    async def peek(self, facility_job_id: str) -> str:
        """DiracX keeps no stdout tail (it has no stdout route): nothing to show."""
        return ""

    async def outputs(
        self, job_id: str, facility_job_ids: Sequence[str], destination: Path
    ) -> list[tuple[str, Path, int]]:
        """Each DiracX job's output sandboxes into ``destination``, as the job's owner.

        The DIRAC 8 facility's naming: one task's files keep their names, several tasks' get a
        ``task-NNNN/`` prefix; ``std.out``/``std.err`` become ``stdout.txt``/``stderr.txt``.
        The robot reads them when the owner's credential ran out while the job ran.
        """
        token = await self._token_for_held(job_id, "outputs")
        client = await self.client()
        found = []
        several = len(facility_job_ids) > 1
        for index, diracx_id in enumerate(facility_job_ids):
            prefix = f"task-{index:04d}/" if several else ""
            target = destination / f"task-{index:04d}"
            try:
                pfns = await client.jobs.get_job_sandbox(
                    int(diracx_id), "output", headers=_bearer(token)
                )
            except AzureError as exc:
                raise _error("output sandbox lookup", exc) from exc
            for pfn in pfns:
                for name in await self._download(str(pfn), target, token):
                    found.append((prefix + RENAMED.get(name, name), target / name, index))
        return found

    async def _download(self, pfn: str, target: Path, token: str) -> list[str]:
        client = await self.client()
        try:
            answer = await client.jobs.get_sandbox_file(pfn=pfn, headers=_bearer(token))
            response = await self.http.get(answer.url)
        except AzureError as exc:
            raise _error("sandbox download", exc) from exc
        except httpx.HTTPError as exc:
            raise TransientError(f"the sandbox store did not answer: {exc!r}") from exc
        if response.status_code != 200:
            raise TransientError(f"the sandbox store answered {response.status_code}")
        return await asyncio.to_thread(unpack_sandbox, response.content, target)

    async def close(self) -> None:
        if self._client is not None:
            await self._client.close()
        if self._own_http:
            await self.http.aclose()


def _error(what: str, exc: AzureError) -> Exception:
    """DiracX's refusal as our error kinds: no answer, 5xx and 503 "not ready" are worth a
    retry; any other refusal is final."""
    if not isinstance(exc, HttpResponseError):  # no answer in time, connection refused
        return TransientError(f"DiracX did not answer ({what}): {exc!r}")
    code = exc.status_code or 0
    if code >= 500 or code in (408, 429):
        return TransientError(f"DiracX {what}: {code}")
    return FatalError(f"DiracX {what} refused: {code} {exc.message}")
