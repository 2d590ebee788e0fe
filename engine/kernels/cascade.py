"""First cascade score (0-10) per asset, its factors, and levels with hysteresis.

Factors, from the asset's row (velocity and volatility already refreshed)::

    count        W_COUNT    * min(count / (2 * min_count), 1)           count in the cascade window
    velocity     W_VELOCITY * min(usd_s / (VEL_SAT * single_usd), 1)    USD/s over the ~5 s window
    acceleration W_ACCEL    * clip(accel / (ACCEL_SAT * single_usd), 0, 1)
    base         count + velocity + acceleration                          (at most 8.5)
    regime       base * (regime multiplier - 1)
    score        min(10, base * regime multiplier)

``single_usd`` is the asset's single-liquidation threshold (BTC $100k, ...).
When the score is capped at 10 the factors are scaled so they still add up
to the score. Levels 0 NONE, 1 WATCH, 2 WARNING, 3 CRITICAL: the level rises
to every threshold the score reaches and drops a level only once the score
is ``hysteresis`` below that level's threshold.
"""
from __future__ import annotations

import numpy as np
from numba import njit

from . import columns as C

__all__ = ["W_COUNT", "W_VELOCITY", "W_ACCEL", "VEL_SAT", "ACCEL_SAT", "cascade_params", "next_level",
           "score_row", "evaluate", "evaluate_batch"]

W_COUNT = 4.0
W_VELOCITY = 3.0
W_ACCEL = 1.5
VEL_SAT = 2.0       # USD/s of twice the single threshold per second saturates the velocity factor
ACCEL_SAT = 0.25    # a quarter of the single threshold per s^2 saturates the acceleration factor
VELOCITY_WINDOW_S = 5.0

# cascade parameter vector
P_MIN_COUNT, P_LEVEL0, P_HYSTERESIS, P_VEL_ON, P_VEL_K = 0, 1, 4, 5, 6
N_PARAMS = 7


def cascade_params(cascade_cfg, velocity_windows_s, velocity_on: bool) -> np.ndarray:
    """Pack the cascade config into the kernel's parameter vector."""
    windows = sorted(velocity_windows_s)
    k = min(range(len(windows)), key=lambda i: abs(windows[i] - VELOCITY_WINDOW_S))
    return np.array([cascade_cfg.min_count, *cascade_cfg.levels, cascade_cfg.hysteresis,
                     1.0 if velocity_on else 0.0, k], dtype=np.float64)


@njit(cache=True)
def next_level(level, score, p):
    """Level after ``score`` given the current ``level`` (hysteresis on the way down)."""
    while level < 3 and score >= p[P_LEVEL0 + level]:
        level += 1
    while level > 0 and score < p[P_LEVEL0 + level - 1] - p[P_HYSTERESIS]:
        level -= 1
    return level


@njit(cache=True)
def score_row(row, single_usd, p):
    """Compute the score and factors of an asset row in place; return the score."""
    count = row[C.CASCADE_SUMS + C.N_LONG] + row[C.CASCADE_SUMS + C.N_SHORT]
    f_count = W_COUNT * min(count / (2.0 * p[P_MIN_COUNT]), 1.0)
    f_vel = 0.0
    f_acc = 0.0
    if p[P_VEL_ON] > 0 and single_usd > 0:
        usd_s = row[C.VEL_USD + int(p[P_VEL_K])]
        f_vel = W_VELOCITY * min(usd_s / (VEL_SAT * single_usd), 1.0)
        f_acc = W_ACCEL * min(max(row[C.ACCEL_HEAD] / (ACCEL_SAT * single_usd), 0.0), 1.0)
    base = f_count + f_vel + f_acc
    mult = row[C.REGIME_MULT]
    f_reg = base * (mult - 1.0)
    score = base * mult
    if score > 10.0:
        k = 10.0 / score
        f_count *= k
        f_vel *= k
        f_acc *= k
        f_reg = 10.0 - f_count - f_vel - f_acc
        score = 10.0
    row[C.SCORE] = score
    row[C.F_COUNT] = f_count
    row[C.F_VELOCITY] = f_vel
    row[C.F_ACCEL] = f_acc
    row[C.F_REGIME] = f_reg
    return score


@njit(cache=True)
def evaluate(row, single_usd, p):
    """Score an asset row and step its level; return the previous level."""
    prev = int(row[C.LEVEL])
    row[C.LEVEL] = next_level(prev, score_row(row, single_usd, p), p)
    return prev


@njit(cache=True)
def evaluate_batch(assets, asset_rows, single_usd, p, changed):
    """Evaluate ``assets``; write those whose level changed into ``changed``; return how many."""
    n = 0
    for a in assets:
        prev = evaluate(asset_rows[a], single_usd[a], p)
        if prev != asset_rows[a, C.LEVEL] and n < changed.shape[0]:
            changed[n] = a
            n += 1
    return n
