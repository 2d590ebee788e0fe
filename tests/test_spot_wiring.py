"""Binance spot wired through: the bot actor's mini-ticker store for /top10 spot and its spot kline bootstrap
against the simulator, and DeltaPressure.led_by from the CVD detector on scripted spot- and perp-led moves."""
from __future__ import annotations

import asyncio
import subprocess
import sys
import time

import msgspec
import numpy as np
import pytest

from actors.bot import BotActor
from engine import flow_leader
from engine.actor_table import ActorTable, actor_table_segment
from engine.bot import analytics as A
from engine.bot.candles import BUY, C, COLS, MINUTE_MS, SELL, T, V
from engine.config import loads
from engine.detectors.cvd import CvdDetector
from engine.instruments import Market, Registry, registry_segment
from engine.record import Kind, Side, Venue, empty_records
from engine.ring import Ring, ring_segment
from engine.signals import DeltaPressure, decode, encode
from engine.simulator.runner import start_in_thread
from tests.fakes.botapi import FakeBotAPI
from tests.harness.bot import bot_config
from tests.reference_flow import FakeRegistry, config_with, detector, records_from

TOKEN = "424242:spot-wiring-token"
CHAT = 42


def _seed_klines(book, symbol: str, minutes: list[int], price: float, qty: float) -> None:
    """Past 1-minute klines in a simulator venue's kline book: one taker buy of ``qty`` at ``price`` and one taker
    sell of ``qty / 4`` a minute (the simulator only has the minutes since it started)."""
    for m in minutes:
        book.add(symbol, price, qty, True, m + 1_000)
        book.add(symbol, price, qty / 4, False, m + 2_000)


async def _until(predicate, timeout: float, message: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, message
        await asyncio.sleep(0.05)


@pytest.mark.process
@pytest.mark.timeout(60)
def test_bot_actor_ranks_spot_tickers_and_bootstraps_spot_klines(namespace, tmp_path):
    now_ms = time.time_ns() // 1_000_000
    minute = now_ms - now_ms % MINUTE_MS
    past = [minute - k * MINUTE_MS for k in range(6, 1, -1)]          # the five minutes M-6 .. M-2
    spot_first = minute - 4 * MINUTE_MS + 30_000                      # the spot ring's first trade: within M-4
    registry = Registry.open(registry_segment(namespace), 64, 16)
    registry.add(Venue.BINANCE, "BTCUSDT", "BTC")
    btc_spot = registry.add(Venue.BINANCE_SPOT, "BTCUSDT", "BTC", market=Market.SPOT)
    registry.add(Venue.BINANCE_SPOT, "ETHUSDT", "ETH", market=Market.SPOT)
    rings = {v: Ring.open(ring_segment(namespace, v), 4096) for v in ("binance", "binance_spot")}
    for r in rings.values():
        r.become_producer()
    trade = empty_records(1)
    trade[0] = (Kind.TRADE, Venue.BINANCE_SPOT, Side.BUY, 0, btc_spot, spot_first * 1_000_000,
                spot_first * 1_000_000, 40_123.0, 2.0, 80_246.0, 0, 0)
    rings["binance_spot"].write_batch(trade)
    with start_in_thread(rate=300.0, venues=["binance", "binance_spot"], symbols=["BTCUSDT", "ETHUSDT"], seed=5,
                         first_cascade_after_s=1e9) as sim, FakeBotAPI(token=TOKEN) as api:
        perp_book, spot_book = sim.sim.venue("binance").klines, sim.sim.venue("binance_spot").klines
        sim.call(_seed_klines, perp_book, "BTCUSDT", past, 50_000.0, 4.0)
        sim.call(_seed_klines, spot_book, "BTCUSDT", past, 40_000.0, 8.0)
        sim.call(_seed_klines, spot_book, "ETHUSDT", past, 3_000.0, 20.0)
        spot = sim.endpoints("binance_spot")
        cfg = loads(bot_config(namespace, tmp_path, api.base_url,
                               {"binance": {"symbols": ["BTCUSDT"], "rest_url": sim.endpoints("binance")["rest_url"]},
                                "binance_spot": {"symbols": ["BTCUSDT", "ETHUSDT"], "rest_url": spot["rest_url"],
                                                 "ws_urls": {"spot": spot["ws_urls"]["spot"]}}},
                               telegram={"chat_ids": [CHAT]}, bot={"kline_minutes": 30}))
        actor = BotActor(cfg, env={"TELEGRAM_BOT_TOKEN": TOKEN})
        actor._table = ActorTable.open(actor_table_segment(namespace))
        actor.setup()

        async def drive():
            main = asyncio.create_task(actor._main())
            await _until(lambda: actor.kline_stats["binance"]["kline_symbols"] == 1
                         and actor.kline_stats["binance_spot"]["kline_symbols"] == 2, 20, "both kline passes ran")
            await _until(lambda: {"BTCUSDT", "ETHUSDT"} <= set(actor.spot_tickers.tickers), 10, "mini-tickers")
            await _until(lambda: actor.spot_tickers.trading is not None, 10, "the spot listing")
            api.inject_command(chat_id=CHAT, text="/top10 spot", user_id=1)
            await _until(lambda: api.sent(chat_id=CHAT), 20, "the /top10 spot reply")
            counters = actor._counters()
            actor.stopping = True
            await asyncio.wait_for(main, 15)
            left = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            return counters, left

        try:
            counters, left = asyncio.run(drive())
        finally:
            actor.teardown()
            for obj in (*rings.values(), registry):
                obj.close()
        top10 = api.sent(chat_id=CHAT)[0].text

    assert left == [], "a task outlived the bot's event loop (the ticker feed was not cancelled)"
    assert "TOP 10 SPOT MARKETS" in top10 and "mini-ticker" in top10          # ranked from the ticker store
    assert " BTC " in top10 and " ETH " in top10
    assert "USDC" not in top10 and "BTCUP" not in top10     # listed above BTC by volume, never ranked
    assert "OLD" not in top10                                # halted (status BREAK): its stale ticker is not ranked
    assert counters["spot_listing_failed"] == 0
    assert counters["spot_tickers"] >= 2 and counters["spot_ticker_frames"] > 0
    assert counters["spot_ticker_malformed"] == 0
    assert counters["kline_symbols"] == 1 and counters["spot_kline_symbols"] == 2
    assert counters["kline_failed"] == counters["spot_kline_failed"] == 0
    assert counters["spot_kline_rest_errors"] == 0

    candles = actor.history.candles
    perp = candles.one_minute(("BTC", "perp"))
    assert perp[:, T].tolist() == past                                # perp boundary: now (its ring is empty)
    assert (perp[:, C] == 50_000.0).all() and (perp[:, V] == 5.0).all() and (perp[:, BUY] == 4.0).all()
    spot_btc = candles.one_minute(("BTC", "spot"))
    # the spot boundary is the spot ring's first trade (M-4): klines fill M-6 and M-5, the trade its own minute
    assert spot_btc[:, T].tolist() == past[:2] + [past[2]]
    assert (spot_btc[:2, C] == 40_000.0).all() and (spot_btc[:2, V] == 10.0).all()
    assert (spot_btc[:2, SELL] == 2.0).all()
    assert spot_btc[2, C] == 40_123.0 and spot_btc[2, V] == 2.0       # built from the ring, never overwritten
    spot_eth = candles.one_minute(("ETH", "spot"))
    assert spot_eth[:, T].tolist() == past[:2] and (spot_eth[:, V] == 25.0).all()


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
    assert not any(k.startswith("led_by_") for k in det.cvd("ETH"))  # perp only: nothing led, no leader claimed


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
