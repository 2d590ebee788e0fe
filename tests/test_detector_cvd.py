"""Delta/CVD detector: kernel vs the plain-Python reference, sessions, a scripted buy burst and a calm rate."""
from __future__ import annotations

import numpy as np
from hypothesis import given, settings

from engine.detectors.cvd import CvdDetector
from engine.kernels import cvd as K
from engine.record import Kind
from engine.signals import DeltaPressure, decode, encode
from engine.simulator.market import SyntheticMarket
from tests.reference_flow import (T0, FakeRegistry, RefCvd, assert_values_match, calm_stream, config_with, detector,
                                  kernel_vs_reference, market_records, records_from, stream_strategy)

SMALL = dict(windows_s=[5.0, 15.0, 30.0], pressure_window_s=15.0, history_windows=5, min_history=3,
             pressure_z=1.5, fallback_buy_share=0.7, min_pressure_usd={"BTC": 1000.0, "*": 100.0},
             session_period_s=3600.0, session_offset_s=600.0)


def small():
    cfg = config_with(cvd=SMALL)
    return detector(CvdDetector, cfg), cfg


@settings(max_examples=150, deadline=None)
@given(stream_strategy())
def test_kernel_matches_reference(events):
    (det, reg), cfg = small()
    ref = RefCvd(reg, cfg.detectors.cvd)
    kernel_vs_reference(det, ref, events)
    for k, (usd, base) in ref.cvd.items():
        assert_values_match(det.cum[k, :2].tolist(), [usd, base])
    for k, st in ref.state.items():
        want = [[w["delta"], w["share"], w["ratio"], w["accel"], w["total"]] for w in st["win"]]
        assert_values_match(det.win[k].ravel().tolist(), sum(want, []))
        assert det.cum[k, K.K_PRESSURE] == st["pressure"]
    assert np.isfinite(det.cum).all() and np.isfinite(det.win).all()


def test_session_reset_and_single_trades():
    (det, _), _ = small()
    assert det.run(records_from([])) == []
    hour = 3600 * 10**9
    # T0 is 22:13:20 UTC; sessions start at hh:10 (offset 600 s)
    det.run(records_from([(0, Kind.TRADE, 0, 1, 500.0), (10**9, Kind.TRADE, 0, -1, 200.0)]))
    assert det.cum[0, K.K_CVD_USD] == 300.0 and det.cum[0, K.K_CVD_BASE] == 3.0
    spot = det.keys.inst_akey[2]
    assert det.cum[spot, K.K_CVD_USD] == 0.0            # spot apart from perp
    det.run(records_from([(hour, Kind.TRADE, 0, -1, 50.0)]))
    assert det.cum[0, K.K_CVD_USD] == -50.0             # a new session starts from zero
    det.run(records_from([(0, Kind.TRADE, 0, 1, 50.0)]))   # back in the old session: too late for the CVD
    assert det.cum[0, K.K_CVD_USD] == -50.0


def test_signal_round_trips():
    sig = DeltaPressure(asset="BTC", direction="buy", window_s=300.0, delta_usd=5e6, zscore=4.2)
    assert decode(encode(sig)) == sig


def test_scripted_buy_burst_is_buy_pressure():
    m = SyntheticMarket(("BTCUSDT", "ETHUSDT"), seed=9, cascade_every_s=0.0)
    calm = m.run(420.0)
    m.script("volume_burst", "BTCUSDT", duration=60.0, factor=8.0, side="buy")
    burst = m.run(70.0)
    recs = market_records(calm + burst, ["BTCUSDT", "ETHUSDT"])
    onset = T0 + int(420e9)
    cfg = config_with(cvd=dict(pressure_window_s=60.0, min_history=5))
    det, _ = detector(CvdDetector, cfg, FakeRegistry([(15, "BTCUSDT", "BTC", 0), (15, "ETHUSDT", "ETH", 0)]))
    sigs = det.run(recs)
    agg = [s for s in sigs if s.asset == "BTC" and not s.venue and s.ts_exchange >= onset]
    assert agg and agg[0].direction == "buy" and not agg[0].fallback
    assert agg[0].ts_exchange - onset <= 30 * 10**9 and agg[0].zscore >= 4.0
    assert agg[0].buy_share > 0.6 and agg[0].buy_sell_ratio > 1.5 and agg[0].market == "perp"
    before = [s for s in sigs if s.ts_exchange < onset]
    print(f"\ncvd scenario: first buy pressure {(agg[0].ts_exchange - onset) / 1e9:.0f} s after onset, "
          f"z={agg[0].zscore:.1f}; {len(before)} signals in the 7 calm minutes before")
    f = det.factors("BTC")
    assert f["pressure_perp"] == 1.0 and 0.0 <= f["imbalance_perp"] <= 1.0
    th = det.thresholds("BTC")
    assert th["buy_pressure_usd_perp"] > th["delta_median_usd_perp"] > th["sell_pressure_usd_perp"]
    assert "cvd_usd_perp" in det.cvd("BTC")


def test_calm_false_signal_rate():
    """Three calm synthetic hours with 50/50 taker sides: pressure signals per hour, reported."""
    recs = calm_stream(3.0, seed=6)
    det, _ = detector(CvdDetector, config_with(cvd=dict(min_pressure_usd={"*": 50_000.0})))
    sigs = det.run(recs)
    hours = (recs["ts_exchange"][-1] - recs["ts_exchange"][0]) / 3.6e12
    fb = sum(s.fallback for s in sigs)
    rate = len(sigs) / hours
    print(f"\ncvd calm: {len(sigs)} pressure signals ({fb} from the fallback) in {hours:.1f} h over "
          f"{det.keys.n_keys} keys = {rate:.2f}/h")
    assert rate <= 1.0
