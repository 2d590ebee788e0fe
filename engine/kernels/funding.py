"""Funding extremes and momentum per asset, normalised across venues (detector: engine/detectors/funding.py)."""
from __future__ import annotations

import math

import numpy as np
from numba import njit

from ..record import Kind
from .sampled import EMPTY, emit_event, ew_update, sample_get, sample_put, threshold_of
from .windows import owned_asset, record_ts

_KIND_MARK = np.uint8(Kind.MARK)

__all__ = ["funding_batch"]


@njit(cache=True)
def funding_batch(recs, inst_asset, inst_venue, owned, asset_ptr, asset_inst, venue_scale, rate, settled, next_t,
                  level_vals, level_head, level_stats, mom_stats, spread, spread_stats, state, res_ns, mom_window,
                  min_samples, z, alpha, p_extreme, p_extreme_floor, p_mom, p_mom_floor, rearm, events, counters):
    """Funding normalised to a common interval (``x venue_scale[venue]``), per asset across venues.

    Per instrument: ``rate`` = the rate for the coming settlement (MARK ``aux``: a live prediction on
    most venues); ``settled`` = the rate that applied at the last settlement: MARK ``notional`` where the
    venue sends it (0 = not sent), else the last ``rate`` seen before the next funding time (``aux2``,
    kept in ``next_t``) moved on; NaN until known.
    Level = mean of the asset's latest rates, sampled every ``res_ns``. Momentum = predicted vs current
    (``spread[a]``: mean of rate - settled over the instruments with both, code +-3) where any venue of
    the asset gives both, else the level change over ``mom_window`` buckets (code +-2). Extreme (code
    +-1) when the level is beyond its threshold around the asset's own mean; momentum likewise with its
    own statistics (``spread_stats`` / ``mom_stats``). Each re-arms once back within ``rearm`` x
    threshold. Events: v0 value, v1 threshold, v2 centre, v3 level. ``state[a, 0]`` / ``state[a, 1]``:
    fired sign of extreme / momentum. ``counters[0]``: bad values, ``counters[1]``: records too late.
    """
    n_ev = 0
    for r in range(recs.shape[0]):
        rec = recs[r]
        a = owned_asset(rec, _KIND_MARK, inst_asset, owned)
        if a < 0:
            continue
        i = rec["instrument"]
        scale = venue_scale[inst_venue[i] & 31]
        x = rec["aux"] * scale
        sx = rec["notional"] * scale
        if not (abs(x) < 1.0 and abs(sx) < 1.0):   # NaN, inf, or a rate no venue quotes
            counters[0] += 1
            continue
        nt = rec["aux2"]
        if sx != 0.0:
            settled[i] = sx
        elif nt > next_t[i] > 0.0 and not math.isnan(rate[i]):   # a settlement passed: the rate before it applied
            settled[i] = rate[i]
        if nt > next_t[i]:
            next_t[i] = nt
        rate[i] = x
        total = 0.0
        n = 0
        sp_total = 0.0
        n_sp = 0
        for k in range(asset_ptr[a], asset_ptr[a + 1]):
            j = asset_inst[k]
            if not math.isnan(rate[j]):
                total += rate[j]
                n += 1
                if not math.isnan(settled[j]):
                    sp_total += rate[j] - settled[j]
                    n_sp += 1
        level = total / n
        b = record_ts(rec) // res_ns
        h = level_head[a]
        if h != EMPTY and b > h:   # bucket h closed: fold its level, change and spread into the asset's stats
            ok, lv = sample_get(level_vals, level_head, a, h)
            ok0, lv0 = sample_get(level_vals, level_head, a, h - mom_window)
            ew_update(level_stats, a, lv, alpha)
            if ok0:
                ew_update(mom_stats, a, lv - lv0, alpha)
            if not math.isnan(spread[a]):
                ew_update(spread_stats, a, spread[a], alpha)
        if not sample_put(level_vals, level_head, a, b, level):
            counters[1] += 1
            continue
        spread[a] = sp_total / n_sp if n_sp else np.nan
        centre, thr = threshold_of(level_stats, a, min_samples, z, p_extreme[a], p_extreme_floor[a])
        n_ev = _judge(events, n_ev, state, a, 0, 1, level - centre, thr, level, centre, level, rearm, i, rec)
        if n_sp:
            centre, thr = threshold_of(spread_stats, a, min_samples, z, p_mom[a], p_mom_floor[a])
            n_ev = _judge(events, n_ev, state, a, 1, 3, spread[a] - centre, thr, spread[a], centre, level,
                          rearm, i, rec)
            continue
        ok0, lv0 = sample_get(level_vals, level_head, a, b - mom_window)
        if ok0:
            centre, thr = threshold_of(mom_stats, a, min_samples, z, p_mom[a], p_mom_floor[a])
            n_ev = _judge(events, n_ev, state, a, 1, 2, level - lv0 - centre, thr, level - lv0, centre, level,
                          rearm, i, rec)
    return n_ev


@njit(cache=True, inline="always")
def _judge(events, n_ev, state, a, slot, code, d, thr, value, centre, level, rearm, key, rec):
    """Fire ``+-code`` when deviation ``d`` crosses ``thr`` with the slot unarmed; re-arm inside ``rearm*thr``."""
    s = state[a, slot]
    if s == 0:
        if d >= thr:
            state[a, slot] = 1
            return emit_event(events, n_ev, a, key, code, rec, value, thr, centre, level)
        if d <= -thr:
            state[a, slot] = -1
            return emit_event(events, n_ev, a, key, -code, rec, value, thr, centre, level)
    elif abs(d) < rearm * thr or s * d < 0:
        state[a, slot] = 0
    return n_ev
