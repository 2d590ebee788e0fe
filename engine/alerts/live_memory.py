"""What the live cascade messages remember across restarts, kept in the outbox's SQLite file.

One row per asset with a cascade state (its live-message key, the chats
that got the message, its totals and last signal, active or ended), one for
the market-wide report, and the tracker's sequence number in ``meta``. The
message ids themselves are in the outbox's ``live`` table (written when the
send is confirmed). The router saves the states a burst of signals changed
(what the actor drained from the bus in one go, :meth:`.router.AlertRouter.handle_burst`)
in the transaction that holds that burst's outbox rows, so after a kill the
actor edits the message it already sent for a cascade still running, and an
end summary that was written is never written again. A change that comes
with no row (a liquidation counted into a running cascade) is committed with
its burst too: a kill loses at most the burst being routed, which had no
external effect yet, and one commit per burst instead of one per
liquidation keeps a cascade of thousands of liquidations a second within a
core (bench/alert_throughput.py).

The build-up (``live_buildup``: the liquidations of assets not in a cascade,
the tracker's last ``window_s``, pruned as they age) is stored the same way
and put back on load, so a cascade that starts right after a restart counts
it as it would have without one.
"""
from __future__ import annotations

import logging

import msgspec

from ..signals import Liquidation
from .cascade_live import CascadeState, CascadeTracker, MarketReport
from .outbox import Outbox

__all__ = ["LiveMemory"]

log = logging.getLogger("undertow.alerts")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS live_cascades (name TEXT PRIMARY KEY, body BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS live_buildup (id INTEGER PRIMARY KEY AUTOINCREMENT, asset TEXT NOT NULL,
                                         ts INTEGER NOT NULL, body BLOB NOT NULL);
CREATE INDEX IF NOT EXISTS live_buildup_ts ON live_buildup(ts);
CREATE INDEX IF NOT EXISTS live_buildup_asset ON live_buildup(asset);
"""
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

    def __init__(self, outbox: Outbox):
        self.outbox = outbox
        self.db = outbox.db
        self.db.executescript(_SCHEMA)
        self.unreadable = 0     # stored rows that could not be decoded (skipped, logged)
        self._pruned_to = 0       # build-up horizon of the last prune (ns)

    def save(self, tracker: CascadeTracker) -> None:
        """Write the states and build-up changed since the last save, joining the router's batch (the
        transaction that holds the burst's rows, if it wrote any)."""
        self._save_buildup(tracker)
        if not tracker.changed:
            return
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

    def _save_buildup(self, tracker: CascadeTracker) -> None:
        new, taken, horizon = tracker.take_buildup()
        insert = "INSERT INTO live_buildup (asset, ts, body) VALUES (?, ?, ?)"
        if new or taken:
            self.outbox.begin_write()
        for asset in taken:    # a cascade took it in: its state row holds it now
            self.db.execute("DELETE FROM live_buildup WHERE asset=?", (asset,))
        rows = [liq for liq in new if liq.asset not in taken]
        rows += [liq for asset in taken for liq in tracker.buildup(asset)]
        self.db.executemany(insert, [(q.asset, q.ts_exchange, msgspec.msgpack.encode(q)) for q in rows])
        if horizon > self._pruned_to and (new or taken):
            self.db.execute("DELETE FROM live_buildup WHERE ts<?", (horizon,))
            self._pruned_to = horizon

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
        tracker.restore_buildup(self._load_buildup())
        tracker.take_buildup()     # what was just read is stored already
        return sum(st.active for st in states.values())

    def _load_buildup(self) -> list[Liquidation]:
        out = []
        for row_id, body in self.db.execute("SELECT id, body FROM live_buildup ORDER BY id"):
            try:
                out.append(msgspec.msgpack.decode(body, type=Liquidation))
            except (msgspec.DecodeError, msgspec.ValidationError) as exc:
                self.unreadable += 1
                log.error("build-up liquidation row %d unreadable, dropped: %s", row_id, exc)
        return out
