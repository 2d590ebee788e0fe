"""Numba kernels of the positioning detectors: open interest, funding, order-book pressure, correlation breaks.

Shared pieces first:

* a *sampled ring* per key: the last value seen in each time bucket of a fixed
  resolution, forward-filled when the newest bucket advances (a bucket with no
  update holds the value before it), so "the value ``W`` ago" is one lookup;
  a late record rewrites only its own bucket;
* exponentially weighted statistics per key (count, mean, variance) of the
  quantity a detector judges, and :func:`threshold_of`: the configured
  fallback while ``count < min_samples``, else ``max(floor, z * sd)`` around the
  key's own mean: thresholds come from the key's own distribution;
* one event array layout (:data:`POS_EVENT_DTYPE`) all four kernels write.

Each kernel takes one ring batch and the detector's preallocated state arrays
(grown with the registry by the detector), writes events into a preallocated
array and returns their count; it never reads the clock (stream time comes
from the records). Records that are not for it, of assets this worker does not
own, or with non-finite / non-positive values are skipped; the count of bad
ones is returned in ``counters[0]``.
"""
from __future__ import annotations

import math

import numpy as np
from numba import njit

from ..record import Kind
from .batches import kind_bits, kind_mask
from .windows import owned_asset, record_ts

__all__ = [
    "POS_EVENT_DTYPE", "EMPTY", "new_sampled", "grow_sampled", "sample_put", "sample_get", "ew_update",
    "threshold_of", "oi_batch", "funding_batch", "book_batch", "correlation_batch", "STAT_N", "STAT_MEAN",
    "STAT_VAR", "new_stats", "grow_rows", "RegistryView", "has_kind",
]

EMPTY = np.int64(-(1 << 62))
STAT_N, STAT_MEAN, STAT_VAR = 0, 1, 2

POS_EVENT_DTYPE = np.dtype([
    ("asset", np.int64), ("key", np.int64), ("code", np.int64),
    ("ts_exchange", np.int64), ("ts_recv", np.int64),
    ("v0", np.float64), ("v1", np.float64), ("v2", np.float64), ("v3", np.float64),
])

_KIND_OI = np.uint8(Kind.OPEN_INTEREST)
_KIND_MARK = np.uint8(Kind.MARK)
_KIND_TOP = np.uint8(Kind.BOOK_TOP)
_KIND_DEPTH = np.uint8(Kind.BOOK_DEPTH)


# ----------------------------------------------------------------- state helpers (Python side)

def new_sampled(n_keys: int, n_buckets: int) -> tuple[np.ndarray, np.ndarray]:
    """(values, head) of a sampled ring: ``n_buckets`` must be a power of two."""
    if n_buckets < 2 or n_buckets & (n_buckets - 1):
        raise ValueError("n_buckets must be a power of two >= 2")
    return np.full((n_keys, n_buckets), np.nan), np.full(n_keys, EMPTY, dtype=np.int64)


def grow_sampled(values: np.ndarray, head: np.ndarray, n_keys: int) -> tuple[np.ndarray, np.ndarray]:
    """A copy with room for ``n_keys`` keys, existing keys kept."""
    v, h = new_sampled(max(n_keys, len(head)), values.shape[1])
    v[: len(values)] = values
    h[: len(head)] = head
    return v, h


def new_stats(n_keys: int) -> np.ndarray:
    """EW statistics rows (count, mean, variance) for ``n_keys`` keys."""
    return np.zeros((n_keys, 3))


def grow_rows(a: np.ndarray, n: int, fill: float = 0) -> np.ndarray:
    """``a`` with at least ``n`` rows (axis 0), new rows set to ``fill``."""
    if len(a) >= n:
        return a
    out = np.full((n,) + a.shape[1:], fill, dtype=a.dtype)
    out[: len(a)] = a
    return out


# ----------------------------------------------------------------- numba helpers

@njit(cache=True, inline="always")
def sample_put(values, head, key, bucket, value):
    """Record ``value`` as the latest of ``bucket``; skipped buckets are forward-filled. False if too old."""
    nb = values.shape[1]
    mask = nb - 1
    h = head[key]
    if h == EMPTY:
        head[key] = bucket
    elif bucket > h:
        prev = values[key, h & mask]
        start = h + 1
        if bucket - nb + 1 > start:
            start = bucket - nb + 1
        for b in range(start, bucket):
            values[key, b & mask] = prev
        head[key] = bucket
    elif bucket <= h - nb:
        return False
    values[key, bucket & mask] = value
    return True


@njit(cache=True, inline="always")
def sample_get(values, head, key, bucket):
    """(ok, value) of ``bucket`` forward-filled; not ok before the first sample or beyond the ring.

    Slots start as NaN, so a bucket before the key's first sample reads as not ok.
    """
    h = head[key]
    if h == EMPTY:
        return False, 0.0
    nb = values.shape[1]
    if bucket <= h - nb:
        return False, 0.0
    v = values[key, (h if bucket >= h else bucket) & (nb - 1)]
    if math.isnan(v):
        return False, 0.0
    return True, v


@njit(cache=True, inline="always")
def ew_update(stats, key, x, alpha):
    """Fold ``x`` into the EW count/mean/variance of ``key`` (West's incremental form)."""
    n = stats[key, 0]
    if n == 0.0:
        stats[key, 1] = x
        stats[key, 2] = 0.0
    else:
        d = x - stats[key, 1]
        incr = alpha * d
        stats[key, 1] += incr
        stats[key, 2] = (1.0 - alpha) * (stats[key, 2] + d * incr)
    stats[key, 0] = n + 1.0


@njit(cache=True, inline="always")
def threshold_of(stats, key, min_samples, z, fallback, floor):
    """(centre, threshold) for |x - centre|: the fallback around 0 while history is short, else the key's own."""
    if stats[key, 0] < min_samples:
        return 0.0, fallback
    sd = math.sqrt(max(stats[key, 2], 0.0))
    thr = z * sd
    return stats[key, 1], thr if thr > floor else floor


@njit(cache=True, inline="always")
def _emit(events, n, asset, key, code, rec, v0, v1, v2, v3):
    if n >= events.shape[0]:
        return n
    e = events[n]
    e["asset"] = asset
    e["key"] = key
    e["code"] = code
    e["ts_exchange"] = rec["ts_exchange"]
    e["ts_recv"] = rec["ts_recv"]
    e["v0"] = v0
    e["v1"] = v1
    e["v2"] = v2
    e["v3"] = v3
    return n + 1


@njit(cache=True, inline="always")
def _finite_pos(x):
    return x > 0.0 and x < np.inf


# ----------------------------------------------------------------- open interest

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
        if not _finite_pos(usd):
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
        need = min(min_venues, _popcount(mask_rep))
        if state[a] == 0:
            if n_up and _popcount(mask_up) >= need and oi_up >= min_oi_usd:
                state[a] = 1
                n_ev = _emit(events, n_ev, a, i, 1, rec, sum_up / n_up, thr_up / n_up, oi_up, _popcount(mask_up))
            elif n_dn and _popcount(mask_dn) >= need and oi_dn >= min_oi_usd:
                state[a] = -1
                n_ev = _emit(events, n_ev, a, i, -1, rec, sum_dn / n_dn, thr_dn / n_dn, oi_dn, _popcount(mask_dn))
        elif state[a] == 1 and _popcount(mask_up_keep) < need:
            state[a] = 0
        elif state[a] == -1 and _popcount(mask_dn_keep) < need:
            state[a] = 0
    return n_ev


@njit(cache=True, inline="always")
def _popcount(x):
    n = 0
    while x:
        x &= x - 1
        n += 1
    return n


# ----------------------------------------------------------------- funding

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
            return _emit(events, n_ev, a, key, code, rec, value, thr, centre, level)
        if d <= -thr:
            state[a, slot] = -1
            return _emit(events, n_ev, a, key, -code, rec, value, thr, centre, level)
    elif abs(d) < rearm * thr or s * d < 0:
        state[a, slot] = 0
    return n_ev


# ----------------------------------------------------------------- order book

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
            n_ev = _emit(events, n_ev, a, i, 1 if sign > 0 else -1, rec, imb, thr, bid, ask)
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
                n_ev = _emit(events, n_ev, a, i, 2, rec, depth, base, ratio, imb)
        else:
            book[i, B_LOW_SINCE] = 0.0
            # the baseline learns only outside a collapse, so vanishing liquidity cannot drag it down
            w = 1.0 - math.exp(-dt / base_tau_ns) if base > 0.0 else 1.0
            book[i, B_BASE] = base + w * (depth - base)
            book[i, B_BASE_N] += 1.0
    return n_ev


# ----------------------------------------------------------------- correlation

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
        if not _finite_pos(px):
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
                n_ev = _emit(events, n_ev, a, p, 1, last_rec, cs, cl, gap, thr)
        elif d < rearm * thr:
            state[p] = 0
        if state[p] == 0:   # the gap's own distribution learns from unbroken periods only
            ew_update(gap_stats, p, gap, alpha_long)
    return n_ev


# ----------------------------------------------------------------- Python side shared by the detectors

class RegistryView:
    """What the positioning detectors read from the registry, rebuilt when it grows.

    ``inst_asset`` / ``owned`` / ``asset_names`` come from the compute worker's runner (so
    ownership matches the fused kernel); ``inst_venue`` and the asset -> instruments index
    (``asset_ptr``, ``asset_inst``) are built here.
    """

    def __init__(self, ctx) -> None:
        self.ctx = ctx
        self.n_inst = self.n_assets = -1
        self.inst_asset = np.zeros(0, dtype=np.int64)
        self.inst_venue = np.zeros(0, dtype=np.int64)
        self.owned = np.zeros(0, dtype=np.bool_)
        self.asset_ptr = np.zeros(1, dtype=np.int64)
        self.asset_inst = np.zeros(0, dtype=np.int64)
        self.asset_names: list[str] = []
        self._labels: dict[int, tuple[str, str]] = {}

    def refresh(self) -> bool:
        """Pick up new instruments/assets; return whether anything changed."""
        runner = self.ctx.runner
        runner.refresh()
        n_inst, n_assets = len(runner.inst_asset), len(runner.asset_names)
        if n_inst == self.n_inst and n_assets == self.n_assets:
            return False
        reg = self.ctx.registry
        self.inst_asset = np.ascontiguousarray(runner.inst_asset, dtype=np.int64)
        self.inst_venue = np.array([reg.get(i).venue for i in range(n_inst)], dtype=np.int64)
        self.owned = np.ascontiguousarray(runner.owned, dtype=np.bool_)
        self.asset_names = list(runner.asset_names)
        order = np.argsort(self.inst_asset, kind="stable")
        self.asset_inst = order.astype(np.int64)
        self.asset_ptr = np.searchsorted(self.inst_asset[order], np.arange(n_assets + 1)).astype(np.int64)
        self.n_inst, self.n_assets = n_inst, n_assets
        return True

    def per_asset(self, table: dict[str, float], scale: float = 1.0) -> np.ndarray:
        """``table[asset]`` (else ``table["*"]``) for every asset, times ``scale``."""
        return np.array([float(table.get(n, table["*"])) * scale for n in self.asset_names] or [0.0])

    def asset_id(self, asset: str) -> int | None:
        try:
            return self.asset_names.index(asset)
        except ValueError:
            return None

    def label(self, iid: int) -> tuple[str, str]:
        """(symbol, venue name) of instrument ``iid``."""
        out = self._labels.get(iid)
        if out is None:
            from ..record import VENUE_NAMES
            inst = self.ctx.registry.get(iid)
            out = self._labels[iid] = (inst.symbol, VENUE_NAMES.get(inst.venue, str(inst.venue)))
        return out

    def instruments_of(self, a: int) -> np.ndarray:
        return self.asset_inst[self.asset_ptr[a]:self.asset_ptr[a + 1]]


def has_kind(records: np.ndarray, *kinds: int) -> bool:
    """Whether the batch holds any record of ``kinds`` (the cheap early exit of ``run``)."""
    return bool(len(records)) and bool(kind_mask(records) & kind_bits(*kinds))
