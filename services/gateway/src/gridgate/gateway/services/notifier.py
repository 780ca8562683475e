"""Wakes WAIT long-polls when a job changes, with a cap on blocked requests per user."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Callable


class PhaseNotifier:
    """In-process wake-ups; fed by this gateway's own writes and by the events exchange."""

    def __init__(self, max_waiters_per_user: int = 20) -> None:
        self.after_notify: Callable[[], None] | None = None
        """Called on every notification: the gateway wakes its outbox relay with it, since
        every commit that notifies has just written outbox rows."""
        self._events: dict[str, asyncio.Event] = {}
        self._waiters: defaultdict[str, int] = defaultdict(int)
        self.max_waiters_per_user = max_waiters_per_user
        self._closing = False

    @property
    def closing(self) -> bool:
        """True once :meth:`shutdown` was called: a WAIT loop should answer with what it has."""
        return self._closing

    def shutdown(self) -> None:
        """Wake every blocked WAIT and make later waits return at once.

        Called when the process is told to stop, before the HTTP server waits for open
        requests: a long-poll held to its cap would outlast the pod's grace period and be
        cut off with no answer at all.
        """
        self._closing = True
        events, self._events = self._events, {}
        for event in events.values():
            event.set()

    def notify(self, job_id: str) -> None:
        event = self._events.pop(job_id, None)
        if event is not None:
            event.set()
        if self.after_notify is not None:
            self.after_notify()

    def may_block(self, user: str) -> bool:
        """Whether the user may hold one more blocked request (VOLLT-style policy)."""
        return self._waiters[user] < self.max_waiters_per_user

    async def wait(self, user: str, job_id: str, timeout_s: float) -> bool:
        """Block until the job changes or the timeout passes; True if it changed.

        Returns False at once while shutting down (see :attr:`closing`).
        """
        if self._closing:
            return False
        event = self._events.setdefault(job_id, asyncio.Event())
        self._waiters[user] += 1
        try:
            await asyncio.wait_for(event.wait(), timeout_s)
            return not self._closing
        except TimeoutError:
            return False
        finally:
            self._waiters[user] -= 1
            if self._waiters[user] <= 0:
                del self._waiters[user]
