"""Leading cascade factors (zone fuel, book thinning) and speed judged against the asset's own normal."""
from __future__ import annotations

from types import SimpleNamespace

import msgspec
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from actors.compute import ComputeActor
from engine.detector_config import CascadeConfig, LeadWeights
from engine.detectors.zones import ZonesDetector
from engine.kernels import cascade
from engine.kernels import columns as C
from engine.kernels.zones import Z
from tests.reference_kernels import ref_score

SINGLE = 25_000.0


def cascade_row(count, usd_s, lead=(0.0, 0.0), normal=(0.0, 0.0)):
    """An asset row with ``count`` liquidations in the cascade window, ``usd_s`` over ~5 s, the leading
    factor inputs and an hour of history at ``normal`` (liquidations/s, USD/s), split evenly over both sides."""
    row = np.zeros(C.NCOL)
    row[C.CASCADE_SUMS + C.N_LONG] = count
    row[C.VEL_USD + 1] = usd_s
    row[C.X_FUEL], row[C.X_THINNING] = lead
    for side in (0, 1):
        row[C.HOUR_SUMS + C.N_LONG + side] = normal[0] * 3600 / 2
        row[C.HOUR_SUMS + C.USD_LONG + side] = normal[1] * 3600 / 2
    return row


def config(fuel=0.15, thinning=0.10, relative=5.0):
    return msgspec.structs.replace(CascadeConfig(), lead_weights=LeadWeights(fuel=fuel, depth_thinning=thinning),
                                   relative_speed=relative)


unit = st.floats(-0.5, 1.5, allow_nan=False)


@pytest.mark.property
@settings(max_examples=200, deadline=None)
@given(st.integers(0, 60), st.floats(0, 2e5), st.tuples(unit, unit), st.tuples(st.floats(0, 2), st.floats(0, 1e5)),
       st.floats(0, 0.5), st.floats(0, 0.5), st.sampled_from([0.0, 3.0, 5.0]), st.sampled_from([0.6, 1.0, 1.6]))
def test_score_with_leading_factors_and_relative_speed_matches_reference(count, usd_s, lead, normal, w_fuel, w_thin,
                                                                         rel, mult):
    cfg = config(w_fuel, w_thin, rel)
    p = cascade.cascade_params(cfg, [1, 5, 20, 60], True)
    row = cascade_row(count, usd_s, lead, normal)
    score = cascade.score_row(row, SINGLE, mult, p)
    ref, contrib = ref_score(count, usd_s, 0.0, 0.0, (0.0, 0.0, 0.0), 0, mult, SINGLE, cfg, True, lead, normal)
    assert score == pytest.approx(ref, abs=1e-9) and 0 <= score <= 10
    got = [row[c] for c in C.FACTOR_COLUMNS.values()] + [row[C.F_BURST], row[C.F_REGIME]]
    np.testing.assert_allclose(got, contrib, atol=1e-9)


@pytest.mark.unit
def test_leading_factors_add_to_the_base_weights():
    p = cascade.cascade_params(config(relative=0.0), [1, 5, 20, 60], True)
    quiet = cascade_row(0, 0.0)
    assert cascade.score_row(quiet, SINGLE, 1.0, p) == 0.0
    primed = cascade_row(0, 0.0, lead=(1.0, 0.5))
    assert cascade.score_row(primed, SINGLE, 1.0, p) == pytest.approx(10 * (0.15 + 0.10 * 0.5))
    assert primed[C.F_FUEL] == pytest.approx(1.5) and primed[C.F_THINNING] == pytest.approx(0.5)
    base = cascade.cascade_params(config(0.0, 0.0), [1, 5, 20, 60], True)   # the seeds' six weights alone
    assert cascade.score_row(cascade_row(0, 0.0, lead=(1.0, 1.0)), SINGLE, 1.0, base) == 0.0


@pytest.mark.unit
def test_steady_heavy_flow_is_judged_against_the_assets_normal():
    """A grind: 40 liquidations per 30 s and 4x the single threshold per s, every minute of the last hour."""
    grind = dict(count=40, usd_s=4 * SINGLE, normal=(40 / 30, 4 * SINGLE))
    absolute = cascade.cascade_params(config(relative=0.0), [1, 5, 20, 60], True)
    relative = cascade.cascade_params(config(relative=5.0), [1, 5, 20, 60], True)
    cascade.score_row(row := cascade_row(**grind), SINGLE, 1.0, absolute)
    assert row[C.F_VELOCITY] == pytest.approx(2.5)                  # saturated on absolute speed
    cascade.score_row(row := cascade_row(**grind), SINGLE, 1.0, relative)
    assert row[C.F_VELOCITY] == pytest.approx(2.5 / 5)              # 1/5 of k x its normal
    burst = cascade_row(count=200, usd_s=20 * SINGLE, normal=grind["normal"])   # 5x its normal: a cascade
    cascade.score_row(burst, SINGLE, 1.0, relative)
    assert burst[C.F_VELOCITY] == pytest.approx(2.5)
    short = cascade_row(count=40, usd_s=4 * SINGLE)                 # only 10 minutes of the grind so far
    for side in (0, 1):
        short[C.M15_SUMS + C.N_LONG + side] = 40 / 30 * 600 / 2
        short[C.M15_SUMS + C.USD_LONG + side] = 4 * SINGLE * 600 / 2
    cascade.score_row(short, SINGLE, 1.0, relative)                 # the 15-minute mean already counts
    assert short[C.F_VELOCITY] == pytest.approx(2.5 / (5 * 600 / 900))
    fresh = cascade_row(count=40, usd_s=4 * SINGLE)                 # no history: absolute speed decides
    cascade.score_row(fresh, SINGLE, 1.0, relative)
    assert fresh[C.F_VELOCITY] == pytest.approx(2.5)


@pytest.mark.unit
def test_zones_fuel_is_proximity_times_fuel_share():
    out = np.full((1, Z.NCOL), np.nan)
    out[0, Z.THRESHOLD] = 0.02
    out[0, Z.LONG + Z.DISTANCE], out[0, Z.LONG + Z.RATIO] = 0.005, 3.0     # near, 3x the book's depth
    out[0, Z.SHORT + Z.DISTANCE], out[0, Z.SHORT + Z.RATIO] = 0.015, 9.0
    det = SimpleNamespace(_asset=lambda name: 0 if name == "BTC" else None, model=SimpleNamespace(out=out))
    f = ZonesDetector.factors(det, "BTC")
    assert f["zone_proximity"] == pytest.approx(0.75) and f["fuel_to_liquidity"] == pytest.approx(0.75)
    assert f["fuel"] == pytest.approx(0.75 * 0.75)
    assert ZonesDetector.factors(det, "ETH") == {}


class _Detector:
    def __init__(self, name, values):
        self.name, self.values = name, values

    def factors(self, asset):
        if self.values is None:
            raise RuntimeError("broken detector")
        return self.values


@pytest.mark.unit
def test_refresh_factors_takes_the_named_value_else_the_largest():
    runner = SimpleNamespace(asset_rows=np.zeros((2, C.NCOL)), owned=np.array([True, False]),
                             asset_names=["BTC", "ETH"])
    actor = SimpleNamespace(runner=runner, stats={"detector_errors": 0}, _factor_sources={
        "fuel": _Detector("zones", {"zone_proximity": 0.9, "fuel_to_liquidity": 0.8, "fuel": 0.72}),
        "depth_thinning": _Detector("book", {"book_imbalance": 1.0, "depth_thinning": 0.3}),
        "volume": _Detector("volume", {"spike": 0.4, "burst": 1.7}),
        "oi": _Detector("open_interest", None),
        "funding": None})
    ComputeActor.refresh_factors(actor)
    row = runner.asset_rows[0]
    assert (row[C.X_FUEL], row[C.X_THINNING], row[C.X_VOLUME]) == (0.72, 0.3, 1.0)
    assert row[C.X_OI] == 0 and actor.stats["detector_errors"] == 1     # counted, not fatal
    assert not runner.asset_rows[1].any()                               # not owned: untouched
