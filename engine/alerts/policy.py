"""Who gets what, when: priority tiers, per-chat hourly budgets, quiet hours and the digest.

* ``urgent`` alerts are always sent (and counted);
* ``normal`` alerts are sent while the chat is under its hourly budget and
  outside quiet hours, otherwise held for the digest;
* ``digest`` alerts are always held; held alerts go out as one message per
  chat every ``digest_interval_s`` (after quiet hours end).

With a :class:`engine.alerts.memory.PolicyMemory` every budget entry, held
line and digest time is also written there, and reloaded at construction.
"""
from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass, field

__all__ = ["TIERS", "tier_for", "QuietHours", "ChatGate"]

TIERS = ("digest", "normal", "urgent")


def tier_for(tiers: dict[str, str], kind: str, sub: str = "") -> str:
    """The tier of an alert: ``tiers["<kind>.<sub>"]``, else ``tiers[kind]``, else ``tiers["*"]``, else normal."""
    for key in (f"{kind}.{sub}" if sub else None, kind, "*"):
        if key and key in tiers:
            return tiers[key]
    return "normal"


def _minutes(hhmm: str) -> int:
    h, m = hhmm.split(":")
    return int(h) * 60 + int(m)


@dataclass(frozen=True)
class QuietHours:
    """A daily UTC window (``start`` to ``end``, ``HH:MM``; may wrap midnight) when only urgent alerts are sent."""

    start: str
    end: str

    def contains(self, now: float) -> bool:
        t = time.gmtime(now)
        m = t.tm_hour * 60 + t.tm_min
        a, b = _minutes(self.start), _minutes(self.end)
        if a == b:
            return False
        return a <= m < b if a < b else (m >= a or m < b)


@dataclass
class _ChatState:
    sent: deque = field(default_factory=deque)   # send times in the last hour
    held: list = field(default_factory=list)     # digest lines
    held_since: float = 0.0
    last_digest: float = 0.0


class ChatGate:
    """Per-chat admission: :meth:`admit` says send now or hold for the digest."""

    def __init__(self, max_per_hour: int = 30, quiet: QuietHours | None = None, digest_interval_s: float = 900.0,
                 memory=None, now: float | None = None):
        self.max_per_hour = max_per_hour
        self.quiet = quiet
        self.digest_interval_s = digest_interval_s
        self._chats: dict[int, _ChatState] = {}
        self.held_total = 0
        self.memory = memory
        if memory is not None:
            for chat, m in memory.chats(time.time() if now is None else now).items():
                self._chats[chat] = _ChatState(deque(m.sent), list(m.held), m.held_since, m.last_digest)

    def held_lines(self, chat: int) -> list[str]:
        """The lines waiting for ``chat``'s next digest."""
        st = self._chats.get(chat)
        return list(st.held) if st else []

    def _chat(self, chat: int) -> _ChatState:
        return self._chats.setdefault(chat, _ChatState())

    def sent_last_hour(self, chat: int, now: float) -> int:
        st = self._chat(chat)
        while st.sent and now - st.sent[0] >= 3600.0:
            st.sent.popleft()
        return len(st.sent)

    def admit(self, chat: int, tier: str, now: float) -> bool:
        """True: send now (counted against the budget); False: call :meth:`hold`."""
        if tier not in TIERS:
            raise ValueError(f"unknown alert tier {tier!r} (expected one of {TIERS})")
        ok = tier == "urgent" or (tier == "normal" and not (self.quiet and self.quiet.contains(now))
                                  and (self.max_per_hour <= 0 or self.sent_last_hour(chat, now) < self.max_per_hour))
        if ok:
            self._chat(chat).sent.append(now)
            if self.memory is not None:
                self.memory.sent(chat, now)
        return ok

    def hold(self, chat: int, line: str, now: float) -> None:
        """Keep ``line`` for the chat's next digest."""
        st = self._chat(chat)
        if not st.held:
            st.held_since = now
        st.held.append(line)
        self.held_total += 1
        if self.memory is not None:
            self.memory.held(chat, line, now)

    def due_digests(self, now: float) -> list[tuple[int, list[str], float]]:
        """``(chat, lines, since)`` for every chat whose digest is due (outside quiet hours)."""
        if self.quiet and self.quiet.contains(now):
            return []
        out = []
        for chat, st in self._chats.items():
            if st.held and now - max(st.last_digest, st.held_since) >= self.digest_interval_s:
                out.append((chat, st.held, st.held_since))
                st.held, st.last_digest = [], now
                if self.memory is not None:
                    self.memory.digest_taken(chat, now)
        return out
