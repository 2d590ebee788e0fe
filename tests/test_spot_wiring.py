"""Binance spot wired through: DeltaPressure.led_by from the CVD detector on scripted spot- and perp-led moves."""
from __future__ import annotations

import subprocess
import sys

import msgspec
import numpy as np

from engine import flow_leader
from engine.bot import analytics as A
from engine.bot.candles import BUY, C, COLS, SELL
from engine.detectors.cvd import CvdDetector
from engine.instruments import Market
from engine.record import Kind, Side, Venue
from engine.signals import DeltaPressure, decode, encode
from tests.reference_flow import FakeRegistry, config_with, detector, records_from

# -- DeltaPressure.led_by ----------------------------------------------------------------------------------------

LED_CFG = dict(windows_s=[5.0, 15.0, 30.0], pressure_window_s=15.0, history_windows=8, min_history=4,
               pressure_z=3.0, min_pressure_usd={"*": 5_000.0})
PERP_BTC, SPOT_BTC, PERP_ETH = 0, 1, 2


def _calm(seconds: int, rng: np.random.Generator) -> list[tuple]:
    """Every 500 ms a $1k trade of random taker side on each instrument."""
    out = []
    for _ in range(seconds * 2):
        for k, iid in enumerate((PERP_BTC, SPOT_BTC, PERP_ETH)):
            out.append((500_000_000 if k == 0 else 0, Kind.TRADE, iid, int(rng.choice([Side.BUY, Side.SELL])),
                        1_000.0))
    return out


def _move(seconds: int, side: int, spot_usd: float, perp_usd: float, eth_usd: float = 1_000.0) -> list[tuple]:
    """Every 500 ms a spot and a perp BTC taker trade on ``side`` and an ETH perp one."""
    out = []
    for _ in range(seconds * 2):
        out += [(500_000_000, Kind.TRADE, SPOT_BTC, side, spot_usd), (0, Kind.TRADE, PERP_BTC, side, perp_usd),
                (0, Kind.TRADE, PERP_ETH, side, eth_usd)]
    return out


def test_led_by_names_the_market_that_led_a_scripted_move():
    reg = FakeRegistry([(Venue.BINANCE, "BTCUSDT", "BTC", Market.PERP_LINEAR),
                        (Venue.BINANCE_SPOT, "BTCUSDT", "BTC", Market.SPOT),
                        (Venue.BINANCE, "ETHUSDT", "ETH", Market.PERP_LINEAR)])
    det, _ = detector(CvdDetector, config_with(cvd=LED_CFG), reg)
    rng = np.random.default_rng(3)
    # one stream: calm, spot-led buying (spot takers buy $40k every 500 ms, the perp follows with $5k), calm,
    # perp-led selling (perp $60k, spot $4k); run in two batches, one per move
    parts = [_calm(240, rng), _move(15, Side.BUY, 40_000.0, 5_000.0), _calm(240, rng),
             _move(15, Side.SELL, 4_000.0, 60_000.0)]
    recs = records_from(sum(parts, []))
    ends = np.cumsum([len(p) for p in parts])
    spot_onset, perp_onset = int(recs["ts_exchange"][ends[0]]), int(recs["ts_exchange"][ends[2]])

    spot_led = [s for s in det.run(recs[:ends[1]]) if s.ts_exchange >= spot_onset]
    btc = [s for s in spot_led if s.asset == "BTC"]
    assert btc and {(s.direction, s.led_by) for s in btc} == {("buy", "spot")}
    assert {s.market for s in btc} == {"spot", "perp"}               # the perp's own pressure was spot-led too
    eth = [s for s in spot_led if s.asset == "ETH"]
    assert eth and {s.led_by for s in eth} == {""}                   # ETH has no spot market watched

    perp_led = [s for s in det.run(recs[ends[1]:]) if s.ts_exchange >= perp_onset]
    btc = [s for s in perp_led if s.asset == "BTC"]
    assert btc and {(s.direction, s.led_by) for s in btc} == {("sell", "perp")}
    assert det.cvd("BTC")["led_by_15s"] == -1.0                      # cvd()'s code agrees with the signal


def test_led_by_is_the_last_field_and_old_decoders_keep_working():
    assert DeltaPressure.__struct_fields__[-1] == "led_by"
    sig = DeltaPressure(asset="BTC", direction="buy", window_s=300.0, delta_usd=5e6, market="perp", led_by="spot")
    assert decode(encode(sig)) == sig
    old_payload = msgspec.msgpack.encode({k: v for k, v in msgspec.structs.asdict(sig).items() if k != "led_by"}
                                         | {"kind": "cvd"})
    assert decode(old_payload).led_by == ""                          # a producer from before the field
    Old = msgspec.defstruct("Old", [(f, object, None) for f in DeltaPressure.__struct_fields__[:-1]])
    assert msgspec.msgpack.decode(encode(sig), type=Old).delta_usd == 5e6   # a decoder from before the field


def test_flow_leader_is_the_one_home_and_the_detector_skips_the_bot():
    assert A.leading_market is flow_leader.leading_market
    c = np.zeros((2, COLS))
    c[:, BUY], c[:, SELL], c[:, C] = (3.0, 1.0), (1.0, 2.0), (100.0, 110.0)
    assert A.taker_delta_usd(c) == flow_leader.taker_delta_usd(c[:, BUY], c[:, SELL], c[:, C]) == 90.0
    assert A.taker_delta_usd(np.zeros((0, COLS))) == 0.0
    assert [flow_leader.led_by(d) for d in ({"spot": 5.0, "perp": 1.0}, {"spot": -1.0, "perp": -3.0},
                                            {"spot": 2.0, "perp": -2.0}, {"perp": 9.0}, {})] == ["spot", "perp", "", "",
                                                                                                ""]
    code = "import sys, engine.detectors.cvd; print(sorted(m for m in sys.modules if m.startswith('engine.bot')))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert out.stdout.strip() == "[]"
