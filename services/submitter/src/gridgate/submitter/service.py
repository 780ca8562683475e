"""The submitter's rules: send a job's tasks to its facility, stop or forget them."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from functools import partial
from typing import TYPE_CHECKING

import structlog

from gridgate.broker import Publisher
from gridgate.contracts import (
    GATEWAY_REPORTS_QUEUE,
    CancelJob,
    Command,
    ImageBuildStarted,
    ImageProvenance,
    ImageResolved,
    JobFailureReported,
    JobSubmitted,
    PurgeJob,
    SubmitJob,
)
from gridgate.contracts.callback import CALLBACK_PATH, callback_token
from gridgate.core.crashpoints import crash_point
from gridgate.core.errors import FatalError, UsageError
from gridgate.dirac.facility import CallbackTarget, DiracFacility
from gridgate.dirac.proxies import ProxyRefusedError
from gridgate.diracx.tokens import DiracXTokenRefusedError
from gridgate.images import ImageResolver
from gridgate.localfacility import LocalFacility
from gridgate.submitter.batching import SubmitBatcher
from gridgate.workflows import WorkflowCatalogue

if TYPE_CHECKING:
    # Annotations only: the official DiracX client loads when a DiracX facility is served.
    from gridgate.diracx.facility import DiracXFacility

log = structlog.get_logger(__name__)


class SubmitterService:
    """Handles submit, cancel and purge commands for the facilities it knows.

    Parameters
    ----------
    local
        The local facility.
    dirac
        DIRAC 8 and DiracX facilities by catalogue id.
    callback_url, callback_secret
        The gateway's base URL as jobs reach it, and the secret job tokens derive from;
        without both, DIRAC jobs do not call back.
    images
        Selects or builds the images of containerised workflows; none: they cannot run here.
    catalogue
        Where image recipes come from (the shipped catalogue by default).
    facility_registries
        Per facility, the registry host its nodes pull images from, when not the build one.
    build_heartbeat_s
        While a job waits for its image build, how often the gateway hears it is alive (so
        its stall watch leaves the job alone).
    """

    def __init__(
        self,
        publisher: Publisher,
        local: LocalFacility,
        dirac: Mapping[str, DiracFacility | DiracXFacility] | None = None,
        *,
        callback_url: str = "",
        callback_secret: str = "",
        images: ImageResolver | None = None,
        catalogue: WorkflowCatalogue | None = None,
        facility_registries: Mapping[str, str] | None = None,
        build_heartbeat_s: float = 60.0,
    ) -> None:
        self.images = images
        self.build_heartbeat_s = build_heartbeat_s
        self.catalogue = catalogue or WorkflowCatalogue.shipped()
        self.facility_registries = dict(facility_registries or {})
        self.publisher = publisher
        self.local = local
        self.dirac = dict(dirac or {})
        self.callback_url = callback_url.rstrip("/")
        self.callback_secret = callback_secret
        # One batcher per DIRAC facility: concurrent commands share bulk submissions.
        self.batchers = {
            name: SubmitBatcher(partial(self._submit_bulk, facility))
            for name, facility in self.dirac.items()
        }

    def _facility(self, name: str) -> LocalFacility | DiracFacility | DiracXFacility:
        if name == self.local.name:
            return self.local
        if name in self.dirac:
            return self.dirac[name]
        raise UsageError(f"This submitter does not serve the facility {name!r}.")

    async def handle(self, command: Command) -> None:
        match command:
            case SubmitJob():
                await self.submit(command)
            case CancelJob():
                await self.cancel(command)
            case PurgeJob():
                await self.purge(command)
            case _:
                raise FatalError(f"the submitter does not handle {command.kind!r}")

    async def submit(self, command: SubmitJob) -> None:
        facility = self._facility(command.facility)
        if command.image is not None:
            # Resolved on every delivery: a redelivery finds the image and builds nothing.
            image = await self.resolve_image(command)
            pinned = command.image.model_copy(
                update={"reference": self._pull_reference(command, image)}
            )
            command = command.model_copy(update={"image": pinned})
        # Idempotent: a redelivered command finds the tasks launched and launches nothing.
        if not isinstance(facility, LocalFacility):
            ids = await self.batchers[command.facility].submit(command)
        else:
            ids = await asyncio.to_thread(
                facility.submit, command.job_id, command.tasks, command.limits, command.image
            )
        crash_point("submitter-submitted")
        await self.publisher.send(
            GATEWAY_REPORTS_QUEUE,
            JobSubmitted(job_id=command.job_id, facility=command.facility, facility_job_ids=ids),
        )
        log.info("job submitted", job_id=command.job_id, facility=command.facility, tasks=len(ids))

    async def resolve_image(self, command: SubmitJob) -> ImageProvenance:
        """Select the job's image or build it; tell the gateway what the job waits for."""
        request = command.image
        assert request is not None
        if self.images is None:
            raise UsageError(
                f"The facility {command.facility} has no image registry configured, so "
                f"{command.workflow_id} (a containerised workflow) cannot run there."
            )
        files: dict[str, bytes] = {}
        if request.digest is None:
            recipe = self.catalogue.recipe(command.workflow_id, command.workflow_version)
            if recipe is None or recipe.digest != request.recipe_digest:
                raise UsageError(
                    f"The image recipe of {command.workflow_id} {command.workflow_version} is "
                    "not the one the job was created with; submit the job again."
                )
            files = recipe.files

        heartbeats: list[asyncio.Task[None]] = []

        async def building(tag: str) -> None:
            started = ImageBuildStarted(
                job_id=command.job_id, repository=request.repository, tag=tag
            )
            await self.publisher.send(GATEWAY_REPORTS_QUEUE, started)
            heartbeats.append(asyncio.create_task(self._heartbeat(started)))

        try:
            image = await self.images.resolve(request, files, on_build=building)
        finally:
            for task in heartbeats:
                task.cancel()
        crash_point("submitter-image-resolved")
        await self.publisher.send(
            GATEWAY_REPORTS_QUEUE, ImageResolved(job_id=command.job_id, image=image)
        )
        log.info("image resolved", job_id=command.job_id, image=image.reference, built=image.built)
        return image

    async def _heartbeat(self, started: ImageBuildStarted) -> None:
        """Repeat the build report while the job waits: the gateway takes a repeat as the
        sign that the build is alive (its stall watch must not re-send the job)."""
        while True:
            await asyncio.sleep(self.build_heartbeat_s)
            try:
                await self.publisher.send(GATEWAY_REPORTS_QUEUE, started)
            except Exception as exc:  # a missed beat only risks a re-send
                log.warning("build heartbeat not sent", job_id=started.job_id, reason=str(exc))

    def _pull_reference(self, command: SubmitJob, image: ImageProvenance) -> str:
        """The image as the facility's nodes pull it (another registry name, perhaps)."""
        host = self.facility_registries.get(command.facility)
        if not host:
            return image.reference
        return f"{host}/{image.repository}@{image.digest}"

    async def _submit_bulk(
        self, facility: DiracFacility | DiracXFacility, commands: list[SubmitJob]
    ) -> dict[str, list[str]]:
        callbacks = {c.job_id: self._callback(c.job_id) for c in commands}
        ids = await facility.submit_many(commands, callbacks)
        if len(commands) > 1:
            log.info("bulk submission", facility=facility.name, jobs=len(commands))
        return ids

    def _callback(self, job_id: str) -> CallbackTarget | None:
        if not (self.callback_url and self.callback_secret):
            return None
        return CallbackTarget(
            url=self.callback_url + CALLBACK_PATH.format(job_id=job_id),
            token=callback_token(self.callback_secret, job_id),
        )

    async def cancel(self, command: CancelJob) -> None:
        """ABORT: stop the job's tasks (DIRAC: kill them, as the owner)."""
        await self._stop(command, "killed")

    async def purge(self, command: PurgeJob) -> None:
        """DELETE: stop the job's tasks and forget them (DIRAC: kill, then delete)."""
        await self._stop(command, "deleted")

    async def _stop(self, command: CancelJob | PurgeJob, outcome: str) -> None:
        facility = self._facility(command.facility)
        purge = isinstance(command, PurgeJob)
        if isinstance(facility, LocalFacility):
            await asyncio.to_thread(facility.purge if purge else facility.cancel, command.job_id)
            return
        try:
            ids = await (facility.purge if purge else facility.cancel)(command.job_id)
        except (ProxyRefusedError, DiracXTokenRefusedError) as exc:
            # Past the grace period the owner's proxy is gone, and so is our right to act.
            log.warning(
                f"cannot get the job {outcome} in DIRAC", job_id=command.job_id, reason=str(exc)
            )
            return
        log.info(f"job {outcome} in DIRAC", job_id=command.job_id, dirac_jobs=len(ids))

    async def report_usage_error(self, command: Command, reason: str) -> None:
        await self.publisher.send(
            GATEWAY_REPORTS_QUEUE,
            JobFailureReported(job_id=command.job_id, source="submitter", reason=reason),
        )
