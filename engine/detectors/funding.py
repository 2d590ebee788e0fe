"""Funding per asset: level normalised to a common interval, momentum and extremes (kernel: :func:`funding_batch`).

"Predicted" is the rate a venue quotes for the coming settlement (MARK ``aux``), "current" the rate that
applied at the last settlement. What each venue gives:

* Binance ``markPrice`` ``r``: predicted (the settled ``lastFundingRate`` is REST-only); current is the
  last ``r`` before ``T`` (next funding time) moves on;
* Bybit ``tickers`` ``fundingRate``, Bitget ``ticker`` ``fundingRate``: predicted; current as Binance
  from ``nextFundingTime``;
* OKX ``funding-rate``: ``fundingRate`` predicted and ``settFundingRate`` current, both sent;
* Hyperliquid ``activeAssetCtx`` ``funding``: the hourly rate in force (predicted for the hour); current is
  the last one before the top of the hour;
* Gate ``futures.tickers`` ``funding_rate``: predicted; no next funding time in the frame (and
  ``funding_rate_indicative`` is deprecated), so no current: Gate-only assets judge momentum as the change.

Momentum is predicted minus current where any venue of the asset has both (signal ``window_s`` 0, ``basis``
``predicted_vs_current``), else the level's change over ``momentum_window_s`` (``basis`` ``change``).
"""
from __future__ import annotations

import numpy as np

from engine.kernels import columns as C
from engine.kernels.funding import funding_batch
from engine.kernels.sampled import grow_rows, grow_sampled, new_sampled, new_stats, sample_get, threshold_of
from engine.kernels.windows import ring_pow2
from engine.record import VENUE_NAMES, Kind
from engine.signals import FundingPressure

from .base import PositioningDetector

__all__ = ["FundingDetector", "venue_interval_h", "per_common_interval", "BASIS"]

_HOURS_PER_YEAR = 24.0 * 365.0
# FundingPressure.basis by the kernel's |event code|: 3 predicted minus current, 2 the level's change over the window
BASIS = {3: "predicted_vs_current", 2: "change"}


def venue_interval_h(cfg, venue: str) -> float:
    """Hours between settlements that ``venue``'s MARK funding rate is quoted for (``detectors.funding``)."""
    return cfg.interval_h.get(venue, cfg.interval_h["*"])


def per_common_interval(cfg, venue: str, rate: float) -> float:
    """``venue``'s raw funding rate restated per ``cfg.common_interval_h`` (what the detector averages)."""
    return rate * cfg.common_interval_h / venue_interval_h(cfg, venue)


class FundingDetector(PositioningDetector):
    """MARK funding (``aux``) x common/venue interval, averaged across venues; publishes ``funding.<ASSET>``."""

    name = "funding"
    kinds = (Kind.MARK,)

    def __init__(self, ctx) -> None:
        super().__init__(ctx)
        c = self.cfg
        if c.resolution_s <= 0 or c.momentum_window_s < c.resolution_s or c.common_interval_h <= 0:
            raise ValueError("detectors.funding: need resolution_s > 0, momentum_window_s >= resolution_s, "
                             "common_interval_h > 0")
        if any(h <= 0 for h in c.interval_h.values()) or "*" not in c.interval_h:
            raise ValueError("detectors.funding.interval_h: needs positive hours and a \"*\" entry")
        self.res_ns = int(c.resolution_s * 1e9)
        self.mom_window = int(round(c.momentum_window_s / c.resolution_s))
        self.venue_scale = np.array([per_common_interval(c, VENUE_NAMES.get(v, ""), 1.0) for v in range(32)])
        self.rate = np.full(1, np.nan)
        self.settled = np.full(1, np.nan)
        self.next_t = np.zeros(1)
        self.spread = np.full(1, np.nan)
        self.spread_stats = new_stats(1)
        self.level_vals, self.level_head = new_sampled(1, ring_pow2(self.mom_window + 2))
        self.level_stats = new_stats(1)
        self.mom_stats = new_stats(1)
        self.state = np.zeros((1, 2), dtype=np.int64)
        self._grow()

    def _resize(self, v) -> None:
        n_a = max(1, v.n_assets)
        self.rate = grow_rows(self.rate, max(1, v.n_inst), np.nan)
        self.settled = grow_rows(self.settled, max(1, v.n_inst), np.nan)
        self.next_t = grow_rows(self.next_t, max(1, v.n_inst))
        self.spread = grow_rows(self.spread, n_a, np.nan)
        self.spread_stats = grow_rows(self.spread_stats, n_a)
        self.level_vals, self.level_head = grow_sampled(self.level_vals, self.level_head, n_a)
        self.level_stats = grow_rows(self.level_stats, n_a)
        self.mom_stats = grow_rows(self.mom_stats, n_a)
        self.state = grow_rows(self.state, n_a)
        c = self.cfg
        self.p_extreme = v.per_asset(c.extreme_rate)
        self.p_mom = v.per_asset(c.momentum_rate)
        self.p_extreme_floor = np.full(len(self.p_extreme), c.extreme_floor)
        self.p_mom_floor = np.full(len(self.p_mom), c.momentum_floor)

    def _kernel(self, records: np.ndarray) -> int:
        c, v = self.cfg, self.view
        n = funding_batch(records, v.inst_asset, v.inst_venue, v.owned, v.asset_ptr, v.asset_inst,
                          self.venue_scale, self.rate, self.settled, self.next_t, self.level_vals, self.level_head,
                          self.level_stats, self.mom_stats, self.spread, self.spread_stats, self.state, self.res_ns,
                          self.mom_window, float(c.min_samples), c.z, c.ew_alpha, self.p_extreme,
                          self.p_extreme_floor, self.p_mom, self.p_mom_floor, c.rearm, self.events, self.counters)
        self._write_rows()
        return n

    def _write_rows(self) -> None:
        """Predicted / current / spread into the kernel runner's rows (the state table copies them).

        The asset row's ``FUNDING`` is the asset-level funding figure: the simple mean of its venues' rates per
        common interval (= ``FUNDING_LEVEL``; the instrument rows keep each venue's raw rate). A simple mean, not
        OI-weighted: it is the level the detector judges, and open interest arrives per venue at its own
        cadence (or not at all), so a weighted figure would move with OI polls rather than with funding."""
        r, v = self.ctx.runner, self.view
        inst_rows, asset_rows = getattr(r, "inst_rows", None), getattr(r, "asset_rows", None)
        if inst_rows is None or asset_rows is None:
            return
        n = min(len(inst_rows), v.n_inst, len(self.rate))
        scale = self.venue_scale[v.inst_venue[:n] & 31]
        rate, settled = self.rate[:n], self.settled[:n]
        inst_rows[:n, C.FUNDING_SETTLED] = settled / scale
        inst_rows[:n, C.FUNDING_LEVEL] = rate
        inst_rows[:n, C.FUNDING_SPREAD] = rate - settled
        n_a = min(len(asset_rows), v.n_assets, len(self.spread))
        asset = v.inst_asset[:n]
        has = ~np.isnan(rate)
        both = has & ~np.isnan(settled)
        owned = np.flatnonzero(v.owned[:n_a])
        for col, x, ok in ((C.FUNDING_LEVEL, rate, has), (C.FUNDING_SETTLED, settled, both)):
            cnt = np.bincount(asset[ok], minlength=n_a)[:n_a]
            tot = np.bincount(asset[ok], weights=x[ok], minlength=n_a)[:n_a]
            with np.errstate(invalid="ignore", divide="ignore"):
                asset_rows[owned, col] = (tot / cnt)[owned]
        asset_rows[owned, C.FUNDING] = asset_rows[owned, C.FUNDING_LEVEL]
        asset_rows[owned, C.FUNDING_SPREAD] = self.spread[owned]

    def _signals(self, events: np.ndarray, now: int) -> list:
        c, v = self.cfg, self.view
        out = []
        for e in events:
            code, level = int(e["code"]), float(e["v3"])
            # code 3: predicted vs current (no window); 2: the level's change over the momentum window
            out.append(FundingPressure(
                asset=v.asset_names[e["asset"]], ts_exchange=int(e["ts_exchange"]), ts_recv=int(e["ts_recv"]),
                ts_computed=now, event="extreme" if abs(code) == 1 else "momentum",
                direction="positive" if code > 0 else "negative", rate=level, interval_h=c.common_interval_h,
                annualised_pct=level * _HOURS_PER_YEAR / c.common_interval_h * 100.0, value=float(e["v0"]),
                threshold=float(e["v1"]), centre=float(e["v2"]),
                window_s=c.momentum_window_s if abs(code) == 2 else 0.0, basis=BASIS.get(abs(code), "")))
        return out

    def level(self, asset: str) -> float | None:
        """The asset's latest funding per common interval (mean across venues), None before any."""
        a = self.view.asset_id(asset)
        if a is None or a >= len(self.level_head):
            return None
        ok, lv = sample_get(self.level_vals, self.level_head, a, self.level_head[a])
        return float(lv) if ok else None

    def thresholds(self, asset: str) -> dict[str, float]:
        c = self.cfg
        out = {"interval_h": c.common_interval_h, "fallback_extreme_rate": float(c.extreme_rate.get(asset, c.extreme_rate["*"])),
               "fallback_momentum_rate": float(c.momentum_rate.get(asset, c.momentum_rate["*"])),
               "momentum_window_s": c.momentum_window_s}
        a = self.view.asset_id(asset)
        if a is not None and a < len(self.level_stats):
            ms = float(c.min_samples)
            centre, thr = threshold_of(self.level_stats, a, ms, c.z, self.p_extreme[a], self.p_extreme_floor[a])
            out.update(extreme_centre=centre, extreme_threshold=thr)
            centre, thr = threshold_of(self.mom_stats, a, ms, c.z, self.p_mom[a], self.p_mom_floor[a])
            out.update(momentum_threshold=thr)
        return out

    def factors(self, asset: str) -> dict[str, float]:
        """``funding``: |level - centre| / extreme threshold, clipped to 0..1."""
        a = self.view.asset_id(asset)
        lv = self.level(asset)
        if a is None or lv is None:
            return {}
        c = self.cfg
        centre, thr = threshold_of(self.level_stats, a, float(c.min_samples), c.z, self.p_extreme[a],
                                   self.p_extreme_floor[a])
        return {"funding": min(1.0, abs(lv - centre) / thr)}
