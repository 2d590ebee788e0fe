"""Correlation breaks: short vs longer-run correlation of sampled log returns per pair.

Detector: engine/detectors/correlation.py.
"""
from __future__ import annotations

import math

import numpy as np
from numba import njit

from ..record import Kind
from .sampled import EMPTY, emit_event, ew_update, finite_positive, sample_get, sample_put, threshold_of
from .windows import owned_asset, record_ts

_KIND_MARK = np.uint8(Kind.MARK)

__all__ = ["MOMENTS", "correlation_batch"]


# per-pair EW moment columns (short then long): n, mean_a, mean_b, var_a, var_b, cov
P_N, P_MA, P_MB, P_VA, P_VB, P_COV = range(6)
MOMENTS = 6


@njit(cache=True, inline="always")
def _moments_update(m, p, off, x, y, alpha):
    if m[p, off + P_N] == 0.0:
        m[p, off + P_MA] = x
        m[p, off + P_MB] = y
    else:
        dx = x - m[p, off + P_MA]
        dy = y - m[p, off + P_MB]
        m[p, off + P_MA] += alpha * dx
        m[p, off + P_MB] += alpha * dy
        m[p, off + P_VA] = (1.0 - alpha) * (m[p, off + P_VA] + alpha * dx * dx)
        m[p, off + P_VB] = (1.0 - alpha) * (m[p, off + P_VB] + alpha * dy * dy)
        m[p, off + P_COV] = (1.0 - alpha) * (m[p, off + P_COV] + alpha * dx * dy)
    m[p, off + P_N] += 1.0


@njit(cache=True, inline="always")
def _corr(m, p, off):
    """(ok, correlation) of the moments at ``off``; not ok while either variance is ~0."""
    va, vb = m[p, off + P_VA], m[p, off + P_VB]
    if va <= 1e-30 or vb <= 1e-30:
        return False, 0.0
    c = m[p, off + P_COV] / math.sqrt(va * vb)
    return True, max(-1.0, min(1.0, c))


@njit(cache=True)
def correlation_batch(recs, inst_asset, owned, pairs, pair_done, moments, gap_stats, state, values, head,
                      res_ns, alpha_short, alpha_long, min_short, min_long, min_samples, z, p_gap, p_gap_floor,
                      min_long_corr, rearm, max_catchup, events, counters):
    """Rolling correlation of log returns (sampled every ``res_ns`` from MARK: index, else mark) per pair.

    Each closed bucket adds one return pair to a short and a long EW window. Break (code 1) when
    ``long - short`` exceeds its threshold (own EW distribution of the gap, else ``p_gap``, at least
    ``p_gap_floor``) while the long-run correlation is at least ``min_long_corr``; re-arms inside
    ``rearm`` x threshold. Events (key = pair index, asset = the first leg's): v0 short, v1 long,
    v2 gap, v3 threshold.
    """
    newest = EMPTY
    for r in range(recs.shape[0]):
        rec = recs[r]
        a = owned_asset(rec, _KIND_MARK, inst_asset, owned)
        if a < 0:
            continue
        i = rec["instrument"]
        if i >= head.shape[0]:
            continue
        px = rec["qty"] if rec["qty"] > 0.0 else rec["price"]
        if not finite_positive(px):
            counters[0] += 1
            continue
        b = record_ts(rec) // res_ns
        if not sample_put(values, head, i, b, math.log(px)):
            counters[1] += 1
            continue
        if b > newest:
            newest = b
    n_ev = 0
    if newest == EMPTY:
        return 0
    last_rec = recs[recs.shape[0] - 1]
    closed = newest - 1
    for p in range(pairs.shape[0]):
        ia, ib = pairs[p, 0], pairs[p, 1]
        if ia >= head.shape[0] or ib >= head.shape[0] or head[ia] == EMPTY or head[ib] == EMPTY:
            continue
        a = inst_asset[ia]
        if not owned[a]:
            continue
        start = pair_done[p] + 1
        if pair_done[p] == EMPTY or closed - start >= max_catchup:
            start = closed - max_catchup + 1
        for bkt in range(start, closed + 1):
            ok1, xa1 = sample_get(values, head, ia, bkt)
            ok0, xa0 = sample_get(values, head, ia, bkt - 1)
            ok3, xb1 = sample_get(values, head, ib, bkt)
            ok2, xb0 = sample_get(values, head, ib, bkt - 1)
            if ok0 and ok1 and ok2 and ok3:
                _moments_update(moments, p, 0, xa1 - xa0, xb1 - xb0, alpha_short)
                _moments_update(moments, p, MOMENTS, xa1 - xa0, xb1 - xb0, alpha_long)
        if closed > pair_done[p]:
            pair_done[p] = closed
        if moments[p, P_N] < min_short or moments[p, MOMENTS + P_N] < min_long:
            continue
        ok_s, cs = _corr(moments, p, 0)
        ok_l, cl = _corr(moments, p, MOMENTS)
        if not (ok_s and ok_l):
            continue
        gap = cl - cs
        centre, thr = threshold_of(gap_stats, p, min_samples, z, p_gap, p_gap_floor)
        d = gap - centre
        if state[p] == 0:
            if d >= thr and cl >= min_long_corr:
                state[p] = 1
                n_ev = emit_event(events, n_ev, a, p, 1, last_rec, cs, cl, gap, thr)
        elif d < rearm * thr:
            state[p] = 0
        if state[p] == 0:   # the gap's own distribution learns from unbroken periods only
            ew_update(gap_stats, p, gap, alpha_long)
    return n_ev
