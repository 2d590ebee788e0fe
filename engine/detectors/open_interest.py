"""Open interest explosions and flushes per asset, confirmed across venues (kernel: :func:`oi_batch`)."""
from __future__ import annotations

import numpy as np

from engine.kernels.open_interest import oi_batch
from engine.kernels.sampled import EMPTY, grow_rows, grow_sampled, new_sampled, new_stats, threshold_of
from engine.kernels.windows import ring_pow2
from engine.record import Kind
from engine.signals import OpenInterestMove

from .base import PositioningDetector

__all__ = ["OpenInterestDetector"]


class OpenInterestDetector(PositioningDetector):
    """OI change over ``window_s`` at ``resolution_s`` per instrument; publishes ``open_interest.<ASSET>``."""

    name = "open_interest"
    kinds = (Kind.OPEN_INTEREST,)

    def __init__(self, ctx) -> None:
        super().__init__(ctx)
        c = self.cfg
        if c.resolution_s <= 0 or c.window_s < c.resolution_s:
            raise ValueError("detectors.open_interest: need resolution_s > 0 and window_s >= resolution_s")
        self.res_ns = int(c.resolution_s * 1e9)
        self.window = int(round(c.window_s / c.resolution_s))
        self.values, self.head = new_sampled(1, ring_pow2(self.window + 2))
        self.stats = new_stats(1)
        self.change = np.zeros(1)
        self.state = np.zeros(1, dtype=np.int64)
        self._grow()

    def _resize(self, v) -> None:
        n = max(1, v.n_inst)
        self.values, self.head = grow_sampled(self.values, self.head, n)
        self.stats = grow_rows(self.stats, n)
        self.change = grow_rows(self.change, n)
        self.state = grow_rows(self.state, max(1, v.n_assets))
        self.fallback = v.per_asset(self.cfg.change_pct, 0.01)
        self.floor = np.full(len(self.fallback), self.cfg.floor_pct * 0.01)

    def _kernel(self, records: np.ndarray) -> int:
        c, v = self.cfg, self.view
        return oi_batch(records, v.inst_asset, v.inst_venue, v.owned, v.asset_ptr, v.asset_inst, self.values,
                        self.head, self.stats, self.change, self.state, self.fallback, self.floor, self.res_ns,
                        self.window, float(c.min_samples), c.z, c.ew_alpha, c.min_oi_usd, c.min_venues, c.rearm,
                        self.events, self.counters)

    def _signals(self, events: np.ndarray, now: int) -> list:
        c, v = self.cfg, self.view
        return [OpenInterestMove(
            asset=v.asset_names[e["asset"]], ts_exchange=int(e["ts_exchange"]), ts_recv=int(e["ts_recv"]),
            ts_computed=now, event="explosion" if e["code"] > 0 else "flush", change_pct=float(e["v0"]) * 100.0,
            threshold_pct=float(e["v1"]) * 100.0, window_s=c.window_s, oi_usd=float(e["v2"]), venues=int(e["v3"]))
            for e in events]

    def thresholds(self, asset: str) -> dict[str, float]:
        c = self.cfg
        out = {"window_s": c.window_s, "fallback_change_pct": float(c.change_pct.get(asset, c.change_pct["*"])),
               "floor_pct": c.floor_pct, "min_oi_usd": c.min_oi_usd, "min_venues": float(c.min_venues)}
        a = self.view.asset_id(asset)
        if a is not None:
            thr = self._active_thresholds(a)
            if thr:
                out["change_pct"] = float(np.mean(thr)) * 100.0
        return out

    def _active_thresholds(self, a: int) -> list[float]:
        c = self.cfg
        return [threshold_of(self.stats, int(j), float(c.min_samples), c.z, self.fallback[a], self.floor[a])[1]
                for j in self.view.instruments_of(a) if self.head[j] != EMPTY]

    def factors(self, asset: str) -> dict[str, float]:
        """``oi_change``: the largest |change| / threshold over the asset's venues, clipped to 0..1."""
        a = self.view.asset_id(asset)
        if a is None:
            return {}
        c = self.cfg
        best = 0.0
        for j in self.view.instruments_of(a):
            if self.head[j] == EMPTY:
                continue
            centre, thr = threshold_of(self.stats, int(j), float(c.min_samples), c.z, self.fallback[a], self.floor[a])
            best = max(best, abs(self.change[j] - centre) / thr)
        return {"oi_change": min(1.0, best)}
