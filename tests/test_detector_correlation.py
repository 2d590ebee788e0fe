"""Correlation detector: kernel vs reference (hypothesis), pairs from the registry, break scenario, calm rate."""
from __future__ import annotations

import math

import msgspec
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from engine.config import Config
from engine.detectors.correlation import CorrelationDetector
from engine.record import Kind, Venue
from engine.simulator.market import SyntheticMarket
from tests.reference_positioning import (CALM_S, EPOCH_NS, FakeRegistry, MarketFeed, calm_feed, make_ctx, records,
                                         ref_correlation, run_batches)


def _cfg(**kw) -> Config:
    c = Config()
    x = msgspec.structs.replace(c.detectors.correlation, **kw)
    return msgspec.structs.replace(c, detectors=msgspec.structs.replace(c.detectors, correlation=x))


SMALL = dict(resolution_s=1.0, short_window_s=3.0, long_window_s=10.0, min_samples=4, z=2.0, gap=0.3, gap_floor=0.1,
             min_long_corr=-1.0, pairs=[["A", "B"]])


def _registry():
    reg = FakeRegistry()
    for v in (Venue.BINANCE, Venue.GATE):
        for s, a in (("AUSDT", "A"), ("BUSDT", "B")):
            reg.add(v, s, a)
    return reg


def test_pairs_come_from_the_registry():
    det = CorrelationDetector(make_ctx(_registry(), _cfg(**SMALL)))
    assert det.pair_names == ["A/B@binance", "A/B@gate", "A@binance/A@gate", "B@binance/B@gate"]
    assert det.pairs.tolist() == [[0, 1], [2, 3], [0, 2], [1, 3]]
    assert det.run(records([])) == [] and det.factors("A") == {"correlation_break": 0.0}


event_st = st.tuples(st.integers(0, 3), st.integers(0, 12), st.floats(-0.02, 0.02),
                     st.sampled_from([Kind.MARK] * 8 + [Kind.TRADE]), st.sampled_from([None] * 12 + [math.nan, -1.0]))


@settings(max_examples=60, deadline=None)
@given(st.lists(event_st, max_size=250), st.integers(1, 50))
def test_kernel_matches_reference(events, batch):
    det = CorrelationDetector(make_ctx(_registry(), _cfg(**SMALL)))
    rows, t, px = [], 0, [100.0] * 4
    for iid, dt, ret, kind, bad in events:
        t += dt * 100_000_000
        common = ret if iid % 2 == 0 else ret * 0.5   # A and B partly co-move
        px[iid] *= math.exp(common)
        index = px[iid] if bad is None else bad
        rows.append((kind, 1, 0, 0, iid, EPOCH_NS + t, EPOCH_NS + t, px[iid], index, 0.0, 0.0, 0.0))
    recs = records(rows)
    sigs, got = run_batches(det, recs, batch)
    assert all(math.isfinite(s.short_corr) and math.isfinite(s.long_corr) for s in sigs)
    want, st_ = [], None
    for k in range(0, len(recs), batch):
        ev, st_ = ref_correlation(recs[k:k + batch], det.view.inst_asset, [tuple(p) for p in det.pairs.tolist()],
                                  det.values.shape[1], det.res_ns, det.alpha_short, det.alpha_long, det.min_short,
                                  det.min_long, SMALL["min_samples"], SMALL["z"], SMALL["gap"], SMALL["gap_floor"],
                                  SMALL["min_long_corr"], 0.5, det.max_catchup, st_)
        want += ev
    assert len(got) == len(want)
    for g, w in zip(got, want):
        assert (g[0], g[1], g[2]) == w[:3]
        assert np.allclose(g[5:], w[3:], rtol=1e-7, atol=1e-9)


def test_break_scenario_fires():
    m = SyntheticMarket(("BTCUSDT", "ETHUSDT", "SOLUSDT"), seed=17, rate=40.0, cascade_every_s=0.0)
    feed = MarketFeed(m, bands=())
    cfg = _cfg(short_window_s=60.0, long_window_s=600.0)
    det = CorrelationDetector(make_ctx(feed.reg, cfg))
    fired = []
    for _ in range(90):
        fired += det.run(feed.run(10.0))
    before = det.correlations()
    m.script("correlation_break", "ETHUSDT", duration=300.0)
    for _ in range(30):
        fired += det.run(feed.run(10.0))
    assert before["BTC/ETH@binance"][1] > 0.4
    assert sorted(s.pair for s in fired) == ["BTC/ETH@binance", "BTC/ETH@bybit"]
    assert all(s.long_corr - s.short_corr >= s.threshold for s in fired)


def _calm(seconds: float) -> list:
    recs, reg = calm_feed(seconds)
    det = CorrelationDetector(make_ctx(reg, _cfg(short_window_s=60.0, long_window_s=600.0)))
    fired, _ = run_batches(det, recs)
    print(f"\ncorrelation calm false signals: {len(fired)} in {seconds:g} synthetic s x {len(det.pair_names)} pairs "
          f"(short 60 s / long 600 s)")
    return fired


def test_calm_false_signal_rate():
    assert not _calm(CALM_S)


@pytest.mark.soak
def test_calm_hour_false_signal_rate():
    assert not _calm(3600.0)
