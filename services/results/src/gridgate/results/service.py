"""The results service's rules: copy a finished job's files into the store, describe them."""

from __future__ import annotations

import asyncio
import mimetypes
import shutil
from pathlib import Path

import structlog

from gridgate.broker import Publisher
from gridgate.contracts import (
    GATEWAY_REPORTS_QUEUE,
    CollectResults,
    Command,
    JobFailureReported,
    PurgeResults,
    ResultFile,
    ResultsStaged,
)
from gridgate.core.errors import FatalError, TransientError, UsageError
from gridgate.localfacility import LocalFacility
from gridgate.results.checksums import digests

log = structlog.get_logger(__name__)
TEXT_NAMES = {"stdout.txt": "text/plain", "stderr.txt": "text/plain"}


def media_type_of(name: str) -> str:
    base = Path(name).name
    if base in TEXT_NAMES:
        return TEXT_NAMES[base]
    guessed, _ = mimetypes.guess_type(base)
    return guessed or "application/octet-stream"


class ResultsService:
    def __init__(self, publisher: Publisher, store: Path, local: LocalFacility) -> None:
        self.publisher = publisher
        self.store = store
        self.local = local

    def _job_store(self, job_id: str) -> Path:
        if not job_id.isalnum():
            raise FatalError(f"invalid job id {job_id!r}")
        return self.store / job_id

    async def handle(self, command: Command) -> None:
        match command:
            case CollectResults():
                await self.collect(command)
            case PurgeResults():
                await asyncio.to_thread(shutil.rmtree, self._job_store(command.job_id), True)
            case _:
                raise FatalError(f"the results service does not handle {command.kind!r}")

    async def collect(self, command: CollectResults) -> None:
        if command.facility != self.local.name:
            raise UsageError(f"No results collector for facility {command.facility!r}.")
        try:
            files = await asyncio.to_thread(self._copy, command)
        except OSError as exc:
            raise TransientError(f"copying results failed: {exc}") from exc
        await self.publisher.send(
            GATEWAY_REPORTS_QUEUE, ResultsStaged(job_id=command.job_id, results=files)
        )
        log.info("results staged", job_id=command.job_id, files=len(files))

    def _copy(self, command: CollectResults) -> list[ResultFile]:
        target = self._job_store(command.job_id)
        found = self.local.outputs(command.job_id, command.task_count, command.outputs)
        results = []
        for name, source, task_index in found:
            destination = target / name
            destination.parent.mkdir(parents=True, exist_ok=True)
            # Copy to a temporary name then rename: a redelivery never sees half a file.
            partial = destination.with_name(destination.name + ".partial")
            shutil.copyfile(source, partial)
            partial.replace(destination)
            sha256, adler32, size = digests(destination)
            results.append(
                ResultFile(
                    name=name,
                    size=size,
                    media_type=media_type_of(name),
                    sha256=sha256,
                    adler32=adler32,
                    task_index=task_index,
                )
            )
        return results

    async def report_usage_error(self, command: Command, reason: str) -> None:
        await self.publisher.send(
            GATEWAY_REPORTS_QUEUE,
            JobFailureReported(job_id=command.job_id, source="results", reason=reason),
        )
