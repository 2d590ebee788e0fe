"""Cascade score (0-10) per asset: six weighted factors plus two leading ones, market-regime scaling, levels.

Factors (each 0..1, from the asset's row; velocity, volatility and heat already refreshed)::

    velocity      max(count / (2 * min_count), usd_s / (VEL_SAT * single_usd))   count in the cascade window,
                                                                                USD/s over the ~5 s window
    acceleration  max(accel / (ACCEL_SAT * single_usd), heat)                    USD/s^2, and the self-excitation
                                                                                of arrivals (kernels/hawkes.py)
    volume        X_VOLUME     from the volume detector's factors() (0 when it is not running)
    oi            X_OI         from the open-interest detector
    funding       X_FUNDING    from the funding detector
    volatility    regime / 4   the asset's own realized-vol regime (dormant 0 .. extreme 1)
    fuel          X_FUEL       leading: proximity to the nearest modelled liquidation zone x its fuel-to-liquidity
                               (zones detector)
    depth_thinning X_THINNING  leading: book depth below its baseline (book detector)

    base   = 10 * sum(weight_f * factor_f)            weights default 0.25/0.20/0.20/0.15/0.10/0.10, the
                                                      leading factors' lead_weights added on top (not renormalised)
    boost  = burst_boost when acceleration >= burst_acceleration, velocity >= burst_velocity and the cascade
             window holds at least min_count liquidations (the existing bot's cascade), else 1
    score  = min(10, base * boost * market multiplier)   the market asset's (BTC) regime multiplier
    burst  = base * (boost - 1)                       what the boost added (the seeds' x1.5 rule)
    regime = base * boost * (multiplier - 1)          what the scaling added (negative when calm)

``single_usd`` is the asset's single-liquidation threshold (its profile, else
the configured fallback). With ``relative_speed`` k > 0 the speed factors are
also judged against the asset's own normal liquidation rate (:func:`normal_rate`):
velocity saturates no lower than k x the normal USD/s, the count no lower than
k x the normal count of a cascade window, so steady heavy flow (a grind) is not
a cascade. When the score is capped at 10 the contributions
are scaled so they still add up to the score. Levels 0 NONE, 1 WATCH,
2 WARNING, 3 CRITICAL: the level rises to every threshold the score reaches
and drops a level only once the score is ``hysteresis`` below that level's
threshold; CRITICAL also needs ``min_count`` liquidations in the cascade window.
"""
from __future__ import annotations

import numpy as np
from numba import njit

from . import columns as C
from .hawkes import decayed, heat_of

__all__ = ["FACTORS", "VEL_SAT", "ACCEL_SAT", "N_PARAMS", "P_MARKET", "cascade_params", "next_level",
           "refresh_heat", "normal_rate", "score_row", "market_mult", "evaluate", "evaluate_batch"]

FACTORS = tuple(C.FACTOR_COLUMNS)   # weight order of the parameter vector
VEL_SAT = 2.0       # USD/s of twice the single threshold per second saturates the velocity factor
ACCEL_SAT = 0.25    # a quarter of the single threshold per s^2 saturates the acceleration factor
VELOCITY_WINDOW_S = 5.0

# cascade parameter vector
P_MIN_COUNT, P_LEVEL0, P_HYSTERESIS, P_VEL_ON, P_VEL_K, P_W0 = 0, 1, 4, 5, 6, 7
P_TAU_S = P_W0 + len(FACTORS)
P_MU_FLOOR = P_TAU_S + 1
P_BOOST, P_BOOST_ACC, P_BOOST_VEL = P_MU_FLOOR + 1, P_MU_FLOOR + 2, P_MU_FLOOR + 3
P_MARKET = P_BOOST_VEL + 1       # asset id of the market asset, -1 while unknown (own regime then)
P_REL = P_MARKET + 1             # relative_speed multiple of the asset's normal rate (0: absolute only)
P_WINDOW_S = P_REL + 1           # cascade window, s
N_PARAMS = P_WINDOW_S + 1


def cascade_params(cascade_cfg, velocity_windows_s, velocity_on: bool) -> np.ndarray:
    """Pack the cascade config into the kernel's parameter vector (market asset unknown)."""
    windows = sorted(velocity_windows_s)
    k = min(range(len(windows)), key=lambda i: abs(windows[i] - VELOCITY_WINDOW_S))
    weights = [cascade_cfg.weights.get(f, getattr(cascade_cfg.lead_weights, f, 0.0)) for f in FACTORS]
    return np.array([cascade_cfg.min_count, *cascade_cfg.levels, cascade_cfg.hysteresis,
                     1.0 if velocity_on else 0.0, k, *weights, cascade_cfg.heat_tau_s,
                     cascade_cfg.heat_baseline_per_s, *cascade_cfg.burst_boost, -1.0,
                     cascade_cfg.relative_speed, cascade_cfg.window_s], dtype=np.float64)


@njit(cache=True)
def next_level(level, score, p):
    """Level after ``score`` given the current ``level`` (hysteresis on the way down)."""
    while level < 3 and score >= p[P_LEVEL0 + level]:
        level += 1
    while level > 0 and score < p[P_LEVEL0 + level - 1] - p[P_HYSTERESIS]:
        level -= 1
    return level


@njit(cache=True)
def refresh_heat(hawkes, key, now, row, p):
    """Write the heat and recent intensity of ``key`` at ``now`` into ``row`` (window sums already fresh)."""
    tau_s = p[P_TAU_S]
    e = decayed(hawkes, key, now, tau_s * 1e9)
    mu = max((row[C.HOUR_SUMS] + row[C.HOUR_SUMS + 1]) / 3600.0,
             (row[C.DAY_SUMS] + row[C.DAY_SUMS + 1]) / 86400.0, p[P_MU_FLOOR])
    row[C.HEAT] = heat_of(e, tau_s, mu, p[P_MIN_COUNT])
    row[C.INTENSITY] = e / tau_s


@njit(cache=True, inline="always")
def _unit(x):
    return min(max(x, 0.0), 1.0)


@njit(cache=True)
def normal_rate(row, channel):
    """The asset's normal liquidation rate per s of ``channel`` (N_LONG: count, USD_LONG: USD), both sides:
    the largest of the last 15 minutes', hour's and day's mean (the 15 minutes count while the history is
    shorter than the longer windows, which would understate a steady flow)."""
    m15 = row[C.M15_SUMS + channel] + row[C.M15_SUMS + channel + 1]
    hour = row[C.HOUR_SUMS + channel] + row[C.HOUR_SUMS + channel + 1]
    day = row[C.DAY_SUMS + channel] + row[C.DAY_SUMS + channel + 1]
    return max(m15 / 900.0, hour / 3600.0, day / 86400.0)


@njit(cache=True)
def score_row(row, single_usd, market_mult, p):
    """Compute the score and its contributions of an asset row in place; return the score."""
    count = row[C.CASCADE_SUMS + C.N_LONG] + row[C.CASCADE_SUMS + C.N_SHORT]
    rel = p[P_REL]
    count_sat = max(2.0 * p[P_MIN_COUNT], rel * normal_rate(row, C.N_LONG) * p[P_WINDOW_S])
    f_vel = _unit(count / count_sat)
    f_acc = _unit(row[C.HEAT])
    if p[P_VEL_ON] > 0 and single_usd > 0:
        usd_sat = max(VEL_SAT * single_usd, rel * normal_rate(row, C.USD_LONG))
        f_vel = max(f_vel, _unit(row[C.VEL_USD + int(p[P_VEL_K])] / usd_sat))
        f_acc = max(f_acc, _unit(row[C.ACCEL_HEAD] / (ACCEL_SAT * single_usd)))
    w = P_W0
    c_vel = 10.0 * p[w] * f_vel
    c_acc = 10.0 * p[w + 1] * f_acc
    c_volu = 10.0 * p[w + 2] * _unit(row[C.X_VOLUME])
    c_oi = 10.0 * p[w + 3] * _unit(row[C.X_OI])
    c_fund = 10.0 * p[w + 4] * _unit(row[C.X_FUNDING])
    c_vola = 10.0 * p[w + 5] * _unit(row[C.REGIME] / 4.0)
    c_fuel = 10.0 * p[w + 6] * _unit(row[C.X_FUEL])
    c_thin = 10.0 * p[w + 7] * _unit(row[C.X_THINNING])
    base = c_vel + c_acc + c_volu + c_oi + c_fund + c_vola + c_fuel + c_thin
    boosted = base
    if f_acc >= p[P_BOOST_ACC] and f_vel >= p[P_BOOST_VEL] and count >= p[P_MIN_COUNT]:
        boosted = base * p[P_BOOST]
    c_burst = boosted - base
    score = boosted * market_mult
    c_reg = score - boosted
    if score > 10.0:
        k = 10.0 / score
        c_vel *= k
        c_acc *= k
        c_volu *= k
        c_oi *= k
        c_fund *= k
        c_vola *= k
        c_fuel *= k
        c_thin *= k
        c_burst *= k
        score = 10.0
        c_reg = score - (c_vel + c_acc + c_volu + c_oi + c_fund + c_vola + c_fuel + c_thin + c_burst)
    row[C.SCORE] = score
    row[C.F_VELOCITY] = c_vel
    row[C.F_ACCEL] = c_acc
    row[C.F_VOLUME] = c_volu
    row[C.F_OI] = c_oi
    row[C.F_FUNDING] = c_fund
    row[C.F_VOLATILITY] = c_vola
    row[C.F_FUEL] = c_fuel
    row[C.F_THINNING] = c_thin
    row[C.F_BURST] = c_burst
    row[C.F_REGIME] = c_reg
    return score


@njit(cache=True)
def market_mult(asset_rows, row, p):
    """The regime multiplier that scales ``row``'s score: the market asset's, else the asset's own."""
    m = int(p[P_MARKET])
    if m >= 0 and m < asset_rows.shape[0]:
        return asset_rows[m, C.REGIME_MULT]
    return row[C.REGIME_MULT]


@njit(cache=True)
def evaluate(row, single_usd, mult, p):
    """Score an asset row and step its level; return the previous level.

    CRITICAL also needs ``min_count`` liquidations in the cascade window (the existing bot's
    definition of a cascade): without them the level stops at WARNING.
    """
    prev = int(row[C.LEVEL])
    level = next_level(prev, score_row(row, single_usd, mult, p), p)
    if level == 3 and row[C.CASCADE_SUMS + C.N_LONG] + row[C.CASCADE_SUMS + C.N_SHORT] < p[P_MIN_COUNT]:
        level = 2
    row[C.LEVEL] = level
    return prev


@njit(cache=True)
def evaluate_batch(assets, asset_rows, single_usd, p, changed):
    """Evaluate ``assets``; write those whose level changed into ``changed``; return how many."""
    n = 0
    for a in assets:
        row = asset_rows[a]
        prev = evaluate(row, single_usd[a], market_mult(asset_rows, row, p), p)
        if prev != row[C.LEVEL] and n < changed.shape[0]:
            changed[n] = a
            n += 1
    return n
