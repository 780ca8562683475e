"""Tables of the notifier's own database: subscriptions and their deliveries."""

from __future__ import annotations

from sqlalchemy import (
    JSON,
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
    # Fernet token of the signing secret; never the secret itself.
    Column("sealed_secret", Text, nullable=False),
    Column("enabled", Boolean, nullable=False, default=True),
    Column("disabled_reason", Text, nullable=True),
    Column("disabled_at", DateTime(timezone=True), nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Index("ix_subscriptions_owner", "owner"),
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
