"""Bybit v5 linear simulator: WS protocol (acks, errors, ping/pong, snapshots then deltas, batches), REST,
and the real WsFeed + Bybit parser end to end."""
from __future__ import annotations

import asyncio
import json
import math
import time
import urllib.error
import urllib.request
from collections import Counter, defaultdict

import pytest
from websockets.sync.client import connect

from engine.books import attach
from engine.config import SimulatorConfig, VenueConfig
from engine.record import Kind, Side, Venue
from engine.simulator import start_in_thread
from engine.simulator.bybit import BybitVenue
from engine.simulator.market import SyntheticMarket
from engine.venues import Outcome, bybit
from engine.wsfeed import WsFeed

pytestmark = pytest.mark.process
SYMBOLS = ["BTCUSDT", "ETHUSDT", "SOLUSDT"]


@pytest.fixture(scope="module")
def sim():
    handle = start_in_thread(SimulatorConfig(rate=1500, seed=5, venues=["bybit"], first_cascade_after_s=60.0,
                                             cascade_every_s=0.0), liquidation_share=0.3)
    yield handle
    handle.stop()


def ws_url(sim) -> str:
    return sim.endpoints("bybit")["ws_urls"]["linear"]


def request(ws, msg) -> dict:
    """Send one client frame and return the next reply that is not market data."""
    ws.send(msg if isinstance(msg, str) else json.dumps(msg))
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        reply = json.loads(ws.recv(timeout=5))
        if "topic" not in reply:
            return reply
    pytest.fail("no reply")


def get(sim, path: str):
    with urllib.request.urlopen(sim.endpoints("bybit")["rest_url"] + path, timeout=5) as r:
        return r.status, r.read()


# -- WebSocket protocol -----------------------------------------------------------------

def test_endpoints_and_paths(sim):
    ep = sim.endpoints("bybit")
    assert ep["ws_urls"]["linear"].endswith("/v5/public/linear") and ep["symbols"] == SYMBOLS
    with pytest.raises(Exception):
        with connect(ws_url(sim).replace("/linear", "/inverse"), open_timeout=5):
            pass


def test_subscribe_ack_errors_and_unsubscribe(sim):
    with connect(ws_url(sim)) as ws:
        ack = request(ws, {"req_id": "a1", "op": "subscribe", "args": ["publicTrade.BTCUSDT", "tickers.ETHUSDT"]})
        assert ack["success"] is True and ack["ret_msg"] == "" and ack["req_id"] == "a1" and ack["op"] == "subscribe"
        assert len(ack["conn_id"]) == 36
        assert bybit.Parser(dict().get).parse(json.dumps(ack).encode(), 1, [])[0] == Outcome.CONTROL
        bad = request(ws, {"req_id": "a2", "op": "subscribe", "args": ["publicTrade.BTCUSDT", "kline.1.BTCUSDT"]})
        assert (bad["success"], bad["ret_msg"], bad["req_id"]) == (False, "error:handler not found,topic:kline.1.BTCUSDT",
                                                                  "a2")
        # the removed liquidation topic and unknown symbols are not served
        assert request(ws, {"op": "subscribe", "args": ["liquidation.BTCUSDT"]})["success"] is False
        assert request(ws, {"op": "subscribe", "args": ["publicTrade.NOPEUSDT"]})["success"] is False
        assert request(ws, {"op": "subscribe", "args": "publicTrade.BTCUSDT"})["ret_msg"] == "Params Error"
        assert request(ws, "{not json")["success"] is False
        assert request(ws, {"op": "hello"})["success"] is False
        assert request(ws, {"op": "subscribe", "args": ["publicTrade.BTCUSDT"]})["success"] is True   # repeat
        off = request(ws, {"req_id": "u1", "op": "unsubscribe", "args": ["publicTrade.BTCUSDT", "tickers.ETHUSDT"]})
        assert (off["success"], off["op"]) == (True, "unsubscribe")


def test_args_character_limit_per_connection():
    venue = BybitVenue(["BTCUSDT"] + [f"S{i:04d}USDT" for i in range(1200)])

    class Hub:
        def subscribe(self, client, names):
            client.streams.update(names)

    class Client:
        def __init__(self):
            self.conn, self.streams = object(), set()

    client, hub = Client(), Hub()
    topics = [f"publicTrade.S{i:04d}USDT" for i in range(1200)]   # 21 characters each
    first = json.loads(venue.handle_text(client, json.dumps({"op": "subscribe", "args": topics[:1000]}), hub))
    assert first["success"] is True and sum(map(len, client.streams)) == 21_000   # exactly at the limit
    over = json.loads(venue.handle_text(client, json.dumps({"op": "subscribe", "args": topics[1000:1100]}), hub))
    assert over["success"] is False and len(client.streams) == 1000


def test_ping_pong(sim):
    with connect(ws_url(sim)) as ws:
        pong = request(ws, bybit.ping_message())
        assert (pong["success"], pong["ret_msg"], pong["op"], pong["req_id"]) == (True, "pong", "ping", "ping")
        assert bybit.Parser(dict().get).parse(json.dumps(pong).encode(), 1, [])[0] == Outcome.CONTROL


def test_served_frames_have_bybit_shapes_and_parse(sim):
    topics = ["publicTrade.BTCUSDT", "allLiquidation.BTCUSDT", "allLiquidation.SOLUSDT", "orderbook.1.BTCUSDT",
              "orderbook.50.BTCUSDT", "tickers.BTCUSDT"]
    frames: dict[str, list[tuple[float, bytes]]] = defaultdict(list)
    with connect(ws_url(sim)) as ws:
        assert request(ws, {"op": "subscribe", "args": topics})["success"] is True
        deadline = time.monotonic() + 2.6
        while time.monotonic() < deadline:
            raw = ws.recv(timeout=5)
            raw = raw.encode() if isinstance(raw, str) else raw
            frames[json.loads(raw)["topic"]].append((time.monotonic(), raw))
    assert set(frames) == set(topics)
    parser = bybit.Parser({s: i for i, s in enumerate(SYMBOLS)}.get)
    outcomes = Counter()
    for topic, fs in frames.items():
        for _, raw in fs:
            outcomes[parser.parse(raw, 1, [])[0]] += 1
    assert outcomes[Outcome.MALFORMED] == outcomes[Outcome.UNKNOWN] == outcomes[Outcome.IGNORED] == 0

    trade = json.loads(frames["publicTrade.BTCUSDT"][0][1])
    assert trade["type"] == "snapshot" and isinstance(trade["ts"], int)
    for t in trade["data"]:
        assert t["S"] in ("Buy", "Sell") and float(t["v"]) > 0 and float(t["p"]) > 0 and len(t["i"]) == 36
        assert t["s"] == "BTCUSDT" and t["BT"] is False and isinstance(t["seq"], int)

    # level 1: snapshots only, ts before type (§2.4)
    assert all(raw.startswith(b'{"topic":"orderbook.1.BTCUSDT","ts":') and b'"type":"snapshot"' in raw
               for _, raw in frames["orderbook.1.BTCUSDT"])
    # level 50: one snapshot, then deltas; u steps by one per message
    book = [json.loads(raw) for _, raw in frames["orderbook.50.BTCUSDT"]]
    assert [m["type"] for m in book][:2] == ["snapshot", "delta"] and {m["type"] for m in book[1:]} == {"delta"}
    assert 0 < len(book[0]["data"]["b"]) <= 50 and 0 < len(book[0]["data"]["a"]) <= 50
    us = [m["data"]["u"] for m in book]
    assert us == list(range(us[0], us[0] + len(us))) and 1 not in us

    ticks = [json.loads(raw) for _, raw in frames["tickers.BTCUSDT"]]
    assert ticks[0]["type"] == "snapshot" and {"markPrice", "indexPrice", "openInterest", "singleOpenInterest",
                                                "fundingRate", "nextFundingTime", "turnover24h"} <= set(ticks[0]["data"])
    assert float(ticks[0]["data"]["openInterest"]) == pytest.approx(2 * float(ticks[0]["data"]["singleOpenInterest"]),
                                                                    rel=1e-6)
    assert len(ticks) >= 2 and all(t["type"] == "delta" for t in ticks[1:])
    assert all(len(t["data"]) < len(ticks[0]["data"]) for t in ticks[1:])   # deltas omit unchanged fields

    # allLiquidation: batches at most every 500 ms per symbol, every liquidation inside
    for topic in ("allLiquidation.BTCUSDT", "allLiquidation.SOLUSDT"):
        fs = frames[topic]
        gaps = [b[0] - a[0] for a, b in zip(fs, fs[1:])]
        assert all(g > 0.3 for g in gaps), gaps
        for _, raw in fs:
            m = json.loads(raw)
            assert m["type"] == "snapshot" and m["data"]
            assert all(x["S"] in ("Buy", "Sell") and float(x["v"]) > 0 for x in m["data"])


def test_unsubscribed_liquidations_are_not_kept_and_batches_hold_all_events():
    market = SyntheticMarket(["BTCUSDT"], seed=2, rate=500, liquidation_share=0.5, cascade_every_s=0)
    venue = BybitVenue(["BTCUSDT"], market=market)
    subs = {"allLiquidation.BTCUSDT": {object()}}
    generated, delivered, pushes = 0, 0, []
    for step in range(300):   # 3 s of market time
        events = market.step()
        generated += sum(1 for e in events if type(e).__name__ == "Liquidation")
        for topic, raw in venue.render(events, market.t, subs, 0):
            delivered += len(json.loads(raw)["data"])
            pushes.append(market.t)
    assert generated > 20 and delivered + len(venue.symbols["BTCUSDT"].pending_liqs) == generated
    assert len(pushes) <= 7 and all(b - a >= 0.5 - 1e-6 for a, b in zip(pushes, pushes[1:]))
    # throttle=False: every render pushes what it got
    unthrottled = BybitVenue(["BTCUSDT"], market=market, throttle=False)
    events = market.run(0.5)
    frames = unthrottled.render(events, market.t, subs, 0)
    n = sum(1 for e in events if type(e).__name__ == "Liquidation")
    assert n and [len(json.loads(raw)["data"]) for _, raw in frames] == [n]


# -- REST -------------------------------------------------------------------------------

def test_rest_endpoints(sim):
    status, body = get(sim, "/v5/market/instruments-info?category=linear&limit=2")
    assert status == 200
    infos = bybit.parse_exchange_info(body)
    params = bybit.next_page(body, {"category": "linear", "limit": "2"})
    assert [i.symbol for i in infos] == ["BTCUSDT", "ETHUSDT"] and params["cursor"]
    _, body2 = get(sim, "/v5/market/instruments-info?" + "&".join(f"{k}={v}" for k, v in params.items()))
    params2 = bybit.next_page(body2, params)   # the USDC perps follow the USDT ones
    assert [i.symbol for i in bybit.parse_exchange_info(body2)] == ["SOLUSDT", "BTCPERP"] and params2["cursor"]
    _, body3 = get(sim, "/v5/market/instruments-info?" + "&".join(f"{k}={v}" for k, v in params2.items()))
    assert [i.symbol for i in bybit.parse_exchange_info(body3)] == ["ETHPERP", "SOLPERP"]
    assert bybit.next_page(body3, params2) is None
    btc = infos[0]
    assert (btc.base, btc.quote, btc.contract_type, btc.status, btc.tick_size, btc.contract_size) == (
        "BTC", "USDT", "perpetual", "trading", 0.1, 1.0)
    _, full = get(sim, "/v5/market/instruments-info?category=linear")
    assert len(bybit.parse_exchange_info(full)) == 6 and bybit.next_page(full, {}) is None   # 3 USDT + 3 USDC

    _, tickers = get(sim, "/v5/market/tickers?category=linear")
    vols = bybit.parse_tickers(tickers)
    assert set(vols) == set(SYMBOLS) and all(v >= 0 for v in vols.values())

    path, query, weight = bybit.oi_request("ETHUSDT")
    _, oi = get(sim, path + "?" + "&".join(f"{k}={v}" for k, v in query.items()))
    out: list = []
    assert bybit.parse_open_interest(oi, {"ETHUSDT": 1}.get, 1, 3500.0, out) == Outcome.EMITTED and weight == 1
    point = json.loads(oi)["result"]["list"][0]
    assert out[0][8] == float(point["singleOpenInterest"]) > 0      # single side preferred
    assert int(point["timestamp"]) % 300_000 == 0

    _, book = get(sim, "/v5/market/orderbook?category=linear&symbol=BTCUSDT&limit=5")
    res = json.loads(book)["result"]
    assert len(res["b"]) == len(res["a"]) == 5 and float(res["b"][0][0]) < float(res["a"][0][0])

    for bad in ("/v5/market/tickers", "/v5/market/tickers?category=linear&symbol=NOPEUSDT",
                "/v5/market/open-interest?category=linear&symbol=BTCUSDT&intervalTime=2min",
                "/v5/market/instruments-info?category=linear&limit=5000",
                "/v5/market/instruments-info?category=linear&cursor=%%%"):
        status, body = get(sim, bad)
        reply = json.loads(body)
        assert status == 200 and reply["retCode"] == 10001 and reply["result"] == {}, bad
        assert bybit.parse_exchange_info(body) is None
    assert json.loads(get(sim, "/v5/market/time")[1])["retCode"] == 0
    with pytest.raises(urllib.error.HTTPError) as err:
        get(sim, "/v5/market/nothing")
    err.value.close()
    assert err.value.code == 404


# -- end to end: WsFeed + parser + synced book against the simulator ---------------------

@pytest.mark.timeout(30)
def test_wsfeed_end_to_end(sim, monkeypatch):
    monkeypatch.setattr(bybit, "PING_INTERVAL_S", 0.3)   # exercise the keepalive within the test
    ids = {s: i for i, s in enumerate(SYMBOLS)}
    vcfg = VenueConfig(symbols=SYMBOLS, ws_urls=sim.endpoints("bybit")["ws_urls"])
    plans = bybit.plan(vcfg)
    parser = bybit.Parser(ids.get)
    books = attach(parser, bybit, vcfg.depth_levels)
    records: list = []
    pongs_before = sim.counters()["venues"]["bybit"]["bybit_pongs"]

    async def main():
        feed = WsFeed(bybit, plans, parser, records.extend, reconnect_initial_s=0.05, stale_after_s=30.0)
        task = asyncio.create_task(feed.run())
        deadline = time.monotonic() + 8
        while time.monotonic() < deadline:
            kinds = {r[0] for r in records}
            liqs = {r[2] for r in records if r[0] == Kind.LIQUIDATION}
            if {Kind.TRADE, Kind.LIQUIDATION, Kind.BOOK_TOP, Kind.MARK, Kind.OPEN_INTEREST} <= kinds \
                    and liqs == {Side.LONG, Side.SHORT} and feed.stats.pings_sent >= 2:
                break
            await asyncio.sleep(0.05)
        feed.stop()
        await asyncio.wait_for(task, 5)
        return feed

    feed = asyncio.run(main())
    stats = feed.stats.as_dict()
    assert stats["malformed"] == 0 and stats["unknown"] == 0 and stats["reconnects"] == 0
    assert stats["control"] >= 1 + stats["pings_sent"] - 1   # the ack and the pongs
    assert sim.counters()["venues"]["bybit"]["bybit_pongs"] - pongs_before >= 2
    by_kind = defaultdict(list)
    for r in records:
        by_kind[r[0]].append(r)
    assert {Side.LONG, Side.SHORT} == {r[2] for r in by_kind[Kind.LIQUIDATION]}
    assert {Side.BUY, Side.SELL} >= {r[2] for r in by_kind[Kind.TRADE]}
    now = time.time_ns()
    for kind in (Kind.TRADE, Kind.LIQUIDATION, Kind.BOOK_TOP, Kind.MARK, Kind.OPEN_INTEREST):
        assert by_kind[kind], Kind.NAMES[kind]
        for r in by_kind[kind]:
            assert r[1] == Venue.BYBIT and r[4] in ids.values()
            assert all(math.isfinite(v) and v >= 0 for v in r[7:10]) and abs(r[5] - now) < 60e9
    for r in by_kind[Kind.TRADE] + by_kind[Kind.LIQUIDATION]:
        assert r[7] > 0 and r[8] > 0 and r[9] == pytest.approx(r[7] * r[8])
    btc = [r for r in by_kind[Kind.TRADE] if r[4] == ids["BTCUSDT"]]
    assert btc and all(50_000 < r[7] < 200_000 for r in btc)
    for r in by_kind[Kind.BOOK_TOP]:
        assert 0 < r[7] < r[10]                                  # bid below ask
    assert books.counters()["book_gaps"] == 0 and books.counters()["book_snapshots"] >= 3
    oi = by_kind[Kind.OPEN_INTEREST][-1]
    assert oi[9] == pytest.approx(oi[8] * oi[7], rel=1e-3)      # single-side value at the mark
