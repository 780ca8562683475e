"""What a job template must pass before any job is made of it, shared by job creation and
schedules: the workflow and its parameters, the facility's capacity, the VO, the credential.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from gridgate.contracts.phases import Phase
from gridgate.gateway.exceptions import NoVirtualOrganisationError
from gridgate.gateway.models.facility import Facility
from gridgate.gateway.models.job import Job, TaskRecord
from gridgate.gateway.services.credentials import CredentialChecker, CredentialUnavailableError
from gridgate.gateway.services.facilities import FacilityCatalogue, require_capacity
from gridgate.gateway.services.fields import check_parameters
from gridgate.iam.identity import Identity
from gridgate.workflows import WorkflowCatalogue, WorkflowDefinition, validate_parameters


@dataclass(frozen=True)
class Admission:
    """A template that passed: the definition and facility it names, its VO, its checked
    parameters and its execution duration."""

    definition: WorkflowDefinition
    facility: Facility
    vo: str
    parameters: dict[str, Any]
    duration: int


def choose_vo(identity: Identity, requested: str | None) -> str:
    """The VO charged for a job: the one asked for if the user is a member, else their first."""
    if requested is not None:
        if not identity.in_vo(requested):
            raise NoVirtualOrganisationError(
                f"You are not a member of the VO {requested!r}; yours: "
                f"{', '.join(identity.vos) or 'none'}."
            )
        return requested
    if not identity.vos:
        raise NoVirtualOrganisationError(
            "Your token names no group, so no VO can be charged for the job; ask your VO "
            "administrator to add you to a group (IAM 'groups' or 'wlcg.groups' claim)."
        )
    return identity.vos[0]


def admit(
    workflows: WorkflowCatalogue,
    facilities: FacilityCatalogue,
    identity: Identity,
    *,
    workflow: str,
    version: str | None,
    facility: str,
    vo: str | None,
    parameters: Mapping[str, Any],
    execution_duration: int | None,
) -> Admission:
    """Check a job template as job creation does; raise the problem of the first fault."""
    # Free text first: a value that could not be kept or shown is refused before any lookup.
    check_parameters(parameters)
    definition = workflows.get(workflow, version)
    chosen_vo = choose_vo(identity, vo)
    chosen = facilities.get(facility)
    checked = validate_parameters(definition, parameters)
    duration = (
        execution_duration
        if execution_duration is not None
        else definition.execution.default_execution_duration_s
    )
    require_capacity(chosen, definition.requirements, chosen_vo, duration)
    return Admission(definition, chosen, chosen_vo, checked, duration)


async def check_credential(
    checker: CredentialChecker | None,
    margin_s: int,
    identity: Identity,
    facility: Facility,
    vo: str,
    group: str | None,
    duration: int,
    now: datetime,
) -> tuple[str | None, datetime | None]:
    """For facilities that run jobs with the owner's proxy: can it last long enough?

    Returns the group the proxy is for and when it can last until (``None, None`` for a
    facility that needs no credential); raises the credential service's problem otherwise.
    """
    if not facility.needs_credential:
        return None, None
    if checker is None:
        raise CredentialUnavailableError("No credential service is configured.")
    check = await checker.check(identity, vo, group, duration + margin_s, kind=facility.kind)
    return check.group, now + timedelta(seconds=check.obtainable_s)


def draft_job(
    admission: Admission,
    *,
    job_id: str,
    owner: str,
    group: str | None,
    run_id: str | None,
    now: datetime,
    destruction: datetime,
    credential_expires_at: datetime | None,
    inputs: dict[str, Any] | None,
    task_count: int,
    schedule_id: str | None = None,
    nominal_time: datetime | None = None,
    notification_url: str | None = None,
) -> Job:
    """A new PENDING job of an admitted template, not yet recorded."""
    return Job(
        id=job_id,
        owner=owner,
        vo=admission.vo,
        group_name=group,
        run_id=run_id,
        workflow_id=admission.definition.id,
        workflow_version=admission.definition.version,
        facility=admission.facility.id,
        phase=Phase.PENDING,
        parameters=admission.parameters,
        creation_time=now,
        start_time=None,
        end_time=None,
        execution_duration=admission.duration,
        destruction=destruction,
        quote=None,
        error_type=None,
        error_message=None,
        task_count=task_count,
        finished_outcome=None,
        finished_detail=None,
        updated_at=now,
        credential_expires_at=credential_expires_at,
        inputs=inputs,
        schedule_id=schedule_id,
        nominal_time=nominal_time,
        notification_url=notification_url,
        tasks=[TaskRecord(index=i, phase=Phase.PENDING) for i in range(task_count)],
        is_new=True,
    )


__all__ = ["Admission", "admit", "check_credential", "choose_vo", "draft_job"]
