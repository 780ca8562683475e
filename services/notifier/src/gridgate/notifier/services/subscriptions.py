"""Subscriptions: created with a checked URL and a secret shown once; each user sees their own."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncEngine

from gridgate.notifier.exceptions import (
    DeliveryNotFoundError,
    JobHookSecretNotFoundError,
    SubscriptionNotFoundError,
    TooManySubscriptionsError,
)
from gridgate.notifier.guard import OutboundPolicy
from gridgate.notifier.models import (
    CreatedJobHookSecret,
    CreatedSubscription,
    Delivery,
    DeliveryStatus,
    JobHookSecret,
    Subscription,
    SubscriptionCreate,
    SubscriptionKind,
    SubscriptionRecord,
)
from gridgate.notifier.sealing import SecretBox, new_signing_secret
from gridgate.notifier.storage import DeliveryStore, OwnerSecretStore, SubscriptionStore


class SubscriptionService:
    def __init__(
        self,
        engine: AsyncEngine,
        policy: OutboundPolicy,
        box: SecretBox,
        *,
        max_per_owner: int,
    ) -> None:
        self._engine = engine
        self._policy = policy
        self._box = box
        self._max_per_owner = max_per_owner

    async def create(self, owner: str, request: SubscriptionCreate) -> CreatedSubscription:
        """Check the URL (resolving its host), make the secret, store it sealed."""
        await self._policy.check(request.url)
        secret = new_signing_secret()
        values = {
            **request.model_dump(),
            "id": str(uuid.uuid4()),
            "owner": owner,
            "sealed_secret": self._box.seal(secret),
            "enabled": True,
            "disabled_reason": None,
            "disabled_at": None,
            "created_at": datetime.now(UTC),
        }
        async with self._engine.begin() as connection:
            store = SubscriptionStore(connection)
            if await store.count_for_owner(owner) >= self._max_per_owner:
                raise TooManySubscriptionsError(
                    f"You have {self._max_per_owner} subscriptions, the most one user may have."
                )
            await store.insert(values)
        return CreatedSubscription.model_validate({**values, "secret": secret})

    async def list_for(
        self, owner: str, kind: SubscriptionKind | None = None, job_id: str | None = None
    ) -> list[Subscription]:
        async with self._engine.connect() as connection:
            store = SubscriptionStore(connection)
            return [r.view for r in await store.list_for_owner(owner, kind, job_id)]

    async def rotate_job_hook_secret(self, owner: str) -> CreatedJobHookSecret:
        """Make the owner's job-hook secret (or a new one): shown this once, sealed at rest.
        Every hook of the owner signs with it from its next attempt on."""
        secret = new_signing_secret()
        now = datetime.now(UTC)
        async with self._engine.begin() as connection:
            await OwnerSecretStore(connection).replace(owner, self._box.seal(secret), now)
        return CreatedJobHookSecret(created_at=now, shown=True, secret=secret)

    async def job_hook_secret(self, owner: str) -> JobHookSecret:
        async with self._engine.connect() as connection:
            found = await OwnerSecretStore(connection).get(owner)
        if found is None:
            raise JobHookSecretNotFoundError()
        return found

    async def get(self, owner: str, subscription_id: str) -> Subscription:
        async with self._engine.connect() as connection:
            return (await self._record(SubscriptionStore(connection), owner, subscription_id)).view

    async def delete(self, owner: str, subscription_id: str) -> None:
        async with self._engine.begin() as connection:
            if not await SubscriptionStore(connection).delete(owner, subscription_id):
                raise SubscriptionNotFoundError()

    async def set_enabled(self, owner: str, subscription_id: str, enabled: bool) -> Subscription:
        """Turn a subscription off, or on again: its waiting deliveries get a new retry window."""
        now = datetime.now(UTC)
        async with self._engine.begin() as connection:
            store = SubscriptionStore(connection)
            await self._record(store, owner, subscription_id)
            changed = await store.set_enabled(
                subscription_id, enabled, None if enabled else "turned off by its owner", now
            )
            if changed and enabled:
                await DeliveryStore(connection).reschedule(subscription_id, now)
            return (await self._record(store, owner, subscription_id)).view

    async def deliveries(
        self, owner: str, subscription_id: str, limit: int, status: DeliveryStatus | None
    ) -> list[Delivery]:
        async with self._engine.connect() as connection:
            await self._record(SubscriptionStore(connection), owner, subscription_id)
            return await DeliveryStore(connection).list_for_subscription(
                subscription_id, limit, status
            )

    async def delivery(self, owner: str, subscription_id: str, delivery_id: str) -> Delivery:
        async with self._engine.connect() as connection:
            await self._record(SubscriptionStore(connection), owner, subscription_id)
            found = await DeliveryStore(connection).get(subscription_id, delivery_id)
        if found is None:
            raise DeliveryNotFoundError()
        return found

    async def redeliver(self, owner: str, subscription_id: str, delivery_id: str) -> Delivery:
        """Send an event again (delivered or given up): due now, with a fresh retry window."""
        async with self._engine.begin() as connection:
            await self._record(SubscriptionStore(connection), owner, subscription_id)
            deliveries = DeliveryStore(connection)
            if not await deliveries.reschedule(
                subscription_id, datetime.now(UTC), delivery_id=delivery_id
            ):
                raise DeliveryNotFoundError()
            found = await deliveries.get(subscription_id, delivery_id)
        assert found is not None
        return found

    @staticmethod
    async def _record(
        store: SubscriptionStore, owner: str, subscription_id: str
    ) -> SubscriptionRecord:
        # Another user's subscription is "not found", like one that never existed.
        record = await store.get(owner, subscription_id)
        if record is None:
            raise SubscriptionNotFoundError()
        return record
