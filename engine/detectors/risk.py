"""Composite risk score 0-10 per asset from every running detector's factors (the seeds' "professional alert").

Sources and their 0..1 factor:

* ``cascade``: the fused kernel's cascade score / 10;
* ``liquidations``: the larger of the last hour's liquidated USD over 10 single-liquidation
  thresholds and the 24 h whale-class USD over 20 thresholds (the asset's dynamic thresholds);
* every plug-in detector named in ``[detectors.risk] weights``: the largest value of its
  ``factors(asset)``, clipped to 0..1.

``score = 10 * sum(w_s * f_s) / sum(w_s)`` over the sources that are running, so a detector that is
switched off neither counts as calm nor hides the others; it is listed in ``missing``. Each
evaluation (every ``interval_s`` of stream time per asset) may publish a :class:`Risk` signal with
every factor, its contribution in points and a one-line reason, so ``/why`` can explain the score.
"""
from __future__ import annotations

import time

import numpy as np

from ..kernels import columns as C
from ..signals import LEVELS, Risk
from . import Detector

__all__ = ["RiskDetector", "BANDS", "band_of", "combine"]

BANDS = ("low", "moderate", "elevated", "high", "extreme")
KERNEL_SOURCES = ("cascade", "liquidations")


def band_of(score: float, bounds: list[float]) -> str:
    """Band name of a 0-10 score given the 4 ascending band bounds."""
    return BANDS[sum(score >= b for b in bounds)]


def combine(factors: dict[str, float], weights: dict[str, float]) -> tuple[float, dict[str, float]]:
    """(score 0-10, points per source) over the sources present in ``factors``."""
    total = sum(weights[s] for s in factors)
    if total <= 0:
        return 0.0, {s: 0.0 for s in factors}
    points = {s: 10.0 * weights[s] * min(max(f, 0.0), 1.0) / total for s, f in factors.items()}
    return min(10.0, sum(points.values())), points   # rounding can land a hair above 10


class RiskDetector(Detector):
    """Composite risk per owned asset; publishes on a move of ``min_change`` or a band change."""

    name = "risk"

    def __init__(self, ctx) -> None:
        super().__init__(ctx)
        self.last_eval: dict[int, int] = {}
        self.last_pub: dict[int, tuple[int, float, str]] = {}     # asset -> (stream ns, score, band)
        self.latest: dict[str, Risk] = {}
        self._next_due = 0          # stream ns of the earliest due evaluation; a batch before it has nothing to do
        self._n_assets = -1         # owned-asset table size at the last scan (a new asset is due at once)

    # -- sources -------------------------------------------------------------
    def _kernel_factor(self, source: str, a: int) -> tuple[float, str]:
        r = self.ctx.runner
        row = r.asset_rows[a]
        if source == "cascade":
            score = float(row[C.SCORE])
            return score / 10.0, (f"cascade score {score:.1f}/10 ({LEVELS[int(row[C.LEVEL])]}), "
                                  f"heat {row[C.HEAT]:.2f}, {int(row[C.CASCADE_SUMS] + row[C.CASCADE_SUMS + 1])} "
                                  f"liquidations in the cascade window")
        single = float(r.single_usd[a]) or 1.0
        hour = float(row[C.HOUR_SUMS + C.USD_LONG] + row[C.HOUR_SUMS + C.USD_SHORT])
        whale = float(row[C.WHALE_DAY + C.USD_LONG] + row[C.WHALE_DAY + C.USD_SHORT])
        f = max(hour / (10.0 * single), whale / (20.0 * single))
        return f, (f"${hour:,.0f} liquidated in 1 h and ${whale:,.0f} in whale-size liquidations over 24 h "
                   f"(single threshold ${single:,.0f})")

    @staticmethod
    def _detector_factor(d, asset: str) -> tuple[float, str] | None:
        values = d.factors(asset)
        if not values:
            return None
        key = max(values, key=values.get)
        return float(values[key]), f"{d.name}: {key} = {values[key]:.2f}"

    def evaluate(self, a: int) -> Risk:
        """The risk signal of asset ``a`` now (not published)."""
        r = self.ctx.runner
        asset = r.asset_names[a]
        running = getattr(self.ctx, "detectors", {})
        factors, reasons, missing = {}, {}, []
        for source in self.cfg.weights:
            if source in KERNEL_SOURCES:
                f, why = self._kernel_factor(source, a)
            elif source in running:
                got = self._detector_factor(running[source], asset)
                if got is None:
                    f, why = 0.0, f"{source}: no reading for {asset} yet"
                else:
                    f, why = got
            else:
                missing.append(source)
                continue
            factors[source] = min(max(f, 0.0), 1.0)
            reasons[source] = why
        score, points = combine(factors, self.cfg.weights)
        prev = self.last_pub.get(a, (0, 0.0, "low"))[1]
        now = int(r.clock[0])
        return Risk(asset=asset, ts_exchange=int(r.asset_rows[a, C.NOW_TS]), ts_recv=now, ts_computed=time.time_ns(),
                    score=round(score, 3), band=band_of(score, self.cfg.bands), previous_score=prev, factors=factors,
                    contributions=points, reasons=reasons, missing=missing)

    # -- detector interface ----------------------------------------------------
    def run(self, records: np.ndarray) -> list:
        r = self.ctx.runner
        now = int(r.clock[0])
        if now < self._next_due and len(r.owned) == self._n_assets:
            return []
        every = int(self.cfg.interval_s * 1e9)
        out = []
        next_due = now + every
        for a in np.flatnonzero(r.owned).tolist():
            last = self.last_eval.get(a)
            if last is not None and now - last < every:
                next_due = min(next_due, last + every)
                continue
            self.last_eval[a] = now
            sig = self.evaluate(a)
            self.latest[sig.asset] = sig
            t, score, band = self.last_pub.get(a, (0, 0.0, "low"))
            moved = abs(sig.score - score) >= self.cfg.min_change or sig.band != band
            due = sig.score > 0 and now - t >= int(self.cfg.heartbeat_s * 1e9)
            if moved or due:
                self.last_pub[a] = (now, sig.score, sig.band)
                out.append(sig)
        self._next_due, self._n_assets = next_due, len(r.owned)
        return out

    def thresholds(self, asset: str) -> dict[str, float]:
        return {f"band_{name}": b for name, b in zip(BANDS[1:], self.cfg.bands)}

    def factors(self, asset: str) -> dict[str, float]:
        sig = self.latest.get(asset)
        return {"risk": sig.score / 10.0} if sig else {}
