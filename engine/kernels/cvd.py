"""Delta / CVD from taker flow: cumulative delta per session, windowed delta, acceleration, pressure.

Per key (instrument, and asset across venues split spot / perp):

* CVD: the running sum of ``side * notional`` (and of ``side * qty``) since
  the session start; sessions are ``(ts - offset) // period`` (00:00 UTC
  daily by default), the first trade of a new session starts from zero;
* windows (1, 5, 15 min by default) over 5 s buckets of taker-buy and
  taker-sell USD, evaluated when the key's first trade of a new bucket
  arrives: delta, buy share, buy/sell ratio ``(buy + 1) / (sell + 1)`` (a
  dollar of smoothing keeps it finite), acceleration between consecutive
  windows ``(rate(W1) - rate(W2)) / ((W2 - W1) / 2)`` in USD/s^2;
* pressure on one window: robust z-score of its delta against the key's past
  aligned windows (median, 1.4826 * MAD); while that history is short, the
  buy share against a configured bound. Either needs ``|delta|`` at least the
  asset's floor. Entering buy or sell pressure is an event.
"""
from __future__ import annotations

import numpy as np
from numba import njit

from .flow import BUCKET_NS, C_LATE, EMPTY, event_head, hist_track, median_mad, trade_key
from .windows import record_ts, ring_add, ring_sums

__all__ = ["EV_PRESSURE", "MAD_SCALE", "cvd_batch"]  # plus the P_*, K_* and W_* indices

EV_PRESSURE = 2
MAD_SCALE = 1.4826          # MAD -> standard deviation under normality
CH_BUY, CH_SELL = 0, 1
CHANNELS = 2


# Indices into the parameter vector.
P_PERIOD_NS, P_OFFSET_NS, P_PRESSURE_W, P_HISTORY, P_MIN_HISTORY, P_Z, P_FALLBACK_SHARE = range(7)
P_SIZE = 7


# Per-key scalar fields (``cum[key, field]``). Event ``vals``: [delta, z, buy share, ratio, CVD USD, accel,
# window USD, fallback].
K_CVD_USD, K_CVD_BASE, K_Z, K_PRESSURE, K_FALLBACK = range(5)
K_SIZE = 5


# Per-window fields (``win[key, window, field]``).
W_DELTA, W_BUY_SHARE, W_RATIO, W_ACCEL, W_TOTAL = range(5)
W_SIZE = 5


@njit(cache=True)
def _evaluate(k, now_b, i, ts, ring, head, widths, stat, min_usd, cum, win, params, scratch, events, n_ev):
    ring_sums(ring, head, k, now_b, widths, scratch)
    nw = widths.shape[0]
    for w in range(nw):
        buy, sell = scratch[w, CH_BUY], scratch[w, CH_SELL]
        r = win[k, w]
        r[W_DELTA] = buy - sell
        r[W_TOTAL] = buy + sell
        r[W_BUY_SHARE] = buy / (buy + sell) if buy + sell > 0.0 else 0.5
        r[W_RATIO] = (buy + 1.0) / (sell + 1.0)
    for w in range(nw):
        accel = 0.0
        if w + 1 < nw:
            s1, s2 = widths[w] * (BUCKET_NS / 1e9), widths[w + 1] * (BUCKET_NS / 1e9)
            accel = (win[k, w, W_DELTA] / s1 - win[k, w + 1, W_DELTA] / s2) / ((s2 - s1) / 2.0)
        win[k, w, W_ACCEL] = accel
    pw = int(params[P_PRESSURE_W])
    r = win[k, pw]
    delta = r[W_DELTA]
    direction = 0
    z = 0.0
    fallback = stat[k, 1] < 0.0
    if abs(delta) >= min_usd[k]:
        if fallback:
            share = r[W_BUY_SHARE]
            if share >= params[P_FALLBACK_SHARE]:
                direction = 1
            elif share <= 1.0 - params[P_FALLBACK_SHARE]:
                direction = -1
        else:
            z = (delta - stat[k, 0]) / max(stat[k, 1], 1.0)
            if z >= params[P_Z]:
                direction = 1
            elif z <= -params[P_Z]:
                direction = -1
    elif not fallback:
        z = (delta - stat[k, 0]) / max(stat[k, 1], 1.0)
    prev = int(cum[k, K_PRESSURE])
    c = cum[k]
    c[K_Z] = z
    c[K_PRESSURE] = direction
    c[K_FALLBACK] = 1.0 if fallback else 0.0
    if direction != 0 and direction != prev:
        ev = events[n_ev]
        event_head(ev, EV_PRESSURE, direction, prev, pw, k, i, ts)
        v = ev["vals"]
        v[0] = delta
        v[1] = z
        v[2] = r[W_BUY_SHARE]
        v[3] = r[W_RATIO]
        v[4] = c[K_CVD_USD]
        v[5] = r[W_ACCEL]
        v[6] = r[W_TOTAL]
        v[7] = c[K_FALLBACK]
        n_ev += 1
    return n_ev


@njit(cache=True)
def cvd_batch(records, start, inst_key, inst_akey, widths, ring, head, hist, stat, session, min_usd, cum, win,
              params, scratch, events, counters):
    """Process the trades of ``records[start:]``; return (next record, events written)."""
    length = int(params[P_HISTORY])
    pw = int(params[P_PRESSURE_W])
    period = np.int64(params[P_PERIOD_NS])
    offset = np.int64(params[P_OFFSET_NS])
    for_key = np.empty(2, dtype=np.int64)
    n_ev = 0
    for i in range(start, records.shape[0]):
        if n_ev + 2 > events.shape[0]:
            return i, n_ev
        rec = records[i]
        ak = trade_key(rec, inst_akey, counters)
        if ak < 0:
            continue
        iid = rec["instrument"]
        ts = record_ts(rec)
        side = rec["side"]
        usd = rec["notional"]
        sess = (ts - offset) // period
        for_key[0] = inst_key[iid]
        for_key[1] = ak
        for j in range(2):
            k = for_key[j]
            if k < 0:
                continue
            if session[k] == EMPTY or sess > session[k]:
                session[k] = sess
                cum[k, K_CVD_USD] = 0.0
                cum[k, K_CVD_BASE] = 0.0
            if sess == session[k]:
                cum[k, K_CVD_USD] += side * usd
                cum[k, K_CVD_BASE] += side * rec["qty"]
            b = ts // BUCKET_NS
            h = head[k]
            if h != EMPTY and b > h:
                n_ev = _evaluate(k, b - 1, i, ts, ring, head, widths, stat, min_usd, cum, win, params, scratch,
                                 events, n_ev)
            if not ring_add(ring, head, k, b, CH_BUY if side > 0 else CH_SELL, usd):
                counters[C_LATE] += 1
                continue
            if hist_track(hist, k, 0, ts // (widths[pw] * BUCKET_NS), side * usd, length) == 1:
                m = min(hist[3][k, 0], length)
                if m >= params[P_MIN_HISTORY]:
                    med, mad = median_mad(hist[2][k, 0, :m])
                    stat[k, 0] = med
                    stat[k, 1] = MAD_SCALE * mad
    return records.shape[0], n_ev
