"""Cascade labels: bursts of liquidation USD against the asset's own normal minute.

A minute is *hot* when its liquidation USD is at least ``multiple`` times the
asset's normal liquidation minute and ``z`` robust deviations above it. The
normal minute is the median of the trailing ``trailing_min`` minutes that had
any liquidation (a liquidation series is mostly empty minutes, whose median
is 0), its spread 1.4826 x their MAD. While the trailing window holds fewer
than ``min_samples`` such minutes (the start of a series), the whole series'
non-empty minutes stand in. Hot minutes no more than ``merge_gap_min`` empty
or quiet minutes apart form one cascade: its start is the first hot minute,
its end the end of the last, its peak the minute of most USD.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["LabelParams", "CascadeLabel", "minute_usd", "hot_thresholds", "label_cascades"]

MINUTE_NS = 60 * 10**9
MAD_SCALE = 1.4826   # MAD -> standard deviation of a normal distribution


@dataclass(frozen=True)
class LabelParams:
    """How a cascade is told from the asset's normal liquidation minutes."""

    multiple: float = 5.0        # hot: USD >= multiple x the normal minute ...
    z: float = 5.0               # ... and >= normal + z x robust spread
    trailing_min: int = 1440     # the normal minute is measured over this many trailing minutes (a day)
    min_samples: int = 10        # non-empty trailing minutes needed, else the whole series stands in
    merge_gap_min: int = 2       # hot minutes at most this many minutes apart are one cascade
    min_usd: float = 0.0         # and a hot minute has at least this much USD

    def __post_init__(self) -> None:
        if self.multiple < 1 or self.z < 0 or self.trailing_min < 1 or self.min_samples < 1 \
                or self.merge_gap_min < 0 or self.min_usd < 0:
            raise ValueError(f"invalid cascade label parameters: {self}")


@dataclass(frozen=True)
class CascadeLabel:
    """One labelled cascade of an asset (times in ns since the epoch, minute-aligned)."""

    asset: str
    start_ns: int       # start of the first hot minute
    peak_ns: int        # start of the minute with the most USD
    end_ns: int         # end of the last hot minute
    peak_usd: float
    usd: float          # liquidation USD of the cascade's minutes (start..end)
    minutes: int        # hot minutes in it


def minute_usd(t_ns: np.ndarray, usd: np.ndarray, t0_ns: int, t1_ns: int) -> tuple[np.ndarray, np.ndarray]:
    """(minute starts in ns, USD per minute) over ``[t0_ns, t1_ns)``, minute-aligned; events outside are dropped."""
    m0 = int(t0_ns) // MINUTE_NS
    n = max(0, -(-int(t1_ns) // MINUTE_NS) - m0)
    t_ns, usd = np.asarray(t_ns, dtype=np.int64), np.asarray(usd, dtype=np.float64)
    idx = t_ns // MINUTE_NS - m0
    keep = (idx >= 0) & (idx < n) & (t_ns >= t0_ns) & (t_ns < t1_ns)
    series = np.bincount(idx[keep], weights=usd[keep], minlength=n)[:n] if n else np.zeros(0)
    return (m0 + np.arange(n, dtype=np.int64)) * MINUTE_NS, series


def _normal(values: np.ndarray) -> tuple[float, float]:
    med = float(np.median(values))
    return med, MAD_SCALE * float(np.median(np.abs(values - med)))


def hot_thresholds(series: np.ndarray, p: LabelParams) -> np.ndarray:
    """The USD a minute must reach to be hot, minute by minute (inf where no baseline exists at all)."""
    series = np.asarray(series, dtype=np.float64)
    nonzero = series > 0
    out = np.full(len(series), np.inf)
    if not nonzero.any():
        return out
    fallback = _normal(series[nonzero])
    for i in range(len(series)):
        w = series[max(0, i - p.trailing_min):i]
        w = w[w > 0]
        med, spread = _normal(w) if len(w) >= p.min_samples else fallback
        out[i] = max(p.multiple * med, med + p.z * spread, p.min_usd)
    return out


def label_cascades(asset: str, minutes_ns: np.ndarray, series: np.ndarray, p: LabelParams = LabelParams()
                   ) -> list[CascadeLabel]:
    """The cascades of one asset's per-minute liquidation USD (from :func:`minute_usd`)."""
    series = np.asarray(series, dtype=np.float64)
    hot = np.flatnonzero((series > 0) & (series >= hot_thresholds(series, p)))
    labels: list[CascadeLabel] = []
    if not len(hot):
        return labels
    breaks = np.flatnonzero(np.diff(hot) > p.merge_gap_min + 1)
    for run in np.split(hot, breaks + 1):
        first, last = int(run[0]), int(run[-1])
        span = series[first:last + 1]
        peak = first + int(np.argmax(span))
        labels.append(CascadeLabel(asset, int(minutes_ns[first]), int(minutes_ns[peak]),
                                   int(minutes_ns[last]) + MINUTE_NS, float(series[peak]), float(span.sum()),
                                   len(run)))
    return labels
