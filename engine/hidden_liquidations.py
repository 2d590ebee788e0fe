"""Estimate of the liquidations a capped stream hid, from the uncapped venues in the same second.

Binance's ``forceOrder`` stream (records flagged ``Flag.CAPPED``) pushes only the
latest liquidation of a symbol in each 1000 ms window. A shown record at time
``T`` therefore stands for every liquidation of its symbol in ``(T - 1 s, T]``
that the previous shown record of the symbol did not already stand for.

The venues without a cap saw the same market in that interval. Their
liquidations of the same asset there, scaled by the capped instrument's share of
the asset's open interest (``k = OI(capped) / sum OI(uncapped)``; ``1 / number of
uncapped venues`` while OI is unknown), estimate what the interval really held;
the shown record is one of them::

    hidden_count = max(0, k * N_uncapped - 1)
    hidden_usd   = max(0, k * USD_uncapped - shown_usd)

An interval is judged once stream time has moved ``settle_s`` past it, so the
other venues' records (later on the wire) are in. Estimates are per venue and
cumulative; they are 0 where no uncapped venue watches the asset (nothing to
scale from), so they stay an estimate from evidence, never a guess.
"""
from __future__ import annotations

from collections import deque

import numpy as np

from .record import Flag, Kind, VENUE_NAMES

__all__ = ["HiddenLiquidations"]

_NS = 1_000_000_000
SHARE_REFRESH_NS = 10 * _NS


class HiddenLiquidations:
    """Accumulates liquidation records (any venue) and estimates per capped venue what its cap hid."""

    def __init__(self, window_s: float = 1.0, settle_s: float = 2.0):
        self.window_ns = int(window_s * _NS)
        self.settle_ns = int(settle_s * _NS)
        self._uncapped: dict[int, deque] = {}        # asset -> (ts, venue, usd) of uncapped liquidations
        self._pending: deque = deque()               # capped records waiting for their interval to settle
        self._last_shown: dict[int, int] = {}        # capped instrument -> ts of its previous shown record
        self._uncapped_venues: dict[int, set] = {}   # asset -> venues whose uncapped liquidations of it arrived
        self._shares: dict[int, tuple[float, int, int]] = {}   # capped instrument -> (k, stream ns, venues)
        self.count: dict[str, float] = {}            # venue -> hidden liquidations (estimate)
        self.usd: dict[str, float] = {}              # venue -> hidden USD (estimate)
        self.shown: dict[str, int] = {}              # venue -> capped records judged
        self._now = 0
        self._next_trim = 0

    def add(self, recs: np.ndarray, inst_asset, inst_venue=None, inst_oi_usd=None) -> None:
        """Take the liquidation records of a batch (other kinds are ignored).

        ``inst_asset`` / ``inst_venue``: instrument id -> asset id / venue id; ``inst_oi_usd``: instrument
        id -> open interest in USD (0 where unknown), for the capped instrument's share.
        """
        is_liq = recs["kind"] == Kind.LIQUIDATION
        liq = recs if is_liq.all() else recs[is_liq]
        if not len(liq):
            return
        for kind_, venue, side, flags, iid, ts, *_rest in liq.tolist():
            usd = _rest[3]
            a = int(inst_asset[iid]) if iid < len(inst_asset) else -1
            if a < 0:
                continue
            if flags & Flag.CAPPED:
                self._pending.append((ts, venue, iid, a, usd))
            else:
                self._uncapped.setdefault(a, deque()).append((ts, venue, usd))
                self._uncapped_venues.setdefault(a, set()).add(venue)
            if ts > self._now:
                self._now = ts
        self._settle(inst_asset, inst_venue, inst_oi_usd)

    def advance(self, now_ns: int, inst_asset, inst_venue=None, inst_oi_usd=None) -> None:
        """Move stream time on without records (judges intervals that have settled)."""
        if now_ns > self._now:
            self._now = now_ns
        self._settle(inst_asset, inst_venue, inst_oi_usd)

    def _settle(self, inst_asset, inst_venue, inst_oi_usd) -> None:
        pending = self._pending
        if self._now >= self._next_trim:
            self._next_trim = self._now + self.window_ns
            self._trim()
        while pending and pending[0][0] + self.settle_ns <= self._now:
            ts, venue, iid, a, usd = pending.popleft()
            start = max(ts - self.window_ns, self._last_shown.get(iid, ts - self.window_ns))
            self._last_shown[iid] = ts
            n_u, usd_u = self._uncapped_between(a, start, ts)
            name = VENUE_NAMES.get(venue, str(venue))
            self.shown[name] = self.shown.get(name, 0) + 1
            venues = self._uncapped_venues.get(a)
            if not venues:
                continue
            k = self._cached_share(iid, a, venues, inst_asset, inst_venue, inst_oi_usd)
            self.count[name] = self.count.get(name, 0.0) + max(0.0, k * n_u - 1.0)
            self.usd[name] = self.usd.get(name, 0.0) + max(0.0, k * usd_u - usd)

    def _uncapped_between(self, a: int, start: int, end: int) -> tuple[int, float]:
        n, usd = 0, 0.0
        for ts, _venue, u in self._uncapped.get(a, ()):
            if start < ts <= end:
                n += 1
                usd += u
        return n, usd

    def _cached_share(self, iid: int, a: int, venues: set, inst_asset, inst_venue, inst_oi_usd) -> float:
        """:meth:`_share`, recomputed when the venues change or every ``SHARE_REFRESH_NS`` of stream time
        (open interest moves slowly; the sums over every instrument are not worth paying per record)."""
        cached = self._shares.get(iid)
        if cached is None or cached[2] != len(venues) or self._now - cached[1] > SHARE_REFRESH_NS:
            cached = self._shares[iid] = (self._share(iid, a, venues, inst_asset, inst_venue, inst_oi_usd),
                                          self._now, len(venues))
        return cached[0]

    @staticmethod
    def _share(iid: int, a: int, venues: set, inst_asset, inst_venue, inst_oi_usd) -> float:
        """The capped instrument's OI over the OI of the asset on the uncapped venues (1/venues when unknown)."""
        if inst_oi_usd is not None and inst_venue is not None and iid < len(inst_oi_usd):
            mine = float(inst_oi_usd[iid])
            if mine > 0:
                n = min(len(inst_asset), len(inst_venue), len(inst_oi_usd))
                of_asset = np.asarray(inst_asset[:n]) == a
                oi = np.asarray(inst_oi_usd[:n])[of_asset].clip(min=0)
                where = np.asarray(inst_venue[:n])[of_asset]
                theirs = float(sum(oi[where == v].sum() for v in venues))
                if theirs > 0:
                    return mine / theirs
        return 1.0 / len(venues)

    def _trim(self) -> None:
        """Forget uncapped records no pending or future interval can reach."""
        oldest = (self._pending[0][0] if self._pending else self._now) - 2 * self.window_ns
        for q in self._uncapped.values():
            while q and q[0][0] < oldest:
                q.popleft()

    def counters(self) -> dict[str, float]:
        """Actor-table counters: ``hidden_liquidations:<venue>`` and ``hidden_usd:<venue>``."""
        out = {f"hidden_liquidations:{v}": round(c, 3) for v, c in self.count.items()}
        out.update({f"hidden_usd:{v}": round(u, 2) for v, u in self.usd.items()})
        return out
