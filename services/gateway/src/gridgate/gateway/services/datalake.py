"""The data lake as the gateway sees it: who may read which DIDs, where outputs go, and
resolving a job's input DIDs into the files each task reads.

Rucio has no read permission of its own (any account may list and download any DID), so
gridgate decides: a user reads their own scope ``user.<account>``, the scopes of their VOs and
the public scopes an operator lists; nothing else.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, Literal

import structlog

from gridgate.contracts import InputFile
from gridgate.datalake import (
    Did,
    DidNotFoundError,
    InvalidDidError,
    RucioClient,
    RucioError,
    RucioUnavailableError,
)
from gridgate.gateway.exceptions import (
    DataLakeUnavailableError,
    InputNotReadableError,
    InvalidInputsError,
    UnknownInputError,
)
from gridgate.iam.identity import Identity

log = structlog.get_logger(__name__)
REPLICA_BATCH = 500


@dataclass(frozen=True)
class DataLakePolicy:
    """Operator choices about scopes and accounts (``GRIDGATE_GATEWAY_RUCIO_*``)."""

    accounts: Mapping[str, str] = field(default_factory=dict)
    output_scope: Literal["user", "vo"] = "user"
    vo_scopes: Mapping[str, Sequence[str]] = field(default_factory=dict)
    public_scopes: frozenset[str] = frozenset()

    def account_of(self, owner: str) -> str | None:
        """The Rucio account of a token subject, if it has one."""
        return self.accounts.get(owner)

    def scopes_of_vo(self, vo: str) -> list[str]:
        return list(self.vo_scopes.get(vo) or [vo])

    def may_read(self, identity: Identity, scope: str) -> bool:
        account = self.account_of(identity.sub)
        if account is not None and scope == f"user.{account}":
            return True
        if scope in self.public_scopes:
            return True
        return any(scope in self.scopes_of_vo(vo) for vo in identity.vos)

    def placement(self, owner: str, vo: str) -> tuple[str, str | None]:
        """``(scope, rule account)`` for a job's outputs; ``None``: the service account."""
        account = self.account_of(owner)
        if self.output_scope == "user" and account is not None:
            return f"user.{account}", account
        return self.scopes_of_vo(vo)[0], account


def parse_dids(texts: Sequence[str]) -> list[Did]:
    dids: list[Did] = []
    errors = []
    for text in texts:
        try:
            did = Did.parse(text)
        except InvalidDidError as exc:
            errors.append({"field": "inputs", "message": str(exc)})
            continue
        if did not in dids:
            dids.append(did)
    if errors:
        raise InvalidInputsError("Inputs are Rucio DIDs written scope:name.", errors=errors)
    return dids


def input_groups(inputs: Mapping[str, Any] | None, task_count: int) -> list[list[InputFile]]:
    """The input files of each task, from a job's stored inputs (empty lists: no inputs)."""
    if not inputs:
        return []
    files = [InputFile.model_validate(f) for f in inputs.get("files", [])]
    per_task = inputs.get("files_per_job")
    if per_task:
        return [files[i : i + per_task] for i in range(0, len(files), per_task)]
    return [files for _ in range(task_count)]


@asynccontextmanager
async def _lake_errors() -> AsyncIterator[None]:
    """Rucio's failures as the problems a user sees."""
    try:
        yield
    except RucioUnavailableError as exc:
        raise DataLakeUnavailableError("The data lake did not answer; try again.") from exc
    except DidNotFoundError as exc:
        raise UnknownInputError(f"An input is not in the data lake: {exc.message}") from exc
    except RucioError as exc:
        log.warning("rucio refused an input lookup", error=str(exc))
        raise DataLakeUnavailableError(f"The data lake refused: {exc.message}") from exc


class InputResolver:
    """Checks that a user may read DIDs and resolves them into files with replica URLs.

    Parameters
    ----------
    rucio
        The Rucio server, as the gateway's account.
    policy
        Who may read what.
    schemes
        Replica URL schemes to hand to facilities, preferred first.
    max_files
        Most files a job may read.
    """

    def __init__(
        self,
        rucio: RucioClient,
        policy: DataLakePolicy,
        *,
        schemes: Sequence[str] = ("https", "http", "file"),
        max_files: int = 10_000,
    ) -> None:
        self.rucio = rucio
        self.policy = policy
        self.schemes = list(schemes)
        self.max_files = max_files

    def _check_readable(self, identity: Identity, dids: Sequence[Did]) -> None:
        refused = sorted({d.scope for d in dids if not self.policy.may_read(identity, d.scope)})
        if refused:
            raise InputNotReadableError(
                f"You may not read DIDs in scope {', '.join(refused)}: a user reads their own "
                "scope, their VOs' scopes and public ones.",
                errors=[
                    {"field": "inputs", "message": f"scope {s} is not readable"} for s in refused
                ],
            )

    async def resolve(self, identity: Identity, texts: Sequence[str]) -> list[InputFile]:
        """The files behind file, dataset or container DIDs, in a stable order.

        Raises
        ------
        InvalidInputsError, InputNotReadableError, UnknownInputError, DataLakeUnavailableError
        """
        dids = parse_dids(texts)
        # Permission first: an unreadable DID's existence is not revealed.
        self._check_readable(identity, dids)
        async with _lake_errors():
            files = await self._files(dids)
        return await self.describe(identity, files)

    async def files_in(self, identity: Identity, text: str) -> dict[Did, dict[str, Any]]:
        """The files a dataset or container holds now (none is no error), by DID in a stable
        order (scope, name), with Rucio's record of each; for ``new-data`` schedules.

        Raises
        ------
        InvalidInputsError, InputNotReadableError, UnknownInputError, DataLakeUnavailableError
        """
        [did] = parse_dids([text])
        self._check_readable(identity, [did])
        async with _lake_errors():
            listed = await self.rucio.list_files(did)
        return {
            Did(r["scope"], r["name"]): r
            for r in sorted(listed, key=lambda r: (r["scope"], r["name"]))
        }

    async def describe(
        self, identity: Identity, files: Mapping[Did, dict[str, Any]]
    ) -> list[InputFile]:
        """Input files with replica URLs, for files listed by :meth:`files_in` (or the
        resolution of DIDs), in their order: checks each file's scope and name clashes."""
        self._check_readable(identity, list(files))
        async with _lake_errors():
            urls = await self._replica_urls(list(files))
        names: dict[str, Did] = {}
        clashes = []
        for did in files:
            if did.file_name in names and names[did.file_name] != did:
                clashes.append(f"{names[did.file_name]} and {did}")
            names.setdefault(did.file_name, did)
        if clashes:
            raise InvalidInputsError(
                "Input files land in the working directory by file name; these clash: "
                + "; ".join(clashes[:5])
            )
        missing = [str(d) for d in files if not urls.get(d)]
        if missing:
            raise UnknownInputError(
                f"No available replica of {', '.join(missing[:5])}"
                + (f" (+{len(missing) - 5} more)" if len(missing) > 5 else "")
            )
        return [
            InputFile(
                scope=did.scope,
                name=did.name,
                lfn=did.name,
                bytes=record.get("bytes"),
                adler32=record.get("adler32"),
                urls=urls[did],
            )
            for did, record in files.items()
        ]

    async def _files(self, dids: Sequence[Did]) -> dict[Did, dict[str, Any]]:
        files: dict[Did, dict[str, Any]] = {}
        for did in dids:
            listed = await self.rucio.list_files(did)
            if not listed:
                raise UnknownInputError(f"{did} has no files.")
            for record in sorted(listed, key=lambda r: (r["scope"], r["name"])):
                files.setdefault(Did(record["scope"], record["name"]), record)
            if len(files) > self.max_files:
                raise InvalidInputsError(
                    f"A job may read at most {self.max_files} files; the inputs have more."
                )
        return files

    async def _replica_urls(self, files: Sequence[Did]) -> dict[Did, list[str]]:
        urls: dict[Did, list[str]] = {}
        rank = {scheme: i for i, scheme in enumerate(self.schemes)}
        for start in range(0, len(files), REPLICA_BATCH):
            batch = files[start : start + REPLICA_BATCH]
            for replica in await self.rucio.list_replicas(batch, self.schemes):
                states = replica.get("states") or {}
                found = [
                    pfn
                    for pfn, where in (replica.get("pfns") or {}).items()
                    if states.get(where.get("rse")) == "AVAILABLE"
                ]
                found.sort(key=lambda pfn: rank.get(pfn.split(":", 1)[0], len(rank)))
                urls[Did(replica["scope"], replica["name"])] = found
        return urls
