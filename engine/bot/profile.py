"""Market profile of the UTC session: volume profile, TPO and VWAP per timeframe.

The existing bot's rules: the session starts at 00:00 UTC; bins per
timeframe 1m 20, 15m/30m/1h 24, 4h 30, 1d 50 between the session low and
high; each candle's volume spread uniformly over its range; POC = middle of
the heaviest bin; the 70 % value area grows from the POC two bins at a time
toward the heavier side; TPO on 100 levels, area grown one level up then one
down; VWAP on the typical price. Unlike the original, the first candle of
the session is included.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .candles import C, H, L, V

__all__ = ["Levels", "volume_profile", "tpo", "vwap", "PROFILE_TIMEFRAMES", "verdict"]

PROFILE_TIMEFRAMES = (("1m", 1, 20), ("15m", 15, 24), ("30m", 30, 24), ("1h", 60, 24), ("4h", 240, 30),
                      ("1d", 1440, 50))
VALUE_AREA = 0.70


@dataclass(frozen=True)
class Levels:
    poc: float
    vah: float
    val: float

    def contains(self, price: float) -> bool:
        return self.val <= price <= self.vah


def _grow_two(weights: np.ndarray, poc: int) -> tuple[int, int]:
    """Value area by two-bin steps toward the heavier side (TradingView convention)."""
    total, n = weights.sum(), len(weights)
    lo = hi = poc
    acc = weights[poc]
    while acc < VALUE_AREA * total and (lo > 0 or hi < n - 1):
        up = weights[hi + 1: hi + 3].sum() if hi < n - 1 else -1.0
        down = weights[max(lo - 2, 0): lo].sum() if lo > 0 else -1.0
        if up >= down:
            acc += up
            hi = min(hi + 2, n - 1)
        else:
            acc += down
            lo = max(lo - 2, 0)
    return lo, hi


def volume_profile(c: np.ndarray, bins: int) -> Levels | None:
    """POC/VAH/VAL of candles ``c`` over ``bins`` price bins (None without volume)."""
    if not len(c) or c[:, V].sum() <= 0:
        return None
    lo, hi = float(c[:, L].min()), float(c[:, H].max())
    if hi <= lo:
        return Levels(lo, lo, lo)
    edges = np.linspace(lo, hi, bins + 1)
    w = np.zeros(bins)
    for low, high, close, vol in zip(c[:, L], c[:, H], c[:, C], c[:, V]):
        if high <= low:
            w[min(int((close - lo) / (hi - lo) * bins), bins - 1)] += vol
            continue
        overlap = np.clip(np.minimum(edges[1:], high) - np.maximum(edges[:-1], low), 0, None)
        w += vol * overlap / (high - low)
    poc = int(np.argmax(w))
    a, b = _grow_two(w, poc)
    return Levels((edges[poc] + edges[poc + 1]) / 2, float(edges[b + 1]), float(edges[a]))


def tpo(c: np.ndarray, levels: int = 100) -> Levels | None:
    """Time-price opportunity: per price level, how many candles touched it."""
    if not len(c):
        return None
    lo, hi = float(c[:, L].min()), float(c[:, H].max())
    if hi <= lo:
        return Levels(lo, lo, lo)
    px = np.linspace(lo, hi, levels)
    counts = ((px[None, :] >= c[:, L][:, None]) & (px[None, :] <= c[:, H][:, None])).sum(axis=0).astype(float)
    poc = int(np.argmax(counts))
    a = b = poc
    acc, total = counts[poc], counts.sum()
    while acc < VALUE_AREA * total and (a > 0 or b < levels - 1):
        if b < levels - 1:
            b += 1
            acc += counts[b]
        if acc < VALUE_AREA * total and a > 0:
            a -= 1
            acc += counts[a]
    return Levels(float(px[poc]), float(px[b]), float(px[a]))


def vwap(c: np.ndarray) -> float:
    """Volume-weighted typical price (H+L+C)/3, NaN without volume."""
    vol = c[:, V].sum() if len(c) else 0.0
    if vol <= 0:
        return math.nan
    return float((((c[:, H] + c[:, L] + c[:, C]) / 3.0) * c[:, V]).sum() / vol)


def verdict(in_vp: int, in_tpo: int) -> tuple[str, str, str]:
    """(label, reading, strategy) from how many counted timeframes hold the price inside VP and TPO value areas."""
    if in_vp >= 3 and in_tpo >= 3:
        return "✅ BALANCED", "Price within value area on most timeframes", "Mean reversion likely, fade breakouts"
    if in_vp <= 1 or in_tpo <= 1:
        return "⚠️ TRENDING", "Price outside value area on most timeframes", "Follow trend, don't fade the move"
    return "⚪ TRANSITIONING", "Mixed structure across timeframes", "Wait for clearer structure"
