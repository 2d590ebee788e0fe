"""Detector plug-ins of the compute actor (beyond the fused liquidation/cascade kernel).

The compute actor runs the latency-critical kernel (liquidations, velocity,
volatility, cascade: :mod:`engine.kernels.pipeline`) and publishes its signals
first; then it hands the same records to every enabled detector here, in
registration order, as queued batches (at most ``engine.detector_cadence_ms`` of
stream time or ``engine.detector_queue_records`` records late;
:class:`engine.detectors.base.DetectorQueue`), and publishes what they return.
A detector whose optional ``consumes`` attribute (``kind_bits`` of the record
kinds its ``run`` reads; missing = all) misses every kind of a batch is skipped. A detector:

* lives in its own module ``engine/detectors/<name>.py`` with its numba
  kernel(s) in ``engine/kernels/<name>.py`` (plain-Python reference and a
  property test in ``tests/``), and is one line in :data:`DETECTORS`;
* is switched by ``[detectors.<name>] enabled`` and configured only from there:
  thresholds come from the asset's own recent distribution (quantiles, robust
  z-scores) kept in its kernel state, with configured fallbacks while history
  is short, never from numbers in code;
* publishes its own signal kind(s) (classes in :mod:`engine.signals`), topic
  ``<kind>.<ASSET>``, carrying the triggering record's ``ts_exchange`` and
  ``ts_recv`` and ``ts_computed=time.time_ns()``;
* answers :meth:`Detector.thresholds` (what ``undertow thresholds`` and the
  bot's ``/thresholds`` print) and :meth:`Detector.factors` (inputs of the
  composite risk score and ``/why``).
"""
from __future__ import annotations

import importlib
from typing import Any

import numpy as np

__all__ = ["Detector", "DetectorContext", "DETECTORS", "build"]

# name -> "module:Class". The name is the [detectors.<name>] table and the detector's id.
DETECTORS: dict[str, str] = {
    "volume": "engine.detectors.volume:VolumeDetector",
    "cvd": "engine.detectors.cvd:CvdDetector",
    "whales": "engine.detectors.whales:WhalesDetector",
    "open_interest": "engine.detectors.open_interest:OpenInterestDetector",
    "funding": "engine.detectors.funding:FundingDetector",
    "book": "engine.detectors.book:BookDetector",
    "correlation": "engine.detectors.correlation:CorrelationDetector",
    "zones": "engine.detectors.zones:ZonesDetector",
    "risk": "engine.detectors.risk:RiskDetector",
}


class DetectorContext:
    """What a detector may read: the config, the instrument registry and the kernel runner.

    ``runner`` (:class:`engine.kernels.BatchRunner`) holds ``asset_names``,
    ``inst_asset`` (instrument -> asset id), ``owned`` (assets this worker owns)
    and the per-instrument / per-asset rows of the fused kernel (:mod:`engine.kernels.columns`).
    ``profiles`` is the asset-profile service when one is configured, else None.
    ``detectors`` maps name -> running detector once all are built (the risk score reads their factors()).
    """

    def __init__(self, cfg: Any, registry: Any, runner: Any, profiles: Any = None) -> None:
        self.cfg = cfg
        self.registry = registry
        self.runner = runner
        self.profiles = profiles
        self.detectors: dict[str, Any] = {}


class Detector:
    """Base class: override :meth:`run`; the rest has safe defaults."""

    name = "detector"

    def __init__(self, ctx: DetectorContext) -> None:
        self.ctx = ctx
        self.cfg = getattr(ctx.cfg.detectors, self.name)

    def run(self, records: np.ndarray) -> list:
        """Consume one ring batch (stream order); return the signals to publish."""
        raise NotImplementedError

    def thresholds(self, asset: str) -> dict[str, float]:
        """The thresholds in force for ``asset`` now, by name."""
        return {}

    def factors(self, asset: str) -> dict[str, float]:
        """Latest factor values for ``asset`` (0..1 where normalised), for the composite risk score."""
        return {}


def build(ctx: DetectorContext) -> list[Detector]:
    """Instantiate every registered detector whose ``[detectors.<name>]`` table is enabled."""
    out = []
    for name, target in DETECTORS.items():
        section = getattr(ctx.cfg.detectors, name, None)
        if section is None or not getattr(section, "enabled", False):
            continue
        module, _, cls = target.partition(":")
        out.append(getattr(importlib.import_module(module), cls)(ctx))
    return out
