"""Order-book pressure (held imbalance) and depth collapse per instrument (detector: engine/detectors/book.py)."""
from __future__ import annotations

import math

import numpy as np
from numba import njit

from ..record import Kind
from .sampled import emit_event, ew_update, threshold_of
from .windows import owned_asset, record_ts

_KIND_TOP = np.uint8(Kind.BOOK_TOP)
_KIND_DEPTH = np.uint8(Kind.BOOK_DEPTH)

__all__ = ["B_IMB", "B_DEPTH", "B_RUN_SINCE", "B_RUN_SIGN", "B_FIRED", "B_BASE", "B_BASE_N", "B_LAST_TS", "B_COLLAPSED",
           "B_LOW_SINCE", "B_HAS_DEPTH", "BOOK_COLS", "book_batch"]


# per-instrument book state columns
B_IMB, B_DEPTH, B_RUN_SINCE, B_RUN_SIGN, B_FIRED, B_BASE, B_BASE_N, B_LAST_TS, B_COLLAPSED, B_LOW_SINCE, \
    B_HAS_DEPTH = range(11)
BOOK_COLS = 11


@njit(cache=True)
def book_batch(recs, inst_asset, owned, book, imb_stats, band, band_tol, min_samples, z, alpha,
               p_imb, p_imb_floor, imb_rearm, persist_ns, base_tau_ns, min_base_n, collapse_ratio, collapse_persist_ns,
               rearm_ratio, events, counters):
    """Top-of-book pressure per instrument from BOOK_DEPTH (band ``band``) or, without depth, BOOK_TOP.

    Imbalance = (bid - ask) / (bid + ask) USD. A run starts when it is beyond the instrument's threshold
    (own EW distribution, else ``p_imb[asset]``, at least ``p_imb_floor[asset]``) and fires (code +-1:
    bid / ask heavy) once it has held ``persist_ns`` on one side; a flicker back resets the run, and a
    fired run re-arms once the imbalance is back inside ``imb_rearm`` x threshold.
    Depth collapse (code 2): bid + ask USD at or below ``collapse_ratio`` of its slow EW baseline for
    ``collapse_persist_ns``; re-arms above ``rearm_ratio``. Events: imbalance v0 imbalance, v1 threshold,
    v2 bid USD, v3 ask USD; collapse v0 depth, v1 baseline, v2 ratio, v3 imbalance.
    """
    n_ev = 0
    for r in range(recs.shape[0]):
        rec = recs[r]
        kind = rec["kind"]
        if kind != _KIND_DEPTH and kind != _KIND_TOP:
            continue
        a = owned_asset(rec, kind, inst_asset, owned)
        if a < 0:
            continue
        i = rec["instrument"]
        if kind == _KIND_DEPTH:
            if abs(rec["qty"] - band) > band_tol:
                continue
            bid, ask = rec["aux"], rec["aux2"]
            book[i, B_HAS_DEPTH] = 1.0
        else:
            if book[i, B_HAS_DEPTH] != 0.0:
                continue
            bid, ask = rec["price"] * rec["qty"], rec["aux"] * rec["aux2"]
        if not (bid >= 0.0 and ask >= 0.0 and bid + ask > 0.0 and bid + ask < np.inf):
            counters[0] += 1
            continue
        ts = record_ts(rec)
        depth = bid + ask
        imb = (bid - ask) / depth
        last = book[i, B_LAST_TS]
        dt = ts - last if last > 0 else 0
        book[i, B_IMB] = imb
        book[i, B_DEPTH] = depth
        book[i, B_LAST_TS] = ts
        # imbalance run with persistence
        centre, thr = threshold_of(imb_stats, i, min_samples, z, p_imb[a], p_imb_floor[a])
        d = imb - centre
        sign = 1.0 if d >= thr else (-1.0 if d <= -thr else 0.0)
        fired = book[i, B_FIRED]
        if fired != 0.0:   # a fired run re-arms only once back inside imb_rearm x threshold
            if fired * d < imb_rearm * thr:
                book[i, B_FIRED] = 0.0
                book[i, B_RUN_SIGN] = 0.0
                book[i, B_RUN_SINCE] = 0.0
        elif sign == 0.0 or sign != book[i, B_RUN_SIGN]:
            book[i, B_RUN_SIGN] = sign
            book[i, B_RUN_SINCE] = ts if sign != 0.0 else 0.0
        elif ts - book[i, B_RUN_SINCE] >= persist_ns:
            book[i, B_FIRED] = sign
            n_ev = emit_event(events, n_ev, a, i, 1 if sign > 0 else -1, rec, imb, thr, bid, ask)
        ew_update(imb_stats, i, imb, alpha)
        # depth against its own slow baseline
        base = book[i, B_BASE]
        warm = book[i, B_BASE_N] >= min_base_n
        ratio = depth / base if base > 0.0 else 1.0
        if book[i, B_COLLAPSED] != 0.0:
            if ratio >= rearm_ratio:
                book[i, B_COLLAPSED] = 0.0
                book[i, B_LOW_SINCE] = 0.0
        elif warm and ratio <= collapse_ratio:
            if book[i, B_LOW_SINCE] == 0.0:
                book[i, B_LOW_SINCE] = ts
            if ts - book[i, B_LOW_SINCE] >= collapse_persist_ns:
                book[i, B_COLLAPSED] = 1.0
                n_ev = emit_event(events, n_ev, a, i, 2, rec, depth, base, ratio, imb)
        else:
            book[i, B_LOW_SINCE] = 0.0
            # the baseline learns only outside a collapse, so vanishing liquidity cannot drag it down
            w = 1.0 - math.exp(-dt / base_tau_ns) if base > 0.0 else 1.0
            book[i, B_BASE] = base + w * (depth - base)
            book[i, B_BASE_N] += 1.0
    return n_ev
