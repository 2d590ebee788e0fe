"""Liquidation velocity: rolling counts and USD by side, events/s, USD/s and acceleration.

State per key (instrument or asset) is three rings of :mod:`windows`: 250 ms
buckets covering the longest window (velocity windows, the cascade window and
1 min), 1 min buckets covering 1 h (5 min, 15 min and 1 h sums) and 15 min
buckets covering 24 h (4 h and 24 h sums, plus the same four channels for
liquidations at or above the asset's whale threshold). The 4 h / 24 h sums
include the current, partly filled 15 min bucket, so they span between
``W - 15 min`` and ``W``. A window of ``W`` seconds is the last
``W / 0.25`` fine buckets including the current one, so its sums are exact
per bucket and a plain-Python reference reproduces them bit for bit.

* velocity over ``W``: events/s = count / W, USD/s = USD / W;
* acceleration between consecutive windows ``W1 < W2``: the velocity of a
  window estimates the rate at its centre, so
  ``(v(W1) - v(W2)) / ((W2 - W1) / 2)`` in USD/s^2 (positive = speeding up).

Liquidation side: ``side < 0`` is a liquidated short, anything else a long.

Cost: a refresh runs after every liquidation, so it avoids re-reading what
cannot have changed, without changing a single bit of the results. The fine
ring keeps a bitmask of the buckets written since they were last cleared and
sums only those (an unwritten bucket is all zeros, and adding +0.0 changes no
sum), in the same newest-first order. The hour and day sums are cached per key
with the bucket they were taken at; :func:`add_liquidation` drops the key's
cache, and a refresh in another hour or day bucket recomputes it.
"""
from __future__ import annotations

import numpy as np
from numba import njit

from . import columns as C
from .windows import EMPTY, owned_asset, grow_ring, new_ring, record_ts, ring_add, ring_pow2, ring_sums

__all__ = ["BUCKET_NS", "HOUR_BUCKET_NS", "DAY_BUCKET_NS", "HOUR_WIDTHS", "DAY_WIDTHS", "VelocityLayout", "VelocityRings", "add_liquidation",
           "fine_sums", "refresh_row", "update_batch"]

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


class VelocityRings:
    """Fine, hourly and daily rings for ``n_keys`` keys, the fine ring's occupancy bits and the hour/day caches."""

    def __init__(self, layout: VelocityLayout, n_keys: int):
        self.fine, self.fine_head = new_ring(n_keys, layout.n_buckets, C.LIQ_CHANNELS)
        self.hour, self.hour_head = new_ring(n_keys, HOUR_BUCKETS, C.LIQ_CHANNELS)
        self.day, self.day_head = new_ring(n_keys, DAY_BUCKETS, C.DAY_CHANNELS)
        self.fine_bits = np.zeros((n_keys, (layout.n_buckets + 63) // 64), dtype=np.int64)
        self.hour_at = np.full(n_keys, EMPTY, dtype=np.int64)     # bucket the cached hour sums hold, EMPTY: none
        self.hour_sums = np.zeros((n_keys, len(HOUR_WIDTHS), C.LIQ_CHANNELS))
        self.day_at = np.full(n_keys, EMPTY, dtype=np.int64)
        self.day_sums = np.zeros((n_keys, len(DAY_WIDTHS), C.DAY_CHANNELS))

    def grow(self, n_keys: int) -> None:
        """Make room for ``n_keys`` keys."""
        old = len(self.fine_head)
        if n_keys <= old:
            return
        self.fine, self.fine_head = grow_ring(self.fine, self.fine_head, n_keys)
        self.hour, self.hour_head = grow_ring(self.hour, self.hour_head, n_keys)
        self.day, self.day_head = grow_ring(self.day, self.day_head, n_keys)
        for name, fill in (("fine_bits", 0), ("hour_at", EMPTY), ("hour_sums", 0.0), ("day_at", EMPTY),
                           ("day_sums", 0.0)):
            a = getattr(self, name)
            b = np.full((n_keys, *a.shape[1:]), fill, dtype=a.dtype)
            b[:old] = a
            setattr(self, name, b)

    def as_tuple(self):
        return (self.fine, self.fine_head, self.hour, self.hour_head, self.day, self.day_head,
                self.fine_bits, self.hour_at, self.hour_sums, self.day_at, self.day_sums)


@njit(cache=True, inline="always")
def _fine_add(fine, head, bits, key, bucket, channel, value):
    """:func:`ring_add` on the fine ring, keeping ``bits`` (bucket slot written since cleared) in step."""
    nb = fine.shape[1]
    mask = nb - 1
    h = head[key]
    if bucket > h:      # ring_add clears the slots of buckets h + 1 .. bucket: clear their bits the same way
        if h == EMPTY or bucket - h >= nb:
            bits[key, :] = 0
        else:
            for b in range(h + 1, bucket + 1):
                slot = b & mask
                bits[key, slot >> 6] &= ~(np.int64(1) << (slot & 63))
    if ring_add(fine, head, key, bucket, channel, value):
        slot = bucket & mask
        bits[key, slot >> 6] |= np.int64(1) << (slot & 63)


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
def fine_sums(fine, head, bits, key, now, widths, out):
    """:func:`ring_sums` of the fine ring, bit for bit, reading only the buckets whose bit is set."""
    nb = fine.shape[1]
    mask = nb - 1
    nch = fine.shape[2]
    nw = widths.shape[0]
    out[:nw, :] = 0.0
    h = head[key]
    if h == EMPTY or nw == 0:
        return
    last = nw - 1
    lo = max(now - widths[last] + 1, h - nb + 1)
    b = min(now, h)
    w = 0
    while b >= lo:
        slot = b & mask
        low = slot & 63
        word = bits[key, slot >> 6] & ((np.int64(2) << low) - 1)    # bits of this slot and below it in its word
        if word == 0:
            b -= low + 1
            continue
        b -= low - _top_bit(word)
        if b < lo:
            break
        while w < last and widths[w] <= now - b:   # windows that end before bucket b are complete
            out[w, :nch] = out[last, :nch]
            w += 1
        for c in range(nch):
            out[last, c] += fine[key, b & mask, c]
        b -= 1
    while w < last:
        out[w, :nch] = out[last, :nch]
        w += 1


@njit(cache=True)
def add_liquidation(rings, key, ts, side, usd, whale):
    """Count one liquidation of ``usd`` on ``side`` at ``ts`` for ``key`` (``whale``: also in the whale channels)."""
    fine, fine_head, hour, hour_head, day, day_head, fine_bits, hour_at, _, day_at, _ = rings
    hour_at[key] = EMPTY
    day_at[key] = EMPTY
    ch = 1 if side < 0 else 0
    b = ts // BUCKET_NS
    _fine_add(fine, fine_head, fine_bits, key, b, ch, 1.0)
    _fine_add(fine, fine_head, fine_bits, key, b, ch + 2, usd)
    hb = ts // HOUR_BUCKET_NS
    ring_add(hour, hour_head, key, hb, ch, 1.0)
    ring_add(hour, hour_head, key, hb, ch + 2, usd)
    db = ts // DAY_BUCKET_NS
    ring_add(day, day_head, key, db, ch, 1.0)
    ring_add(day, day_head, key, db, ch + 2, usd)
    if whale:
        ring_add(day, day_head, key, db, ch + 4, 1.0)
        ring_add(day, day_head, key, db, ch + 6, usd)


@njit(cache=True, inline="always")
def _cached_sums(ring, head, key, now, widths, at, sums, scratch):
    """``sums[key]``: the ring's window sums at bucket ``now``, recomputed unless cached at that bucket."""
    if at[key] != now:
        ring_sums(ring, head, key, now, widths, scratch)
        sums[key, :, :] = scratch[: widths.shape[0], : sums.shape[2]]
        at[key] = now
    return sums[key]


@njit(cache=True)
def refresh_row(rings, key, now_ts, widths, slots, windows_s, scratch, row):
    """Recompute the window sums, velocities and accelerations of ``key`` at ``now_ts`` into ``row``."""
    fine, fine_head, hour, hour_head, day, day_head, fine_bits, hour_at, hour_sums, day_at, day_sums = rings
    fine_sums(fine, fine_head, fine_bits, key, now_ts // BUCKET_NS, widths, scratch)
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
    hs = _cached_sums(hour, hour_head, key, now_ts // HOUR_BUCKET_NS, HOUR_WIDTHS, hour_at, hour_sums, scratch)
    for c in range(C.LIQ_CHANNELS):
        row[C.M5_SUMS + c] = hs[0, c]
        row[C.M15_SUMS + c] = hs[1, c]
        row[C.HOUR_SUMS + c] = hs[2, c]
    ds = _cached_sums(day, day_head, key, now_ts // DAY_BUCKET_NS, DAY_WIDTHS, day_at, day_sums, scratch)
    for c in range(C.LIQ_CHANNELS):
        row[C.H4_SUMS + c] = ds[0, c]
        row[C.DAY_SUMS + c] = ds[1, c]
        row[C.WHALE_DAY + c] = ds[1, c + 4]
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
