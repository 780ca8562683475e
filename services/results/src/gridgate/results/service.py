"""The results service's rules: stage a finished job's files, register outputs, describe them."""

from __future__ import annotations

import asyncio
import mimetypes
import re
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

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
from gridgate.core.crashpoints import crash_point
from gridgate.core.errors import FatalError, TransientError, UsageError
from gridgate.datalake import (
    Did,
    InvalidDidError,
    RucioError,
    RucioUnavailableError,
    StorageError,
    StorageUnavailableError,
)
from gridgate.dirac.facility import DiracFacility
from gridgate.localfacility import LocalFacility
from gridgate.results.checksums import digests
from gridgate.results.registrar import (
    ChecksumConflictError,
    OutputNameClashError,
    Registration,
    RucioRegistrar,
)
from gridgate.results.stores import DirectoryStore, ResultStore, StagedFile

if TYPE_CHECKING:
    # Annotations only: the official DiracX client loads when a DiracX facility is served.
    from gridgate.diracx.facility import DiracXFacility

log = structlog.get_logger(__name__)
TEXT_NAMES = {"stdout.txt": "text/plain", "stderr.txt": "text/plain"}
LOG_NAME = re.compile(r"^(task-\d{4}/)?std(out|err)\.txt$")
# Rucio refuses these when the fault is the job's placement (no scope, no right to it).
PLACEMENT_REFUSALS = {"ScopeNotFound", "AccessDenied", "AccountNotFound", "InvalidObject"}


def media_type_of(name: str) -> str:
    base = Path(name).name
    if base in TEXT_NAMES:
        return TEXT_NAMES[base]
    guessed, _ = mimetypes.guess_type(base)
    return guessed or "application/octet-stream"


def _describe(found: list[tuple[str, Path, int]]) -> list[StagedFile]:
    files = []
    for name, path, task_index in found:
        found_digests = digests(path)
        files.append(
            StagedFile(
                name=name,
                path=path,
                task_index=task_index,
                size=found_digests.size,
                sha256=found_digests.sha256,
                adler32=found_digests.adler32,
                md5=found_digests.md5,
                media_type=media_type_of(name),
                is_log=bool(LOG_NAME.match(name)),
            )
        )
    return files


class ResultsService:
    """Collects and purges results.

    Parameters
    ----------
    publisher
        Sends reports to the gateway.
    store
        gridgate's own store of job files (a directory or WebDAV; or none with store=rucio).
    local
        The local facility the files come from.
    dirac
        DIRAC facilities by catalogue id: output sandboxes come from there.
    registrar
        Registers outputs in Rucio; ``None`` when no Rucio is configured.
    """

    def __init__(
        self,
        publisher: Publisher,
        store: Path | ResultStore,
        local: LocalFacility,
        registrar: RucioRegistrar | None = None,
        dirac: Mapping[str, DiracFacility | DiracXFacility] | None = None,
    ) -> None:
        self.publisher = publisher
        self.store: ResultStore = DirectoryStore(store) if isinstance(store, Path) else store
        self.local = local
        self.registrar = registrar
        self.dirac = dict(dirac or {})

    async def handle(self, command: Command) -> None:
        match command:
            case CollectResults():
                await self.collect(command)
            case PurgeResults():
                await self.purge(command)
            case _:
                raise FatalError(f"the results service does not handle {command.kind!r}")

    async def collect(self, command: CollectResults) -> None:
        """Stage, register and report a finished job's files. Safe to repeat."""
        if command.facility in self.dirac:
            # Output sandboxes land in a scratch directory, gone once the files are stored.
            with tempfile.TemporaryDirectory(prefix="gridgate-sandbox-") as scratch:
                found = await self.dirac[command.facility].outputs(
                    command.job_id, command.facility_job_ids, Path(scratch)
                )
                await self._stage(command, found)
            return
        if command.facility != self.local.name:
            raise UsageError(f"No results collector for facility {command.facility!r}.")
        found = await self._read_local(command)
        await self._stage(command, found)

    async def _read_local(self, command: CollectResults) -> list[tuple[str, Path, int]]:
        try:
            return await asyncio.to_thread(
                self.local.outputs, command.job_id, command.task_count, command.outputs
            )
        except OSError as exc:
            raise TransientError(f"reading results failed: {exc}") from exc

    async def _stage(self, command: CollectResults, found: list[tuple[str, Path, int]]) -> None:
        try:
            files = await asyncio.to_thread(_describe, found)
        except OSError as exc:
            raise TransientError(f"reading results failed: {exc}") from exc
        try:
            locations = await self.store.put(command.job_id, files)
            registration = await self._register(command, files)
        except OSError as exc:
            raise TransientError(f"copying results failed: {exc}") from exc
        if registration is not None:
            locations = {**registration.locations, **locations}
        results = [
            ResultFile(
                name=f.name,
                size=f.size,
                media_type=f.media_type,
                sha256=f.sha256,
                adler32=f.adler32,
                task_index=f.task_index,
                did=str(registration.files[f.name])
                if registration and f.name in registration.files
                else None,
                location=locations.get(f.name),
            )
            for f in files
        ]
        crash_point("results-stored")
        await self.publisher.send(
            GATEWAY_REPORTS_QUEUE,
            ResultsStaged(
                job_id=command.job_id,
                results=results,
                dataset=str(registration.dataset) if registration else None,
            ),
        )
        log.info(
            "results staged",
            job_id=command.job_id,
            files=len(files),
            store=self.store.kind,
            registered=len(registration.files) if registration else 0,
        )

    async def _register(
        self, command: CollectResults, files: list[StagedFile]
    ) -> Registration | None:
        everything = self.store.kind == "rucio"
        if self.registrar is None or not command.data_scope:
            if everything:
                raise UsageError("The job names no Rucio scope to keep its results in.")
            return None
        # Declared outputs go to the data lake; logs too when the RSE is the only store.
        chosen = [f for f in files if everything or not f.is_log]
        if not chosen:
            return None
        try:
            return await self.registrar.register(command, chosen)
        except (RucioUnavailableError, StorageUnavailableError) as exc:
            raise TransientError(f"the data lake did not answer: {exc}") from exc
        except ChecksumConflictError as exc:
            raise FatalError(str(exc)) from exc
        except (InvalidDidError, OutputNameClashError) as exc:
            raise UsageError(f"An output cannot be registered in Rucio: {exc}.") from exc
        except RucioError as exc:
            if exc.exception_class in PLACEMENT_REFUSALS:
                raise UsageError(
                    f"Rucio refused to register the outputs in scope {command.data_scope!r}: "
                    f"{exc.message}"
                ) from exc
            raise FatalError(str(exc)) from exc
        except StorageError as exc:
            raise FatalError(f"writing outputs to the storage element failed: {exc}") from exc

    async def purge(self, command: PurgeResults) -> None:
        """Remove a job's files from our store; give its Rucio rules a lifetime if asked."""
        try:
            await self.store.purge(command.job_id)
        except StorageUnavailableError as exc:
            raise TransientError(f"the results store did not answer: {exc}") from exc
        except (OSError, StorageError) as exc:
            raise FatalError(f"removing results failed: {exc}") from exc
        expired = 0
        if self.registrar is not None and command.dataset and command.rule_lifetime_s is not None:
            try:
                expired = await self.registrar.expire(
                    Did.parse(command.dataset), command.rule_lifetime_s
                )
            except InvalidDidError as exc:
                raise FatalError(str(exc)) from exc
            except RucioUnavailableError as exc:
                raise TransientError(f"Rucio did not answer: {exc}") from exc
            except RucioError as exc:
                if exc.exception_class not in {"DataIdentifierNotFound", "RuleNotFound"}:
                    raise FatalError(str(exc)) from exc
        log.info(
            "results purged",
            job_id=command.job_id,
            reason=command.reason,
            rules_expiring=expired,
        )

    async def report_usage_error(self, command: Command, reason: str) -> None:
        await self.publisher.send(
            GATEWAY_REPORTS_QUEUE,
            JobFailureReported(job_id=command.job_id, source="results", reason=reason),
        )
