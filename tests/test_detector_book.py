"""Book detector: kernel vs reference (hypothesis), persistence, imbalance and depth-collapse scenarios, calm rate."""
from __future__ import annotations

import math

import msgspec
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from engine.config import Config
from engine.detectors.book import BookDetector
from engine.record import Kind, Venue
from engine.simulator.market import SyntheticMarket
from tests.reference_positioning import (CALM_S, EPOCH_NS, FakeRegistry, MarketFeed, calm_feed, make_ctx, records,
                                         ref_book, run_batches)


def _cfg(**kw) -> Config:
    c = Config()
    b = msgspec.structs.replace(c.detectors.book, **kw)
    return msgspec.structs.replace(c, detectors=msgspec.structs.replace(c.detectors, book=b))


SMALL = dict(min_samples=5, z=2.0, ew_alpha=0.2, persist_s=0.5, baseline_tau_s=2.0, min_baseline_samples=3,
             collapse_persist_s=0.2, imbalance={"*": 0.4}, imbalance_floor=0.2)


def _registry():
    reg = FakeRegistry()
    for v in (Venue.BINANCE, Venue.OKX):
        reg.add(v, "AUSDT", "A")
    return reg


event_st = st.tuples(st.integers(0, 1), st.integers(0, 5), st.floats(0.0, 1e6), st.floats(0.0, 1e6),
                     st.sampled_from([Kind.BOOK_DEPTH] * 4 + [Kind.BOOK_TOP] * 2 + [Kind.TRADE]),
                     st.sampled_from([0.005] * 4 + [0.01]), st.sampled_from([None] * 10 + [math.nan, -1.0]))


@settings(max_examples=60, deadline=None)
@given(st.lists(event_st, max_size=200), st.integers(1, 40))
def test_kernel_matches_reference(events, batch):
    det = BookDetector(make_ctx(_registry(), _cfg(**SMALL)))
    rows, t = [], 0
    for iid, dt, bid, ask, kind, band, bad in events:
        t += dt * 100_000_000
        bid = bid if bad is None else bad
        if kind == Kind.BOOK_TOP:   # price x qty = bid USD, aux x aux2 = ask USD
            rows.append((kind, 1, 0, 0, iid, EPOCH_NS + t, EPOCH_NS + t, 100.0, bid / 100.0, 0.0, 100.0, ask / 100.0))
        else:
            rows.append((kind, 1, 0, 0, iid, EPOCH_NS + t, EPOCH_NS + t, 100.0, band, bid + ask, bid, ask))
    recs = records(rows)
    sigs, got = run_batches(det, recs, batch)
    assert all(math.isfinite(s.imbalance) and math.isfinite(s.depth_usd) for s in sigs)
    c = det.cfg
    want, _ = ref_book(recs, det.view.inst_asset, c.band, c.band * 1e-6, SMALL["min_samples"], SMALL["z"],
                       SMALL["ew_alpha"], det.p_imb, det.p_imb_floor, c.imbalance_rearm, int(c.persist_s * 1e9), c.baseline_tau_s * 1e9,
                       SMALL["min_baseline_samples"], c.collapse_ratio, int(c.collapse_persist_s * 1e9), c.rearm_ratio)
    assert len(got) == len(want)
    for g, w in zip(got, want):
        assert (g[0], g[1], g[2]) == w[:3]
        assert np.allclose(g[5:], w[3:], rtol=1e-9, atol=1e-9)


def _depth(iid, t_s, bid, ask):
    ts = EPOCH_NS + int(t_s * 1e9)
    return (Kind.BOOK_DEPTH, 1, 0, 0, iid, ts, ts, 100.0, 0.005, bid + ask, bid, ask)


def test_a_one_tick_flicker_does_not_fire_a_held_imbalance_does():
    det = BookDetector(make_ctx(_registry(), _cfg(**{**SMALL, "min_samples": 1000})))   # on the 0.4 fallback
    assert det.run(records([])) == []
    flicker = [_depth(0, 0.1 * k, 900.0 if k % 3 == 0 else 500.0, 100.0 if k % 3 == 0 else 500.0) for k in range(30)]
    assert det.run(records(flicker)) == []
    held = [_depth(0, 3.0 + 0.1 * k, 900.0, 100.0) for k in range(10)]
    sigs = det.run(records(held))
    assert [(s.event, s.side, s.venue, s.symbol) for s in sigs] == [("imbalance", "bid", "binance", "AUSDT")]


def _scenario(name, **params):
    m = SyntheticMarket(("BTCUSDT", "ETHUSDT", "SOLUSDT"), seed=13, rate=40.0, cascade_every_s=0.0)
    feed = MarketFeed(m, bands=(0.005,))
    det = BookDetector(make_ctx(feed.reg))
    fired = det.run(feed.run(120.0))
    m.script(name, "BTCUSDT", **params)
    for _ in range(6):
        fired += det.run(feed.run(10.0))
    return fired


def test_imbalance_run_scenario_fires_on_every_venue():
    fired = _scenario("book_imbalance", duration=60.0, side="ask", factor=8.0)
    assert sorted((s.asset, s.event, s.side, s.venue) for s in fired) == [
        ("BTC", "imbalance", "ask", "binance"), ("BTC", "imbalance", "ask", "bybit")]
    assert all(s.imbalance < -0.5 for s in fired)


def test_depth_collapse_scenario_fires():
    fired = _scenario("depth_collapse", duration=30.0)
    assert sorted((s.asset, s.event, s.venue) for s in fired) == [
        ("BTC", "depth_collapse", "binance"), ("BTC", "depth_collapse", "bybit")]
    assert all(s.depth_usd < 0.3 * s.baseline_usd for s in fired)


def _calm(seconds: float) -> list:
    recs, reg = calm_feed(seconds)
    det = BookDetector(make_ctx(reg))
    fired, _ = run_batches(det, recs)
    print(f"\nbook calm false signals: {len(fired)} in {seconds:g} synthetic s x 6 books")
    return fired


def test_calm_false_signal_rate():
    assert not _calm(CALM_S)


@pytest.mark.soak
def test_calm_hour_false_signal_rate():
    assert not _calm(3600.0)
