"""The one state machine of a job's UWS phase."""

from __future__ import annotations

from gridgate.contracts.phases import Phase

ACTIVE_PHASES = frozenset({Phase.PENDING, Phase.QUEUED, Phase.EXECUTING})
"""Phases a UWS WAIT blocks on when the client names none."""

LEGAL_TRANSITIONS: dict[Phase, frozenset[Phase]] = {
    Phase.PENDING: frozenset({Phase.QUEUED, Phase.ABORTED, Phase.ERROR}),
    Phase.QUEUED: frozenset(
        {Phase.EXECUTING, Phase.HELD, Phase.ABORTED, Phase.ERROR, Phase.COMPLETED}
    ),
    Phase.EXECUTING: frozenset(
        {Phase.QUEUED, Phase.SUSPENDED, Phase.COMPLETED, Phase.ERROR, Phase.ABORTED}
    ),
    Phase.HELD: frozenset({Phase.QUEUED, Phase.EXECUTING, Phase.ABORTED, Phase.ERROR}),
    Phase.SUSPENDED: frozenset({Phase.EXECUTING, Phase.ABORTED, Phase.ERROR}),
    Phase.UNKNOWN: frozenset(
        {Phase.QUEUED, Phase.EXECUTING, Phase.COMPLETED, Phase.ERROR, Phase.ABORTED}
    ),
    Phase.COMPLETED: frozenset({Phase.ARCHIVED}),
    Phase.ERROR: frozenset({Phase.ARCHIVED}),
    Phase.ABORTED: frozenset({Phase.ARCHIVED}),
    Phase.ARCHIVED: frozenset(),
}


def is_legal(current: Phase, target: Phase) -> bool:
    """Whether ``current -> target`` is a transition the machine allows."""
    return target in LEGAL_TRANSITIONS[current]


def aggregate_phase(task_phases: list[Phase]) -> Phase:
    """The phase a job of several tasks shows while its tasks run.

    Any task running makes the job EXECUTING; all waiting makes it QUEUED; once some have
    finished and others not, it is still EXECUTING. Final outcomes are decided separately.
    """
    if not task_phases or all(p in (Phase.QUEUED, Phase.PENDING) for p in task_phases):
        return Phase.QUEUED
    return Phase.EXECUTING
