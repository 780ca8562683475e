"""Tables of the notifier's own database: subscriptions and their deliveries."""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    false,
)

metadata = MetaData()

subscriptions = Table(
    "subscriptions",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("owner", String(255), nullable=False),
    Column("url", Text, nullable=False),
    Column("description", Text, nullable=False, default=""),
    # The filter: empty lists match everything of the owner's.
    Column("event_types", JSON, nullable=False),
    Column("vos", JSON, nullable=False),
    Column("job_ids", JSON, nullable=False),
    Column("schedule_ids", JSON, nullable=False),
    # Fernet token of the signing secret; never the secret itself. None on a job hook: it
    # signs with its owner's job-hook secret (owner_secrets), read when it sends.
    Column("sealed_secret", Text, nullable=True),
    Column("enabled", Boolean, nullable=False, default=True),
    Column("disabled_reason", Text, nullable=True),
    Column("disabled_at", DateTime(timezone=True), nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    # A job hook (a job's notification_url) names its job here; none on a subscription.
    # Unique: the same job's events, taken in twice or by two replicas, make one hook.
    Column("hook_job_id", String(255), nullable=True),
    Index("ix_subscriptions_owner", "owner"),
    Index("uq_subscriptions_hook_job", "hook_job_id", unique=True),
)

deliveries = Table(
    "deliveries",
    metadata,
    Column("id", String(36), primary_key=True),
    Column(
        "subscription_id",
        String(36),
        ForeignKey("subscriptions.id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("event_id", String(255), nullable=False),
    Column("event_type", String(255), nullable=False),
    # Events of one subject (a job, a schedule) go out in (order_major, order_minor) order.
    Column("subject", String(255), nullable=False),
    Column("order_major", Integer, nullable=False),
    Column("order_minor", Integer, nullable=False),
    # The job event's gap-free number (none on older events): due only once every smaller
    # number of its subject was taken in (job_sequences), or after order_hold_s.
    Column("sequence", Integer, nullable=True),
    Column("body", Text, nullable=False),
    # pending -> delivered | failed; pending again on redelivery.
    Column("status", String(16), nullable=False),
    Column("attempts", Integer, nullable=False, default=0),
    Column("next_attempt_at", DateTime(timezone=True), nullable=False),
    Column("lease_until", DateTime(timezone=True), nullable=True),
    Column("lease_token", String(36), nullable=True),
    Column("last_status_code", Integer, nullable=True),
    Column("last_response", Text, nullable=True),
    Column("last_error", Text, nullable=True),
    Column("last_attempt_at", DateTime(timezone=True), nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    # Retries are given up give_up_after_s after this: arrival, or the last redelivery.
    Column("retry_from", DateTime(timezone=True), nullable=False),
    Column("delivered_at", DateTime(timezone=True), nullable=True),
    # The relay publishes at least once: one delivery per event and subscription.
    UniqueConstraint("subscription_id", "event_id", name="uq_deliveries_subscription_event"),
    Index("ix_deliveries_due", "status", "next_attempt_at"),
    Index("ix_deliveries_order", "subscription_id", "subject", "status"),
    Index("ix_deliveries_lease", "lease_token"),
)

# Which numbered events of each subject (a job) the notifier has taken in, whatever the
# subscriptions: 1..contiguous all, and the numbers beyond it in sequences_ahead.
job_sequences = Table(
    "job_sequences",
    metadata,
    Column("subject", String(255), primary_key=True),
    Column("contiguous", Integer, nullable=False),
    # Rows of this subject in sequences_ahead: none in the usual case, so none is read.
    Column("ahead", Integer, nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    # The job's hook was made (and may have been deleted by its owner since): later events
    # carrying the URL make no new one.
    Column("hooked", Boolean, nullable=False, server_default=false()),
)

sequences_ahead = Table(
    "sequences_ahead",
    metadata,
    Column("subject", String(255), primary_key=True),
    Column("sequence", Integer, primary_key=True),
)

# Each owner's signing secret for their job hooks (sealed), made on first need and shown
# only when the owner creates or rotates it (POST /api/subscriptions/job-hook-secret).
owner_secrets = Table(
    "owner_secrets",
    metadata,
    Column("owner", String(255), primary_key=True),
    Column("sealed_secret", Text, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    # When its owner was given it; None while only the notifier has seen it.
    Column("shown_at", DateTime(timezone=True), nullable=True),
)

# Events the notifier itself emits, written in the transaction of the change they announce
# and published by its relay (at least once).
notifier_outbox = Table(
    "notifier_outbox",
    metadata,
    Column("id", BigInteger().with_variant(Integer(), "sqlite"), primary_key=True),
    Column("message_id", String(255), nullable=False),
    Column("message_type", String(255), nullable=False),
    Column("routing_key", String(255), nullable=False),
    Column("body", Text, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
)
