"""Correlation detector: kernel vs reference (hypothesis), pairs from the registry, break scenario, calm rate."""
from __future__ import annotations

import functools
import math

import msgspec
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from engine.config import Config
from engine.detectors.correlation import CorrelationDetector
from engine.record import Kind, Venue
from engine.simulator.market import SyntheticMarket
from tests.reference_correlation import ref_correlation
from tests.reference_positioning import (CALM_S, EPOCH_NS, FakeRegistry, MarketFeed, calm_feed, make_ctx, records,
                                         run_batches)


def _cfg(**kw) -> Config:
    c = Config()
    x = msgspec.structs.replace(c.detectors.correlation, **kw)
    return msgspec.structs.replace(c, detectors=msgspec.structs.replace(c.detectors, correlation=x))


SMALL = dict(resolution_s=1.0, short_window_s=3.0, long_window_s=10.0, min_samples=4, z=2.0, gap=0.3, gap_floor=0.1,
             min_long_corr=-1.0, pairs=[["A", "B"]], winsor_k=4.0)


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
                     st.sampled_from([Kind.MARK] * 8 + [Kind.TRADE]), st.sampled_from([None] * 12 + [math.nan, -1.0]),
                     st.sampled_from([0.0] * 20 + [0.3, -0.3]))


def _ref_args(det, cfg: dict) -> tuple:
    return (det.values.shape[1], det.res_ns, det.alpha_short, det.alpha_long, det.min_short, det.min_long,
            cfg["min_samples"], cfg["z"], cfg["gap"], cfg["gap_floor"], cfg["min_long_corr"], 0.5, cfg["winsor_k"],
            det.max_catchup)


@settings(max_examples=60, deadline=None)
@given(st.lists(event_st, max_size=250), st.integers(1, 50), st.sampled_from([0.0, 1.5, 4.0]))
def test_kernel_matches_reference(events, batch, winsor_k):
    cfg = dict(SMALL, winsor_k=winsor_k)
    det = CorrelationDetector(make_ctx(_registry(), _cfg(**cfg)))
    rows, t, px = [], 0, [100.0] * 4
    for iid, dt, ret, kind, bad, jump in events:
        t += dt * 100_000_000
        common = ret if iid % 2 == 0 else ret * 0.5   # A and B partly co-move
        px[iid] *= math.exp(common + jump)
        index = px[iid] if bad is None else bad
        rows.append((kind, 1, 0, 0, iid, EPOCH_NS + t, EPOCH_NS + t + 7, px[iid], index, 0.0, 0.0, 0.0))
    recs = records(rows)
    sigs, got = run_batches(det, recs, batch)
    assert all(math.isfinite(s.short_corr) and math.isfinite(s.long_corr) for s in sigs)
    want, _ = ref_correlation(recs, det.view.inst_asset, [tuple(p) for p in det.pairs.tolist()], *_ref_args(det, cfg))
    assert len(got) == len(want)
    for g, w in zip(got, want):
        assert (g[0], g[1], g[2], g[3], g[4]) == w[:5]
        assert np.allclose(g[5:], w[5:], rtol=1e-7, atol=1e-9)


@functools.lru_cache(maxsize=1)
def _break_stream(seed: int = 17) -> tuple[np.ndarray, FakeRegistry]:
    """4 ordinary minutes, then ETH decoupled for 2 (records of two venues interleaved as one feed sends them)."""
    m = SyntheticMarket(("BTCUSDT", "ETHUSDT", "SOLUSDT"), seed=seed, rate=5.0, cascade_every_s=0.0)
    feed = MarketFeed(m, bands=())
    parts = [feed.run(240.0)]
    m.script("correlation_break", "ETHUSDT", duration=120.0)
    parts.append(feed.run(120.0))
    return np.concatenate(parts), feed.reg


def _signals_of(recs: np.ndarray, reg, batch: int) -> list[tuple]:
    """Signals of 1 s returns, short 10 s / long 60 s windows, ``batch`` records at a time, as comparable tuples."""
    det = CorrelationDetector(make_ctx(reg, _cfg(resolution_s=1.0, short_window_s=10.0, long_window_s=60.0)))
    sigs, _ = run_batches(det, recs, batch)
    return [(s.pair, s.ts_exchange, s.ts_recv, s.short_corr, s.long_corr, s.gap, s.threshold) for s in sigs]


def test_signals_do_not_depend_on_batch_boundaries():
    """The same records cut into batches of 1, 7, 100 and all at once give the same signals, times included."""
    recs, reg = _break_stream()
    whole = _signals_of(recs, reg, len(recs))
    assert sorted({s[0] for s in whole}) == ["BTC/ETH@binance", "BTC/ETH@bybit"]
    marks = recs[recs["kind"] == Kind.MARK]   # batch size 1 over the MARK records only (the rest is skipped anyway)
    for batch, stream in ((100, recs), (7, recs), (1, marks)):
        assert _signals_of(stream, reg, batch) == whole, batch


def test_signals_do_not_depend_on_venue_interleaving():
    """A same-venue pair's signals are the same when each venue's records come as one block (as two rings polled
    at different moments deliver them) as when the venues are interleaved record by record."""
    recs, reg = _break_stream()
    venue = recs["venue"]
    by_venue = np.concatenate([recs[venue == v] for v in np.unique(venue)])
    same_venue = [s for s in _signals_of(recs, reg, 500) if "/" in s[0] and s[0].count("@") == 1]
    assert same_venue and [s for s in _signals_of(by_venue, reg, 500) if s[0].count("@") == 1] == same_venue


def test_one_jump_does_not_swamp_the_long_run_correlation():
    """Co-moving A and B (correlation ~0.8); A jumps 20 % once. Clipped, the long-run correlation barely moves;
    unclipped, the jump alone takes it near 0 (an uncorrelated jump on one leg dominates both variances)."""
    rng = np.random.default_rng(3)
    rows, pa, pb = [], 100.0, 100.0
    for k in range(400):
        f = rng.normal(0, 0.001)
        pa *= math.exp(f + rng.normal(0, 0.0005) + (0.2 if k == 300 else 0.0))
        pb *= math.exp(f + rng.normal(0, 0.0005))
        t = EPOCH_NS + k * 1_000_000_000
        rows += [(Kind.MARK, 1, 0, 0, iid, t, t, p, p, 0.0, 0.0, 0.0) for iid, p in ((0, pa), (1, pb))]
    reg = FakeRegistry()
    reg.add(Venue.BINANCE, "AUSDT", "A")
    reg.add(Venue.BINANCE, "BUSDT", "B")
    recs = records(rows)
    long_corr = {}
    for k in (0.0, 4.0):
        det = CorrelationDetector(make_ctx(reg, _cfg(**dict(SMALL, long_window_s=100.0, winsor_k=k))))
        det.run(recs[:301 * 2 + 2])   # just past the jump's bucket
        long_corr[k] = det.correlations()["A/B@binance"][1]
    assert long_corr[4.0] > 0.6
    assert long_corr[0.0] < 0.3


def test_winsor_k_is_validated():
    from engine.config import ConfigError, loads
    with pytest.raises(ConfigError, match="detectors.correlation.winsor_k"):
        loads("[detectors.correlation]\nwinsor_k = 0.5\n")


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


def test_demo_scripts_decoupling_fires_and_nothing_before_it():
    """The 10-minute demo's market (seed 7, its script, demo_config's correlation table) replayed through the
    detector: the scripted SOL decoupling fires on BTC/SOL within a minute of its start, and no pair fires before."""
    from engine.demo_script import DEMO_SCHEDULE, demo_config, demo_script
    from engine.simulator.scenarios import parse_script
    start = next(s for name, _, s, _, _ in DEMO_SCHEDULE if name == "correlation_break")
    m = SyntheticMarket(("BTCUSDT", "ETHUSDT", "SOLUSDT"), seed=7)   # the demo's market (config.toml [simulator])
    for line in demo_script(1.0):
        name, symbol, at, params = parse_script(line)
        m.script(name, symbol, at=at, **params)
    feed = MarketFeed(m, venues=(Venue.BINANCE,), bands=())
    det = CorrelationDetector(make_ctx(feed.reg, demo_config(Config())))
    fired = []
    for k in range(int(start + 60)):
        fired += [(k + 1, s.pair) for s in det.run(feed.run(1.0))]
    assert fired and all(t > start for t, _ in fired), fired
    assert any(pair == "BTC/SOL@binance" for _, pair in fired), fired
