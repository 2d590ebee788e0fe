"""Self-exciting "heat" of liquidation arrivals: a shrunken Hawkes branching-ratio estimate.

Per key the kernel keeps the exponentially decayed count of past arrivals::

    E(t) = sum over arrivals t_i <= t of exp(-(t - t_i) / tau)

With an exponential Hawkes kernel of time constant ``tau``, ``E / tau`` is the
recent arrival intensity. Against a baseline rate ``mu`` (the larger of the
key's 1 h and 24 h average rates and a floor), the share of recent arrivals
the baseline does not explain estimates the branching ratio (the fraction of
arrivals triggered by earlier ones). A prior of ``k`` pseudo-arrivals keeps one
isolated liquidation from reading as a cascade::

    heat = max(0, (E - tau * mu) / (E + k))       in [0, 1)

Heat near 0: arrivals at the usual pace; near 1: a burst feeding on itself.
"""
from __future__ import annotations

import math

import numpy as np
from numba import njit

__all__ = ["new_state", "grow_state", "excite", "decayed", "heat_of"]


def new_state(n_keys: int) -> np.ndarray:
    """Per key: [decayed count E, time of E (ns)]."""
    return np.zeros((n_keys, 2))


def grow_state(state: np.ndarray, n_keys: int) -> np.ndarray:
    """A copy with room for ``n_keys`` keys (existing keys kept)."""
    if n_keys <= len(state):
        return state
    out = new_state(n_keys)
    out[: len(state)] = state
    return out


@njit(cache=True, inline="always")
def decayed(state, key, ts, tau_ns):
    """E of ``key`` decayed to ``ts`` (an earlier ``ts`` reads E as of its last update)."""
    dt = ts - state[key, 1]
    if dt <= 0.0:
        return state[key, 0]
    return state[key, 0] * math.exp(-dt / tau_ns)


@njit(cache=True)
def excite(state, key, ts, tau_ns):
    """Count one arrival at ``ts``; a late arrival counts decayed to the key's time."""
    last = state[key, 1]
    if ts >= last:
        state[key, 0] = decayed(state, key, ts, tau_ns) + 1.0
        state[key, 1] = ts
    else:
        state[key, 0] += math.exp(-(last - ts) / tau_ns)


@njit(cache=True)
def heat_of(e, tau_s, mu, prior):
    """Branching-ratio estimate from decayed count ``e``, baseline rate ``mu`` (1/s) and ``prior`` pseudo-events."""
    h = (e - tau_s * mu) / (e + prior)
    return h if h > 0.0 else 0.0
