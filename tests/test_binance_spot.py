"""Binance spot beside the perps: parser, listing, simulator protocol, feed actor, bot (/price, /top10 spot, /cvd)
and spot-led vs perp-led taker flow."""
from __future__ import annotations

import asyncio
import json
import math
import shutil
import tempfile
import time
from collections import Counter

import msgspec
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from websockets.asyncio.client import connect

from engine.bot import analytics as A
from engine.bot.commands import dispatch, parse
from engine.bot.spot_tickers import SpotTickers
from engine.config import Config
from engine.detectors.cvd import CvdDetector
from engine.instruments import Market, Registry, registry_segment
from engine.kernels import columns as C
from engine.record import Kind, Side, Venue, empty_records
from engine.rest import RestPoller, WeightBudget
from engine.ring import RingReader
from engine.simulator.runner import start_in_thread
from engine.venues import Outcome
from engine.venues import binance_spot as S
from engine.wsfeed import WsFeed
from tests.conftest import wait_until
from tests.fuzz_frames import damaged
from tests.harness.feeds import BINANCE_OFF, feed_config, open_registry, open_ring, spawn_feed
from tests.test_binance_parser import mutate
from tests.reference_flow import FakeRegistry, config_with, detector, records_from
from tests.test_bot_known_market import NOW_NS, NOW_S, KnownMarket

# Binance spot API docs ("WebSocket Streams"): the documented payloads, verbatim.
DOC_TRADE = (b'{"e":"trade","E":1672515782136,"s":"BNBBTC","t":12345,"p":"0.001","q":"100",'
             b'"T":1672515782136,"m":true,"M":true}')
DOC_AGG = (b'{"e":"aggTrade","E":1672515782136,"s":"BNBBTC","a":12345,"p":"0.001","q":"100","f":100,"l":105,'
           b'"T":1672515782136,"m":true,"M":true}')
DOC_MINI = (b'{"e":"24hrMiniTicker","E":1672515782136,"s":"BNBBTC","c":"0.0025","o":"0.0010","h":"0.0025",'
            b'"l":"0.0010","v":"10000","q":"18"}')


def _mini(symbol: str, last: float, open_: float, base_vol: float, quote_vol: float) -> str:
    return (f'{{"e":"24hrMiniTicker","E":{int(NOW_S * 1000)},"s":"{symbol}","c":"{last}","o":"{open_}",'
            f'"h":"{last}","l":"{open_}","v":"{base_vol}","q":"{quote_vol}"}}')


# -- parser -------------------------------------------------------------------------

def test_side_and_unit_rule_on_the_documented_trade():
    out: list = []
    p = S.Parser({"BNBBTC": 3}.get)
    assert p.parse(DOC_TRADE, 99, out) == (Outcome.EMITTED, "bnbbtc@trade")
    kind, venue, side, _, iid, ts, recv, price, qty, notional, tid, fills = out[0]
    # m = true: the buyer was the maker, so the taker SOLD; q is base units (100 BNB), notional in the quote
    assert (kind, venue, side, iid) == (Kind.TRADE, Venue.BINANCE_SPOT, Side.SELL, 3)
    assert (price, qty, tid, fills) == (0.001, 100.0, 12345.0, 1.0)
    assert notional == pytest.approx(0.1) and ts == 1672515782136 * 1_000_000 and recv == 99
    assert p.parse(DOC_AGG, 1, out)[0] == Outcome.EMITTED and out[1][2] == Side.SELL and out[1][11] == 6.0
    buy = DOC_AGG.replace(b'"m":true', b'"m":false')
    assert p.parse(b'{"stream":"bnbbtc@aggTrade","data":' + buy + b"}", 1, out) == (Outcome.EMITTED,
                                                                                   "bnbbtc@aggTrade")
    assert out[2][2] == Side.BUY


def test_mini_ticker_array_fills_the_tickers_and_emits_nothing():
    p = S.Parser(lambda s: None)
    out: list = []
    frame = b'{"stream":"!miniTicker@arr","data":[' + DOC_MINI + b"]}"
    assert p.parse(frame, 1, out) == (Outcome.PARSED, "!miniTicker@arr") and out == []
    t = p.tickers["BNBBTC"]
    assert (t.last, t.open, t.base_volume, t.quote_volume, t.ts_ms) == (0.0025, 0.001, 10000.0, 18.0, 1672515782136)
    assert t.change_pct == pytest.approx(150.0)
    assert p.parse(b"[" + DOC_MINI + b"]", 1, out) == (Outcome.PARSED, "!miniTicker@arr")
    assert S.parse_mini_tickers(b"[" + DOC_MINI + b"]")["BNBBTC"] == t


@pytest.mark.parametrize("frame, outcome", [
    (DOC_TRADE[:40], Outcome.MALFORMED),                                             # truncated
    (DOC_TRADE.replace(b'"p":"0.001"', b'"p":"-0.001"'), Outcome.MALFORMED),         # negative price
    (DOC_TRADE.replace(b'"q":"100"', b'"q":"NaN"'), Outcome.MALFORMED),              # NaN size
    (DOC_TRADE.replace(b'"q":"100"', b'"q":"1e400"'), Outcome.MALFORMED),            # overflow
    (DOC_TRADE.replace(b'"m":true', b'"m":"yes"'), Outcome.MALFORMED),               # wrong type
    (b"[" + DOC_MINI.replace(b'"v":"10000"', b'"v":"-1"') + b"]", Outcome.MALFORMED),  # one bad ticker spoils it
    (b'{"result":null,"id":7}', Outcome.CONTROL),
    (b'{"error":{"code":2,"msg":"Invalid request"},"id":7}', Outcome.CONTROL),
    (b'{"e":"kline","E":1,"s":"BNBBTC","k":{}}', Outcome.IGNORED),
    (b'{"e":"somethingNew","E":1}', Outcome.UNKNOWN),
    (DOC_TRADE.replace(b'"BNBBTC"', b'"ETHBTC"'), Outcome.IGNORED),                  # not registered
    (DOC_TRADE.replace(b'"q":"100"', b'"q":"0"'), Outcome.PARSED),                   # nothing traded
])
def test_bad_and_protocol_frames_are_classified_never_raised(frame, outcome):
    p = S.Parser({"BNBBTC": 3}.get)
    out: list = []
    assert p.parse(frame, 1, out)[0] == outcome
    assert out == []
    assert p.tickers == {}


@st.composite
def spot_frames(draw):
    """Documented spot frames with 1-3 fields dropped or given weird values, maybe wrapped, maybe damaged."""
    template = draw(st.sampled_from([json.loads(DOC_TRADE), json.loads(DOC_AGG), json.loads(DOC_MINI)]))
    obj = mutate(draw, template)
    if template["e"] == "24hrMiniTicker":
        obj = [json.loads(DOC_MINI), obj]
    if draw(st.booleans()):
        obj = {"stream": "!miniTicker@arr" if isinstance(obj, list) else "bnbbtc@aggTrade", "data": obj}
    return damaged(draw, json.dumps(obj, allow_nan=True).encode(), intact_weight=1)


@pytest.mark.property
@settings(max_examples=200, deadline=None)
@given(spot_frames())
def test_fuzzed_spot_frames_never_raise_or_emit_bad_numbers(raw):
    p = S.Parser({"BNBBTC": 3}.get)
    out: list = []
    outcome, stream = p.parse(raw, 1, out)
    assert isinstance(outcome, Outcome) and isinstance(stream, str)
    if outcome != Outcome.EMITTED:
        assert out == []
    for r in out:
        assert r[2] in (Side.BUY, Side.SELL) and all(math.isfinite(v) and v > 0.0 for v in (r[7], r[8], r[9]))
    for t in p.tickers.values():
        assert all(math.isfinite(v) and v >= 0.0 for v in t[:6])


def test_listing_keeps_trading_plain_pairs_and_registers_them_as_spot(namespace):
    body = json.dumps({"symbols": [
        {"symbol": "BTCUSDT", "status": "TRADING", "baseAsset": "BTC", "quoteAsset": "USDT",
         "isSpotTradingAllowed": True, "filters": [{"filterType": "PRICE_FILTER", "tickSize": "0.01000000"}]},
        {"symbol": "BTCUPUSDT", "status": "TRADING", "baseAsset": "BTCUP", "quoteAsset": "USDT"},
        {"symbol": "JUPUSDT", "status": "TRADING", "baseAsset": "JUP", "quoteAsset": "USDT"},
        {"symbol": "USDCUSDT", "status": "TRADING", "baseAsset": "USDC", "quoteAsset": "USDT"},
        {"symbol": "OLDUSDT", "status": "BREAK", "baseAsset": "OLD", "quoteAsset": "USDT"}]}).encode()
    infos = {i.symbol: i for i in S.parse_exchange_info(body)}
    assert infos["BTCUSDT"].contract_type == "spot" and infos["BTCUSDT"].tick_size == 0.01
    assert infos["JUPUSDT"].contract_type == "spot"                      # JUP is not J + UP
    assert infos["BTCUPUSDT"].contract_type == infos["USDCUSDT"].contract_type == "other"
    assert infos["OLDUSDT"].status == "break"
    assert S.parse_exchange_info(b'{"symbols": 3}') is None
    from engine import symbols
    assert [i.symbol for i in symbols.eligible(list(infos.values()), ["USDT"], S.CONTRACT_TYPE)] == ["BTCUSDT", "JUPUSDT"]
    reg = Registry.open(registry_segment(namespace), 16, 8)
    try:
        ids = symbols.register(reg, S, ["BTCUSDT", "ETHUSDT"], infos)   # ETHUSDT: no listing entry (fallback path)
        spot = [reg.get(ids[s]) for s in ("BTCUSDT", "ETHUSDT")]
        assert [(i.venue, i.market, i.asset) for i in spot] == [(Venue.BINANCE_SPOT, Market.SPOT, "BTC"),
                                                                (Venue.BINANCE_SPOT, Market.SPOT, "ETH")]
        perp = reg.add(Venue.BINANCE, "BTCUSDT", "BTC")                  # same name, another instrument
        assert perp != ids["BTCUSDT"] and reg.get(perp).market == Market.PERP_LINEAR
    finally:
        reg.close()


def test_plan_shards_streams_and_adds_the_mini_ticker_once():
    vcfg = msgspec.structs.replace(Config().venues.binance_spot, symbols=["BTCUSDT", "ETHUSDT", "SOLUSDT"],
                                   streams=["trades", "tickers"], max_streams_per_connection=2)
    plans = S.plan(vcfg)
    assert [p.streams for p in plans] == [("btcusdt@aggTrade", "ethusdt@aggTrade"),
                                          ("solusdt@aggTrade", "!miniTicker@arr")]
    assert plans[0].url == "wss://stream.binance.com:9443/stream?streams=btcusdt@aggTrade/ethusdt@aggTrade"
    assert S.stream_symbol("btcusdt@aggTrade") == "BTCUSDT" and S.stream_symbol("!miniTicker@arr") == ""
    assert json.loads(S.subscribe_messages(["btcusdt@trade"], 4)[0]) == {"method": "SUBSCRIBE",
                                                                          "params": ["btcusdt@trade"], "id": 4}


# -- simulator ------------------------------------------------------------------------

@pytest.mark.timeout(40)
def test_simulator_speaks_spot_ws_and_rest():
    with start_in_thread(rate=300.0, venues=["binance", "binance_spot"], seed=3, first_cascade_after_s=1e9) as sim:
        ep = sim.endpoints("binance_spot")
        base, rest = ep["ws_urls"]["spot"], ep["rest_url"]

        async def session():
            async with connect(f"{base}/ws/btcusdt@aggTrade", compression=None) as ws:     # raw mode
                raw = json.loads(await asyncio.wait_for(ws.recv(), 10))
                assert raw["e"] == "aggTrade" and raw["s"] == "BTCUSDT" and "M" in raw
                await ws.send(json.dumps({"method": "SUBSCRIBE", "params": ["!miniTicker@arr", "btcusdt@forceOrder"],
                                          "id": 1}))
                await ws.send(json.dumps({"method": "LIST_SUBSCRIPTIONS", "id": 2}))
                replies = {}
                while len(replies) < 2:
                    msg = json.loads(await asyncio.wait_for(ws.recv(), 10))
                    if isinstance(msg, dict) and "id" in msg:
                        replies[msg["id"]] = msg
                assert replies[1] == {"result": None, "id": 1}
                assert replies[2]["result"] == ["!miniTicker@arr", "btcusdt@aggTrade"]   # forceOrder is not spot
                await asyncio.wait_for(await ws.ping(), 5)                                   # protocol ping answered
            async with connect(f"{base}/stream?streams=ethusdt@trade/!miniTicker@arr", compression=None) as ws:
                seen = {}
                while len(seen) < 2:
                    env = json.loads(await asyncio.wait_for(ws.recv(), 10))
                    seen[env["stream"]] = env["data"]
                assert seen["ethusdt@trade"]["e"] == "trade"
                tickers = {t["s"]: t for t in seen["!miniTicker@arr"]}
                assert {"BTCUSDT", "ETHUSDT", "USDCUSDT", "BTCUPUSDT"} <= set(tickers)

        asyncio.run(session())
        counters = sim.counters()["venues"]["binance_spot"]
        assert counters["spot_trades"] > 0 and counters["spot_unknown_streams"] == 1

        async def rest_calls():
            poller = RestPoller(S, rest, WeightBudget(6000))
            try:
                listing = await poller.instruments()
                volumes = await poller.tickers()
                from engine.bot.candles import fetch_binance_klines
                now_ms = time.time_ns() // 1_000_000
                klines = await fetch_binance_klines(poller.get_retrying, "BTCUSDT", 5, now_ms + 60_000,
                                                    path=S.KLINE_PATH, weight=S.kline_weight)
                return listing, volumes, klines
            finally:
                await poller.aclose()

        listing, volumes, klines = asyncio.run(rest_calls())
        kinds = {i.symbol: i.contract_type for i in listing}
        assert kinds["BTCUSDT"] == "spot" and kinds["USDCUSDT"] == kinds["BTCUPUSDT"] == "other"
        assert volumes["USDCUSDT"] > volumes["BTCUSDT"] > 0
        from engine.bot.candles import BUY, V
        assert len(klines) >= 1 and (klines[:, BUY] <= klines[:, V] + 1e-9).all() and klines[:, V].sum() > 0
        venue = sim.sim.venue("binance_spot")
        st = sim.sim.market.states["BTCUSDT"]
        assert venue.spot_price("BTCUSDT", 50_000.0) == pytest.approx(50_000.0 / (1.0 + st.basis))


@pytest.mark.timeout(40)
def test_wsfeed_counts_corrupt_spot_frames_and_keeps_parsing():
    with start_in_thread(rate=400.0, venues=["binance_spot"], seed=4, first_cascade_after_s=1e9) as sim:
        vcfg = msgspec.structs.replace(Config().venues.binance_spot, symbols=["BTCUSDT", "ETHUSDT"],
                                       streams=["trades", "tickers"])
        parser = S.Parser({"BTCUSDT": 0, "ETHUSDT": 1}.get)
        records: list = []
        feed = WsFeed(S, S.plan(vcfg, sim.endpoints("binance_spot")["ws_urls"]), parser, records.extend)
        sim.call(sim.sim.server.inject, "corrupt", 3, venue="binance_spot", stream="btcusdt@aggTrade", mode="truncate")

        async def run():
            task = asyncio.create_task(feed.run())
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline:
                await asyncio.sleep(0.1)
                if feed.stats.outcomes[Outcome.MALFORMED] >= 3 and len(records) > 20 and parser.tickers:
                    break
            feed.stop()
            await task

        asyncio.run(run())
    assert feed.stats.outcomes[Outcome.MALFORMED] == 3
    assert {r[4] for r in records if r[0] == Kind.TRADE} == {0, 1}
    assert all(r[1] == Venue.BINANCE_SPOT and r[7] > 0 and r[8] > 0 for r in records if r[0] == Kind.TRADE)
    assert "BTCUSDT" in parser.tickers and "USDCUSDT" in parser.tickers


# -- feed actor ----------------------------------------------------------------------------

@pytest.mark.process
@pytest.mark.timeout(60)
def test_feed_actor_writes_spot_trades_of_spot_instruments(namespace):
    run = tempfile.mkdtemp(prefix="ut-spot-feed-", dir="/tmp")
    with start_in_thread(rate=400.0, venues=["binance_spot"], seed=6, first_cascade_after_s=1e9) as sim:
        ep = sim.endpoints("binance_spot")
        ring, reg = open_ring(namespace, "binance_spot"), open_registry(namespace)
        text = feed_config(namespace, run, "binance_spot", {"spot": ep["ws_urls"]["spot"]}, ep["rest_url"], BINANCE_OFF,
                           symbols="top:2", fallback_symbols=["BTCUSDT"], stale_after_s=60.0)
        proc = spawn_feed(text, "binance_spot")
        try:
            reader = RingReader(ring, "test", start="earliest")
            seen: Counter = Counter()

            def drain():
                recs, _ = reader.poll()
                for r in recs[recs["kind"] == Kind.TRADE]:
                    assert r["venue"] == Venue.BINANCE_SPOT and r["side"] in (Side.BUY, Side.SELL)
                    assert r["notional"] == pytest.approx(r["price"] * r["qty"], rel=1e-6)
                    seen[reg.get(int(r["instrument"])).symbol] += 1
                return len(seen) == 2

            wait_until(drain, 30, message="spot trades of both selected pairs")
        finally:
            proc.terminate()
            proc.join(15)
        try:
            listed = [i for i in reg.all() if i.venue == Venue.BINANCE_SPOT]
            # top:2 by 24 h volume skips the stablecoin and leveraged-token pairs listed above every real one
            assert sorted(i.symbol for i in listed) == sorted(seen) and "USDCUSDT" not in seen
            assert all(i.market == Market.SPOT for i in listed)
        finally:
            for obj in (ring, reg):
                obj.close()
            shutil.rmtree(run, ignore_errors=True)
    assert proc.exitcode == 0


# -- spot-led vs perp-led flow ------------------------------------------------------------------

def test_leading_market():
    assert A.leading_market(5e6, 1e6) == "spot" and A.leading_market(1e6, 5e6) == "perp"
    assert A.leading_market(-5e6, 1e6) == "spot"          # spot selling outweighs perp buying
    assert A.leading_market(-1e6, -3e6) == "perp" and A.leading_market(0.0, 0.0) == "none"
    assert A.leading_market(2e6, -2e6) == "none"


@pytest.mark.parametrize("spot_usd, perp_usd, leader", [(50_000.0, -10_000.0, 1.0), (10_000.0, -50_000.0, -1.0)])
def test_cvd_detector_keeps_spot_and_perp_apart_and_names_the_leader(spot_usd, perp_usd, leader):
    reg = FakeRegistry([(Venue.BINANCE, "BTCUSDT", "BTC", Market.PERP_LINEAR),
                        (Venue.BINANCE_SPOT, "BTCUSDT", "BTC", Market.SPOT)])
    det, _ = detector(CvdDetector, config_with(cvd=dict(windows_s=[5.0, 15.0, 30.0], pressure_window_s=15.0)), reg)
    events = []   # 20 s of a spot and a perp trade every 500 ms, taker sides opposite
    for _ in range(40):
        events.append((500_000_000, Kind.TRADE, 1, Side.BUY, spot_usd))
        events.append((0, Kind.TRADE, 0, Side.SELL, -perp_usd))
    det.run(records_from(events))
    out = det.cvd("BTC")
    assert out["cvd_usd_spot"] == pytest.approx(40 * spot_usd) and out["cvd_usd_perp"] == pytest.approx(40 * perp_usd)
    assert out["delta_usd_15s_spot"] == pytest.approx(30 * spot_usd)       # the buckets of the last 15 s
    assert out["delta_usd_15s_perp"] == pytest.approx(30 * perp_usd)
    assert [out[f"led_by_{w}"] for w in ("5s", "15s", "30s")] == [leader] * 3


# -- bot ---------------------------------------------------------------------------------------

@pytest.fixture
def spot_market(namespace, tmp_path):
    """The known market plus BTC spot on Binance: 20 below the perp, taker buys for the last hour."""
    m = KnownMarket(namespace, tmp_path)
    iid = m.registry.add(Venue.BINANCE_SPOT, "BTCUSDT", "BTC", market=Market.SPOT)
    rows = np.zeros((64, C.NCOL))
    rows[iid, C.NOW_TS], rows[iid, C.PRICE] = NOW_NS - 1_000_000_000, 49_980.0
    m.table.write("i", np.array([iid]), rows)
    n = 2 * 1440
    recs = empty_records(n)
    minute = 60_000_000_000
    start = (NOW_NS // minute) * minute - (n - 1) * minute
    for k in range(n):
        ts = start + k * minute + 2
        side = Side.BUY if NOW_NS - ts < 60 * minute else Side.SELL
        recs[k] = (Kind.TRADE, Venue.BINANCE_SPOT, side, 0, iid, ts, ts, 49_980.0, 30.0, 49_980.0 * 30.0, 0, 0)
    m.history.ingest(recs, m.registry)
    yield m
    m.close()


def _ask(market, text: str, tickers=None) -> str:
    name, args = parse(text)
    ctx = market.context()
    ctx.spot_tickers = tickers
    return dispatch(ctx, name, args).text


def test_price_shows_spot_next_to_perp(spot_market):
    text = _ask(spot_market, "/price BTC")
    spot, perp = text.split("⚡ PERPETUALS")
    assert "🏪 SPOT" in spot and "no spot market" not in spot
    assert "$49,980.00" in spot and "Volume 24h: <b>43,200 BTC" in spot       # 30 BTC a minute
    assert "$50,000.00" in perp and "OI:" in perp and "OI:" not in spot         # spot has no OI or funding


def test_volume_and_cvd_use_spot_on_request_and_name_the_leader(spot_market):
    spot = _ask(spot_market, "/cvd BTC 1h spot")
    perp = _ask(spot_market, "/cvd BTC 1h")
    assert "Current CVD</b>: -82,800.00 BTC" in spot      # 2 days of 30 BTC/min, taker buys only in the last hour
    assert "Current CVD</b>: -2,864.00 BTC" in perp       # the perp series of the known market, as before
    # over the 96 one-minute candles: spot bought 30 BTC/min for 60 min and sold for 36 (+720 BTC), the perp
    # sold 1 BTC/min and bought 15 min at most 15 BTC/min: spot led the buying
    assert "Flow Leader</b>: SPOT-LED 🏪 (taker delta spot $35.99M, perp -$3.96M)" in _ask(spot_market, "/cvd BTC 1m")
    vol = _ask(spot_market, "/volume BTC 15m spot")
    assert "Current Volume</b>: 450.00 BTC" in vol        # 15 spot candles of 30 BTC (the perp's spike was 225)
    assert "Current Volume</b>: 225.00 BTC" in _ask(spot_market, "/volume BTC 15m")


def test_top10_spot_ranks_the_mini_ticker_without_stablecoins_or_leveraged_tokens(spot_market):
    tickers = SpotTickers()
    frame = "[" + ",".join([_mini("BTCUSDT", 50000.0, 40000.0, 20000.0, 1.0e9), _mini("ETHUSDT", 3000.0, 3100.0, 1e5, 3.0e8),
                            _mini("USDCUSDT", 1.0, 1.0, 5e9, 5.0e9), _mini("BTCUPUSDT", 30.0, 20.0, 1e8, 3.0e9),
                            _mini("JUPUSDT", 0.5, 0.5, 1e8, 5.0e7), _mini("ETHBTC", 0.06, 0.06, 1e5, 6e3)]) + "]"
    assert tickers.ingest(frame.encode())
    assert [r.symbol for r in tickers.top(10)] == ["BTCUSDT", "ETHUSDT", "JUPUSDT"]
    text = _ask(spot_market, "/top10 spot", tickers)
    assert "TOP 10 SPOT MARKETS" in text and "mini-ticker" in text
    assert "1.</b> BTC 🟢 +25.00%" in text and "2.</b> ETH 🔴" in text and "USDC" not in text
    assert "Vol: 20,000 BTC ($1.00B)" in text
    fallback = _ask(spot_market, "/top10 spot")            # no ticker stream: the watched spot trades
    assert "TOP 10 SPOT MARKETS" in fallback and "BTC" in fallback and "mini-ticker" not in fallback
