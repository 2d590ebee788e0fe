"""Open-interest explosions and flushes per asset across venues (detector: engine/detectors/open_interest.py)."""
from __future__ import annotations

import numpy as np
from numba import njit

from ..record import Kind
from .sampled import EMPTY, emit_event, ew_update, finite_positive, sample_get, sample_put, threshold_of
from .windows import owned_asset, record_ts

_KIND_OI = np.uint8(Kind.OPEN_INTEREST)

__all__ = ["oi_change", "oi_batch"]


@njit(cache=True)
def oi_change(values, head, i, bucket, window):
    """(ok, fractional change of key ``i`` between ``bucket - window`` and ``bucket``)."""
    ok_now, now = sample_get(values, head, i, bucket)
    ok_then, then = sample_get(values, head, i, bucket - window)
    if not ok_now or not ok_then or then <= 0.0:
        return False, 0.0
    return True, now / then - 1.0


@njit(cache=True)
def oi_batch(recs, inst_asset, inst_venue, owned, asset_ptr, asset_inst, values, head, stats, change, state,
             p_fallback, p_floor, res_ns, window, min_samples, z, alpha, min_oi_usd, min_venues, rearm,
             events, counters):
    """Open interest per instrument (USD, sampled every ``res_ns``); per asset, explosion (+1) / flush (-1).

    An instrument agrees when its change over ``window`` buckets is beyond its threshold (own EW
    distribution of past changes, else ``p_fallback[asset]``; at least ``p_floor[asset]``). The asset
    fires when at least ``min(min_venues, venues reporting)`` venues agree in one direction and their OI
    sums to ``min_oi_usd``; it re-arms once fewer than that many stay beyond ``rearm`` x threshold.
    Events: v0 mean change of the agreeing instruments, v1 mean threshold, v2 OI USD, v3 venues agreeing.
    """
    n_ev = 0
    for r in range(recs.shape[0]):
        rec = recs[r]
        a = owned_asset(rec, _KIND_OI, inst_asset, owned)
        if a < 0:
            continue
        usd = rec["notional"]
        if not finite_positive(usd):
            counters[0] += 1
            continue
        i = rec["instrument"]
        b = record_ts(rec) // res_ns
        h = head[i]
        if h != EMPTY and b > h:   # bucket h closed: its change joins the instrument's own distribution
            ok, c = oi_change(values, head, i, h, window)
            if ok:
                ew_update(stats, i, c, alpha)
        if not sample_put(values, head, i, b, usd):
            counters[1] += 1
            continue
        ok, c = oi_change(values, head, i, b, window)
        change[i] = c if ok else 0.0
        # the asset across its instruments
        mask_rep = 0
        mask_up = mask_dn = mask_up_keep = mask_dn_keep = 0
        sum_up = sum_dn = thr_up = thr_dn = oi_up = oi_dn = 0.0
        n_up = n_dn = 0
        for k in range(asset_ptr[a], asset_ptr[a + 1]):
            j = asset_inst[k]
            if head[j] == EMPTY:
                continue
            vbit = 1 << (inst_venue[j] & 31)
            mask_rep |= vbit
            centre, thr = threshold_of(stats, j, min_samples, z, p_fallback[a], p_floor[a])
            d = change[j] - centre
            okj, oij = sample_get(values, head, j, b)
            if d >= thr:
                mask_up |= vbit
                n_up += 1
                sum_up += change[j]
                thr_up += thr
                oi_up += oij
            elif d <= -thr:
                mask_dn |= vbit
                n_dn += 1
                sum_dn += change[j]
                thr_dn += thr
                oi_dn += oij
            if d >= rearm * thr:
                mask_up_keep |= vbit
            elif d <= -rearm * thr:
                mask_dn_keep |= vbit
        need = min(min_venues, popcount(mask_rep))
        if state[a] == 0:
            if n_up and popcount(mask_up) >= need and oi_up >= min_oi_usd:
                state[a] = 1
                n_ev = emit_event(events, n_ev, a, i, 1, rec, sum_up / n_up, thr_up / n_up, oi_up, popcount(mask_up))
            elif n_dn and popcount(mask_dn) >= need and oi_dn >= min_oi_usd:
                state[a] = -1
                n_ev = emit_event(events, n_ev, a, i, -1, rec, sum_dn / n_dn, thr_dn / n_dn, oi_dn, popcount(mask_dn))
        elif state[a] == 1 and popcount(mask_up_keep) < need:
            state[a] = 0
        elif state[a] == -1 and popcount(mask_dn_keep) < need:
            state[a] = 0
    return n_ev


@njit(cache=True, inline="always")
def popcount(x):
    n = 0
    while x:
        x &= x - 1
        n += 1
    return n
