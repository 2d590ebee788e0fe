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

__all__ = ["MOMENTS", "SCALES", "winsorise", "correlation_batch"]


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


# per-pair winsorising scale columns: returns folded, EW mean |return| of leg a, of leg b
S_N, S_A, S_B = range(3)
SCALES = 3


@njit(cache=True, inline="always")
def winsorise(scales, p, col, x, k, min_n, alpha):
    """``x`` clipped to +-``k`` x the leg's EW mean absolute (clipped) return, which then learns ``|x|``.

    No clipping before ``min_n`` returns (or with ``k`` = 0); until then the scale is the plain mean.
    The scale learns the clipped value, so one jump raises it by at most ``alpha * k`` of itself.
    """
    n = scales[p, S_N]
    s = scales[p, col]
    if k > 0.0 and n >= min_n and s > 0.0:
        cap = k * s
        x = min(cap, max(-cap, x))
    w = alpha if alpha * (n + 1.0) > 1.0 else 1.0 / (n + 1.0)
    scales[p, col] = s + w * (abs(x) - s)
    return x


@njit(cache=True)
def correlation_batch(recs, inst_asset, owned, pairs, pair_done, moments, scales, gap_stats, state, values, head,
                      res_ns, alpha_short, alpha_long, min_short, min_long, min_samples, z, p_gap, p_gap_floor,
                      min_long_corr, rearm, winsor_k, max_catchup, events, counters):
    """Rolling correlation of log returns (sampled every ``res_ns`` from MARK: index, else mark) per pair.

    Buckets come from record time only, and a pair's bucket ``k`` closes when the record that moves the
    later of its two legs past ``k`` arrives, so the result is the same however the stream is cut into
    batches (and, for a same-venue pair, however venues interleave). Each closed bucket adds one return
    pair, each return winsorised (:func:`winsorise`, ``winsor_k``), to a short and a long EW window, and
    is judged on its own: break (code 1) when ``long - short`` exceeds its threshold (own EW distribution
    of the gap, one sample per bucket, else ``p_gap``, at least ``p_gap_floor``) while the long-run
    correlation is at least ``min_long_corr``; re-arms inside ``rearm`` x threshold. A pair replays at
    most ``max_catchup`` buckets after a quiet spell. Events (key = pair index, asset = the first leg's,
    times = the closing record's): v0 short, v1 long, v2 gap, v3 threshold.
    """
    n_ev = 0
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
        before = head[i]
        if not sample_put(values, head, i, b, math.log(px)):
            counters[1] += 1
            continue
        if before == EMPTY or head[i] == before:
            continue
        for p in range(pairs.shape[0]):   # i moved on a bucket: close what both legs of its pairs passed
            if pairs[p, 0] == i or pairs[p, 1] == i:
                n_ev = _close_pair(rec, p, pairs, pair_done, moments, scales, gap_stats, state, values, head,
                                   inst_asset, alpha_short, alpha_long, min_short, min_long, min_samples, z, p_gap,
                                   p_gap_floor, min_long_corr, rearm, winsor_k, max_catchup, events, n_ev)
    return n_ev


@njit(cache=True)
def _close_pair(rec, p, pairs, pair_done, moments, scales, gap_stats, state, values, head, inst_asset, alpha_short,
                alpha_long, min_short, min_long, min_samples, z, p_gap, p_gap_floor, min_long_corr, rearm, winsor_k,
                max_catchup, events, n_ev):
    """Fold and judge pair ``p``'s buckets after ``pair_done[p]`` that both legs have passed."""
    ia, ib = pairs[p, 0], pairs[p, 1]
    if ia >= head.shape[0] or ib >= head.shape[0] or head[ia] == EMPTY or head[ib] == EMPTY:
        return n_ev
    closed = min(head[ia], head[ib]) - 1
    if pair_done[p] != EMPTY and closed <= pair_done[p]:
        return n_ev
    start = pair_done[p] + 1
    if pair_done[p] == EMPTY or closed - start >= max_catchup:
        start = closed - max_catchup + 1
    pair_done[p] = closed
    a = inst_asset[ia]
    for bkt in range(start, closed + 1):
        ok1, xa1 = sample_get(values, head, ia, bkt)
        ok0, xa0 = sample_get(values, head, ia, bkt - 1)
        ok3, xb1 = sample_get(values, head, ib, bkt)
        ok2, xb0 = sample_get(values, head, ib, bkt - 1)
        if not (ok0 and ok1 and ok2 and ok3):
            continue
        ra = winsorise(scales, p, S_A, xa1 - xa0, winsor_k, min_short, alpha_long)
        rb = winsorise(scales, p, S_B, xb1 - xb0, winsor_k, min_short, alpha_long)
        scales[p, S_N] += 1.0
        _moments_update(moments, p, 0, ra, rb, alpha_short)
        _moments_update(moments, p, MOMENTS, ra, rb, alpha_long)
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
                n_ev = emit_event(events, n_ev, a, p, 1, rec, cs, cl, gap, thr)
        elif d < rearm * thr:
            state[p] = 0
        if state[p] == 0:   # the gap's own distribution learns from unbroken periods only
            ew_update(gap_stats, p, gap, alpha_long)
    return n_ev
