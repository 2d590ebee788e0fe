"""Whale trades and the trade-size mix ("smart money") per asset across venues.

Each asset keeps a decayed histogram of its own trade sizes (:mod:`flow`).
A trade at or above the whale size (its ``whale_quantile``, e.g. 99.9 %) is
a whale event; it is compared with the sizes seen before it, and while the
asset has fewer than ``min_trades`` trades the configured fallback stands in.
Trades at or above the large size (a lower quantile) make up the mix window
(5 s buckets): large-trade USD share and the net direction of large trades
classify the asset as institutional accumulation / distribution (large
share high, large trades one-sided), retail-driven (large share low) or
mixed; entering an institutional class is an event.
"""
from __future__ import annotations

import numpy as np
from numba import njit

from .flow import BUCKET_NS, C_LATE, EMPTY, dynamic_size, event_head, size_add, trade_key
from .windows import record_ts, ring_add, ring_sums

__all__ = ["MIXES", "EV_WHALE", "EV_MIX", "whales_batch"]  # plus the P_* and M_* indices

EV_WHALE, EV_MIX = 3, 4
MIXES = ("none", "retail_driven", "mixed", "institutional_accumulation", "institutional_distribution")
NONE, RETAIL, MIXED, ACCUMULATION, DISTRIBUTION = range(5)
CH_USD, CH_LARGE, CH_LARGE_BUY, CH_LARGE_SELL, CH_COUNT = range(5)
CHANNELS = 5


# Indices into the parameter vector.
P_WHALE_Q, P_LARGE_Q, P_MIN_TRADES, P_DECAY, P_FLOOR, P_LARGE_RATIO = range(6)
P_INST_SHARE, P_INST_NET, P_RETAIL_SHARE, P_MIX_MIN_TRADES = range(6, 10)
P_SIZE = 10


# Per-key fields (``mix[key, field]``); mix event ``vals`` are the row. Whale event ``vals``:
# [notional, whale size, multiple, large size, fallback, price, qty, 0].
M_USD, M_LARGE_SHARE, M_LARGE_NET, M_CLASS, M_WHALE_USD, M_LARGE_USD, M_TRADES, M_FALLBACK = range(8)
M_SIZE = 8


@njit(cache=True)
def _classify(row, params):
    if row[M_TRADES] < params[P_MIX_MIN_TRADES] or row[M_USD] <= 0.0:
        return NONE
    share = row[M_LARGE_SHARE]
    if share >= params[P_INST_SHARE]:
        if row[M_LARGE_NET] >= params[P_INST_NET]:
            return ACCUMULATION
        if row[M_LARGE_NET] <= -params[P_INST_NET]:
            return DISTRIBUTION
    if share <= params[P_RETAIL_SHARE]:
        return RETAIL
    return MIXED


@njit(cache=True)
def _evaluate(k, now_b, i, ts, ring, head, widths, mix, params, scratch, events, n_ev):
    ring_sums(ring, head, k, now_b, widths, scratch)
    row = mix[k]
    usd, large = scratch[0, CH_USD], scratch[0, CH_LARGE]
    row[M_USD] = usd
    row[M_TRADES] = scratch[0, CH_COUNT]
    row[M_LARGE_SHARE] = large / usd if usd > 0.0 else 0.0
    row[M_LARGE_NET] = (scratch[0, CH_LARGE_BUY] - scratch[0, CH_LARGE_SELL]) / large if large > 0.0 else 0.0
    prev = int(row[M_CLASS])
    cls = _classify(row, params)
    row[M_CLASS] = cls
    if cls != prev and (cls == ACCUMULATION or cls == DISTRIBUTION):
        ev = events[n_ev]
        event_head(ev, EV_MIX, cls, prev, 0, k, i, ts)
        ev["vals"][:] = row
        n_ev += 1
    return n_ev


@njit(cache=True)
def whales_batch(records, start, inst_akey, widths, sizes, fallback_usd, ring, head, mix, params, scratch, events,
                 counters):
    """Process the trades of ``records[start:]``; return (next record, events written)."""
    n_ev = 0
    for i in range(start, records.shape[0]):
        if n_ev + 2 > events.shape[0]:
            return i, n_ev
        rec = records[i]
        k = trade_key(rec, inst_akey, counters)
        if k < 0:
            continue
        ts = record_ts(rec)
        usd = rec["notional"]
        fb = fallback_usd[k]
        fallback = sizes[2][k] < params[P_MIN_TRADES]
        thr = dynamic_size(sizes, k, params[P_WHALE_Q], params[P_MIN_TRADES], fb, params[P_FLOOR])
        large_thr = dynamic_size(sizes, k, params[P_LARGE_Q], params[P_MIN_TRADES], fb * params[P_LARGE_RATIO],
                                 params[P_FLOOR] * params[P_LARGE_RATIO])
        row = mix[k]
        row[M_WHALE_USD] = thr
        row[M_LARGE_USD] = large_thr
        row[M_FALLBACK] = 1.0 if fallback else 0.0
        size_add(sizes, k, usd, params[P_DECAY])
        if usd >= thr:
            ev = events[n_ev]
            event_head(ev, EV_WHALE, rec["side"], 0, 0, k, i, ts)
            v = ev["vals"]
            v[0] = usd
            v[1] = thr
            v[2] = usd / thr
            v[3] = large_thr
            v[4] = row[M_FALLBACK]
            v[5] = rec["price"]
            v[6] = rec["qty"]
            v[7] = 0.0
            n_ev += 1
        b = ts // BUCKET_NS
        h = head[k]
        if h != EMPTY and b > h:
            n_ev = _evaluate(k, b - 1, i, ts, ring, head, widths, mix, params, scratch, events, n_ev)
        if not ring_add(ring, head, k, b, CH_USD, usd):
            counters[C_LATE] += 1
            continue
        ring_add(ring, head, k, b, CH_COUNT, 1.0)
        if usd >= large_thr:
            ring_add(ring, head, k, b, CH_LARGE, usd)
            ring_add(ring, head, k, b, CH_LARGE_BUY if rec["side"] > 0 else CH_LARGE_SELL, usd)
    return records.shape[0], n_ev
