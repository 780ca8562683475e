"""Problems of the subscriptions API."""

from __future__ import annotations

from gridgate.core.errors import NotFoundError, ProblemError


class SubscriptionNotFoundError(NotFoundError):
    """No subscription of yours has this id."""

    slug, title = "subscription-not-found", "Subscription not found"


class DeliveryNotFoundError(NotFoundError):
    """The subscription has no delivery with this id."""

    slug, title = "delivery-not-found", "Delivery not found"


class JobHookSecretNotFoundError(NotFoundError):
    """You have no job-hook secret yet: create one with POST /api/subscriptions/job-hook-secret."""

    slug, title = "job-hook-secret-not-found", "No job-hook secret"


class TooManySubscriptionsError(ProblemError):
    """You have as many subscriptions as one user may have; delete one first."""

    slug, title, status = "too-many-subscriptions", "Too many subscriptions", 409
