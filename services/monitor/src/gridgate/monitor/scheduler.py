"""The poll loop: fast while jobs change, backing off while nothing happens."""

from __future__ import annotations

import structlog

from gridgate.core.errors import TransientError
from gridgate.core.loops import WakeableLoop
from gridgate.monitor.service import MonitorService

log = structlog.get_logger(__name__)


class PollScheduler(WakeableLoop):
    """Polls the facilities; :meth:`poke` asks for a round now. A poke that comes during a
    round is kept: the next round starts as soon as this one ends (it used to wait out the
    interval, up to ``max_interval_s``)."""

    def __init__(
        self, service: MonitorService, min_interval_s: float, max_interval_s: float
    ) -> None:
        super().__init__("monitor-poll")
        self.service = service
        self.min_interval_s = min_interval_s
        self.max_interval_s = max_interval_s
        self.interval_s = min_interval_s
        self.rounds = 0

    def poke(self) -> None:
        """Poll now and at the fast rate: a job was just queued somewhere."""
        self.interval_s = self.min_interval_s
        self.wake()

    async def _run(self) -> None:
        while True:
            try:
                changed = await self.service.poll_once()
            except TransientError as exc:
                log.warning("poll round failed; will retry", reason=str(exc))
                changed = 0
            except Exception:
                log.exception("poll round crashed")
                changed = 0
            self.rounds += 1
            # Activity, or a job queued during the round: poll again soon. Quiet: stretch the
            # interval up to the maximum.
            self.interval_s = (
                self.min_interval_s
                if changed or self.woken
                else min(self.max_interval_s, self.interval_s * 1.5)
            )
            await self._pause(self.interval_s)
