"""Volume spikes: rolling USD volume per window against the key's own trimmed-median baseline.

Per key (instrument, and asset across venues) a 5 s bucket ring holds USD,
taker-buy USD, whale USD and trade count. When a key's first trade of a new
bucket arrives, each window (1, 5, 15 min by default) is summed over the
complete buckets and compared with the baseline: the trimmed median of the
key's past aligned windows of that length (:mod:`flow`), floored so a quiet
key cannot divide by nothing. ``spike % = (volume - baseline) / baseline``
maps to a level (NORMAL, LOW, MODERATE, HIGH, EXTREME); a rise to or above
the publish level is an event. Whale USD counts trades at or above the
asset's dynamic whale size (a high quantile of its own trade sizes).
"""
from __future__ import annotations

import numpy as np
from numba import njit

from .flow import (BUCKET_NS, C_LATE, EMPTY, dynamic_size, event_head, hist_track, size_add, trade_key,
                   trimmed_median)
from .windows import record_ts, ring_add, ring_sums

__all__ = ["LEVELS", "EV_SPIKE", "volume_batch"]  # plus the P_* (parameters) and R_* (row fields) indices

LEVELS = ("NORMAL", "LOW", "MODERATE", "HIGH", "EXTREME")
EV_SPIKE = 1
CH_USD, CH_BUY, CH_WHALE, CH_COUNT = 0, 1, 2, 3
CHANNELS = 4


# Indices into the kernel's parameter vector.
P_TRIM, P_MIN_HISTORY, P_HISTORY, P_FLOOR_PER_MIN = 0, 1, 2, 3
P_LOW, P_MODERATE, P_HIGH, P_EXTREME = 4, 5, 6, 7
P_PUBLISH_LEVEL, P_WHALE_Q, P_WHALE_MIN_TRADES, P_WHALE_DECAY, P_WHALE_FLOOR = 8, 9, 10, 11, 12
P_SIZE = 13


# Fields of a key's row per window (``rows[key, window, field]``); event ``vals`` use the same order.
R_USD, R_BASELINE, R_PCT, R_BUY_SHARE, R_WHALE_SHARE, R_TRADES, R_WHALE_USD, R_LEVEL = range(8)
R_SIZE = 8


@njit(cache=True)
def _level(pct, params):
    lv = 0
    for j in range(4):
        if pct >= params[P_LOW + j]:
            lv = j + 1
    return lv


@njit(cache=True)
def _evaluate(k, now_b, i, ts, ring, head, widths, baseline, whale_thr, rows, levels, params, scratch,
              events, n_ev):
    """Sum the windows of ``k`` ending at bucket ``now_b``; write its rows; emit rises to a publishable level."""
    ring_sums(ring, head, k, now_b, widths, scratch)
    for w in range(widths.shape[0]):
        usd = scratch[w, CH_USD]
        base = baseline[k, w]
        row = rows[k, w]
        row[R_USD] = usd
        row[R_TRADES] = scratch[w, CH_COUNT]
        row[R_BUY_SHARE] = scratch[w, CH_BUY] / usd if usd > 0.0 else 0.5
        row[R_WHALE_SHARE] = scratch[w, CH_WHALE] / usd if usd > 0.0 else 0.0
        row[R_WHALE_USD] = whale_thr
        lv = 0
        if base >= 0.0:
            eff = max(base, params[P_FLOOR_PER_MIN] * widths[w] * (BUCKET_NS / 60e9))
            row[R_BASELINE] = eff
            row[R_PCT] = (usd - eff) / eff * 100.0
            lv = _level(row[R_PCT], params)
        else:
            row[R_BASELINE] = -1.0
            row[R_PCT] = 0.0
        row[R_LEVEL] = lv
        prev = levels[k, w]
        levels[k, w] = lv
        if lv >= params[P_PUBLISH_LEVEL] and lv > prev:
            ev = events[n_ev]
            event_head(ev, EV_SPIKE, lv, prev, w, k, i, ts)
            ev["vals"][:] = row
            n_ev += 1
    return n_ev


@njit(cache=True)
def volume_batch(records, start, inst_key, inst_akey, widths, ring, head, hist, baseline, sizes, whale_fb,
                 rows, levels, params, scratch, events, counters):
    """Process the trades of ``records[start:]``; return (next record, events written).

    Stops early (to be called again from the returned record) when ``events``
    might overflow.
    """
    nw = widths.shape[0]
    length = int(params[P_HISTORY])
    for_key = np.empty(2, dtype=np.int64)
    n_ev = 0
    for i in range(start, records.shape[0]):
        if n_ev + 2 * nw > events.shape[0]:
            return i, n_ev
        rec = records[i]
        ak = trade_key(rec, inst_akey, counters)
        if ak < 0:
            continue
        iid = rec["instrument"]
        ts = record_ts(rec)
        usd = rec["notional"]
        thr = dynamic_size(sizes, ak, params[P_WHALE_Q], params[P_WHALE_MIN_TRADES], whale_fb[ak],
                           params[P_WHALE_FLOOR])
        size_add(sizes, ak, usd, params[P_WHALE_DECAY])
        whale = usd if usd >= thr else 0.0
        buy = usd if rec["side"] > 0 else 0.0
        for_key[0] = inst_key[iid]
        for_key[1] = ak
        for j in range(2):
            k = for_key[j]
            if k < 0:
                continue
            b = ts // BUCKET_NS
            h = head[k]
            if h != EMPTY and b > h:
                n_ev = _evaluate(k, b - 1, i, ts, ring, head, widths, baseline, thr, rows, levels, params,
                                 scratch, events, n_ev)
            if not ring_add(ring, head, k, b, CH_USD, usd):
                counters[C_LATE] += 1
                continue
            ring_add(ring, head, k, b, CH_BUY, buy)
            ring_add(ring, head, k, b, CH_WHALE, whale)
            ring_add(ring, head, k, b, CH_COUNT, 1.0)
            for w in range(nw):
                if hist_track(hist, k, w, ts // (widths[w] * BUCKET_NS), usd, length) == 1:
                    m = min(hist[3][k, w], length)
                    baseline[k, w] = (trimmed_median(hist[2][k, w, :m], params[P_TRIM])
                                      if m >= params[P_MIN_HISTORY] else -1.0)
    return records.shape[0], n_ev
