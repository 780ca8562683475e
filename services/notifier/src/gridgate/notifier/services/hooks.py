"""Job hooks: a job's notification URL turned into a subscription of the job's owner.

The gateway puts the URL on every event of the job (it is written with the job, in the same
transaction, through the gateway's outbox). Whichever of the job's events the notifier takes
in first makes the hook, in the transaction that fans that event out; so the hook exists
before any of the job's deliveries is written, and a crash either keeps both or neither.
The hook's id is derived from the job's id and its job is a unique column: the same event
taken in twice, or two events taken in at once by two replicas, make one hook.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncConnection

from gridgate.contracts.events import EVENT_TYPE_PREFIX
from gridgate.notifier.models import IncomingEvent
from gridgate.notifier.sealing import SecretBox, new_signing_secret
from gridgate.notifier.storage import OwnerSecretStore, SequenceStore, SubscriptionStore

HOOK_NAMESPACE = uuid.UUID("5b0c3f5e-2d0a-4c43-9a55-6a1d0f7f4e18")


def hook_id(job_id: str) -> str:
    """The id of a job's hook: the same in every replica, for every event of the job."""
    return str(uuid.uuid5(HOOK_NAMESPACE, job_id))


class JobHooks:
    """Makes job hooks during intake."""

    def __init__(self, box: SecretBox) -> None:
        self._box = box

    async def ensure(
        self, connection: AsyncConnection, event: IncomingEvent, now: datetime
    ) -> None:
        """Make ``event``'s job hook unless it was made before (and perhaps deleted since)."""
        assert event.hook_url is not None and event.job_id is not None
        # A numbered event's job row is locked by take_in: one event of the job at a time
        # gets here, and a hook its owner deleted is not made again by a later event.
        if event.sequence is not None and not await SequenceStore(connection).mark_hooked(
            event.subject
        ):
            return
        secrets = OwnerSecretStore(connection)
        if not await secrets.exists(event.owner):
            # First need: deliveries must be signed. The owner did not see it; they learn
            # their secret by rotating it, and retries are signed with the new one.
            await secrets.add_unless_present(event.owner, self._box.seal(new_signing_secret()), now)
        await SubscriptionStore(connection).add_hook(
            {
                "id": hook_id(event.job_id),
                "owner": event.owner,
                "url": event.hook_url,
                "description": f"notification_url of job {event.job_id}",
                # Its own job's events only: not a schedule's event naming the job.
                "event_types": [f"{EVENT_TYPE_PREFIX}*"],
                "vos": [],
                "job_ids": [event.job_id],
                "schedule_ids": [],
                "sealed_secret": None,
                "enabled": True,
                "disabled_reason": None,
                "disabled_at": None,
                "created_at": now,
                "hook_job_id": event.job_id,
            }
        )
