"""Liquidation velocity: rolling counts and USD by side, events/s, USD/s and acceleration.

State per key (instrument or asset) is three rings of :mod:`windows`: 250 ms
buckets covering the longest window (velocity windows, the cascade window and
1 min), 1 min buckets covering 1 h (5 min, 15 min and 1 h sums) and 15 min
buckets covering 24 h (4 h and 24 h sums, plus the same four channels for
liquidations at or above the asset's whale threshold). The 4 h / 24 h sums
include the current, partly filled 15 min bucket, so they span between
``W - 15 min`` and ``W``. A window of ``W`` seconds is the last
``W / 0.25`` fine buckets including the current one, so its sums are exact
per bucket (up to the summation order, below).

* velocity over ``W``: events/s = count / W, USD/s = USD / W;
* acceleration between consecutive windows ``W1 < W2``: the velocity of a
  window estimates the rate at its centre, so
  ``(v(W1) - v(W2)) / ((W2 - W1) / 2)`` in USD/s^2 (positive = speeding up).

Liquidation side: ``side < 0`` is a liquidated short, anything else a long.

Cost: a refresh runs after every liquidation, so it avoids re-reading what
cannot have changed (:class:`MarkedRing`). Per ring and key it caches the
window sums without the current bucket ("older"), taken at the bucket they
were computed at; a refresh in that bucket adds the current bucket to them, and
a new bucket, a liquidation in another bucket or a head move recomputes them,
reading only the buckets whose occupancy bit is set (an unwritten bucket is all
zeros). A sum is therefore the older buckets newest first, then the current
one: the same terms as summing newest first, in another order, so it can
differ from that by floating-point rounding only; counts stay exact.
"""
from __future__ import annotations

import numpy as np
from numba import njit

from . import columns as C
from .windows import EMPTY, owned_asset, new_ring, record_ts, ring_add, ring_pow2

__all__ = ["BUCKET_NS", "HOUR_BUCKET_NS", "DAY_BUCKET_NS", "HOUR_WIDTHS", "DAY_WIDTHS", "VelocityLayout", "MarkedRing",
           "VelocityRings", "add_liquidation", "window_sums", "refresh_row", "update_batch"]

BUCKET_NS = 250_000_000
HOUR_BUCKET_NS = 60_000_000_000
HOUR_BUCKETS = 64          # 60 used: 1 h
LIQUIDATION = 2            # Kind.LIQUIDATION (numba needs a plain constant)
HOUR_WIDTHS = np.array([5, 15, 60], dtype=np.int64)      # 5 min, 15 min, 1 h of 1 min buckets
DAY_BUCKET_NS = 900_000_000_000
DAY_BUCKETS = 128          # 96 used: 24 h
DAY_WIDTHS = np.array([16, 96], dtype=np.int64)          # 4 h, 24 h of 15 min buckets
ACCEL_PAIR = 1             # the acceleration the cascade uses: windows 2 and 3 (5 s vs 20 s by default)


class VelocityLayout:
    """Which fine-bucket windows to sum and where each lands.

    ``widths`` are the ascending bucket counts of every window needed;
    ``slots`` = [cascade slot, minute slot, velocity slots...] index into them.
    """

    def __init__(self, windows_s: list[float], cascade_window_s: float):
        self.windows_s = np.array(sorted(windows_s)[: C.MAX_WINDOWS], dtype=np.float64)
        wanted = [*self.windows_s, cascade_window_s, 60.0]
        buckets = [max(1, int(round(w * 1e9 / BUCKET_NS))) for w in wanted]
        self.widths = np.array(sorted(set(buckets)), dtype=np.int64)
        where = {b: i for i, b in enumerate(self.widths)}
        self.slots = np.array([where[buckets[-2]], where[buckets[-1]], *(where[b] for b in buckets[:-2])],
                              dtype=np.int64)
        self.n_buckets = ring_pow2(int(self.widths[-1]) + 1)
        self.labels = [f"{w:g}s" for w in self.windows_s]


class MarkedRing:
    """A :mod:`windows` ring for ``n_keys`` keys plus what makes its window sums cheap to refresh.

    ``marks[key, :-1]``: one bit per bucket slot, set when a liquidation lands in it and cleared
    with the slot; ``older[key, w]``: the sums of window ``w`` without the current bucket, taken
    at bucket ``marks[key, -1]`` (EMPTY: none). Bits and bucket share one array because every
    array in the kernels' arguments costs its unboxing on each call.
    """

    def __init__(self, n_keys: int, n_buckets: int, channels: int, n_windows: int):
        self.buckets, self.head = new_ring(n_keys, n_buckets, channels)
        self.marks = np.zeros((n_keys, (n_buckets + 63) // 64 + 1), dtype=np.int64)
        self.marks[:, -1] = EMPTY
        self.older = np.zeros((n_keys, n_windows, channels))

    def grow(self, n_keys: int) -> None:
        """Make room for ``n_keys`` keys (existing keys kept, new ones empty)."""
        old = len(self.head)
        if n_keys <= old:
            return
        for name, fill in (("buckets", 0.0), ("head", EMPTY), ("marks", 0), ("older", 0.0)):
            a = getattr(self, name)
            b = np.full((n_keys, *a.shape[1:]), fill, dtype=a.dtype)
            b[:old] = a
            setattr(self, name, b)
        self.marks[old:, -1] = EMPTY

    @property
    def bits(self) -> np.ndarray:
        """Occupancy bit words per key (a view)."""
        return self.marks[:, :-1]

    @property
    def at(self) -> np.ndarray:
        """Bucket the older sums were taken at per key, EMPTY: none (a view)."""
        return self.marks[:, -1]

    def as_tuple(self):
        return self.buckets, self.head, self.marks, self.older


class VelocityRings:
    """Fine, hourly and daily :class:`MarkedRing` s for ``n_keys`` keys."""

    def __init__(self, layout: VelocityLayout, n_keys: int):
        self.fine = MarkedRing(n_keys, layout.n_buckets, C.LIQ_CHANNELS, len(layout.widths))
        self.hour = MarkedRing(n_keys, HOUR_BUCKETS, C.LIQ_CHANNELS, len(HOUR_WIDTHS))
        self.day = MarkedRing(n_keys, DAY_BUCKETS, C.DAY_CHANNELS, len(DAY_WIDTHS))

    def grow(self, n_keys: int) -> None:
        """Make room for ``n_keys`` keys."""
        for ring in (self.fine, self.hour, self.day):
            ring.grow(n_keys)

    def as_tuple(self):
        return self.fine.as_tuple(), self.hour.as_tuple(), self.day.as_tuple()


@njit(cache=True, inline="always")
def _marked_add(ring, key, bucket, channel, value):
    """:func:`ring_add` keeping the ring's bits in step and dropping older sums it may change."""
    buckets, head, marks, _ = ring
    nb = buckets.shape[1]
    mask = nb - 1
    at = marks.shape[1] - 1
    h = head[key]
    if bucket > h:      # ring_add clears the slots of buckets h + 1 .. bucket: clear their bits the same way
        if h == EMPTY or bucket - h >= nb:
            marks[key, :at] = 0
        else:
            for b in range(h + 1, bucket + 1):
                slot = b & mask
                marks[key, slot >> 6] &= ~(np.int64(1) << (slot & 63))
        marks[key, at] = EMPTY
    elif bucket != marks[key, at]:     # not the current bucket of the cached older sums: they include it
        marks[key, at] = EMPTY
    if ring_add(buckets, head, key, bucket, channel, value):
        slot = bucket & mask
        marks[key, slot >> 6] |= np.int64(1) << (slot & 63)


@njit(cache=True, inline="always")
def _top_bit(x):
    """Index of the highest set bit of a non-zero int64."""
    if x < 0:
        return 63
    p = 0
    for s in (32, 16, 8, 4, 2, 1):
        if x >> s:
            x >>= s
            p += s
    return p


@njit(cache=True)
def _older_sums(buckets, head, marks, key, now, widths, out):
    """Into ``out[w]``: the sum, newest first, of the last ``widths[w]`` buckets at ``now`` except ``now`` itself.

    Reads only the buckets whose bit is set.
    """
    nb = buckets.shape[1]
    mask = nb - 1
    nch = buckets.shape[2]
    nw = widths.shape[0]
    out[:, :] = 0.0
    h = head[key]
    if h == EMPTY or nw == 0:
        return
    last = nw - 1
    lo = max(now - widths[last] + 1, h - nb + 1)
    b = min(now - 1, h)
    w = 0
    while b >= lo:
        slot = b & mask
        low = slot & 63
        word = marks[key, slot >> 6] & ((np.int64(2) << low) - 1)    # bits of this slot and below it in its word
        if word == 0:
            b -= low + 1
            continue
        b -= low - _top_bit(word)
        if b < lo:
            break
        while w < last and widths[w] <= now - b:   # windows that end before bucket b are complete
            out[w, :] = out[last, :]
            w += 1
        for c in range(nch):
            out[last, c] += buckets[key, b & mask, c]
        b -= 1
    while w < last:
        out[w, :] = out[last, :]
        w += 1


@njit(cache=True)
def window_sums(ring, key, now, widths, out):
    """Into ``out[w, :channels]``: the sums over the last ``widths[w]`` buckets of ``key`` at bucket ``now``.

    ``widths`` must be the ones the ring's older sums were sized for (ascending): the older
    buckets' cached sums (recomputed when stale), then the current bucket added.
    """
    buckets, head, marks, older = ring
    at = marks.shape[1] - 1
    if marks[key, at] != now:
        _older_sums(buckets, head, marks, key, now, widths, older[key])
        marks[key, at] = now
    o = older[key]
    nw, nch = o.shape
    h = head[key]
    if h != EMPTY and now <= h and now > h - buckets.shape[1]:
        cur = buckets[key, now & (buckets.shape[1] - 1)]
        for w in range(nw):
            for c in range(nch):
                out[w, c] = o[w, c] + cur[c]
    else:
        out[:nw, :nch] = o


@njit(cache=True)
def add_liquidation(rings, key, ts, side, usd, whale):
    """Count one liquidation of ``usd`` on ``side`` at ``ts`` for ``key`` (``whale``: also in the whale channels)."""
    fine, hour, day = rings
    ch = 1 if side < 0 else 0
    b = ts // BUCKET_NS
    _marked_add(fine, key, b, ch, 1.0)
    _marked_add(fine, key, b, ch + 2, usd)
    hb = ts // HOUR_BUCKET_NS
    _marked_add(hour, key, hb, ch, 1.0)
    _marked_add(hour, key, hb, ch + 2, usd)
    db = ts // DAY_BUCKET_NS
    _marked_add(day, key, db, ch, 1.0)
    _marked_add(day, key, db, ch + 2, usd)
    if whale:
        _marked_add(day, key, db, ch + 4, 1.0)
        _marked_add(day, key, db, ch + 6, usd)


@njit(cache=True)
def refresh_row(rings, key, now_ts, widths, slots, windows_s, scratch, row):
    """Recompute the window sums, velocities and accelerations of ``key`` at ``now_ts`` into ``row``."""
    fine, hour, day = rings
    window_sums(fine, key, now_ts // BUCKET_NS, widths, scratch)
    for c in range(C.LIQ_CHANNELS):
        row[C.CASCADE_SUMS + c] = scratch[slots[0], c]
        row[C.MINUTE_SUMS + c] = scratch[slots[1], c]
    nv = windows_s.shape[0]
    for k in range(nv):
        s = slots[2 + k]
        w = windows_s[k]
        row[C.VEL_N + k] = (scratch[s, 0] + scratch[s, 1]) / w
        row[C.VEL_USD + k] = (scratch[s, 2] + scratch[s, 3]) / w
    for k in range(nv - 1):
        row[C.ACCEL + k] = (row[C.VEL_USD + k] - row[C.VEL_USD + k + 1]) / ((windows_s[k + 1] - windows_s[k]) / 2.0)
    pair = min(ACCEL_PAIR, nv - 2)
    row[C.ACCEL_HEAD] = row[C.ACCEL + pair] if pair >= 0 else 0.0
    window_sums(hour, key, now_ts // HOUR_BUCKET_NS, HOUR_WIDTHS, scratch)
    for c in range(C.LIQ_CHANNELS):
        row[C.M5_SUMS + c] = scratch[0, c]
        row[C.M15_SUMS + c] = scratch[1, c]
        row[C.HOUR_SUMS + c] = scratch[2, c]
    window_sums(day, key, now_ts // DAY_BUCKET_NS, DAY_WIDTHS, scratch)
    for c in range(C.LIQ_CHANNELS):
        row[C.H4_SUMS + c] = scratch[0, c]
        row[C.DAY_SUMS + c] = scratch[1, c]
        row[C.WHALE_DAY + c] = scratch[1, c + 4]
    row[C.NOW_TS] = now_ts


@njit(cache=True)
def update_batch(records, inst_asset, owned, whale_usd, inst_rings, asset_rings, widths, slots, windows_s,
                 inst_rows, asset_rows, scratch):
    """Count the liquidations of owned assets in ``records`` per instrument and per asset and refresh their rows.

    ``whale_usd[asset]`` is the asset's whale threshold (the 24 h whale channels).

    Return the number of liquidations counted.
    """
    n = 0
    for i in range(records.shape[0]):
        rec = records[i]
        a = owned_asset(rec, LIQUIDATION, inst_asset, owned)
        if a < 0:
            continue
        iid = rec["instrument"]
        ts = record_ts(rec)
        usd = rec["notional"]
        whale = usd >= whale_usd[a]
        add_liquidation(inst_rings, iid, ts, rec["side"], usd, whale)
        add_liquidation(asset_rings, a, ts, rec["side"], usd, whale)
        now = max(ts, np.int64(asset_rows[a, C.NOW_TS]))
        refresh_row(inst_rings, iid, now, widths, slots, windows_s, scratch, inst_rows[iid])
        refresh_row(asset_rings, a, now, widths, slots, windows_s, scratch, asset_rows[a])
        inst_rows[iid, C.LAST_LIQ_TS] = ts
        asset_rows[a, C.LAST_LIQ_TS] = ts
        n += 1
    return n
