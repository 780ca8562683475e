"""Subscription events: published by the notifier on the ``gridgate.events`` topic exchange.

Each is a CloudEvents 1.0 envelope whose ``data`` is a :class:`SubscriptionEvent`; routing key
``subscription.disabled``: the notifier turned a webhook subscription off because its
deliveries kept failing (docs/webhooks.md).
"""

from __future__ import annotations

from datetime import datetime
from typing import Final

from pydantic import BaseModel, ConfigDict

SUBSCRIPTION_EVENT_SOURCE: Final = "/gridgate/notifier"
SUBSCRIPTION_DISABLED_TYPE: Final = "org.gridgate.subscription.disabled.v1"
SUBSCRIPTION_DISABLED_KEY: Final = "subscription.disabled"


class SubscriptionEvent(BaseModel):
    """The data of a subscription event (version 1)."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    version: int = 1
    subscription_id: str
    owner: str
    reason: str
    occurred_at: datetime
