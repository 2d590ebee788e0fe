"""Volume-spike detector: ``volume.<ASSET>`` signals from :mod:`engine.kernels.volume`."""
from __future__ import annotations

import time

import numpy as np

from .base import FlowDetector, fallback_of, window_label
from ..kernels import flow
from ..kernels import volume as V
from ..kernels.volume import LEVELS, volume_batch
from ..signals import VolumeSpike

__all__ = ["VolumeDetector", "fallback_of"]


class VolumeDetector(FlowDetector):
    """Rolling USD volume per instrument and per asset against its own baseline; publishes spikes."""

    name = "volume"

    def __init__(self, ctx) -> None:
        super().__init__(ctx)
        c = self.cfg
        whales = ctx.cfg.detectors.whales
        self.windows_s = list(c.windows_s)
        self.labels = [window_label(w) for w in self.windows_s]
        self.widths = flow.bucket_counts(self.windows_s, "detectors.volume.windows_s")
        self.params = np.zeros(V.P_SIZE)
        p = self.params
        p[V.P_TRIM], p[V.P_MIN_HISTORY], p[V.P_HISTORY] = c.trim, c.min_history, c.baseline_windows
        p[V.P_FLOOR_PER_MIN] = c.min_baseline_usd_per_min
        p[V.P_LOW:V.P_EXTREME + 1] = c.levels_pct
        p[V.P_PUBLISH_LEVEL] = LEVELS.index(c.publish_level)
        p[V.P_WHALE_Q], p[V.P_WHALE_MIN_TRADES] = whales.whale_quantile, whales.min_trades
        p[V.P_WHALE_DECAY], p[V.P_WHALE_FLOOR] = 0.5 ** (1.0 / whales.half_life_trades), whales.min_usd
        self.whale_table = whales.fallback_usd
        self.keys = flow.FlowKeys(ctx.registry, ctx.runner, per_instrument=True, split_markets=False)
        nw = len(self.windows_s)
        self._new_ring(V.CHANNELS)
        self.hist = flow.AlignedHistory(nw, c.baseline_windows)
        self.baseline = np.zeros((0, nw))
        self.sizes = flow.SizeHistogram()
        self.whale_fb = np.zeros(0)
        self.rows = np.zeros((0, nw, V.R_SIZE))
        self.levels = np.zeros((0, nw), dtype=np.int8)
        self.scratch = np.zeros((nw, V.CHANNELS))
        self._grow()

    def _grow(self) -> None:
        n = max(1, self.keys.n_keys)
        self._grow_ring(n)
        self.hist.grow(n)
        self.baseline = flow.grow(self.baseline, n, -1.0)
        self.sizes.grow(n)
        self.whale_fb = self._per_key(self.whale_table)
        self.rows = flow.grow(self.rows, n)
        self.levels = flow.grow(self.levels, n)

    def _call(self, records: np.ndarray, start: int):
        return volume_batch(records, start, self.keys.inst_key, self.keys.inst_akey, self.widths, self.ring,
                            self.head, self.hist.as_tuple(), self.baseline, self.sizes.as_tuple(), self.whale_fb,
                            self.rows, self.levels, self.params, self.scratch, self.events, self.counters)

    def _signal(self, ev, rec) -> VolumeSpike:
        k, v = int(ev["key"]), ev["vals"]
        venue, symbol = self.keys.where(k)
        share = float(v[V.R_BUY_SHARE])
        dom = self.cfg.dominant_share
        return VolumeSpike(
            asset=self.keys.key_asset[k], venue=venue, symbol=symbol,
            ts_exchange=int(rec["ts_exchange"]), ts_recv=int(rec["ts_recv"]), ts_computed=time.time_ns(),
            level=LEVELS[ev["level"]], previous_level=LEVELS[ev["prev"]], window_s=self.windows_s[ev["window"]],
            volume_usd=float(v[V.R_USD]), baseline_usd=float(v[V.R_BASELINE]), spike_pct=float(v[V.R_PCT]),
            trades=int(v[V.R_TRADES]), buy_share=share,
            dominant_side="buy" if share >= dom else "sell" if share <= 1.0 - dom else "balanced",
            whale_share=float(v[V.R_WHALE_SHARE]), whale_usd=float(v[V.R_WHALE_USD]),
            whale_driven=bool(v[V.R_WHALE_SHARE] >= self.cfg.whale_driven_share))

    def thresholds(self, asset: str) -> dict[str, float]:
        """Per window: the baseline in force (-1 until history exists) and the USD volume of each level."""
        k = self._first_key(asset)
        out: dict[str, float] = {}
        for w, label in enumerate(self.labels):
            base = float(self.baseline[k, w]) if k is not None else -1.0
            if base >= 0:
                base = max(base, self.cfg.min_baseline_usd_per_min * self.windows_s[w] / 60.0)
            out[f"baseline_usd_{label}"] = base
            out[f"history_{label}"] = float(min(self.hist.count[k, w], self.cfg.baseline_windows)) if k is not None else 0.0
            for name, pct in zip(LEVELS[1:], self.cfg.levels_pct):
                out[f"{name.lower()}_usd_{label}"] = base * (1 + pct / 100.0) if base >= 0 else -1.0
        if k is not None:
            out["whale_usd"] = float(self.rows[k, 0, V.R_WHALE_USD])
        return out

    def factors(self, asset: str) -> dict[str, float]:
        """Spike % over the EXTREME level per window, clipped to 0..1."""
        k = self._first_key(asset)
        if k is None:
            return {}
        top = self.cfg.levels_pct[-1]
        return {f"spike_{label}": float(min(1.0, max(0.0, self.rows[k, w, V.R_PCT] / top)))
                for w, label in enumerate(self.labels)}
