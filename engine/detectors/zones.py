"""Liquidation zones per asset (kernel: :mod:`engine.kernels.zones`): ``zone_approach.<ASSET>`` signals.

Runs the zone model over every ring batch of the assets this worker owns and
publishes a :class:`~engine.signals.ZoneApproach` when price comes within
``approach_sigmas`` volatility-scaled distance of a large zone. Its
:meth:`factors` feed the composite risk score: ``zone_proximity`` (1 at the
zone, 0 at or beyond the approach distance) and ``fuel_to_liquidity``
(``ratio / (1 + ratio)``) of the nearer side; :meth:`zones` is what the bot's
``/zones`` prints and :meth:`asset_map` what the heatmap draws.
"""
from __future__ import annotations

import math
import time

import numpy as np

from engine.kernels.zones import Z, ZoneModel
from engine.record import VENUE_NAMES
from engine.signals import ZoneApproach

from . import Detector

__all__ = ["ZonesDetector", "zone_summary", "approach_signal"]


def _num(x: float) -> float:
    return 0.0 if x != x else float(x)


def zone_summary(row: np.ndarray) -> dict:
    """The nearest large zone on each side from a model output row (NaN fields become None)."""
    def side(base: int) -> dict | None:
        if row[base + Z.ZONE_USD] != row[base + Z.ZONE_USD]:
            return None
        return {"price": float(row[base + Z.ZONE_PRICE]), "usd": float(row[base + Z.ZONE_USD]),
                "band_usd": float(row[base + Z.ZONE_BAND]), "distance_pct": 100 * float(row[base + Z.DISTANCE]),
                "fuel_usd": float(row[base + Z.FUEL_USD]), "depth_usd": float(row[base + Z.DEPTH_USD]),
                "fuel_to_liquidity": None if math.isnan(row[base + Z.RATIO]) else float(row[base + Z.RATIO])}
    return {"price": _num(row[Z.PRICE]), "sigma_pct": 100 * _num(row[Z.SIGMA]),
            "threshold_pct": 100 * _num(row[Z.THRESHOLD]), "coverage": _num(row[Z.COVERAGE]),
            "long": side(Z.LONG), "short": side(Z.SHORT)}


def approach_signal(asset: str, ev) -> ZoneApproach:
    """The signal of one kernel approach event (a row of ``ZONE_EVENT_DTYPE``)."""
    ratio = float(ev["ratio"])
    return ZoneApproach(
        asset=asset, ts_exchange=int(ev["ts_exchange"]), ts_recv=int(ev["ts_recv"]), ts_computed=time.time_ns(),
        side="long" if ev["side"] > 0 else "short", price=float(ev["price"]), zone_price=float(ev["zone_price"]),
        zone_usd=float(ev["zone_usd"]), zone_band_usd=float(ev["zone_band"]),
        distance_pct=100 * float(ev["distance"]), threshold_pct=100 * float(ev["threshold"]),
        fuel_usd=float(ev["fuel_usd"]), depth_usd=float(ev["depth_usd"]),
        fuel_to_liquidity=0.0 if math.isnan(ratio) else ratio, coverage=_num(float(ev["coverage"])))


class ZonesDetector(Detector):
    """The zone model inside the compute actor."""

    name = "zones"

    def __init__(self, ctx) -> None:
        super().__init__(ctx)
        self.model = ZoneModel(self.cfg, funding_cfg=ctx.cfg.detectors.funding)
        self._n_inst = -1
        self._n_assets = -1

    def _sync(self) -> None:
        r = self.ctx.runner
        n_inst, n_assets = len(r.inst_asset), len(r.asset_names)
        if (n_inst, n_assets) == (self._n_inst, self._n_assets):
            return
        meta = []
        for iid in range(n_inst):
            inst = self.ctx.registry.get(iid)
            meta.append((VENUE_NAMES.get(inst.venue, str(inst.venue)), inst.asset, int(r.inst_asset[iid])))
        self.model.resize(meta, n_assets, r.owned)
        self._n_inst, self._n_assets = n_inst, n_assets

    def run(self, records: np.ndarray) -> list:
        self._sync()
        names = self.ctx.runner.asset_names
        return [approach_signal(names[int(e["asset"])], e) for e in self.model.run(records)]

    def _asset(self, asset: str) -> int | None:
        names = list(self.ctx.runner.asset_names)
        return names.index(asset) if asset in names and names.index(asset) < len(self.model.out) else None

    def zones(self, asset: str) -> dict:
        a = self._asset(asset)
        return zone_summary(self.model.out[a]) if a is not None else {}

    def asset_map(self, asset: str) -> dict[str, np.ndarray] | None:
        a = self._asset(asset)
        return self.model.asset_map(a) if a is not None else None

    def thresholds(self, asset: str) -> dict[str, float]:
        a = self._asset(asset)
        if a is None:
            return {}
        row = self.model.out[a]
        return {"approach_pct": 100 * _num(row[Z.THRESHOLD]), "large_long_usd": _num(row[Z.LONG + Z.LARGE_USD]),
                "large_short_usd": _num(row[Z.SHORT + Z.LARGE_USD])}

    def factors(self, asset: str) -> dict[str, float]:
        a = self._asset(asset)
        if a is None:
            return {}
        row = self.model.out[a]
        thr = row[Z.THRESHOLD]
        best_prox, best_ratio = 0.0, 0.0
        for base in (Z.LONG, Z.SHORT):
            d = row[base + Z.DISTANCE]
            if d != d or thr != thr or thr <= 0:
                continue
            prox = max(0.0, 1.0 - d / thr)
            if prox >= best_prox:
                best_prox = prox
                ratio = row[base + Z.RATIO]
                best_ratio = 0.0 if ratio != ratio else ratio / (1.0 + ratio)
        # fuel: the cascade score's leading factor, the nearest zone's proximity scaled by its fuel
        return {"zone_proximity": float(best_prox), "fuel_to_liquidity": float(best_ratio),
                "fuel": float(best_prox * best_ratio)}
