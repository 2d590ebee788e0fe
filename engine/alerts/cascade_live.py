"""One live message per cascade, and one market report when several assets cascade at once.

:class:`CascadeTracker` turns the stream of ``cascade`` and ``liquidation``
signals into a few :class:`Action`s: ``start`` (send the live message),
``edit`` (rewrite it, at most every ``edit_interval_s`` unless the level
changed), ``escalate`` (a short new message when the level rises above any
level already alerted: edits do not notify), ``end`` (the summary edit), and
``market_start`` / ``market_edit`` / ``market_end`` for the market report.

Hysteresis: a cascade that restarts within ``rearm_s`` of its end re-opens
the same live message instead of sending a new one. A cascade that gets no
signal for ``rearm_s`` while it is active (its end was missed: the engine
re-publishes a running cascade every second) is ended as if its end came.

The tracker names the assets whose state changed (:meth:`CascadeTracker.take_changed`)
so the router can store them with the outbox rows they produced
(:mod:`.live_memory`) and a restarted actor carries on the same live messages.
The build-up (liquidations of an asset not in a cascade, the last
``window_s`` of them, which a cascade that starts takes in) is handed out
the same way (:meth:`CascadeTracker.take_buildup`), so a cascade that starts
right after a restart still counts it.
"""
from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

from ..signals import LEVELS, Cascade, Liquidation

__all__ = ["CascadeState", "MarketReport", "Action", "CascadeTracker"]


def _lvl(level: str) -> int:
    return LEVELS.index(level) if level in LEVELS else 0


@dataclass
class CascadeState:
    """What the live message shows for one asset's cascade."""

    asset: str
    key: str                       # live-message key in the outbox
    started_ns: int
    last: Cascade
    active: bool = True
    ended_ns: int = 0
    ended_at: float = 0.0          # tracker clock
    peak_level: str = "NONE"
    peak_score: float = 0.0
    peak_count: int = 0            # most liquidations in one cascade window
    alerted_level: int = 0
    n_long: int = 0
    n_short: int = 0
    long_usd: float = 0.0
    short_usd: float = 0.0
    venues: dict[str, float] = field(default_factory=dict)
    minutes: dict[int, float] = field(default_factory=dict)
    first_price: float = 0.0
    last_price: float = 0.0
    capped: bool = False
    folded: bool = False           # part of the market report: no edits of its own
    dirty: bool = False
    last_edit: float = 0.0
    seen_at: float = 0.0           # tracker clock of the last cascade signal (or of the restart that restored it)
    chats: set = field(default_factory=set)   # chats that received the live message

    @property
    def total_usd(self) -> float:
        return self.long_usd + self.short_usd

    @property
    def peak_minute(self) -> int:
        return max(self.minutes, key=self.minutes.get) if self.minutes else 0

    @property
    def peak_minute_usd(self) -> float:
        return max(self.minutes.values()) if self.minutes else 0.0

    @property
    def duration_s(self) -> float:
        end = self.ended_ns or self.last.ts_exchange
        return max(0.0, (end - self.started_ns) / 1e9) if end else 0.0

    def add(self, liq: Liquidation) -> None:
        if liq.side == "long":
            self.n_long += 1
            self.long_usd += liq.notional_usd
        else:
            self.n_short += 1
            self.short_usd += liq.notional_usd
        if liq.venue:
            self.venues[liq.venue] = self.venues.get(liq.venue, 0.0) + liq.notional_usd
        minute = int(liq.ts_exchange // 60_000_000_000)
        self.minutes[minute] = self.minutes.get(minute, 0.0) + liq.notional_usd
        if liq.price > 0:
            self.first_price = self.first_price or liq.price
            self.last_price = liq.price
        self.capped |= liq.capped
        self.dirty = True


@dataclass
class MarketReport:
    key: str
    members: dict[str, CascadeState]
    dirty: bool = False
    last_edit: float = 0.0
    chats: set = field(default_factory=set)


@dataclass
class Action:
    kind: str                      # start | edit | escalate | end | market_start | market_edit | market_end
    state: CascadeState | None = None
    market: MarketReport | None = None


class CascadeTracker:
    """Fold cascade and liquidation signals into live-message actions; see the module docstring."""

    def __init__(self, market_wide_assets: int = 3, rearm_s: float = 120.0, edit_interval_s: float = 3.0,
                 window_s: float = 60.0):
        self.market_wide_assets = market_wide_assets
        self.rearm_s = rearm_s
        self.edit_interval_s = edit_interval_s
        self.window_ns = int(window_s * 1e9)
        self.states: dict[str, CascadeState] = {}
        self.market: MarketReport | None = None
        self._recent: dict[str, deque] = {}   # the build-up per asset, oldest first
        self._latest_ns = 0                    # newest liquidation time seen (the build-up ages against it)
        self._buildup_new: list[Liquidation] = []
        self._buildup_taken: set[str] = set()  # assets whose build-up went into a cascade that started
        self._n = 0
        self._changed: set[str] = set()    # assets whose state changed since take_changed()
        self._market_changed = False

    @property
    def changed(self) -> bool:
        """Whether a state changed since the last :meth:`take_changed`."""
        return bool(self._changed) or self._market_changed

    def take_changed(self) -> tuple[set[str], bool]:
        """Assets whose state changed (or was dropped) and whether the market report did, since the last call."""
        out = (self._changed, self._market_changed)
        self._changed, self._market_changed = set(), False
        return out

    def restore(self, states: dict[str, CascadeState], market: MarketReport | None, n: int, now: float) -> None:
        """Carry on stored states after a restart; running cascades get ``rearm_s`` from ``now`` to be heard of."""
        self.states.update(states)
        self.market = market
        self._n = max(self._n, n)
        for st in states.values():
            if st.active:
                st.seen_at = max(st.seen_at, now)

    def take_buildup(self) -> tuple[list[Liquidation], set[str], int]:
        """Since the last call: liquidations added to the build-up, assets whose build-up a starting cascade
        took, and the horizon (exchange ns) before which the build-up is dropped."""
        out = (self._buildup_new, self._buildup_taken, self._latest_ns - self.window_ns)
        self._buildup_new, self._buildup_taken = [], set()
        return out

    def restore_buildup(self, liqs) -> None:
        """Put stored build-up liquidations (oldest first) back after a restart."""
        for liq in liqs:
            self._latest_ns = max(self._latest_ns, liq.ts_exchange)
            self._recent.setdefault(liq.asset, deque()).append(liq)
        self._trim_buildup()

    def buildup(self, asset: str) -> list[Liquidation]:
        """The build-up liquidations kept for ``asset``, oldest first."""
        return list(self._recent.get(asset, ()))

    @property
    def sequence(self) -> int:
        """How many live messages were started (part of each key, so keys stay unique across restarts)."""
        return self._n

    def active(self) -> list[CascadeState]:
        return [s for s in self.states.values() if s.active]

    def in_cascade(self, asset: str) -> bool:
        st = self.states.get(asset)
        return st is not None and st.active

    def on_liquidation(self, liq: Liquidation) -> None:
        """Count ``liq`` into its asset's cascade (or keep it for one that may start)."""
        self._latest_ns = max(self._latest_ns, liq.ts_exchange)
        st = self.states.get(liq.asset)
        if st is not None and st.active:
            st.add(liq)
            self._changed.add(liq.asset)
            if st.folded and self.market is not None:
                self.market.dirty = True
                self._market_changed = True
            return
        q = self._recent.setdefault(liq.asset, deque())
        q.append(liq)
        self._buildup_new.append(liq)
        while q and liq.ts_exchange - q[0].ts_exchange > self.window_ns:
            q.popleft()

    def on_cascade(self, c: Cascade, now: float) -> list[Action]:
        """Actions for a cascade signal (edits may be deferred to :meth:`due`)."""
        st = self.states.get(c.asset)
        lvl = _lvl(c.level)
        if lvl == 0:
            if st is None or not st.active:
                return []
            return self._end(st, c, now)
        if st is not None and not st.active and (st.folded or now - st.ended_at > self.rearm_s):
            del self.states[c.asset]
            self._changed.add(c.asset)
            st = None
        if st is None:
            return self._start(c, now)
        reopened = not st.active
        st.active, st.ended_ns, st.seen_at = True, 0, now
        changed = reopened or c.level != st.last.level
        self._update(st, c)
        out = []
        if lvl > st.alerted_level and not st.folded:
            st.alerted_level = lvl
            out.append(Action("escalate", st))
        return out + self._maybe_edit(st, now, force=changed)

    def due(self, now: float) -> list[Action]:
        """Deferred edits whose ``edit_interval_s`` has passed, and the end of cascades not heard of for ``rearm_s``."""
        self._trim_buildup()
        out = []
        for st in list(self.states.values()):
            if st.active and now - st.seen_at > self.rearm_s:
                out += self._close(st, st.last.ts_exchange, now)
            elif st.active and not st.folded:
                out += self._maybe_edit(st, now)
        return out + self._maybe_market_edit(now)

    # -- internals ---------------------------------------------------------
    def _trim_buildup(self) -> None:
        """Drop build-up older than ``window_s`` before the newest liquidation of any asset (a quiet asset's
        build-up ages too)."""
        horizon = self._latest_ns - self.window_ns
        for asset in [a for a, q in self._recent.items() if q and q[-1].ts_exchange < horizon]:
            del self._recent[asset]
        for q in self._recent.values():
            while q and q[0].ts_exchange < horizon:
                q.popleft()

    def _update(self, st: CascadeState, c: Cascade) -> None:
        st.last = c
        st.peak_score = max(st.peak_score, c.score)
        st.peak_count = max(st.peak_count, c.count)
        if _lvl(c.level) > _lvl(st.peak_level):
            st.peak_level = c.level
        if c.price > 0:
            st.first_price = st.first_price or c.price
            st.last_price = c.price
        st.dirty = True
        self._changed.add(st.asset)
        if st.folded and self.market is not None:
            self.market.dirty = True
            self._market_changed = True

    def _start(self, c: Cascade, now: float) -> list[Action]:
        self._n += 1
        start_ns = c.ts_exchange - int(c.window_s * 1e9) if c.ts_exchange else 0
        st = CascadeState(c.asset, f"cascade:{c.asset}:{c.ts_exchange}:{self._n}", c.ts_exchange, c,
                          alerted_level=_lvl(c.level), seen_at=now)
        seeded = [liq for liq in self._recent.pop(c.asset, ()) if liq.ts_exchange >= start_ns]
        self._buildup_taken.add(c.asset)
        for liq in seeded:  # the liquidations that built up to the start belong to the cascade
            st.add(liq)
        if seeded and seeded[0].ts_exchange:
            st.started_ns = seeded[0].ts_exchange
        self._update(st, c)
        self.states[c.asset] = st
        m = self.market
        if m is not None:
            st.folded = True
            m.members[c.asset] = st
            m.dirty = self._market_changed = True
            return self._maybe_market_edit(now)
        active = self.active()
        if len(active) >= self.market_wide_assets:
            self.market = MarketReport(f"market:{c.ts_exchange}:{self._n}", {s.asset: s for s in active},
                                       last_edit=now)
            self._market_changed = True
            self._changed.update(s.asset for s in active)
            out = []
            for s in active:
                if s is not st:  # close the member's own live message; the report carries on
                    s.dirty = False
                    out.append(Action("edit", s))
                s.folded = True
            return out + [Action("market_start", market=self.market)]
        st.dirty, st.last_edit = False, now
        return [Action("start", st)]

    def _end(self, st: CascadeState, c: Cascade, now: float) -> list[Action]:
        self._update(st, c)
        st.peak_level = st.peak_level if _lvl(st.peak_level) else (c.previous_level or "NONE")
        return self._close(st, c.ts_exchange, now)

    def _close(self, st: CascadeState, ended_ns: int, now: float) -> list[Action]:
        st.active, st.ended_ns, st.ended_at, st.dirty = False, ended_ns, now, False
        self._changed.add(st.asset)
        if not st.folded:
            st.last_edit = now
            return [Action("end", st)]
        m = self.market
        if m is not None and not any(s.active for s in m.members.values()):
            self.market = None
            self._market_changed = True
            for a in list(m.members):
                self.states.pop(a, None)
                self._changed.add(a)
            return [Action("market_end", market=m)]
        return self._maybe_market_edit(now)

    def _maybe_edit(self, st: CascadeState, now: float, force: bool = False) -> list[Action]:
        if st.folded:
            return self._maybe_market_edit(now)
        if st.dirty and (force or now - st.last_edit >= self.edit_interval_s):
            st.dirty, st.last_edit = False, now
            self._changed.add(st.asset)
            return [Action("edit", st)]
        return []

    def _maybe_market_edit(self, now: float) -> list[Action]:
        m = self.market
        if m is not None and m.dirty and now - m.last_edit >= self.edit_interval_s:
            m.dirty, m.last_edit = False, now
            self._market_changed = True
            return [Action("market_edit", market=m)]
        return []
