"""Delta / CVD detector: ``cvd.<ASSET>`` extreme-pressure signals from :mod:`engine.kernels.cvd`."""
from __future__ import annotations

import time

import numpy as np

from .base import FlowDetector, window_label
from ..flow_leader import leading_market, led_by
from ..kernels import cvd as K
from ..kernels import flow
from ..signals import DeltaPressure

__all__ = ["CvdDetector"]

_LEADER_CODE = {"spot": 1.0, "perp": -1.0, "none": 0.0}


class CvdDetector(FlowDetector):
    """Taker-flow delta per instrument and per asset (spot and perp apart); publishes extreme pressure."""

    name = "cvd"

    def __init__(self, ctx) -> None:
        super().__init__(ctx)
        c = self.cfg
        self.windows_s = list(c.windows_s)
        self.labels = [window_label(w) for w in self.windows_s]
        self.widths = flow.bucket_counts(self.windows_s, "detectors.cvd.windows_s")
        self.pw = self.windows_s.index(c.pressure_window_s)
        p = self.params = np.zeros(K.P_SIZE)
        p[K.P_PERIOD_NS], p[K.P_OFFSET_NS] = c.session_period_s * 1e9, c.session_offset_s * 1e9
        p[K.P_PRESSURE_W], p[K.P_HISTORY], p[K.P_MIN_HISTORY] = self.pw, c.history_windows, c.min_history
        p[K.P_Z], p[K.P_FALLBACK_SHARE] = c.pressure_z, c.fallback_buy_share
        self.keys = flow.FlowKeys(ctx.registry, ctx.runner, per_instrument=True, split_markets=True)
        nw = len(self.windows_s)
        self._new_ring(K.CHANNELS)
        self.hist = flow.AlignedHistory(1, c.history_windows)
        self.stat = np.zeros((0, 2))
        self.session = np.zeros(0, dtype=np.int64)
        self.min_usd = np.zeros(1)
        self.cum = np.zeros((0, K.K_SIZE))
        self.win = np.zeros((0, nw, K.W_SIZE))
        self.scratch = np.zeros((nw, K.CHANNELS))
        self._grow()

    def _grow(self) -> None:
        n = max(1, self.keys.n_keys)
        self._grow_ring(n)
        self.hist.grow(n)
        self.stat = flow.grow(self.stat, n, -1.0)
        self.session = flow.grow(self.session, n, flow.EMPTY)
        self.min_usd = self._per_key(self.cfg.min_pressure_usd)
        self.cum = flow.grow(self.cum, n)
        self.win = flow.grow(self.win, n)

    def _call(self, records: np.ndarray, start: int):
        return K.cvd_batch(records, start, self.keys.inst_key, self.keys.inst_akey, self.widths, self.ring,
                           self.head, self.hist.as_tuple(), self.stat, self.session, self.min_usd, self.cum,
                           self.win, self.params, self.scratch, self.events, self.counters)

    def _signal(self, ev, rec) -> DeltaPressure:
        k, v = int(ev["key"]), ev["vals"]
        venue, symbol = self.keys.where(k)
        return DeltaPressure(
            asset=self.keys.key_asset[k], venue=venue, symbol=symbol, market=self.keys.key_market[k],
            ts_exchange=int(rec["ts_exchange"]), ts_recv=int(rec["ts_recv"]), ts_computed=time.time_ns(),
            direction="buy" if ev["level"] > 0 else "sell", window_s=self.windows_s[self.pw],
            delta_usd=float(v[0]), zscore=float(v[1]), buy_share=float(v[2]), buy_sell_ratio=float(v[3]),
            cvd_usd=float(v[4]), acceleration_usd_s2=float(v[5]), volume_usd=float(v[6]), fallback=bool(v[7]),
            led_by=led_by({self.keys.key_market[j]: float(self.win[j, self.pw, K.W_DELTA])   # at the batch end
                           for j in self.keys.asset_keys(self.keys.key_asset[k]) if j in self.keys.inst_akey}))

    def thresholds(self, asset: str) -> dict[str, float]:
        """Per market: median and scale of the pressure-window delta (-1 while history is short) and the bounds."""
        out: dict[str, float] = {}
        for k in self.keys.asset_keys(asset):
            m = self.keys.key_market[k]
            med, scale = (float(x) for x in self.stat[k])
            ready = scale >= 0
            out[f"delta_median_usd_{m}"] = med if ready else -1.0
            out[f"delta_scale_usd_{m}"] = scale
            z = self.cfg.pressure_z
            out[f"buy_pressure_usd_{m}"] = med + z * max(scale, 1.0) if ready else -1.0
            out[f"sell_pressure_usd_{m}"] = med - z * max(scale, 1.0) if ready else -1.0
            out[f"min_pressure_usd_{m}"] = float(self.min_usd[k])
        out["pressure_z"] = self.cfg.pressure_z
        out["fallback_buy_share"] = self.cfg.fallback_buy_share
        return out

    def factors(self, asset: str) -> dict[str, float]:
        """Per market: |z| of the pressure window over the pressure bound, and the one-sidedness |2 buy share - 1|."""
        out: dict[str, float] = {}
        for k in self.keys.asset_keys(asset):
            m = self.keys.key_market[k]
            out[f"pressure_{m}"] = float(min(1.0, abs(self.cum[k, K.K_Z]) / self.cfg.pressure_z))
            out[f"imbalance_{m}"] = float(min(1.0, abs(2.0 * self.win[k, self.pw, K.W_BUY_SHARE] - 1.0)))
        return out

    def cvd(self, asset: str) -> dict[str, float]:
        """Session CVD (USD and base units) and window deltas per market, for commands like ``/cvd``; with both
        markets watched, ``led_by_<window>`` says which led the window's delta: 1 spot, -1 perp, 0 none."""
        out: dict[str, float] = {}
        for k in self.keys.asset_keys(asset):
            m = self.keys.key_market[k]
            out[f"cvd_usd_{m}"] = float(self.cum[k, K.K_CVD_USD])
            out[f"cvd_base_{m}"] = float(self.cum[k, K.K_CVD_BASE])
            for w, label in enumerate(self.labels):
                out[f"delta_usd_{label}_{m}"] = float(self.win[k, w, K.W_DELTA])
                out[f"buy_sell_ratio_{label}_{m}"] = float(self.win[k, w, K.W_RATIO])
                out[f"acceleration_{label}_{m}"] = float(self.win[k, w, K.W_ACCEL])
        watched = {self.keys.key_market[k] for k in self.keys.asset_keys(asset) if k in self.keys.inst_akey}
        if {"spot", "perp"} <= watched:     # a market key exists for every asset; only watched ones can lead
            for label in self.labels:
                spot, perp = out[f"delta_usd_{label}_spot"], out[f"delta_usd_{label}_perp"]
                out[f"led_by_{label}"] = _LEADER_CODE[leading_market(spot, perp)]
        return out
