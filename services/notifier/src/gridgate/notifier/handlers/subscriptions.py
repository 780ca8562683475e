"""``/api/subscriptions``: webhook subscriptions, their delivery log and redelivery."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response, status

from gridgate.notifier.dependencies import Subscriptions, User
from gridgate.notifier.models import (
    CreatedJobHookSecret,
    CreatedSubscription,
    Delivery,
    DeliveryList,
    DeliveryStatus,
    JobHookSecret,
    Subscription,
    SubscriptionCreate,
    SubscriptionKind,
    SubscriptionList,
    SubscriptionUpdate,
)
from gridgate.web.openapi import problem_responses

PREFIX = "/api/subscriptions"
router = APIRouter(prefix=PREFIX, tags=["subscriptions"])


@router.post(
    "", status_code=status.HTTP_201_CREATED, responses=problem_responses(401, 409, 413, 422, 503)
)
async def create_subscription(
    body: SubscriptionCreate, user: User, service: Subscriptions, response: Response
) -> CreatedSubscription:
    """Register an endpoint; the answer holds the signing secret, shown this once."""
    created = await service.create(user.sub, body)
    response.headers["Location"] = f"{PREFIX}/{created.id}"
    return created


@router.get("", responses=problem_responses(401, 422, 503))
async def list_subscriptions(
    user: User,
    service: Subscriptions,
    kind: SubscriptionKind | None = None,
    job_id: Annotated[str | None, Query(max_length=255)] = None,
) -> SubscriptionList:
    """Your subscriptions and job hooks (``kind`` keeps one sort; ``job_id`` a job's hook)."""
    return SubscriptionList(subscriptions=await service.list_for(user.sub, kind, job_id))


# Before /{subscription_id}: this path is not a subscription's.
@router.post(
    "/job-hook-secret",
    status_code=status.HTTP_201_CREATED,
    responses=problem_responses(401, 503),
)
async def rotate_job_hook_secret(user: User, service: Subscriptions) -> CreatedJobHookSecret:
    """Create or rotate the secret all your job hooks sign with; shown this once."""
    return await service.rotate_job_hook_secret(user.sub)


@router.get("/job-hook-secret", responses=problem_responses(401, 404, 503))
async def get_job_hook_secret(user: User, service: Subscriptions) -> JobHookSecret:
    """Whether you have a job-hook secret, since when, and whether you were shown it."""
    return await service.job_hook_secret(user.sub)


@router.get("/{subscription_id}", responses=problem_responses(401, 404, 503))
async def get_subscription(
    subscription_id: str, user: User, service: Subscriptions
) -> Subscription:
    return await service.get(user.sub, subscription_id)


@router.patch("/{subscription_id}", responses=problem_responses(401, 404, 413, 422, 503))
async def update_subscription(
    subscription_id: str, body: SubscriptionUpdate, user: User, service: Subscriptions
) -> Subscription:
    """Turn a subscription off or on again (after the notifier disabled it)."""
    return await service.set_enabled(user.sub, subscription_id, body.enabled)


@router.delete(
    "/{subscription_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=problem_responses(401, 404, 503),
)
async def delete_subscription(subscription_id: str, user: User, service: Subscriptions) -> None:
    await service.delete(user.sub, subscription_id)


@router.get("/{subscription_id}/deliveries", responses=problem_responses(401, 404, 422, 503))
async def list_deliveries(
    subscription_id: str,
    user: User,
    service: Subscriptions,
    status: DeliveryStatus | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> DeliveryList:
    """The delivery log, newest first."""
    return DeliveryList(
        deliveries=await service.deliveries(user.sub, subscription_id, limit, status)
    )


@router.get(
    "/{subscription_id}/deliveries/{delivery_id}", responses=problem_responses(401, 404, 503)
)
async def get_delivery(
    subscription_id: str, delivery_id: str, user: User, service: Subscriptions
) -> Delivery:
    return await service.delivery(user.sub, subscription_id, delivery_id)


@router.post(
    "/{subscription_id}/deliveries/{delivery_id}/redeliver",
    status_code=status.HTTP_202_ACCEPTED,
    responses=problem_responses(401, 404, 503),
)
async def redeliver(
    subscription_id: str, delivery_id: str, user: User, service: Subscriptions
) -> Delivery:
    """Send the event again, now (whether it was delivered or given up)."""
    return await service.redeliver(user.sub, subscription_id, delivery_id)
