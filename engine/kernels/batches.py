"""Whole-batch helpers of the compute actor's detector step: which record kinds a batch holds, in one
compiled pass instead of a numpy mask per kind."""
from __future__ import annotations

from numba import njit

__all__ = ["kind_mask", "kind_bits"]


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
