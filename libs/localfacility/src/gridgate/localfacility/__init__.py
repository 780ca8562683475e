"""The local facility: runs a job's tasks as processes on the worker host.

It plays the part DIRAC plays for grid facilities, with the same verbs: submit (idempotent by
gridgate job id), status in bulk, cancel, and collect outputs. Each task runs under a small
detached runner process (:mod:`gridgate.localfacility.runner`) that enforces the limits and writes
its state to ``status.json``; the worker services only read and signal, so a worker crash never
kills or duplicates a running job.
"""

from gridgate.contracts.tasks import TaskStatus
from gridgate.localfacility.facility import LocalFacility
from gridgate.localfacility.layout import task_id
from gridgate.localfacility.settings import LocalFacilitySettings

__all__ = ["LocalFacility", "LocalFacilitySettings", "TaskStatus", "task_id"]
