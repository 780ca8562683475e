"""The base of every message on the wire."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from gridgate.core.clock import new_message_id, utcnow


class Message(BaseModel):
    """Common envelope fields. Unknown fields are ignored so producers can evolve first."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    version: int = 1
    message_id: str = Field(default_factory=new_message_id)
    sent_at: datetime = Field(default_factory=utcnow)
    job_id: str
