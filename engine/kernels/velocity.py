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
"""
from __future__ import annotations

import numpy as np
from numba import njit

from . import columns as C
from .windows import owned_asset, grow_ring, new_ring, record_ts, ring_add, ring_pow2, ring_sums

__all__ = ["BUCKET_NS", "HOUR_BUCKET_NS", "DAY_BUCKET_NS", "HOUR_WIDTHS", "DAY_WIDTHS", "VelocityLayout", "VelocityRings", "add_liquidation",
           "refresh_row", "update_batch"]

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
    """Fine, hourly and daily rings for ``n_keys`` keys."""

    def __init__(self, layout: VelocityLayout, n_keys: int):
        self.fine, self.fine_head = new_ring(n_keys, layout.n_buckets, C.LIQ_CHANNELS)
        self.hour, self.hour_head = new_ring(n_keys, HOUR_BUCKETS, C.LIQ_CHANNELS)
        self.day, self.day_head = new_ring(n_keys, DAY_BUCKETS, C.DAY_CHANNELS)

    def grow(self, n_keys: int) -> None:
        """Make room for ``n_keys`` keys."""
        if n_keys > len(self.fine_head):
            self.fine, self.fine_head = grow_ring(self.fine, self.fine_head, n_keys)
            self.hour, self.hour_head = grow_ring(self.hour, self.hour_head, n_keys)
            self.day, self.day_head = grow_ring(self.day, self.day_head, n_keys)

    def as_tuple(self):
        return self.fine, self.fine_head, self.hour, self.hour_head, self.day, self.day_head


@njit(cache=True)
def add_liquidation(rings, key, ts, side, usd, whale):
    """Count one liquidation of ``usd`` on ``side`` at ``ts`` for ``key`` (``whale``: also in the whale channels)."""
    fine, fine_head, hour, hour_head, day, day_head = rings
    ch = 1 if side < 0 else 0
    b = ts // BUCKET_NS
    ring_add(fine, fine_head, key, b, ch, 1.0)
    ring_add(fine, fine_head, key, b, ch + 2, usd)
    hb = ts // HOUR_BUCKET_NS
    ring_add(hour, hour_head, key, hb, ch, 1.0)
    ring_add(hour, hour_head, key, hb, ch + 2, usd)
    db = ts // DAY_BUCKET_NS
    ring_add(day, day_head, key, db, ch, 1.0)
    ring_add(day, day_head, key, db, ch + 2, usd)
    if whale:
        ring_add(day, day_head, key, db, ch + 4, 1.0)
        ring_add(day, day_head, key, db, ch + 6, usd)


@njit(cache=True)
def refresh_row(rings, key, now_ts, widths, slots, windows_s, scratch, row):
    """Recompute the window sums, velocities and accelerations of ``key`` at ``now_ts`` into ``row``."""
    fine, fine_head, hour, hour_head, day, day_head = rings
    ring_sums(fine, fine_head, key, now_ts // BUCKET_NS, widths, scratch)
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
    ring_sums(hour, hour_head, key, now_ts // HOUR_BUCKET_NS, HOUR_WIDTHS, scratch)
    for c in range(C.LIQ_CHANNELS):
        row[C.M5_SUMS + c] = scratch[0, c]
        row[C.M15_SUMS + c] = scratch[1, c]
        row[C.HOUR_SUMS + c] = scratch[2, c]
    ring_sums(day, day_head, key, now_ts // DAY_BUCKET_NS, DAY_WIDTHS, scratch)
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
