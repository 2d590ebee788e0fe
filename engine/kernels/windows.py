"""Time-bucketed rolling windows: one ring of buckets per key, shared by every kernel.

A ring holds ``n_buckets`` (a power of two) buckets of ``channels`` float64
sums per key; bucket ``b`` covers stream time ``[b * width, (b + 1) * width)``.
``head[key]`` is the newest bucket index written. A window of ``k`` buckets
at bucket ``now`` is the sum of buckets ``now - k + 1 .. now``: the current,
partly filled bucket plus ``k - 1`` whole ones. Events may arrive late (another
venue's clock, reordering) and still land in their own bucket while it is in
the ring; older ones are refused. Buckets beyond ``head`` read as zero, so a
key with no events decays without being touched.
"""
from __future__ import annotations

import numpy as np
from numba import njit

__all__ = ["record_ts", "EMPTY", "new_ring", "grow_ring", "ring_add", "ring_sums", "ring_pow2", "SampleRings", "sample_add"]

EMPTY = np.int64(-(1 << 62))  # head of a key that never had an event


def ring_pow2(buckets_needed: int) -> int:
    """Smallest power of two holding ``buckets_needed`` buckets."""
    n = 1
    while n < buckets_needed:
        n <<= 1
    return n


def new_ring(n_keys: int, n_buckets: int, channels: int) -> tuple[np.ndarray, np.ndarray]:
    """Return (buckets, head) for ``n_keys`` empty keys."""
    if n_buckets & (n_buckets - 1):
        raise ValueError("n_buckets must be a power of two")
    return np.zeros((n_keys, n_buckets, channels)), np.full(n_keys, EMPTY, dtype=np.int64)


def grow_ring(buckets: np.ndarray, head: np.ndarray, n_keys: int) -> tuple[np.ndarray, np.ndarray]:
    """Return a copy of the ring with room for ``n_keys`` keys (existing keys kept)."""
    b, h = new_ring(n_keys, buckets.shape[1], buckets.shape[2])
    b[: len(buckets)] = buckets
    h[: len(head)] = head
    return b, h


@njit(cache=True, inline="always")
def ring_add(buckets, head, key, bucket, channel, value):
    """Add ``value`` to ``channel`` of ``bucket`` for ``key``; return False if the bucket left the ring."""
    nb = buckets.shape[1]
    mask = nb - 1
    h = head[key]
    if bucket > h:
        start = bucket - nb + 1
        if h != EMPTY and h + 1 > start:
            start = h + 1
        for b in range(start, bucket + 1):
            buckets[key, b & mask, :] = 0.0
        head[key] = bucket
    elif bucket <= h - nb:
        return False
    buckets[key, bucket & mask, channel] += value
    return True


@njit(cache=True)
def ring_sums(buckets, head, key, now, widths, out):
    """Write into ``out[w, :channels]`` the sums over the last ``widths[w]`` buckets at bucket ``now``.

    ``widths`` must be strictly ascending and at most the ring length; ``out`` may have more
    columns than the ring has channels (extra columns read zero).
    """
    nb = buckets.shape[1]
    mask = nb - 1
    nch = buckets.shape[2]
    nw = widths.shape[0]
    out[:nw, :] = 0.0
    h = head[key]
    if h == EMPTY or nw == 0:
        return
    last = nw - 1       # the widest window's row accumulates; narrower ones copy it as they complete
    w = 0
    for j in range(widths[last]):
        b = now - j
        if b <= h and b > h - nb:
            for c in range(nch):
                out[last, c] += buckets[key, b & mask, c]
        elif b <= h - nb:  # older than the ring: nothing more to add
            while w < last:
                out[w, :nch] = out[last, :nch]
                w += 1
            return
        while w < last and widths[w] == j + 1:
            out[w, :nch] = out[last, :nch]
            w += 1


@njit(cache=True, inline="always")
def owned_asset(rec, kind, inst_asset, owned):
    """Asset id of ``rec`` if it is of ``kind`` and its asset is owned by this worker, else -1."""
    if rec["kind"] != kind:
        return -1
    iid = rec["instrument"]
    if iid >= inst_asset.shape[0]:
        return -1
    a = inst_asset[iid]
    return a if owned[a] else -1


@njit(cache=True, inline="always")
def record_ts(rec):
    """Stream time of a record: exchange time, else receive time (kernels never read the clock)."""
    ts = rec["ts_exchange"]
    return ts if ts > 0 else rec["ts_recv"]


class SampleRings:
    """Per asset, the last ``n`` trade and liquidation notionals (USD) and its traded USD since start.

    The profile service reads quantiles of an asset's own sizes from them.
    """

    def __init__(self, n_keys: int, trades: int = 2048, liquidations: int = 512):
        self.trade = np.zeros((n_keys, ring_pow2(trades)))
        self.liq = np.zeros((n_keys, ring_pow2(liquidations)))
        self.count = np.zeros((n_keys, 2), dtype=np.int64)    # trades, liquidations seen
        self.usd = np.zeros(n_keys)                           # traded USD since start

    def grow(self, n_keys: int) -> None:
        """Make room for ``n_keys`` keys (existing keys kept)."""
        old = len(self.count)
        if n_keys <= old:
            return
        for name in ("trade", "liq", "count", "usd"):
            a = getattr(self, name)
            b = np.zeros((n_keys, *a.shape[1:]), dtype=a.dtype)
            b[:old] = a
            setattr(self, name, b)

    def recent(self, key: int, which: int) -> np.ndarray:
        """Copy of the samples of ``key`` (``which`` 0 trades, 1 liquidations), oldest first not guaranteed."""
        ring = self.trade if which == 0 else self.liq
        return ring[key, : min(int(self.count[key, which]), ring.shape[1])].copy()

    def as_tuple(self):
        return self.trade, self.liq, self.count, self.usd


@njit(cache=True, inline="always")
def sample_add(samples, key, which, usd):
    """Record one notional of ``key``: ``which`` 0 a trade (also added to the traded USD), 1 a liquidation."""
    trade, liq, count, total = samples
    ring = trade if which == 0 else liq
    n = count[key, which]
    ring[key, n & (ring.shape[1] - 1)] = usd
    count[key, which] = n + 1
    if which == 0:
        total[key] += usd
