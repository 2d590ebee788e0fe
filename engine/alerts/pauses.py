"""Flood pauses (HTTP 429 ``retry_after``) per chat and for the whole bot, kept across restarts.

While the actor runs, a pause is a deadline on the monotonic clock, so a
stepped wall clock changes nothing. It is also stored in the outbox file
(``pauses`` table, written in the transaction that re-queues the row that got
the 429) as an absolute wall-clock deadline plus the length Telegram asked
for. A restarted actor resumes each pause with ``until - now`` left, clamped
to ``[0, length]``: a wall clock stepped forward while the actor was down
shortens a pause by at most the step, and one stepped back cannot make it
longer than Telegram asked for.
"""
from __future__ import annotations

import time
from typing import Callable, Iterable

__all__ = ["FloodPauses", "GLOBAL"]

GLOBAL = "*"      # the target name of the bot-wide pause


class FloodPauses:
    """Running pauses by target (a chat id, a URL, or :data:`GLOBAL`)."""

    def __init__(self, wall: Callable[[], float] = time.time, mono: Callable[[], float] = time.monotonic):
        self.wall = wall
        self.mono = mono
        self._until: dict[str, float] = {}     # target -> monotonic deadline

    def load(self, stored: Iterable[tuple[str, float, float]]) -> int:
        """Resume stored ``(target, wall deadline, length)`` pauses; return how many are still running."""
        now_wall, now_mono = self.wall(), self.mono()
        n = 0
        for target, until, length in stored:
            left = min(max(until - now_wall, 0.0), max(length, 0.0))
            if left > 0:
                self._until[target] = max(self._until.get(target, 0.0), now_mono + left)
                n += 1
        return n

    def left(self, target: str) -> float:
        """Seconds until ``target`` may send again (0 if it is not paused)."""
        return max(0.0, self._until.get(target, 0.0) - self.mono())

    def others_paused(self, target: str) -> bool:
        """Whether a chat other than ``target`` is in a running pause (the bot-wide pause is not counted)."""
        now = self.mono()
        return any(u > now for t, u in self._until.items() if t not in (target, GLOBAL))

    def pause(self, target: str, seconds: float) -> tuple[float, float] | None:
        """Pause ``target`` for ``seconds`` (a running longer pause is kept).

        Returns ``(wall deadline, length)`` to store when the pause was extended, None when it was not."""
        seconds = max(seconds, 0.0)
        until = self.mono() + seconds
        if until <= self._until.get(target, 0.0):
            return None
        self._until[target] = until
        return self.wall() + seconds, seconds
