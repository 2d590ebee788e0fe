"""Numba kernels: liquidation velocity, realized volatility, cascade score, and the fused batch pass.

Kernels read time only from records (exchange time, else receive time), so a
replay gives the same numbers as the live run. State lives in plain numpy
arrays owned by the caller; :class:`BatchRunner` builds, grows and runs them.
"""
from __future__ import annotations

from .runner import BatchRunner, single_usd_of

__all__ = ["BatchRunner", "single_usd_of"]
