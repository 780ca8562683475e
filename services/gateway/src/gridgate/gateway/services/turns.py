"""Taking turns to lead a batch: the queue and hand-over shared by the group commit of new
jobs and the batched application of observations.

Callers queue an item with a future (their *turn*). One of them leads: it takes a batch from
the queue, does the work for all, and resolves the others' turns with the outcome. When it is
done, the first caller still queued is told to ``"lead"`` the next batch.
"""

from __future__ import annotations

import asyncio
from typing import Generic, TypeVar

T = TypeVar("T")
OutcomeT = TypeVar("OutcomeT", bound=str)

LEAD = "lead"


class LeaderTurns(Generic[T, OutcomeT]):
    def __init__(self) -> None:
        self._queue: list[tuple[T, asyncio.Future[OutcomeT]]] = []
        self._leading = False

    async def _wait_turn(self, item: T) -> tuple[asyncio.Future[OutcomeT], OutcomeT | None]:
        """Queue ``item``. Returns its turn and, unless the caller is to lead now (``None``),
        the outcome a leader gave it (``"lead"`` included: the caller leads next)."""
        turn: asyncio.Future[OutcomeT] = asyncio.get_running_loop().create_future()
        self._queue.append((item, turn))
        if not self._leading:
            self._leading = True
            return turn, None
        try:
            outcome = await turn
        except asyncio.CancelledError:
            self._withdraw(turn)
            raise
        if outcome == LEAD:
            self._leading = True
        return turn, outcome

    def _hand_over(self) -> None:
        """The first caller still queued leads the next batch; none: nobody leads."""
        self._leading = False
        while self._queue:
            _, turn = self._queue[0]
            if turn.done():  # cancelled while queued
                self._queue.pop(0)
                continue
            self._leading = True
            turn.set_result(LEAD)  # type: ignore[arg-type]
            return

    def _withdraw(self, turn: asyncio.Future[OutcomeT]) -> None:
        """A queued caller went away: drop its item; if it was to lead, pass the lead on."""
        self._queue = [(item, t) for item, t in self._queue if t is not turn]
        if turn.done() and not turn.cancelled() and turn.result() == LEAD:
            self._hand_over()

    @staticmethod
    def _release(batch: list[tuple[T, asyncio.Future[OutcomeT]]], outcome: OutcomeT) -> None:
        for _, turn in batch:
            if not turn.done():
                turn.set_result(outcome)
