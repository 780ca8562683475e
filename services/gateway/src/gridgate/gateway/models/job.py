"""A job as the gateway's services see it."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from gridgate.contracts.phases import Phase


@dataclass
class TaskRecord:
    index: int
    phase: Phase
    facility_job_id: str | None = None
    facility_status: str | None = None
    exit_code: int | None = None
    detail: str | None = None
    started_at: datetime | None = None
    ended_at: datetime | None = None
    observed_at: datetime | None = None
    """When the monitor saw the recorded state; older observations are dropped."""


@dataclass
class InFlightJob:
    """A job a facility still runs, with only what the monitor compares (its bulk poll)."""

    id: str
    owner: str
    group_name: str | None
    phase: Phase
    tasks: list[TaskRecord] = field(default_factory=list)


@dataclass
class HistoryRecord:
    at: datetime
    from_phase: Phase | None
    to_phase: Phase | None
    source: str
    detail: str | None


@dataclass
class ResultRecord:
    name: str
    size: int
    media_type: str
    sha256: str
    adler32: str
    task_index: int | None
    did: str | None = None
    location: str | None = None
    """URL of the stored copy; ``None``: ``<results dir>/<job id>/<name>``."""

    @classmethod
    def of(cls, source: Any) -> ResultRecord:
        """Copy the same-named attributes of a row or a wire ``ResultFile``."""
        return cls(**{name: getattr(source, name) for name in cls.__dataclass_fields__})


@dataclass
class Job:
    id: str
    owner: str
    vo: str
    group_name: str | None
    run_id: str | None
    workflow_id: str
    workflow_version: str
    facility: str
    phase: Phase
    parameters: dict[str, Any]
    creation_time: datetime
    start_time: datetime | None
    end_time: datetime | None
    execution_duration: int
    destruction: datetime | None
    quote: datetime | None
    error_type: str | None
    error_message: str | None
    task_count: int
    finished_outcome: str | None
    finished_detail: str | None
    updated_at: datetime
    credential_expires_at: datetime | None = None
    credential_warned: bool = False
    inputs: dict[str, Any] | None = None
    """The job's input DIDs as asked, and the files of each task as resolved."""
    data_dataset: str | None = None
    """The Rucio dataset its outputs were registered in."""
    callback_token_hash: str | None = None
    """SHA-256 of the job's callback token while the job may call back; none once final."""
    version: int = 0
    """Bumped by every unit of work that changes the job (optimistic concurrency)."""
    stall_reason: str | None = None
    """Why the job made no progress for longer than the operator's bound, once noticed."""
    redrives: int = 0
    """How often a stalled job's submission or collection was sent again."""
    schedule_id: str | None = None
    """The schedule whose firing created the job."""
    nominal_time: datetime | None = None
    """The nominal time of that firing."""
    image: dict[str, Any] | None = None
    """The resolved container image (an ``ImageProvenance`` as JSON), for containerised jobs."""
    event_sequence: int = 0
    """The sequence number of the job's last event (1, 2, 3, ... with no gap)."""
    notification_url: str | None = None
    """The job's own webhook: the notifier sends each of its events there, signed."""
    tasks: list[TaskRecord] = field(default_factory=list)
    history: list[HistoryRecord] = field(default_factory=list)
    results: list[ResultRecord] = field(default_factory=list)
    is_new: bool = False
    """Built in this unit of work and not inserted yet: transitions change it in memory."""


@dataclass(frozen=True)
class Tombstone:
    """What is kept of a deleted job while its facility still cleans up as its owner."""

    job_id: str
    owner: str
    vo: str
    group_name: str | None
    facility: str
    deleted_at: datetime
