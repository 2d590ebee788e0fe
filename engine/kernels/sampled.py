"""Shared pieces of the sampled-value detectors (open interest, funding, book, correlation).

* a *sampled ring* per key: the last value seen in each time bucket of a fixed
  resolution, forward-filled when the newest bucket advances (a bucket with no
  update holds the value before it), so "the value ``W`` ago" is one lookup;
  a late record rewrites only its own bucket;
* exponentially weighted statistics per key (count, mean, variance) of the
  quantity a detector judges, and :func:`threshold_of`: the configured
  fallback while ``count < min_samples``, else ``max(floor, z * sd)`` around the
  key's own mean: thresholds come from the key's own distribution;
* one event array layout (:data:`POS_EVENT_DTYPE`) all four kernels write (:func:`emit_event`).

Each kernel (``open_interest``, ``funding``, ``book``, ``correlation`` in this package) takes one
ring batch and the detector's preallocated state arrays (grown with the registry by the detector),
writes events into a preallocated array and returns their count; it never reads the clock (stream
time comes from the records). Records that are not for it, of assets this worker does not own, or
with non-finite / non-positive values are skipped; the count of bad ones is returned in ``counters[0]``.
"""
from __future__ import annotations

import math

import numpy as np
from numba import njit

__all__ = [
    "POS_EVENT_DTYPE", "EMPTY", "STAT_N", "STAT_MEAN", "STAT_VAR", "new_sampled", "grow_sampled", "new_stats",
    "grow_rows", "sample_put", "sample_get", "ew_update", "threshold_of", "emit_event", "finite_positive",
]

EMPTY = np.int64(-(1 << 62))
STAT_N, STAT_MEAN, STAT_VAR = 0, 1, 2

POS_EVENT_DTYPE = np.dtype([
    ("asset", np.int64), ("key", np.int64), ("code", np.int64),
    ("ts_exchange", np.int64), ("ts_recv", np.int64),
    ("v0", np.float64), ("v1", np.float64), ("v2", np.float64), ("v3", np.float64),
])


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
def emit_event(events, n, asset, key, code, rec, v0, v1, v2, v3):
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
def finite_positive(x):
    return x > 0.0 and x < np.inf

