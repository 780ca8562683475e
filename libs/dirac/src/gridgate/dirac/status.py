"""DIRAC job states -> UWS phases."""

from __future__ import annotations

from gridgate.contracts.phases import Phase

PHASE_OF_STATUS = {
    "Submitting": Phase.QUEUED,
    "Received": Phase.QUEUED,
    "Checking": Phase.QUEUED,
    "Staging": Phase.QUEUED,
    "Waiting": Phase.QUEUED,
    "Matched": Phase.QUEUED,
    "Rescheduled": Phase.QUEUED,
    "Running": Phase.EXECUTING,
    "Completing": Phase.EXECUTING,
    "Done": Phase.COMPLETED,
    "Completed": Phase.EXECUTING,  # DIRAC's own pre-final "Completed" precedes Done
    "Failed": Phase.ERROR,
    "Stalled": Phase.ERROR,
    "Killed": Phase.ABORTED,
    "Deleted": Phase.ABORTED,
}


def phase_of(status: str) -> Phase:
    """The UWS phase of a DIRAC status; an unknown status is UNKNOWN, never a guess."""
    return PHASE_OF_STATUS.get(status, Phase.UNKNOWN)
