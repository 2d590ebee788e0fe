"""Bybit and OKX spot beside their perps: the perp parsers' trade handling under the spot venue ids, the wire plans,
the simulators' spot protocols and REST, feeds against the simulator with exact trade counts, the feed actor's
spot instruments, and CVD keeping spot and perp apart."""
from __future__ import annotations

import asyncio
import json
import tempfile
import time
from collections import Counter

import msgspec
import numpy as np
import pytest
from websockets.asyncio.client import connect

from engine.config import Config
from engine.detectors.cvd import CvdDetector
from engine.instruments import Market
from engine.record import RECORD_DTYPE, Flag, Kind, Side, Venue
from engine.rest import RestPoller, WeightBudget
from engine.ring import RingReader
from engine.simulator.runner import start_in_thread
from engine.venues import Outcome
from engine.venues import bybit, okx
from engine.venues import bybit_spot as BS
from engine.venues import okx_spot as OS
from engine.wsfeed import WsFeed
from tests.conftest import wait_until
from tests.harness.feeds import BINANCE_OFF, feed_config, open_registry, open_ring, spawn_feed, stop_feed
from tests.reference_flow import FakeRegistry, config_with, detector

# Bybit v5 "Trade" (publicTrade) docs example, verbatim: spot pushes this format on /v5/public/spot
BYBIT_DOC_TRADE = (b'{"topic":"publicTrade.BTCUSDT","type":"snapshot","ts":1672304486868,"data":[{"T":1672304486865,'
                   b'"s":"BTCUSDT","S":"Buy","v":"0.001","p":"16578.50","L":"PlusTick",'
                   b'"i":"20f43950-d8dd-5b31-9112-a178eb6023af","BT":false,"seq":1783284617}]}')
# the same trade as spot sends it: a numeric trade id, no tick direction, ts before type
BYBIT_SPOT_TRADE = (b'{"topic":"publicTrade.BTCUSDT","ts":1672304486868,"type":"snapshot","data":['
                    b'{"i":"2290000000061666327","T":1672304486865,"p":"16578.50","v":"0.001","S":"Sell","s":"BTCUSDT",'
                    b'"BT":false}]}')
BYBIT_DOC_LIQ = (b'{"topic":"allLiquidation.BTCUSDT","type":"snapshot","ts":1739502303204,"data":[{"T":1739502302929,'
                 b'"s":"BTCUSDT","S":"Sell","v":"20000","p":"0.04499"}]}')
# OKX v5 "Trades channel" example (PROTOCOLS.md 3.3, the docs' own, a spot instId): sz is base currency on spot
OKX_DOC_TRADE = (b'{"arg":{"channel":"trades","instId":"BTC-USDT"},"data":[{"instId":"BTC-USDT","tradeId":"130639474",'
                 b'"px":"42219.9","sz":"0.12060306","side":"buy","ts":"1630048897897","count":"3","source":"0",'
                 b'"seqId":1234}]}')
OKX_DOC_BBO = (b'{"arg":{"channel":"bbo-tbt","instId":"BTC-USDT"},"data":[{"asks":[["8476.98","415","0","13"]],'
               b'"bids":[["8476.97","256","0","12"]],"ts":"1597026383085","seqId":123456}]}')
SPOT_VENUES = ["bybit", "okx", "bybit_spot", "okx_spot"]


# -- parsers: the side/unit rule on the documented messages ----------------------------------------

# name: (parser class, its instruments, documented frame, its stream, venue, instrument id, T ms, price, base qty,
#        aux, fills)
DOC_TRADES = {
    # S = Buy: the TAKER bought; v is base coin (0.001 BTC), the notional is in USDT
    "bybit_spot": (BS.Parser, {"BTCUSDT": 4}, BYBIT_DOC_TRADE, "publicTrade.BTCUSDT", Venue.BYBIT_SPOT, 4,
                   1672304486865, 16578.5, 0.001, 0.0, 1.0),
    # side = buy: the TAKER bought; sz 0.12060306 is BTC itself (no contracts on spot); aux = tradeId, fills = count
    "okx_spot": (OS.Parser, {"BTC-USDT": 2}, OKX_DOC_TRADE, "trades:BTC-USDT", Venue.OKX_SPOT, 2,
                 1630048897897, 42219.9, 0.12060306, 130639474.0, 3.0),
}


@pytest.mark.parametrize("name", list(DOC_TRADES))
def test_documented_spot_trade_is_a_taker_trade_in_base_units_under_the_spot_venue(name):
    parser, instruments, frame, stream, venue, iid, t_ms, price, qty, aux, fills = DOC_TRADES[name]
    out: list = []
    assert parser(instruments.get).parse(frame, 7, out) == (Outcome.EMITTED, stream)
    assert out == [(Kind.TRADE, venue, Side.BUY, 0, iid, t_ms * 1_000_000, 7, price, qty, pytest.approx(price * qty),
                    aux, fills)]


def test_bybit_spot_reads_spot_trade_ids_block_trades_and_the_linear_format():
    out: list = []
    p = BS.Parser({"BTCUSDT": 4}.get)
    assert p.parse(BYBIT_DOC_TRADE, 7, out) == (Outcome.EMITTED, "publicTrade.BTCUSDT")
    assert p.parse(BYBIT_SPOT_TRADE, 8, out) == (Outcome.EMITTED, "publicTrade.BTCUSDT")
    assert out[1][1:3] == (Venue.BYBIT_SPOT, Side.SELL) and out[1][8] == 0.001
    block = BYBIT_SPOT_TRADE.replace(b'"BT":false', b'"BT":true')
    assert p.parse(block, 9, out)[0] == Outcome.EMITTED and out[2][3] == Flag.NON_MARKET
    # the linear parser reads the same frame as the perpetual's trade
    perp: list = []
    assert bybit.Parser({"BTCUSDT": 1}.get).parse(BYBIT_DOC_TRADE, 7, perp)[0] == Outcome.EMITTED
    assert perp[0][1:3] == (Venue.BYBIT, Side.BUY) and perp[0][5:] == out[0][5:]


def test_bybit_spot_ignores_the_topics_spot_has_none_of():
    out: list = []
    p = BS.Parser({"BTCUSDT": 4}.get)
    assert p.parse(BYBIT_DOC_LIQ, 1, out) == (Outcome.IGNORED, "allLiquidation.BTCUSDT") and out == []
    book = (b'{"topic":"orderbook.50.BTCUSDT","type":"snapshot","ts":1,"data":{"s":"BTCUSDT","b":[["100.0","1"]],'
            b'"a":[["101.0","1"]],"u":1,"seq":1},"cts":1}')
    assert p.parse(book, 1, out)[0] == Outcome.IGNORED and out == []
    assert p.parse(b'{"success":true,"ret_msg":"pong","conn_id":"x","op":"ping"}', 1, out)[0] == Outcome.CONTROL
    assert p.parse(BYBIT_SPOT_TRADE.replace(b'"S":"Sell"', b'"S":"Hold"'), 1, out)[0] == Outcome.MALFORMED
    assert p.parse(BYBIT_SPOT_TRADE[:-9], 1, out)[0] == Outcome.MALFORMED and out == []


def test_okx_spot_sells_and_sizes_without_ctval():
    out: list = []
    sell = OKX_DOC_TRADE.replace(b'"side":"buy"', b'"side":"sell"')
    assert OS.Parser({"BTC-USDT": 2}.get).parse(sell, 5, out)[0] == Outcome.EMITTED and out[0][2] == Side.SELL
    assert out[0][8] == 0.12060306                     # base currency whatever the swap's ctVal would be
    # the swap parser needs a ctVal for every instrument: without one it will not guess the size
    swap = okx.Parser({"BTC-USDT": 2}.get, contract_sizes={})
    assert swap.parse(OKX_DOC_TRADE, 5, []) == (Outcome.IGNORED, "trades:BTC-USDT") and swap.unsized == 1


def test_okx_spot_ignores_the_channels_spot_has_none_of():
    out: list = []
    p = OS.Parser({"BTC-USDT": 2}.get)
    assert p.parse(OKX_DOC_BBO, 1, out) == (Outcome.IGNORED, "bbo-tbt:BTC-USDT") and out == []
    liq = (b'{"arg":{"channel":"liquidation-orders","instType":"MARGIN"},"data":[{"details":[{"side":"sell",'
           b'"bkPx":"1","sz":"1","ts":"1"}],"instId":"BTC-USDT","instType":"MARGIN"}]}')
    assert p.parse(liq, 1, out) == (Outcome.IGNORED, "liquidation-orders:MARGIN") and out == []
    assert p.parse(b"pong", 1, out)[0] == Outcome.CONTROL
    assert p.parse(OKX_DOC_TRADE.replace(b'"side":"buy"', b'"side":"hold"'), 1, out)[0] == Outcome.MALFORMED
    assert p.parse(OKX_DOC_TRADE.replace(b'"px":"42219.9"', b'"px":"-1"'), 1, out)[0] == Outcome.MALFORMED
    assert out == []


# -- wire plans ---------------------------------------------------------------------------------

def test_bybit_spot_plan_subscribes_trades_only_ten_topics_a_request():
    symbols = [f"C{i}USDT" for i in range(25)]
    vcfg = msgspec.structs.replace(Config().venues.bybit_spot, symbols=symbols,
                                   streams=["trades", "book", "liquidations", "mark"])
    plans = BS.plan(vcfg)
    assert [p.key for p in plans] == ["spot/0"] and plans[0].url == "wss://stream.bybit.com/v5/public/spot"
    assert plans[0].streams == tuple(f"publicTrade.{s}" for s in symbols) == plans[0].watched
    frames = [json.loads(m) for m in BS.subscribe_messages(plans[0].streams, 5)]
    assert [len(f["args"]) for f in frames] == [10, 10, 5] and [f["req_id"] for f in frames] == ["5", "6", "7"]
    assert {f["op"] for f in frames} == {"subscribe"}
    assert [len(json.loads(m)["args"]) for m in BS.unsubscribe_messages(plans[0].streams)] == [10, 10, 5]
    assert BS.stream_symbol("publicTrade.ETHUSDT") == "ETHUSDT"


def test_okx_spot_plan_subscribes_trades_only_on_the_public_socket():
    vcfg = msgspec.structs.replace(Config().venues.okx_spot, streams=["trades", "book", "liquidations", "oi"])
    plans = OS.plan(vcfg)
    assert [p.key for p in plans] == ["spot/0"] and plans[0].url == "wss://ws.okx.com:8443/ws/v5/public"
    assert plans[0].streams == ("trades:BTC-USDT", "trades:ETH-USDT", "trades:SOL-USDT") == plans[0].watched
    (frame,) = [json.loads(m) for m in OS.subscribe_messages(plans[0].streams)]
    assert frame["args"] == [{"channel": "trades", "instId": p} for p in ("BTC-USDT", "ETH-USDT", "SOL-USDT")]


# -- simulator: protocols and REST ------------------------------------------------------------------

async def _bybit_replies(url: str, frames: list[dict]) -> list[dict]:
    async with connect(url, compression=None) as ws:
        replies = []
        for f in frames:
            await ws.send(json.dumps(f))
            while True:
                msg = json.loads(await asyncio.wait_for(ws.recv(), 10))
                if "op" in msg:
                    replies.append(msg)
                    break
        return replies


@pytest.mark.timeout(40)
def test_simulators_speak_spot_ws_and_claim_spot_rest():
    with start_in_thread(rate=300.0, venues=SPOT_VENUES, seed=3, first_cascade_after_s=1e9) as sim:
        bep, oep = sim.endpoints("bybit_spot"), sim.endpoints("okx_spot")

        async def session():
            eleven = [f"publicTrade.{s}" for s in ["BTCUSDT"] * 11]
            replies = await _bybit_replies(bep["ws_urls"]["spot"], [
                {"req_id": "1", "op": "subscribe", "args": eleven},
                {"req_id": "2", "op": "subscribe", "args": ["allLiquidation.BTCUSDT"]},
                {"req_id": "3", "op": "subscribe", "args": ["publicTrade.BTCUSDT"]},
                {"req_id": "4", "op": "ping"}])
            assert [r["success"] for r in replies] == [False, False, True, True]
            assert "handler not found" in replies[1]["ret_msg"] and replies[3]["ret_msg"] == "pong"
            async with connect(oep["ws_urls"]["public"], compression=None) as ws:
                await ws.send(json.dumps({"id": "1", "op": "subscribe",
                                          "args": [{"channel": "trades", "instId": "BTC-USDT-SWAP"}]}))
                err = json.loads(await asyncio.wait_for(ws.recv(), 10))
                assert err["event"] == "error" and err["code"] == "60018"
                await ws.send(json.dumps({"id": "2", "op": "subscribe",
                                          "args": [{"channel": "trades", "instId": "ETH-USDT"}]}))
                ack = json.loads(await asyncio.wait_for(ws.recv(), 10))
                assert ack["event"] == "subscribe" and ack["arg"] == {"channel": "trades", "instId": "ETH-USDT"}
                push = json.loads(await asyncio.wait_for(ws.recv(), 10))
                assert push["arg"]["instId"] == "ETH-USDT" and push["data"][0]["count"] == "1"
                await ws.send("ping")
                while (await asyncio.wait_for(ws.recv(), 10)) != "pong":
                    pass

        asyncio.run(session())

        async def rest_calls():
            out = {}
            for name, mod in (("bybit", bybit), ("bybit_spot", BS), ("okx", okx), ("okx_spot", OS)):
                poller = RestPoller(mod, sim.endpoints(name)["rest_url"], WeightBudget(600))
                try:
                    out[name] = (await poller.instruments(), await poller.tickers())
                finally:
                    await poller.aclose()
            return out

        rest = asyncio.run(rest_calls())
    # the perpetual venues still answer their own categories on the shared host
    assert {i.contract_type for i in rest["bybit"][0] if i.symbol == "BTCUSDT"} == {"perpetual"}
    assert {i.symbol for i in rest["okx"][0] if i.contract_type == "perpetual"} >= {"BTC-USDT-SWAP"}
    kinds = {i.symbol: (i.contract_type, i.status, i.quote) for i in rest["bybit_spot"][0]}
    assert kinds["BTCUSDT"] == ("spot", "trading", "USDT")
    assert kinds["USDCUSDT"][0] == kinds["BTC3LUSDT"][0] == "other"        # stablecoin, leveraged token
    kinds = {i.symbol: (i.contract_type, i.status) for i in rest["okx_spot"][0]}
    assert kinds["BTC-USDT"] == ("spot", "trading") and kinds["USDC-USDT"][0] == "other"
    assert kinds["OLD-USDT"][1] == "suspend"
    for name, perp in (("bybit_spot", "BTCUSDT"), ("okx_spot", "BTC-USDT")):
        volumes = rest[name][1]
        assert 0 < volumes[perp] < volumes["USDCUSDT" if name == "bybit_spot" else "USDC-USDT"]


# -- feeds against the simulator: exact counts ---------------------------------------------------------

@pytest.mark.timeout(60)
@pytest.mark.parametrize("name, mod", [("bybit_spot", BS), ("okx_spot", OS)])
def test_spot_feed_receives_every_trade_the_simulator_sent(name, mod):
    with start_in_thread(rate=400.0, venues=["binance", name], seed=5, first_cascade_after_s=1e9) as sim:
        ep = sim.endpoints(name)
        symbols = ep["symbols"]
        ids = {s: n for n, s in enumerate(symbols)}
        vcfg = msgspec.structs.replace(getattr(Config().venues, name), symbols=symbols)
        records: list = []
        feed = WsFeed(mod, mod.plan(vcfg, ep["ws_urls"]), mod.Parser(ids.get), records.extend)
        venue = sim.sim.venue(name)

        async def run():
            task = asyncio.create_task(feed.run())
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline and len({r[4] for r in records}) < len(symbols):
                await asyncio.sleep(0.1)
            sim.call(sim.sim.pause)
            await asyncio.sleep(0.3)    # in-flight frames land
            sent = sim.call(lambda: dict(venue.sent))
            deadline = time.monotonic() + 5
            while time.monotonic() < deadline and len(records) < sum(sent.values()):
                await asyncio.sleep(0.05)
            feed.stop()
            await task
            return sent

        sent = asyncio.run(run())
    got = Counter(symbols[r[4]] for r in records)
    # the simulator counts by its own names (BTCUSDT); OKX's are BTC-USDT
    assert {s: got[s] for s in symbols} == {s: sent.get(s.replace("-", ""), 0) for s in symbols}
    assert all(got[s] > 0 for s in symbols)
    assert feed.stats.outcomes[Outcome.MALFORMED] == 0 and feed.stats.outcomes[Outcome.UNKNOWN] == 0
    assert all(r[0] == Kind.TRADE and r[1] == mod.VENUE and r[2] in (Side.BUY, Side.SELL) and r[8] > 0
               and r[9] == pytest.approx(r[7] * r[8]) for r in records)


@pytest.mark.process
@pytest.mark.timeout(120)
@pytest.mark.parametrize("name", ["bybit_spot", "okx_spot"])
def test_feed_actor_registers_top_spot_pairs_as_spot_under_their_venue(namespace, name):
    run = tempfile.mkdtemp(prefix=f"ut-{name}-", dir="/tmp")
    with start_in_thread(rate=300.0, venues=[name], seed=6, first_cascade_after_s=1e9) as sim:
        ep = sim.endpoints(name)
        ring, reg = open_ring(namespace, name), open_registry(namespace)
        text = feed_config(namespace, run, name, ep["ws_urls"], ep["rest_url"], BINANCE_OFF,
                           symbols="top:2", fallback_symbols=ep["symbols"][:1], stale_after_s=60.0)
        proc = spawn_feed(text, name)
        venue = getattr(Venue, name.upper())
        try:
            reader = RingReader(ring, "test", start="earliest")
            seen: Counter = Counter()

            def drain():
                assert proc.is_alive(), f"the {name} feed actor exited with {proc.exitcode}"
                recs, _ = reader.poll()
                for r in recs[recs["kind"] == Kind.TRADE]:
                    assert r["venue"] == venue
                    seen[reg.get(int(r["instrument"])).symbol] += 1
                return len(seen) == 2

            wait_until(drain, 60, message=f"{name} trades of both selected pairs")   # a bound: spawn + REST under load
            listed = [i for i in reg.all() if i.venue == venue]
        finally:
            stop_feed(proc, ring, reg, run=run)
    # top:2 by 24 h volume skips the stablecoin (and leveraged-token) pairs listed above every real one
    assert sorted(i.symbol for i in listed) == sorted(seen) == sorted(ep["symbols"][:2])
    assert all(i.market == Market.SPOT and i.asset in ("BTC", "ETH") for i in listed)
    assert proc.exitcode == 0


# -- CVD: spot and perp apart -------------------------------------------------------------------------

def test_cvd_keeps_bybit_and_okx_spot_apart_from_the_perp():
    """Records straight from the three parsers: Bybit linear (perp) sells while Bybit and OKX spot buy."""
    reg = FakeRegistry([(Venue.BYBIT, "BTCUSDT", "BTC", Market.PERP_LINEAR),
                        (Venue.BYBIT_SPOT, "BTCUSDT", "BTC", Market.SPOT),
                        (Venue.OKX_SPOT, "BTC-USDT", "BTC", Market.SPOT)])
    det, _ = detector(CvdDetector, config_with(cvd=dict(windows_s=[5.0, 15.0, 30.0], pressure_window_s=15.0)), reg)
    perp, bspot, ospot = bybit.Parser({"BTCUSDT": 0}.get), BS.Parser({"BTCUSDT": 1}.get), OS.Parser({"BTC-USDT": 2}.get)
    out: list = []
    t0 = 1_700_000_000_000
    for n in range(40):                    # 20 s: every 500 ms a perp sell of 0.2 BTC, spot buys of 0.5 + 0.3 BTC
        t = t0 + 500 * n
        perp.parse(f'{{"topic":"publicTrade.BTCUSDT","type":"snapshot","ts":{t},"data":[{{"T":{t},"s":"BTCUSDT",'
                   f'"S":"Sell","v":"0.2","p":"50000","i":"x","BT":false}}]}}'.encode(), t, out)
        bspot.parse(f'{{"topic":"publicTrade.BTCUSDT","ts":{t},"type":"snapshot","data":[{{"i":"{n}","T":{t},'
                    f'"p":"50010","v":"0.5","S":"Buy","s":"BTCUSDT","BT":false}}]}}'.encode(), t, out)
        ospot.parse(f'{{"arg":{{"channel":"trades","instId":"BTC-USDT"}},"data":[{{"instId":"BTC-USDT",'
                    f'"tradeId":"{n + 1}","px":"50020","sz":"0.3","side":"buy","ts":"{t}","count":"1"}}]}}'.encode(),
                    t, out)
    assert len(out) == 120 and Counter(r[1] for r in out) == {Venue.BYBIT: 40, Venue.BYBIT_SPOT: 40, Venue.OKX_SPOT: 40}
    det.run(np.array(out, dtype=RECORD_DTYPE))
    cvd = det.cvd("BTC")
    spot_usd = 40 * (0.5 * 50010 + 0.3 * 50020)
    assert cvd["cvd_usd_spot"] == pytest.approx(spot_usd) and cvd["cvd_base_spot"] == pytest.approx(40 * 0.8)
    assert cvd["cvd_usd_perp"] == pytest.approx(-40 * 0.2 * 50000) and cvd["cvd_base_perp"] == pytest.approx(-8.0)
    assert [cvd[f"led_by_{w}"] for w in ("5s", "15s", "30s")] == [1.0] * 3   # spot led the move


# -- the bot's candle bootstrap: spot klines ---------------------------------------------------------------
# OKX v5 "Get candlesticks" docs example row; on a spot instId vol is base currency, volCcy and volCcyQuote quote
OKX_DOC_CANDLES = (b'{"code":"0","msg":"","data":[["1597026383085","3.721","3.743","3.677","3.708","8422410",'
                   b'"22698348.04828491","12698348.04828491","0"]]}')


def test_spot_kline_requests_and_parsers():
    path, params, weight = BS.kline_request("SOLUSDT", 60_000, 120_000)
    assert (path, weight) == ("/v5/market/kline", 1)
    assert params == {**bybit.kline_request("SOLUSDT", 60_000, 120_000)[1], "category": "spot"}
    assert BS.parse_klines is bybit.parse_klines     # the spot rows are linear's: volume base coin, turnover quote
    assert OS.kline_request("SOL-USDT", 60_000, 120_000)[1]["instId"] == "SOL-USDT"
    assert OS.parse_klines(OKX_DOC_CANDLES) == [(1597026383085, 3.721, 3.743, 3.677, 3.708, 8422410.0,
                                                 12698348.04828491, 0)]
    assert okx.parse_klines(OKX_DOC_CANDLES)[0][5] == 22698348.04828491   # the swap reading: volCcy as base
    assert OS.parse_klines(b'{"code":"51001","msg":"Instrument ID does not exist","data":[]}') is None
    assert OS.parse_klines(b'{"code":"0","data":[["1597026383085","3.7"]]}') is None


@pytest.mark.process
@pytest.mark.timeout(60)
def test_bot_bootstraps_spot_pairs_binance_spot_does_not_list_from_bybit_then_okx(namespace):
    from actors.bot import KLINE_SOURCES, bootstrap_klines, covered_keys, kline_fetch, kline_targets
    from engine.bot.candles import C, H, L, MINUTE_MS, O, T, USD, V
    from engine.bot.history import History
    from engine.instruments import Registry, registry_segment

    registry = Registry.open(registry_segment(namespace), 64, 16)
    registry.add(Venue.BINANCE_SPOT, "BTCUSDT", "BTC", Market.SPOT)
    for sym, asset in (("BTCUSDT", "BTC"), ("SOLUSDT", "SOL")):
        registry.add(Venue.BYBIT_SPOT, sym, asset, Market.SPOT)
    for sym, asset in (("BTC-USDT", "BTC"), ("SOL-USDT", "SOL"), ("ETH-USDT", "ETH")):
        registry.add(Venue.OKX_SPOT, sym, asset, Market.SPOT)
    order = [s for s in KLINE_SOURCES if s.market == Market.SPOT]
    plan = {s.venue_name: kline_targets(registry, 10, s.venue, s.market,
                                        covered_keys(registry, order[:order.index(s)], s.market)) for s in order}
    assert plan == {"binance_spot": [("BTCUSDT", ("BTC", "spot"))], "bybit_spot": [("SOLUSDT", ("SOL", "spot"))],
                    "okx_spot": [("ETH-USDT", ("ETH", "spot"))]}

    with start_in_thread(rate=600.0, venues=SPOT_VENUES, symbols=["BTCUSDT", "ETHUSDT", "SOLUSDT"], seed=6,
                         first_cascade_after_s=1e9) as sim:
        tapes = {"bybit_spot": ("SOLUSDT", "bybit"), "okx_spot": ("ETHUSDT", "okx")}
        venue = sim.sim.venue
        wait_until(lambda: all(venue(n).tape.klines.rows.get(s) and venue(p).klines.rows.get(s)
                               for n, (s, p) in tapes.items()), timeout=15, message="spot and perp trades")
        time.sleep(0.3)
        sim.call(sim.sim.pause)                            # the klines stop changing
        now_ms = time.time_ns() // 1_000_000 + MINUTE_MS    # the current minute counts as closed

        async def one(src, symbol, key):
            history, st = History(candle_minutes=120), dict.fromkeys(
                ("kline_symbols", "kline_candles", "kline_failed", "kline_malformed"), 0)
            poller = RestPoller(src.module, sim.endpoints(src.venue_name)["rest_url"], WeightBudget(300))
            try:
                await bootstrap_klines(history, [(symbol, key)], poller.get_retrying, 30, now_ms,
                                       lambda: now_ms - now_ms % MINUTE_MS, st, fetch=kline_fetch(src, registry))
            finally:
                await poller.aclose()
            return history.candles.one_minute(key), st

        got = {s.venue_name: asyncio.run(one(s, *plan[s.venue_name][0])) for s in order[1:]}
        served = {n: dict(venue(n).tape.klines.rows[s]) for n, (s, _) in tapes.items()}
        perp = {n: dict(venue(p).klines.rows[s]) for n, (s, p) in tapes.items()}
    registry.close()
    for name, (candles, stats) in got.items():
        rows = served[name]
        assert stats == {"kline_symbols": 1, "kline_candles": len(rows), "kline_failed": 0, "kline_malformed": 0}
        assert candles[:, T].tolist() == sorted(rows), name
        for c in candles:
            o, h, lo, cl, vol, quote, *_ = rows[int(c[T])]
            assert np.allclose(c[[O, H, L, C]], [o, h, lo, cl], rtol=1e-6), name
            assert c[V] == pytest.approx(vol, rel=1e-6, abs=1e-6) and c[USD] == pytest.approx(quote, abs=1e-3), name
        # the spot venue claimed the request on the host it shares with the perp: not the perp's candles
        assert [perp[name].get(int(t), [0] * 6)[4] for t in candles[:, T]] != candles[:, V].tolist(), name
