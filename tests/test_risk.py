"""Composite risk score: combination, bands, missing detectors, reasons and publication rules."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.config import Config
from engine.detectors import DetectorContext
from engine.detectors.risk import BANDS, RiskDetector, band_of, combine
from engine.instruments import Registry, registry_segment
from engine.kernels import BatchRunner
from engine.kernels import columns as C
from engine.record import empty_records

T0 = 1_700_000_000_000_000_000


class FakeDetector:
    def __init__(self, name, values):
        self.name, self.values = name, values

    def factors(self, asset):
        return self.values.get(asset, {})


@pytest.mark.property
@settings(max_examples=200, deadline=None)
@given(st.dictionaries(st.sampled_from(list(Config().detectors.risk.weights)), st.floats(-1, 2), min_size=1))
def test_combine_is_a_weighted_mean_in_range(factors):
    weights = Config().detectors.risk.weights
    score, points = combine(factors, weights)
    total = sum(weights[s] for s in factors)
    ref = 10 * sum(weights[s] * min(max(f, 0), 1) for s, f in factors.items()) / total
    assert score == pytest.approx(ref) and 0 <= score <= 10 and sum(points.values()) == pytest.approx(score)


@pytest.mark.unit
def test_bands():
    bounds = Config().detectors.risk.bands
    assert [band_of(s, bounds) for s in (0, 3, 5.5, 7, 9.9)] == list(BANDS)


@pytest.fixture
def world(namespace):
    reg = Registry.open(registry_segment(namespace), 64, 16)
    reg.add(1, "BTCUSDT", "BTC")
    cfg = Config()
    r = BatchRunner(cfg.detectors, reg)
    ctx = DetectorContext(cfg, reg, r)
    det = RiskDetector(ctx)
    yield cfg, r, ctx, det
    reg.close()


@pytest.mark.unit
def test_every_factor_explained_and_missing_listed(world):
    cfg, r, ctx, det = world
    ctx.detectors = {"volume": FakeDetector("volume", {"BTC": {"spike_1m": 0.9, "spike_5m": 0.2}}),
                     "funding": FakeDetector("funding", {})}
    row = r.asset_rows[0]
    row[C.SCORE], row[C.LEVEL] = 8.0, 3
    row[C.HOUR_SUMS + C.USD_LONG] = 500_000.0
    sig = det.evaluate(0)
    assert set(sig.factors) == {"cascade", "liquidations", "volume", "funding"}
    assert set(sig.missing) == set(cfg.detectors.risk.weights) - set(sig.factors)
    assert sig.factors["cascade"] == 0.8 and sig.factors["volume"] == 0.9 and sig.factors["funding"] == 0.0
    assert sig.factors["liquidations"] == pytest.approx(500_000 / (10 * 100_000))
    assert "CRITICAL" in sig.reasons["cascade"] and "spike_1m" in sig.reasons["volume"]
    assert "no reading" in sig.reasons["funding"]
    assert sum(sig.contributions.values()) == pytest.approx(sig.score, abs=1e-3)
    assert sig.band == band_of(sig.score, cfg.detectors.risk.bands)


@pytest.mark.unit
def test_publishes_on_move_band_change_and_heartbeat(world):
    cfg, r, ctx, det = world
    rc = cfg.detectors.risk
    empty = empty_records(0)

    def at(seconds, score):
        r.clock[0] = T0 + int(seconds * 1e9)
        r.asset_rows[0, C.SCORE] = score
        return det.run(empty)

    assert at(0, 0.0) == []                                  # nothing to say
    first = at(rc.interval_s, 9.0)
    assert len(first) == 1 and first[0].asset == "BTC"
    assert at(rc.interval_s * 1.5, 1.0) == []                # not yet due for evaluation
    assert at(rc.interval_s * 2, 9.1) == []                  # moved less than min_change, same band
    again = at(rc.interval_s * 3, 2.0)
    assert len(again) == 1 and again[0].previous_score == first[0].score
    hb = at(rc.interval_s * 3 + rc.heartbeat_s, 2.0)
    assert len(hb) == 1 and det.factors("BTC") == {"risk": pytest.approx(hb[0].score / 10)}
    assert np.isfinite(hb[0].score)
