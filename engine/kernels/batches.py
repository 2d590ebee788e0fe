"""Whole-batch helpers of the compute actor's detector step: which record kinds a batch holds, and
appending a batch to the detector queue, each one compiled pass instead of several numpy calls."""
from __future__ import annotations

from numba import njit

__all__ = ["kind_mask", "kind_bits", "queue_put", "Q_N", "Q_KINDS", "Q_FIRST_TS", "Q_LAST_TS", "Q_SIZE"]

# queue_put's state vector: records queued, their kind_mask, ts_recv of the first and of the last
Q_N, Q_KINDS, Q_FIRST_TS, Q_LAST_TS = 0, 1, 2, 3
Q_SIZE = 4


@njit(cache=True)
def kind_mask(records):
    """Bitmap of the record kinds present in a batch: bit ``k`` is set when a record of kind ``k`` is."""
    m = 0
    for i in range(records.shape[0]):
        m |= 1 << (records[i]["kind"] & 63)
    return m


def kind_bits(*kinds: int) -> int:
    """The :func:`kind_mask` bits of ``kinds``."""
    out = 0
    for k in kinds:
        out |= 1 << (int(k) & 63)
    return out


@njit(cache=True)
def queue_put(buf, state, records):
    """Append ``records`` to ``buf[:state[Q_N]]`` if they fit (return False if not), updating ``state``."""
    n = state[Q_N]
    k = records.shape[0]
    if n + k > buf.shape[0]:
        return False
    m = state[Q_KINDS]
    for i in range(k):
        buf[n + i] = records[i]
        m |= 1 << (records[i]["kind"] & 63)
    if k:
        if n == 0:
            state[Q_FIRST_TS] = records[0]["ts_recv"]
        state[Q_LAST_TS] = records[k - 1]["ts_recv"]
    state[Q_N] = n + k
    state[Q_KINDS] = m
    return True
