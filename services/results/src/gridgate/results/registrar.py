"""Registering a job's outputs in Rucio: bytes on the RSE, replicas, a dataset, metadata, a rule.

A file's DID name has no ``/`` (:func:`output_name`): Rucio's own download client writes a
file under its name in one directory and cannot create the folders a ``/`` implies.

Every step is idempotent, in an order that a crash at any point and a redelivery of the same
command finish without a duplicate or an error: write the bytes at the PFN Rucio computes,
register the replicas, create the dataset, set its provenance, attach the files, add the rule,
close the dataset.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import structlog

from gridgate.contracts import CollectResults
from gridgate.datalake import Did, DidNotFoundError, RucioClient, StorageClient
from gridgate.results.stores import StagedFile

log = structlog.get_logger(__name__)
BATCH = 200


class ChecksumConflictError(Exception):
    """Rucio already holds a different file under one of the job's DIDs."""


class OutputNameClashError(Exception):
    """Two of a job's outputs would have the same Rucio name (``a/b.dat`` and ``a.b.dat``)."""


@dataclass(frozen=True)
class Registration:
    dataset: Did
    files: dict[str, Did]
    """Result name -> file DID."""
    locations: dict[str, str]
    """Result name -> replica URL (PFN) on the RSE."""


def dataset_of(command: CollectResults) -> Did:
    """The job's dataset: ``<scope>:gridgate.<workflow>.<job id>``."""
    assert command.data_scope is not None
    return Did(command.data_scope, f"gridgate.{command.workflow_id or 'job'}.{command.job_id}")


def output_name(dataset: Did, result_name: str) -> str:
    """The Rucio name of one output: ``<dataset name>.<result name, each / as .>``.

    E.g. ``gridgate.cta-mc-production.<job>.task-0001.run000101.simtel.json``. Names are joined
    with dots, as Rucio's users name files (``user.alice.<task>._000001.out``); the dataset's
    name first makes it unique in the scope and tells where the file belongs.
    """
    return f"{dataset.name}.{result_name.replace('/', '.')}"


def legacy_output_name(dataset: Did, result_name: str) -> str:
    """How gridgate named outputs before 2026-12 (``<dataset name>/<result name>``)."""
    return f"{dataset.name}/{result_name}"


def provenance(command: CollectResults) -> dict[str, Any]:
    """What the dataset says about where its files come from."""
    return {
        "gridgate_job_id": command.job_id,
        "workflow_id": command.workflow_id,
        "workflow_version": command.workflow_version,
        "parameters_digest": command.parameters_digest,
        "facility": command.facility,
        "facility_job_ids": list(command.facility_job_ids),
        # DIRAC job ids are integers; the local facility's ids are not.
        "dirac_job_ids": [int(i) for i in command.facility_job_ids if i.isdigit()],
        "vo": command.vo,
        # Containerised workflows: the image the outputs were made in, pinned by digest.
        **(
            {
                "image": command.image.reference,
                "image_digest": command.image.digest,
                "image_build_args": dict(command.image.build_args),
                "image_base_digest": command.image.base_digest,
                "image_recipe_digest": command.image.recipe_digest,
            }
            if command.image is not None
            else {}
        ),
    }


def _batches(items: Sequence[Any]) -> list[Sequence[Any]]:
    return [items[i : i + BATCH] for i in range(0, len(items), BATCH)]


class RucioRegistrar:
    """Writes a job's files to one RSE and registers them.

    Parameters
    ----------
    rucio
        Client of the Rucio server, as gridgate's service account.
    storage
        Writes the bytes at the RSE's PFNs (WebDAV or a mounted path).
    rse
        The deterministic RSE that receives outputs.
    scheme
        The RSE protocol to write with (``https`` or ``file``).
    """

    def __init__(
        self,
        rucio: RucioClient,
        storage: StorageClient,
        rse: str,
        *,
        scheme: str = "https",
        concurrency: int = 4,
    ) -> None:
        self.rucio = rucio
        self.storage = storage
        self.rse = rse
        self.scheme = scheme
        self._slots = asyncio.Semaphore(concurrency)

    async def register(self, command: CollectResults, files: list[StagedFile]) -> Registration:
        dataset = dataset_of(command)
        # A job registered before outputs were named without '/' keeps its names: a redelivered
        # command finds its dataset complete (and closed) under the old names.
        legacy = await self._named_the_old_way(dataset)
        naming = legacy_output_name if legacy else output_name
        # Parsing checks each name against Rucio's rules before anything is written.
        dids = {f.name: Did.parse(f"{dataset.scope}:{naming(dataset, f.name)}") for f in files}
        if len(set(dids.values())) < len(dids):
            raise OutputNameClashError(
                "two outputs would have the same Rucio name once '/' becomes '.': "
                + ", ".join(sorted(dids))
            )
        pfns: dict[Did, str] = {}
        for batch in _batches(list(dids.values())):
            pfns.update(await self.rucio.lfns2pfns(self.rse, batch, scheme=self.scheme))

        async def upload(item: StagedFile) -> None:
            async with self._slots:
                await self.storage.upload(item.path, pfns[dids[item.name]])

        await asyncio.gather(*(upload(f) for f in files))
        replicas = [
            {
                "scope": dids[f.name].scope,
                "name": dids[f.name].name,
                "bytes": f.size,
                "adler32": f.adler32,
                # Files of a legacy job are in Rucio already, registered without MD5.
                **({} if legacy else {"md5": f.md5}),
            }
            for f in files
        ]
        for batch in _batches(replicas):
            await self.rucio.add_replicas(self.rse, batch)
        created = await self.rucio.add_dataset(dataset)
        is_open = created or bool((await self.rucio.get_did(dataset)).get("open", True))
        await self.rucio.set_json_metadata(dataset, provenance(command))
        for batch in _batches(files):
            await self.rucio.set_json_metadata_bulk(
                [
                    (dids[f.name], {"gridgate_job_id": command.job_id, "task_index": f.task_index})
                    for f in batch
                ]
            )
        if is_open:
            # A closed dataset was completed by an earlier delivery of this command.
            for batch in _batches(list(dids.values())):
                await self.rucio.attach(dataset, batch)
        await self._check_checksums(dataset, files, dids, with_md5=not legacy)
        await self.rucio.add_rule([dataset], self.rse, account=command.data_account)
        if is_open:
            await self.rucio.close(dataset)
        log.info(
            "outputs registered",
            job_id=command.job_id,
            dataset=str(dataset),
            files=len(files),
            rse=self.rse,
            again=not created,
        )
        return Registration(
            dataset=dataset,
            files=dids,
            locations={name: pfns[did] for name, did in dids.items()},
        )

    async def _named_the_old_way(self, dataset: Did) -> bool:
        try:
            held = await self.rucio.list_files(dataset)
        except DidNotFoundError:
            return False
        return any(str(f["name"]).startswith(dataset.name + "/") for f in held)

    async def _check_checksums(
        self, dataset: Did, files: list[StagedFile], dids: dict[str, Did], *, with_md5: bool
    ) -> None:
        """Rucio's size, Adler-32 and MD5 of every file must be the ones computed here."""
        # The replica listing carries both checksums; the file listing only Adler-32.
        held = {
            r["name"]: r
            for r in await self.rucio.list_replicas([dataset])
            if r.get("scope") == dataset.scope
        }
        for item in files:
            record = held.get(dids[item.name].name)
            if record is None:
                raise ChecksumConflictError(f"{dids[item.name]} is not in {dataset}")
            found = (record.get("bytes"), record.get("adler32"), record.get("md5"))
            wanted = (item.size, item.adler32, item.md5 if with_md5 else record.get("md5"))
            if found != wanted:
                raise ChecksumConflictError(
                    f"Rucio holds {dids[item.name]} with {found[0]} bytes, adler32 {found[1]} "
                    f"and md5 {found[2]}, not {item.size} bytes, adler32 {item.adler32} "
                    f"and md5 {item.md5}"
                )

    async def expire(self, dataset: Did, lifetime_s: int) -> int:
        """Give every rule of the dataset ``lifetime_s``; return how many rules there were."""
        rules = await self.rucio.list_rules(dataset)
        for rule in rules:
            await self.rucio.set_rule_lifetime(str(rule["id"]), lifetime_s)
        return len(rules)
