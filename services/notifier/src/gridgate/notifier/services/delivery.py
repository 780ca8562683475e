"""Delivering: claim due deliveries, POST them signed, record the answer, retry or give up."""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import structlog
from sqlalchemy.ext.asyncio import AsyncEngine
from standardwebhooks import Webhook

from gridgate.core.crashpoints import crash_point
from gridgate.core.loops import WakeableLoop
from gridgate.notifier.guard import UnsafeUrlError
from gridgate.notifier.models import DeliveryStatus, DueDelivery
from gridgate.notifier.sealing import SecretBox
from gridgate.notifier.services.announcements import stage_subscription_disabled
from gridgate.notifier.storage import DeliveryStore, SubscriptionStore
from gridgate.observability import (
    observe_webhook_attempt,
    observe_webhook_delivered,
    observe_webhook_order_hold_released,
)

log = structlog.get_logger(__name__)

CONTENT_TYPE = "application/cloudevents+json; charset=utf-8"
EXCERPT_CHARS = 500


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential back-off with jitter, given up ``give_up_after_s`` after the first try."""

    base_s: float
    max_s: float
    give_up_after_s: float

    def delay(self, attempts: int) -> float:
        """Wait after the ``attempts``-th failed attempt (1, 2, ...)."""
        nominal = min(self.max_s, self.base_s * 2 ** min(attempts - 1, 30))
        # ±20 %: receivers coming back after an outage are not hit by every sender at once.
        return float(nominal) * random.uniform(0.8, 1.2)  # noqa: S311 - jitter, not a secret


@dataclass(frozen=True)
class Attempt:
    status_code: int | None
    excerpt: str | None
    error: str | None
    seconds: float

    @property
    def ok(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


@dataclass
class Outcome:
    """One attempt's result and what it writes."""

    due: DueDelivery
    attempt: Attempt
    values: dict[str, Any]
    disabled_reason: str | None
    at: datetime
    recorded: bool = False


SubscriptionDisabled = Callable[[str, str, str], Awaitable[None]]
"""Told (subscription id, owner, reason) after a subscription was turned off (and its
``subscription.disabled`` event committed to the outbox)."""


class Deliverer:
    """One round: claim what is due, send it, record each outcome."""

    def __init__(
        self,
        engine: AsyncEngine,
        http: httpx.AsyncClient,
        box: SecretBox,
        retry: RetryPolicy,
        *,
        lease_s: float,
        batch: int,
        concurrency: int,
        max_response_bytes: int,
        on_disabled: SubscriptionDisabled | None = None,
        order_hold_s: float = 30.0,
    ) -> None:
        self._engine = engine
        self._http = http
        self._box = box
        self._retry = retry
        self._lease = timedelta(seconds=lease_s)
        self._batch = batch
        self._slots = asyncio.Semaphore(concurrency)
        self._max_response_bytes = max_response_bytes
        self._on_disabled = on_disabled
        self._order_hold = timedelta(seconds=order_hold_s)

    async def run_round(self) -> int:
        """Send the due deliveries; how many were claimed."""
        token = str(uuid.uuid4())
        now = datetime.now(UTC)
        async with self._engine.begin() as connection:
            claimed = await DeliveryStore(connection).claim(
                now, now + self._lease, token, self._batch, order_hold=self._order_hold
            )
        if claimed:
            crash_point("notifier-claimed")
            # A slow round (receivers near their timeout, a loaded host) must not lose its
            # lease while it is alive: another replica would send the same deliveries again.
            # Only a dead claimer's lease runs out.
            keeper = asyncio.create_task(self._keep_lease(token), name="webhook-lease")
            try:
                outcomes = await asyncio.gather(*(self._attempt(due) for due in claimed))
                await self._record(token, outcomes)
            finally:
                keeper.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await keeper
        return len(claimed)

    async def _keep_lease(self, token: str) -> None:
        """Renew the round's lease every third of its length until the round ends."""
        interval = self._lease.total_seconds() / 3
        while True:
            await asyncio.sleep(interval)
            try:
                async with self._engine.begin() as connection:
                    await DeliveryStore(connection).extend_lease(
                        token, datetime.now(UTC) + self._lease
                    )
            except Exception:
                # The next renewal tries again; if none gets through, the lease runs out and
                # another replica sends the deliveries again (at least once, never lost).
                log.warning("renewing a delivery lease failed", exc_info=True)

    async def seconds_to_next(self) -> float | None:
        async with self._engine.connect() as connection:
            due = await DeliveryStore(connection).next_due()
        if due is None:
            return None
        return max(0.0, (_aware(due) - datetime.now(UTC)).total_seconds())

    async def _attempt(self, due: DueDelivery) -> Outcome:
        """Send one delivery and decide what becomes of it (nothing is written yet)."""
        if due.hold_released and due.attempts == 0:
            observe_webhook_order_hold_released()
            log.warning(
                "an earlier event of the job did not come within order_hold_s; sending",
                delivery_id=due.id,
                event_id=due.event_id,
            )
        async with self._slots:
            attempt = await self._send(due)
        crash_point("notifier-sent")
        now = datetime.now(UTC)
        values: dict[str, Any] = {
            "last_status_code": attempt.status_code,
            "last_response": attempt.excerpt,
            "last_error": attempt.error,
            "last_attempt_at": now,
        }
        disabled_reason = None
        if attempt.ok:
            values.update(status=DeliveryStatus.DELIVERED, delivered_at=now)
            observe_webhook_attempt("delivered", attempt.seconds)
        else:
            delay = self._retry.delay(due.attempts + 1)
            if (now - _aware(due.created_at)).total_seconds() + delay > self._retry.give_up_after_s:
                values.update(status=DeliveryStatus.FAILED)
                disabled_reason = (
                    f"Deliveries failed for {self._retry.give_up_after_s:.0f} s; "
                    f"last answer: {_describe(attempt)}"
                )
                observe_webhook_attempt("given-up", attempt.seconds)
            else:
                values.update(next_attempt_at=now + timedelta(seconds=delay))
                observe_webhook_attempt("failed", attempt.seconds)
        return Outcome(due, attempt, values, disabled_reason, now)

    async def _record(self, token: str, outcomes: list[Outcome]) -> None:
        """Write a round's outcomes in one transaction (one writer turn, not one per call)."""
        disabled: list[tuple[str, str, str]] = []
        async with self._engine.begin() as connection:
            deliveries = DeliveryStore(connection)
            subscriptions = SubscriptionStore(connection)
            for outcome in outcomes:
                due = outcome.due
                outcome.recorded = await deliveries.record(due.id, token, outcome.values)
                reason = outcome.disabled_reason
                if outcome.recorded and reason is not None:
                    if await subscriptions.set_enabled(
                        due.subscription_id, False, reason, outcome.at
                    ):
                        owner = await self._owner(connection, due.subscription_id)
                        if owner is not None:
                            # Its announcement commits with the disabling, or neither does.
                            await stage_subscription_disabled(
                                connection, due.subscription_id, owner, reason, outcome.at
                            )
                            disabled.append((due.subscription_id, owner, reason))
        for outcome in outcomes:
            due, attempt = outcome.due, outcome.attempt
            if outcome.recorded and attempt.ok:
                observe_webhook_delivered((outcome.at - _aware(due.created_at)).total_seconds())
            log.info(
                "webhook attempt",
                delivery_id=due.id,
                subscription_id=due.subscription_id,
                event_id=due.event_id,
                status_code=attempt.status_code,
                error=attempt.error,
                outcome=outcome.values.get("status", "retry"),
            )
        for subscription_id, owner, reason in disabled:
            log.warning("subscription disabled", subscription_id=subscription_id, reason=reason)
            if self._on_disabled is not None:
                with contextlib.suppress(Exception):
                    await self._on_disabled(subscription_id, owner, reason)

    @staticmethod
    async def _owner(connection: Any, subscription_id: str) -> str | None:
        from sqlalchemy import select

        from gridgate.notifier.schema.tables import subscriptions

        query = select(subscriptions.c.owner).where(subscriptions.c.id == subscription_id)
        owner: str | None = (await connection.execute(query)).scalar_one_or_none()
        return owner

    async def _send(self, due: DueDelivery) -> Attempt:
        started = time.monotonic()
        if due.sealed_secret is None:
            # A job hook whose owner has no secret (never expected: intake makes one).
            return Attempt(None, None, "no signing secret: create your job-hook secret", 0.0)
        try:
            secret = self._box.open(due.sealed_secret)
        except ValueError as exc:
            return Attempt(None, None, str(exc), 0.0)
        sent_at = datetime.now(UTC)
        # webhook-id is the event's id, the same on every attempt: receivers de-duplicate on it.
        headers = {
            "content-type": CONTENT_TYPE,
            "user-agent": "gridgate-notifier",
            "webhook-id": due.event_id,
            "webhook-timestamp": str(int(sent_at.timestamp())),
            "webhook-signature": Webhook(secret).sign(due.event_id, sent_at, due.body),
        }
        try:
            async with self._http.stream(
                "POST", due.url, content=due.body.encode(), headers=headers
            ) as response:
                excerpt = await self._read_some(response)
                return Attempt(response.status_code, excerpt, None, time.monotonic() - started)
        except UnsafeUrlError as exc:
            return Attempt(None, None, f"refused: {exc.detail}", time.monotonic() - started)
        except httpx.TimeoutException:
            return Attempt(None, None, "timed out", time.monotonic() - started)
        except httpx.HTTPError as exc:
            return Attempt(
                None,
                None,
                f"{exc.__class__.__name__}: {exc}"[:EXCERPT_CHARS],
                time.monotonic() - started,
            )

    async def _read_some(self, response: httpx.Response) -> str:
        # Bounded: a receiver answering gigabytes costs us at most max_response_bytes.
        received = bytearray()
        async for chunk in response.aiter_raw():
            received.extend(chunk[: self._max_response_bytes - len(received)])
            if len(received) >= self._max_response_bytes:
                break
        return received.decode("utf-8", errors="replace")[:EXCERPT_CHARS]


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _describe(attempt: Attempt) -> str:
    if attempt.status_code is not None:
        return f"HTTP {attempt.status_code}"
    return attempt.error or "no answer"


class DeliveryLoop(WakeableLoop):
    """Runs rounds while there is due work; sleeps until the next due time or a wake-up."""

    def __init__(self, deliverer: Deliverer, poll_interval_s: float) -> None:
        super().__init__("webhook-deliveries")
        self._deliverer = deliverer
        self._poll = poll_interval_s

    async def _run(self) -> None:
        while True:
            try:
                claimed = await self._deliverer.run_round()
                if claimed:
                    continue
                pause = await self._deliverer.seconds_to_next()
            except Exception:
                log.exception("delivery round failed; trying again")
                pause = self._poll
            pause = self._poll if pause is None else min(pause, self._poll)
            if pause <= 0:
                # Something is due yet nothing was claimed: held back behind an earlier
                # event (retrying, or not taken in yet). Intake wakes the loop when an event
                # arrives; otherwise look again after a poll, not in a busy loop.
                pause = self._poll
            await self._pause(pause)
