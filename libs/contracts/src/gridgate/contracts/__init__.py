"""The wire between gridgate services: phases, commands, reports and events.

This is the only code two services share about each other. Every message is a pydantic model
with a ``kind`` discriminator and a ``version``; consumers ignore fields they do not know, so a
producer may add fields without breaking older consumers.
"""

from gridgate.contracts.callback import (
    CALLBACK_PATH,
    CallbackUpdate,
    callback_token,
    token_digest,
)
from gridgate.contracts.commands import (
    COMMAND_ADAPTER,
    CancelJob,
    CollectResults,
    Command,
    PurgeJob,
    PurgeResults,
    SubmitJob,
)
from gridgate.contracts.events import (
    EVENT_SOURCE,
    JobEvent,
    event_type_for,
    routing_key_for,
)
from gridgate.contracts.images import ImageProvenance, ImageRequest
from gridgate.contracts.messages import Message
from gridgate.contracts.phases import FINAL_PHASES, Phase
from gridgate.contracts.reports import (
    MAX_OBSERVATIONS_PER_MESSAGE,
    REPORT_ADAPTER,
    ImageBuildStarted,
    ImageResolved,
    JobFailureReported,
    JobStateObserved,
    JobStatesObserved,
    JobSubmitted,
    Report,
    ResultFile,
    ResultsStaged,
    TaskState,
)
from gridgate.contracts.tasks import InputFile, ResourceLimits, TaskSpec
from gridgate.contracts.topology import (
    EVENTS_EXCHANGE,
    GATEWAY_REPORTS_QUEUE,
    RESULTS_QUEUE,
    SUBMITTER_QUEUE,
)

__all__ = [
    "CALLBACK_PATH",
    "COMMAND_ADAPTER",
    "EVENTS_EXCHANGE",
    "EVENT_SOURCE",
    "FINAL_PHASES",
    "GATEWAY_REPORTS_QUEUE",
    "MAX_OBSERVATIONS_PER_MESSAGE",
    "REPORT_ADAPTER",
    "RESULTS_QUEUE",
    "SUBMITTER_QUEUE",
    "CallbackUpdate",
    "CancelJob",
    "CollectResults",
    "Command",
    "ImageBuildStarted",
    "ImageProvenance",
    "ImageRequest",
    "ImageResolved",
    "InputFile",
    "JobEvent",
    "JobFailureReported",
    "JobStateObserved",
    "JobStatesObserved",
    "JobSubmitted",
    "Message",
    "Phase",
    "PurgeJob",
    "PurgeResults",
    "Report",
    "ResourceLimits",
    "ResultFile",
    "ResultsStaged",
    "SubmitJob",
    "TaskSpec",
    "TaskState",
    "callback_token",
    "event_type_for",
    "routing_key_for",
    "token_digest",
]
