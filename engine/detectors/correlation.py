"""Correlation breaks: short vs longer-run return correlation of configured pairs (kernel: :func:`correlation_batch`).

Pairs are built from the registry: each configured asset pair on every venue that lists both
(``BTC/ETH@binance``), and with ``cross_venue`` each of those assets on one venue against the same
asset on the first venue that lists it (``BTC@binance/BTC@bybit``). New instruments add pairs.

Returns are log changes of the MARK index (else mark) price between buckets of ``resolution_s`` of
*record* time; a pair's bucket is judged once, when both legs have moved past it, so the signals do
not depend on how the stream is cut into batches (or on when a batch arrives). Winsorising: each
leg's return is clipped to +-``winsor_k`` x that leg's EW mean absolute return (time constant
``long_window_s``, learning from clipped returns, no clipping during the first ``short_window_s``),
so one cascade jump counts as a large return, not as the whole long-run correlation.
"""
from __future__ import annotations

import math

import numpy as np

from engine.instruments import Market
from engine.kernels.correlation import MOMENTS, SCALES, correlation_batch
from engine.kernels.sampled import EMPTY, grow_rows, grow_sampled, new_sampled, new_stats, threshold_of
from engine.record import VENUE_NAMES, Kind
from engine.signals import CorrelationBreak

from .base import PositioningDetector

__all__ = ["CorrelationDetector"]


class CorrelationDetector(PositioningDetector):
    """EW short/long correlations of sampled log returns per pair; publishes ``correlation.<ASSET>``."""

    name = "correlation"
    kinds = (Kind.MARK,)

    def __init__(self, ctx) -> None:
        super().__init__(ctx)
        c = self.cfg
        if c.resolution_s <= 0 or not c.resolution_s < c.short_window_s < c.long_window_s:
            raise ValueError("detectors.correlation: need 0 < resolution_s < short_window_s < long_window_s")
        if any(len(p) != 2 for p in c.pairs):
            raise ValueError("detectors.correlation.pairs: each pair needs two assets")
        self.res_ns = int(c.resolution_s * 1e9)
        self.alpha_short = 1.0 - math.exp(-c.resolution_s / c.short_window_s)
        self.alpha_long = 1.0 - math.exp(-c.resolution_s / c.long_window_s)
        self.min_short = c.short_window_s / c.resolution_s
        self.min_long = c.long_window_s / c.resolution_s
        self.values, self.head = new_sampled(1, 64)
        self.pair_keys: dict[tuple[int, int], int] = {}
        self.pair_names: list[str] = []
        self.pairs = np.zeros((0, 2), dtype=np.int64)
        self.pair_done = np.zeros(0, dtype=np.int64)
        self.moments = np.zeros((0, 2 * MOMENTS))
        self.scales = np.zeros((0, SCALES))
        self.gap_stats = new_stats(0)
        self.state = np.zeros(0, dtype=np.int64)
        self.max_catchup = self.values.shape[1] - 2   # closed buckets replayed after a quiet spell, at most
        self._grow()

    def _resize(self, v) -> None:
        self.values, self.head = grow_sampled(self.values, self.head, max(1, v.n_inst))
        for key, name in self._wanted_pairs():
            if key not in self.pair_keys:
                self.pair_keys[key] = len(self.pair_names)
                self.pair_names.append(name)
        n = len(self.pair_names)
        self.pairs = np.array(list(self.pair_keys), dtype=np.int64).reshape(-1, 2)
        self.pair_done = grow_rows(self.pair_done, n, EMPTY)
        self.moments = grow_rows(self.moments, n)
        self.scales = grow_rows(self.scales, n)
        self.gap_stats = grow_rows(self.gap_stats, n)
        self.state = grow_rows(self.state, n)

    def _wanted_pairs(self) -> list[tuple[tuple[int, int], str]]:
        reg, v = self.ctx.registry, self.view
        by = {}   # (venue, asset) -> lowest perp instrument id
        for iid in range(v.n_inst):
            inst = reg.get(iid)
            if inst.market in (Market.PERP_LINEAR, Market.PERP_INVERSE):
                by.setdefault((inst.venue, inst.asset), iid)
        venues = sorted({ven for ven, _ in by})
        out = []
        for a, b in self.cfg.pairs:
            for ven in venues:
                if (ven, a) in by and (ven, b) in by:
                    out.append(((by[ven, a], by[ven, b]), f"{a}/{b}@{VENUE_NAMES.get(ven, ven)}"))
        if self.cfg.cross_venue:
            for asset in sorted({x for p in self.cfg.pairs for x in p}):
                listed = [ven for ven in venues if (ven, asset) in by]
                for ven in listed[1:]:
                    out.append(((by[listed[0], asset], by[ven, asset]),
                                f"{asset}@{VENUE_NAMES.get(listed[0], listed[0])}/{asset}@{VENUE_NAMES.get(ven, ven)}"))
        return out

    def _kernel(self, records: np.ndarray) -> int:
        c, v = self.cfg, self.view
        return correlation_batch(records, v.inst_asset, v.owned, self.pairs, self.pair_done, self.moments,
                                 self.scales, self.gap_stats, self.state, self.values, self.head, self.res_ns,
                                 self.alpha_short, self.alpha_long, self.min_short, self.min_long,
                                 float(c.min_samples), c.z, c.gap, c.gap_floor, c.min_long_corr, c.rearm, c.winsor_k,
                                 self.max_catchup, self.events, self.counters)

    def _signals(self, events: np.ndarray, now: int) -> list:
        c, v = self.cfg, self.view
        return [CorrelationBreak(
            asset=v.asset_names[e["asset"]], ts_exchange=int(e["ts_exchange"]), ts_recv=int(e["ts_recv"]),
            ts_computed=now, pair=self.pair_names[e["key"]], short_corr=float(e["v0"]), long_corr=float(e["v1"]),
            gap=float(e["v2"]), threshold=float(e["v3"]), resolution_s=c.resolution_s) for e in events]

    def correlations(self) -> dict[str, tuple[float, float]]:
        """``pair -> (short, long)`` correlation for pairs with enough history."""
        out = {}
        for p, name in enumerate(self.pair_names):
            m = self.moments[p]
            s, l_ = m[:MOMENTS], m[MOMENTS:]
            if s[0] >= self.min_short and l_[0] >= self.min_long and min(s[3], s[4], l_[3], l_[4]) > 0:
                out[name] = (s[5] / math.sqrt(s[3] * s[4]), l_[5] / math.sqrt(l_[3] * l_[4]))
        return out

    def thresholds(self, asset: str) -> dict[str, float]:
        c = self.cfg
        out = {"fallback_gap": c.gap, "gap_floor": c.gap_floor, "min_long_corr": c.min_long_corr,
               "short_window_s": c.short_window_s, "long_window_s": c.long_window_s, "winsor_k": c.winsor_k}
        for p, name in enumerate(self.pair_names):
            if name.startswith(asset + "/") or name.startswith(asset + "@"):
                out[f"gap[{name}]"] = threshold_of(self.gap_stats, p, float(c.min_samples), c.z, c.gap, c.gap_floor)[1]
        return out

    def factors(self, asset: str) -> dict[str, float]:
        """``correlation_break``: the largest (long - short) / threshold over the asset's pairs, clipped to 0..1."""
        c = self.cfg
        best = 0.0
        for name, (short, long_) in self.correlations().items():
            if asset in name.replace("@", "/").split("/"):
                p = self.pair_names.index(name)
                centre, thr = threshold_of(self.gap_stats, p, float(c.min_samples), c.z, c.gap, c.gap_floor)
                best = max(best, (long_ - short - centre) / thr)
        return {"correlation_break": max(0.0, min(1.0, best))}
