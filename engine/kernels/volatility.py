"""Realized volatility on a 1 s grid and the regime it implies.

Per instrument the kernel keeps the last trade price of the open second and
the close of the previous one. When the first trade of a later second
arrives, the open second closes: its log return ``ln(close / previous close)``
is squared into a ring of 1 s buckets (:mod:`windows`). Seconds without
trades repeat the previous close (return 0). Over a window of ``W`` seconds::

    n   = min(W, seconds closed since the first trade)
    rv  = sqrt(sum(r^2 over the last W closed seconds) * SECONDS_PER_YEAR / n)

An asset's realized vol is the mean over its instruments that have any
closed second (venue basis never enters a return). The regime comes from the
shortest window: the count of ``regime_bounds`` at or below ``rv``; until
``MIN_OBS`` seconds are closed the regime is ``normal`` (unknown is neutral).
Late trades (an earlier second than the open one) only update the price.
"""
from __future__ import annotations

import math

import numpy as np
from numba import njit

from . import columns as C
from .windows import owned_asset, EMPTY, grow_ring, new_ring, record_ts, ring_add, ring_pow2, ring_sums

__all__ = ["SECOND_NS", "SECONDS_PER_YEAR", "MIN_OBS", "NORMAL", "VolatilityState", "on_trade",
           "refresh_instrument", "refresh_asset", "update_batch"]

SECOND_NS = 1_000_000_000
SECONDS_PER_YEAR = 365.0 * 86400.0   # crypto trades every day
MIN_OBS = 10
NORMAL = 2
TRADE = 1  # Kind.TRADE


class VolatilityState:
    """Per-instrument price grid and squared-return ring."""

    def __init__(self, windows_s: list[float], n_keys: int):
        self.windows = np.array(sorted(int(round(w)) for w in windows_s)[: C.MAX_WINDOWS], dtype=np.int64)
        self.labels = [f"{w}s" for w in self.windows]
        self.r2, self.r2_head = new_ring(n_keys, ring_pow2(int(self.windows[-1]) + 2), 1)
        self.sec = np.full((n_keys, 2), EMPTY, dtype=np.int64)   # open second, first second
        self.px = np.zeros((n_keys, 2))                          # last price, previous close

    def grow(self, n_keys: int) -> None:
        """Make room for ``n_keys`` instruments."""
        old = len(self.sec)
        if n_keys <= old:
            return
        self.r2, self.r2_head = grow_ring(self.r2, self.r2_head, n_keys)
        sec = np.full((n_keys, 2), EMPTY, dtype=np.int64)
        sec[:old] = self.sec
        px = np.zeros((n_keys, 2))
        px[:old] = self.px
        self.sec, self.px = sec, px

    def as_tuple(self):
        return self.r2, self.r2_head, self.sec, self.px


@njit(cache=True)
def on_trade(state, key, ts, price):
    """Feed one trade price; return True when it closed a second (the rv of ``key`` changed)."""
    r2, r2_head, sec, px = state
    if not (price > 0.0 and math.isfinite(price)):
        return False
    s = ts // SECOND_NS
    cur = sec[key, 0]
    if cur == EMPTY:
        sec[key, 0] = s
        sec[key, 1] = s
        px[key, 0] = price
        px[key, 1] = price
        return False
    if s <= cur:
        px[key, 0] = price
        return False
    r = math.log(px[key, 0] / px[key, 1])
    ring_add(r2, r2_head, key, cur, 0, r * r)
    px[key, 1] = px[key, 0]
    px[key, 0] = price
    sec[key, 0] = s
    return True


@njit(cache=True)
def refresh_instrument(state, key, windows, scratch, row):
    """Recompute the realized vol per window of instrument ``key`` into ``row``."""
    r2, r2_head, sec, px = state
    nw = windows.shape[0]
    cur = sec[key, 0]
    if cur == EMPTY:
        row[C.RV:C.RV + nw] = 0.0
        row[C.RV_OBS] = 0.0
        return
    closed = cur - sec[key, 1]
    ring_sums(r2, r2_head, key, cur - 1, windows, scratch)
    for w in range(nw):
        n = min(windows[w], closed)
        row[C.RV + w] = math.sqrt(scratch[w, 0] * SECONDS_PER_YEAR / n) if n > 0 else 0.0
    row[C.RV_OBS] = min(windows[nw - 1], closed)


@njit(cache=True)
def regime_of(rv, n_obs, bounds):
    """Regime index 0..4 of an annualised vol (``NORMAL`` until ``MIN_OBS`` seconds)."""
    if n_obs < MIN_OBS:
        return NORMAL
    k = 0
    for b in bounds:
        if rv >= b:
            k += 1
    return k


@njit(cache=True)
def refresh_asset(asset_ptr, asset_inst, inst_rows, a, nw, bounds, multipliers, row):
    """Average the instruments' vol into asset row ``a``; set its regime; return the previous regime."""
    row[C.RV:C.RV + nw] = 0.0
    n = 0
    obs = 0.0
    for j in range(asset_ptr[a], asset_ptr[a + 1]):
        irow = inst_rows[asset_inst[j]]
        if irow[C.RV_OBS] > 0:
            n += 1
            obs = max(obs, irow[C.RV_OBS])
            for w in range(nw):
                row[C.RV + w] += irow[C.RV + w]
    if n > 0:
        for w in range(nw):
            row[C.RV + w] /= n
    row[C.RV_OBS] = obs
    prev = int(row[C.REGIME])
    k = regime_of(row[C.RV], obs, bounds)
    row[C.REGIME] = k
    row[C.REGIME_MULT] = multipliers[k]
    return prev


@njit(cache=True)
def update_batch(records, inst_asset, owned, state, windows, asset_ptr, asset_inst, bounds, multipliers,
                 inst_rows, asset_rows, scratch, changed):
    """Feed the trades of owned assets in ``records``; refresh vol and regime where a second closed.

    Write the asset ids whose regime changed into ``changed``; return how many.
    """
    nw = windows.shape[0]
    n_changed = 0
    for i in range(records.shape[0]):
        rec = records[i]
        a = owned_asset(rec, TRADE, inst_asset, owned)
        if a < 0:
            continue
        iid = rec["instrument"]
        if on_trade(state, iid, record_ts(rec), rec["price"]):
            refresh_instrument(state, iid, windows, scratch, inst_rows[iid])
            prev = refresh_asset(asset_ptr, asset_inst, inst_rows, a, nw, bounds, multipliers, asset_rows[a])
            if prev != asset_rows[a, C.REGIME] and n_changed < changed.shape[0]:
                changed[n_changed] = a
                n_changed += 1
    return n_changed
