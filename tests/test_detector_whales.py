"""Whale/trade-mix detector: kernel vs the plain-Python reference, a scripted whale print, accumulation, calm rates."""
from __future__ import annotations

import numpy as np
from hypothesis import given, settings

from engine.detectors.whales import WhalesDetector
from engine.kernels import whales as K
from engine.kernels.flow import SizeHistogram, size_add, size_quantile
from engine.record import Kind
from engine.signals import TradeMix, WhaleTrade, decode, encode
from engine.simulator.market import SyntheticMarket
from tests.reference_flow import (T0, FakeRegistry, RefWhales, assert_values_match, calm_stream, config_with,
                                  detector, kernel_vs_reference, market_records, records_from, stream_strategy)

SMALL = dict(min_trades=6, half_life_trades=15.0, whale_quantile=0.9, large_quantile=0.5, min_usd=10.0,
             mix_window_s=15.0, mix_min_trades=3, fallback_usd={"BTC": 1e6, "*": 2e5})


def small():
    cfg = config_with(whales=SMALL)
    return detector(WhalesDetector, cfg), cfg


@settings(max_examples=150, deadline=None)
@given(stream_strategy())
def test_kernel_matches_reference(events):
    (det, reg), cfg = small()
    ref = RefWhales(reg, cfg.detectors.whales)
    kernel_vs_reference(det, ref, events)
    for k, row in ref.mix.items():
        assert_values_match(det.mix[k].tolist(), row)
    assert np.isfinite(det.mix).all() and np.isfinite(det.sizes.hist).all()


def test_size_quantile_tracks_a_known_distribution():
    sizes = SizeHistogram()
    sizes.grow(1)
    rng = np.random.default_rng(2)
    for usd in rng.lognormal(np.log(2000.0), 1.0, 50_000):
        size_add(sizes.as_tuple(), 0, usd, 1.0)
    exact = float(np.exp(np.log(2000.0) + 3.0902))        # 99.9 % of the log-normal
    assert abs(size_quantile(sizes.as_tuple(), 0, 0.999) / exact - 1) < 0.15


def test_fallback_until_history_then_own_quantile():
    (det, _), _ = small()
    assert det.run(records_from([])) == []
    sigs = det.run(records_from([(10**8, Kind.TRADE, 0, 1, 5e5)] * 3 + [(10**8, Kind.TRADE, 3, -1, 3e5)]))
    assert [(s.asset, s.fallback) for s in sigs] == [("ETH", True)]        # BTC fallback $1M, ETH "*" $200k
    assert sigs[0].side == "sell" and sigs[0].market == "perp" and sigs[0].symbol == "ETHUSDT"
    sigs = det.run(records_from([(10**8, Kind.TRADE, 1, 1, 1000.0)] * 30 + [(10**8, Kind.TRADE, 2, 1, 5e5)]))
    assert [(s.asset, s.fallback, s.market) for s in sigs] == [("BTC", False, "spot")]
    assert sigs[0].threshold_usd < 5e5 and sigs[0].multiple > 1
    assert det.thresholds("BTC")["fallback"] == 0.0


def test_signals_round_trip():
    for sig in (WhaleTrade(asset="BTC", side="buy", price=1.0, qty=1.0, notional_usd=1.0, threshold_usd=1.0,
                           multiple=1.0),
                TradeMix(asset="BTC", mix="institutional_accumulation", window_s=300.0, volume_usd=1.0,
                         large_share=0.7, large_net=0.5, large_usd=1.0)):
        assert decode(encode(sig)) == sig


def test_scripted_whale_print_fires_once():
    m = SyntheticMarket(("BTCUSDT", "ETHUSDT"), seed=12, cascade_every_s=0.0)
    calm = m.run(120.0)
    m.script("whale_print", "ETHUSDT", usd=3_000_000.0, side="sell")
    events = calm + m.run(20.0)
    recs = market_records(events, ["BTCUSDT", "ETHUSDT"])
    det, _ = detector(WhalesDetector, config_with(whales=dict(min_trades=500)),
                      FakeRegistry([(15, "BTCUSDT", "BTC", 0), (15, "ETHUSDT", "ETH", 0)]))
    sigs = [s for s in det.run(recs) if isinstance(s, WhaleTrade)]
    print_usd = recs["notional"][recs["instrument"] == 1].max()
    big = [s for s in sigs if s.asset == "ETH" and s.notional_usd == print_usd]
    assert len(big) == 1 and big[0].side == "sell" and not big[0].fallback
    assert big[0].ts_exchange >= T0 + int(120e9) and big[0].notional_usd > 2.9e6
    print(f"\nwhales scenario: the $3M print fired (x{big[0].multiple:.0f} the ${big[0].threshold_usd:,.0f} "
          f"threshold); {len(sigs) - 1} other whale trades among {len(recs)} trades")


def test_large_one_sided_buying_is_institutional_accumulation():
    calm = calm_stream(0.5, seed=8, n_inst=1)
    det, _ = detector(WhalesDetector, config_with(whales=dict(min_trades=1000)))
    assert not [s for s in det.run(calm) if isinstance(s, TradeMix)]
    t = int(calm["ts_exchange"][-1])
    buys = records_from([(0, Kind.TRADE, 0, 1, 200_000.0)] + [(10**9, Kind.TRADE, 0, 1, 200_000.0)] * 300)
    buys["ts_exchange"] += t - T0 + 10**9
    noise = calm_stream(0.09, seed=9, n_inst=1)
    noise["ts_exchange"] += t - T0 + 10**9
    mixed = np.sort(np.concatenate([buys, noise]), order="ts_exchange")
    mixes = [s for s in det.run(mixed) if isinstance(s, TradeMix)]
    assert [s.mix for s in mixes] == ["institutional_accumulation"]
    assert mixes[0].large_share >= 0.6 and mixes[0].large_net >= 0.3
    assert det.factors("BTC") == {"large_share": det.mix[0, K.M_LARGE_SHARE], "institutional": 1.0}


def test_calm_rates():
    """Three calm synthetic hours: whale trades (expected ~ 1 - whale_quantile of trades) and mix signals, reported."""
    recs = calm_stream(3.0, seed=7)
    det, _ = detector(WhalesDetector, config_with())
    sigs = det.run(recs)
    hours = (recs["ts_exchange"][-1] - recs["ts_exchange"][0]) / 3.6e12
    whales = [s for s in sigs if isinstance(s, WhaleTrade)]
    mixes = [s for s in sigs if isinstance(s, TradeMix)]
    share = len(whales) / len(recs)
    print(f"\nwhales calm: {len(whales)} whale trades of {len(recs)} ({share:.4%}, {len(whales) / hours:.0f}/h); "
          f"{len(mixes)} institutional-mix signals in {hours:.1f} h")
    assert share < 3 * (1 - det.cfg.whale_quantile)
    assert len(mixes) / hours <= 1.0
