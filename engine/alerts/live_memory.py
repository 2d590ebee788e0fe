"""What the live cascade messages remember across restarts, kept in the outbox's SQLite file.

One row per asset with a cascade state (its live-message key, the chats
that got the message, its totals and last signal, active or ended), one for
the market-wide report, and the tracker's sequence number in ``meta``. The
message ids themselves are in the outbox's ``live`` table (written when the
send is confirmed). The router saves the states a signal changed in the
transaction that holds that signal's outbox rows, so after a kill the actor
edits the message it already sent for a cascade still running, and an end
summary that was written is never written again. A change that comes with
no row (a liquidation counted into a running cascade) is stored with the
next row or within :attr:`LiveMemory.SAVE_EVERY_S`, whichever is first: a
commit per liquidation would cost about 0.1 ms each in a burst, and a kill
loses at most that second of counts from the totals.
"""
from __future__ import annotations

import logging

import msgspec

from .cascade_live import CascadeState, CascadeTracker, MarketReport
from .outbox import Outbox

__all__ = ["LiveMemory"]

log = logging.getLogger("undertow.alerts")

_SCHEMA = "CREATE TABLE IF NOT EXISTS live_cascades (name TEXT PRIMARY KEY, body BLOB NOT NULL);"
_MARKET = "market"          # row name of the market report; assets are stored as "asset:<name>"
_SEQ = "cascade_sequence"   # meta key


class _StoredMarket(msgspec.Struct, frozen=True):
    key: str
    members: list[str]
    dirty: bool
    last_edit: float
    chats: list[int]


class LiveMemory:
    """Save and restore a :class:`CascadeTracker`'s states on the outbox's connection (the router's thread)."""

    SAVE_EVERY_S = 1.0

    def __init__(self, outbox: Outbox):
        self.outbox = outbox
        self.db = outbox.db
        self.db.executescript(_SCHEMA)
        self.unreadable = 0     # stored rows that could not be decoded (skipped, logged)
        self._saved_at = float("-inf")

    def save(self, tracker: CascadeTracker, now: float) -> None:
        """Write the states changed since the last save: at once when the router's batch is writing rows
        (joining its transaction), else at most every ``SAVE_EVERY_S``."""
        if not tracker.changed:
            return
        if not self.db.in_transaction and abs(now - self._saved_at) < self.SAVE_EVERY_S:
            return
        self._saved_at = now
        assets, market = tracker.take_changed()
        self.outbox.begin_write()
        for asset in assets:
            st = tracker.states.get(asset)
            if st is None:
                self.db.execute("DELETE FROM live_cascades WHERE name=?", (f"asset:{asset}",))
            else:
                self.db.execute("INSERT OR REPLACE INTO live_cascades (name, body) VALUES (?, ?)",
                                (f"asset:{asset}", msgspec.msgpack.encode(st)))
        if market:
            m = tracker.market
            if m is None:
                self.db.execute("DELETE FROM live_cascades WHERE name=?", (_MARKET,))
            else:
                body = _StoredMarket(m.key, sorted(m.members), m.dirty, m.last_edit, sorted(m.chats))
                self.db.execute("INSERT OR REPLACE INTO live_cascades (name, body) VALUES (?, ?)",
                                (_MARKET, msgspec.msgpack.encode(body)))
        self.outbox.set_meta(_SEQ, tracker.sequence)

    def running(self) -> dict[str, str]:
        """As stored: the live-message key of each cascade still running (by asset) and of the market report
        (``"market"``); an asset folded into the report is left out (its own message is closed)."""
        out = {}
        for name, body in self.db.execute("SELECT name, body FROM live_cascades"):
            if name == _MARKET:
                out[_MARKET] = msgspec.msgpack.decode(body, type=_StoredMarket).key
            else:
                st = msgspec.msgpack.decode(body, type=CascadeState)
                if st.active and not st.folded:
                    out[st.asset] = st.key
        return out

    def load(self, tracker: CascadeTracker, now: float) -> int:
        """Restore the stored states into ``tracker``; return how many cascades are still running."""
        states: dict[str, CascadeState] = {}
        market: _StoredMarket | None = None
        for name, body in self.db.execute("SELECT name, body FROM live_cascades"):
            try:
                if name == _MARKET:
                    market = msgspec.msgpack.decode(body, type=_StoredMarket)
                else:
                    st = msgspec.msgpack.decode(body, type=CascadeState)
                    states[st.asset] = st
            except (msgspec.DecodeError, msgspec.ValidationError) as exc:
                self.unreadable += 1
                log.error("live cascade state %r unreadable, dropped: %s", name, exc)
        report = None
        if market is not None and all(a in states for a in market.members):
            report = MarketReport(market.key, {a: states[a] for a in market.members}, market.dirty,
                                  market.last_edit, set(market.chats))
        elif market is not None:
            self.unreadable += 1
            log.error("market report %s lost member states; dropped", market.key)
        tracker.restore(states, report, int(self.outbox.meta(_SEQ)), now)
        return sum(st.active for st in states.values())
