"""Metrics every service exports, and the small HTTP endpoint workers serve them on."""

from gridgate.observability.health import HealthServer, ReadinessCheck
from gridgate.observability.metrics import (
    instrument_facility,
    observe_dead_letter,
    observe_facility_call,
    observe_job_event,
    observe_message_outcome,
    observe_queue_lag,
    observe_stalled_job,
    observe_webhook_attempt,
    observe_webhook_delivered,
    observe_webhook_order_hold_released,
    observe_webhook_out_of_order,
    render_latest,
)

__all__ = [
    "HealthServer",
    "ReadinessCheck",
    "instrument_facility",
    "observe_dead_letter",
    "observe_facility_call",
    "observe_job_event",
    "observe_message_outcome",
    "observe_queue_lag",
    "observe_stalled_job",
    "observe_webhook_attempt",
    "observe_webhook_delivered",
    "observe_webhook_order_hold_released",
    "observe_webhook_out_of_order",
    "render_latest",
]
