"""Backtest figures: cascade recall / precision per level, lead time, false alarms, zone precision, zone-map error.

Alarms are level *onsets*: a ``cascade`` signal whose level rose from below a
level to it or above (a jump NONE -> CRITICAL is an onset of WATCH, WARNING
and CRITICAL); re-publications at the same level are not. An onset matches a
labelled cascade of the same asset when it falls in ``[start - max_lead_s,
end + grace_s]``; a cascade is detected at a level when an onset of that
level falls in ``[start - max_lead_s, end]``. Lead time is the peak minute's
start minus the first WARNING-or-higher onset that detects the cascade
(negative: the warning came after the peak minute began).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterable, Sequence

import numpy as np

from ..signals import LEVELS
from .labels import CascadeLabel

__all__ = ["Onset", "wilson_lower", "onsets", "cascade_figures", "lead_times", "ZoneTally", "zone_tally",
           "bin_edges", "map_error", "distribution"]

Z95 = 1.959963984540054


def wilson_lower(k: int, n: int, z: float = Z95) -> float | None:
    """Wilson score lower bound of a binomial proportion k/n (None when n is 0)."""
    if n <= 0:
        return None
    if not 0 <= k <= n:
        raise ValueError(f"wilson_lower needs 0 <= k <= n, got k={k}, n={n}")
    p = k / n
    denom = 1 + z * z / n
    centre = p + z * z / (2 * n)
    margin = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return max(0.0, (centre - margin) / denom)


@dataclass(frozen=True)
class Onset:
    """An asset's cascade level reaching ``level`` (index in LEVELS) at ``t_ns`` from below."""

    asset: str
    level: int
    t_ns: int


def onsets(cascades: Iterable) -> list[Onset]:
    """Level onsets of ``cascade`` signals (objects with asset, level, previous_level, ts_recv)."""
    out = []
    for s in cascades:
        new, prev = LEVELS.index(s.level), LEVELS.index(s.previous_level)
        out += [Onset(s.asset, lv, int(s.ts_recv)) for lv in range(prev + 1, new + 1)]
    return out


def _ratio(k: int, n: int) -> float | None:
    return k / n if n else None


def cascade_figures(labels: Sequence[CascadeLabel], alarms: Sequence[Onset], asset_days: float,
                    max_lead_s: float, grace_s: float) -> dict[str, dict]:
    """Per level above NONE: detected/labelled, recall, matched/alarms, precision (with Wilson lower bounds),
    false alarms and false alarms per asset per day (``asset_days``: asset x days observed)."""
    lead, grace = int(max_lead_s * 1e9), int(grace_s * 1e9)
    out = {}
    for lv in range(1, len(LEVELS)):
        mine = [a for a in alarms if a.level == lv]
        detected = sum(any(a.asset == c.asset and c.start_ns - lead <= a.t_ns <= c.end_ns for a in mine)
                       for c in labels)
        matched = sum(any(a.asset == c.asset and c.start_ns - lead <= a.t_ns <= c.end_ns + grace for c in labels)
                      for a in mine)
        false = len(mine) - matched
        out[LEVELS[lv]] = {
            "labelled": len(labels), "detected": detected, "recall": _ratio(detected, len(labels)),
            "recall_wilson_low": wilson_lower(detected, len(labels)),
            "alarms": len(mine), "matched": matched, "precision": _ratio(matched, len(mine)),
            "precision_wilson_low": wilson_lower(matched, len(mine)),
            "false_alarms": false, "false_per_asset_day": false / asset_days if asset_days > 0 else None,
        }
    return out


def lead_times(labels: Sequence[CascadeLabel], alarms: Sequence[Onset], max_lead_s: float,
               min_level: int = 2) -> list[float | None]:
    """Per label: seconds from the first onset at ``min_level`` or above (default WARNING) that detects it to
    its peak minute's start; None when undetected at that level."""
    lead = int(max_lead_s * 1e9)
    out = []
    for c in labels:
        ts = [a.t_ns for a in alarms if a.asset == c.asset and a.level >= min_level
              and c.start_ns - lead <= a.t_ns <= c.end_ns]
        out.append((c.peak_ns - min(ts)) / 1e9 if ts else None)
    return out


def distribution(values: Iterable[float | None]) -> dict:
    """n, median, quartiles, min/max of the non-None values (None fields when there are none)."""
    v = np.array([x for x in values if x is not None], dtype=np.float64)
    if not len(v):
        return {"n": 0, "median": None, "p25": None, "p75": None, "min": None, "max": None}
    return {"n": int(len(v)), "median": float(np.median(v)), "p25": float(np.percentile(v, 25)),
            "p75": float(np.percentile(v, 75)), "min": float(v.min()), "max": float(v.max())}


def bin_edges(centres: np.ndarray) -> np.ndarray:
    """Edges of log-spaced bins from their centre prices (geometric midpoints; the ends mirrored)."""
    c = np.asarray(centres, dtype=np.float64)
    mid = np.sqrt(c[1:] * c[:-1])
    return np.concatenate([[c[0] ** 2 / mid[0]], mid, [c[-1] ** 2 / mid[-1]]])


@dataclass
class ZoneTally:
    """Zone precision counts summed over map snapshots (hits among the top bins may be fractional: ties at the
    cut are credited at their mean hit rate, see :func:`zone_tally`)."""

    snapshots: int = 0
    empty: int = 0            # snapshots whose candidate bins held no modelled USD (not scored)
    top_bins: int = 0
    top_hits: float = 0.0
    bins: int = 0
    hits: int = 0
    top_usd: float = 0.0      # realized liquidation USD in the top bins (ties credited like the hits) ...
    usd: float = 0.0          # ... and in every candidate bin
    random_usd: float = 0.0   # what a random pick of as many bins would hold on average

    def add(self, other: "ZoneTally") -> None:
        for k in ("snapshots", "empty", "top_bins", "top_hits", "bins", "hits", "top_usd", "usd", "random_usd"):
            setattr(self, k, getattr(self, k) + getattr(other, k))

    def figures(self, overlap: float = 1.0) -> dict:
        """Precision, random baseline and lift; the Wilson bound counts ``top_bins / overlap`` independent trials,
        ``overlap`` being how many snapshots share one horizon (horizon / snapshot cadence): overlapping
        snapshots score mostly the same liquidations, so the raw count would overstate the confidence."""
        precision = _ratio(self.top_hits, self.top_bins)
        baseline = _ratio(self.hits, self.bins)
        m = max(1.0, overlap)
        return {"snapshots": self.snapshots, "empty_snapshots": self.empty, "top_bins": self.top_bins,
                "top_hits": self.top_hits, "precision": precision,
                "precision_wilson_low": wilson_lower(self.top_hits / m, self.top_bins / m),
                "wilson_overlap": m,
                "random_baseline": baseline, "candidate_bins": self.bins, "candidate_hits": self.hits,
                "lift": precision / baseline if precision is not None and baseline else None,
                "top_usd": self.top_usd, "usd": self.usd, "random_usd": self.random_usd,
                "usd_capture": _ratio(self.top_usd, self.usd), "usd_capture_random": _ratio(self.random_usd, self.usd),
                "usd_capture_lift": self.top_usd / self.random_usd if self.random_usd > 0 else None}


def zone_tally(centres: np.ndarray, score: np.ndarray, price: float, realized: np.ndarray, band: float,
               top_share: float, reached: tuple[float, float] | None = None,
               usd: np.ndarray | None = None, realized_usd: np.ndarray | None = None) -> ZoneTally:
    """Score one map snapshot: among the bins within ``band`` (fraction) of ``price``, the top ``top_share``
    ranked by ``score`` against every candidate, a bin counting as hit when a realized liquidation price falls in
    it. Bins tied with the last one taken share the remaining places: they are credited with their mean hit
    rate (what a random pick among them would score on average), so a ranking that cannot tell bins apart
    scores the random baseline instead of whatever the sort order happened to favour. The snapshot is empty
    (not scored) when no candidate holds modelled ``usd`` (default: ``score``).
    ``reached`` (low, high): only bins overlapping the price range traded over the horizon are candidates, so the
    ranking is judged where price went rather than on how far it went. ``realized_usd`` (one per realized price)
    also scores the share of realized liquidation USD the top bins hold against a random pick's share."""
    t = ZoneTally(snapshots=1)
    score = np.asarray(score, dtype=np.float64)
    usd = score if usd is None else np.asarray(usd, dtype=np.float64)
    edges = bin_edges(centres)
    ok = np.isfinite(centres) & (np.abs(centres / price - 1.0) <= band)
    if reached is not None:
        ok &= (edges[1:] >= reached[0]) & (edges[:-1] <= reached[1])
    cand = np.flatnonzero(ok)
    if not len(cand) or not (usd[cand] > 0).any():
        t.empty = 1
        return t
    k = np.searchsorted(edges, np.asarray(realized, dtype=np.float64), side="right") - 1
    inside = (k >= 0) & (k < len(centres))
    hit = np.zeros(len(centres), dtype=bool)
    hit[k[inside]] = True
    got = np.zeros(len(centres))
    if realized_usd is not None:
        np.add.at(got, k[inside], np.asarray(realized_usd, dtype=np.float64)[inside])
    n_top = max(1, int(math.ceil(top_share * len(cand))))
    sc = np.nan_to_num(score[cand], nan=-np.inf)
    order = np.argsort(-sc, kind="stable")
    cut = sc[order[n_top - 1]]
    above = cand[sc > cut]
    tied = cand[sc == cut]
    t.top_bins = n_top
    t.top_hits = float(hit[above].sum()) + (n_top - len(above)) * float(hit[tied].mean())
    t.bins, t.hits = len(cand), int(hit[cand].sum())
    t.top_usd = float(got[above].sum()) + (n_top - len(above)) * float(got[tied].mean())
    t.usd = float(got[cand].sum())
    t.random_usd = t.usd * n_top / len(cand)
    return t


def map_error(model: np.ndarray, true: np.ndarray) -> dict:
    """Shape and size error of a modelled map against the true one on the same bins: total-variation distance
    of the normalised maps (0 same shape, 1 disjoint) and the modelled / true USD ratio."""
    m, t = np.asarray(model, dtype=np.float64), np.asarray(true, dtype=np.float64)
    ms, ts = float(m.sum()), float(t.sum())
    tv = 0.5 * float(np.abs(m / ms - t / ts).sum()) if ms > 0 and ts > 0 else None
    return {"tv_distance": tv, "usd_ratio": ms / ts if ts > 0 else None, "model_usd": ms, "true_usd": ts}
