"""Names of exchanges and queues: the one place that spells them."""

from __future__ import annotations

from typing import Final

EVENTS_EXCHANGE: Final = "gridgate.events"
"""Topic exchange of job events, routing key ``job.<vo>.<phase>``; anyone may bind a queue."""

COMMANDS_EXCHANGE: Final = "gridgate.commands"
"""Direct exchange routing commands and reports to their durable queues by queue name."""

SUBMITTER_QUEUE: Final = "gridgate.submitter"
RESULTS_QUEUE: Final = "gridgate.results"
GATEWAY_REPORTS_QUEUE: Final = "gridgate.gateway.reports"

NOTIFIER_QUEUE: Final = "gridgate.notifier.events"
"""The notifier's durable queue on ``gridgate.events`` (job and schedule events), declared by
the notifier alone: without a notifier nothing accumulates."""

DEAD_LETTER_EXCHANGE: Final = "gridgate.dead-letter"
"""Fanout-free direct exchange: a failed message keeps its queue name as routing key."""

RETRY_EXCHANGE: Final = "gridgate.retry"
"""Holds messages for a back-off delay, then dead-letters them back to their queue."""

PEEK_METHOD: Final = "gridgate.rpc.peek"
"""Request-reply (aio-pika JSON RPC): the monitor answers with a running task's output so far.
Arguments ``facility``, ``facility_job_id``, ``stream`` (stdout or stderr); answer
``{"text": str, "source": str}``. Nothing durable: a call nobody answers times out."""
