"""Hyperliquid simulator: rendering rules, the served protocol (subscribe/ack/error, ping/pong, info requests
over the socket, idle close) and an end-to-end run of WsFeed + the Hyperliquid venue module against it."""
from __future__ import annotations

import asyncio
import json
import math
import time
import types
import urllib.error
import urllib.request

import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from engine.books import attach
from engine.config import VenueConfig
from engine.record import Kind, Side, Venue
from engine.simulator import start_in_thread
from engine.simulator.hyperliquid import HyperliquidVenue
from engine.simulator.market import BookDiff, Liquidation, SyntheticMarket, Trade
from engine.venues import Outcome, hyperliquid as hl
from engine.wsfeed import WsFeed
from tests.conftest import wait_until

SYMBOLS = ["BTCUSDT", "ETHUSDT"]


def registry():
    ids: dict[str, int] = {}
    return lambda s: ids.setdefault(s, len(ids))


def parse_all(frames) -> tuple[list, list]:
    parser = hl.Parser(registry())
    outcomes, out = [], []
    for _, raw in frames:
        outcomes.append(parser.parse(raw, 1, out)[0])
    return outcomes, out


# ------------------------------------------------------------------ rendering (no server)

@pytest.mark.unit
def test_trades_batched_per_coin_and_liquidations_become_taker_trades():
    venue = HyperliquidVenue(SYMBOLS, market=SyntheticMarket(SYMBOLS, seed=1))
    events = [Trade("BTCUSDT", 0.0, 1, 95_000.1, 0.5, True), Trade("ETHUSDT", 0.0, 2, 3_500.0, 2.0, False),
              Liquidation("BTCUSDT", 0.0, True, 94_000.0, 94_990.0, 1.25),
              Liquidation("ETHUSDT", 0.0, False, 3_600.0, 3_501.0, 3.0)]
    frames = venue.render(events, 0.0, {"trades:BTC": {1}, "trades:ETH": {1}}, 1_700_000_000_000)
    assert sorted(s for s, _ in frames) == ["trades:BTC", "trades:ETH"]
    btc = json.loads(dict(frames)["trades:BTC"])["data"]
    assert [(t["side"], t["px"], t["sz"]) for t in btc] == [("B", "95000.10", "0.500"), ("A", "94990.00", "1.250")]
    assert all(0 < t["tid"] < 1 << 50 for t in btc) and btc[0]["tid"] != btc[1]["tid"]
    outcomes, out = parse_all(frames)
    assert outcomes == [Outcome.EMITTED, Outcome.EMITTED]
    assert {r[0] for r in out} == {Kind.TRADE}                         # nothing marks a liquidation
    sides = {(r[7], r[2]) for r in out}
    assert (94_990.0, Side.SELL) in sides and (3_501.0, Side.BUY) in sides   # long liquidated = taker sell
    assert venue.counters()["hl_liquidation_trades"] == 2


@pytest.mark.unit
@pytest.mark.parametrize("throttle, pushes", [(True, 3), (False, 11)])
def test_l2book_is_a_full_snapshot_at_most_every_half_second(throttle, pushes):
    venue = HyperliquidVenue(["BTCUSDT"], market=SyntheticMarket(["BTCUSDT"], seed=1), throttle=throttle)
    bids = [(95_000.0 - i, 1.0 + i) for i in range(20)]
    asks = [(95_001.0 + i, 2.0 + i) for i in range(20)]
    frames = []
    for i in range(11):
        diff = BookDiff("BTCUSDT", i * 0.1, i, i, i - 1, [], [], bids, asks)
        frames += venue.render([diff], round(i * 0.1, 2), {"l2Book:BTC": {1}}, 1_700_000_000_000 + i)
    assert len(frames) == pushes
    levels = json.loads(frames[0][1])["data"]["levels"]
    assert [len(side) for side in levels] == [20, 20] and levels[0][0]["px"] == "95000.00"
    outcomes, out = parse_all(frames)
    assert set(outcomes) == {Outcome.EMITTED} and out[0][7:9] == (95_000.0, 1.0) and out[0][10:12] == (95_001.0, 2.0)


@pytest.mark.unit
def test_info_bodies_parse_with_the_venue_module():
    market = SyntheticMarket(SYMBOLS, seed=2)
    market.run(1.0)
    venue = HyperliquidVenue(SYMBOLS, market=market)
    enc = lambda body: json.dumps(body).encode()   # noqa: E731
    infos = hl.parse_exchange_info(enc(venue.info({"type": "metaAndAssetCtxs"})))
    assert [(i.symbol, i.quote, i.contract_type, i.status) for i in infos] == [
        ("BTC", "USDC", "perpetual", "trading"), ("ETH", "USDC", "perpetual", "trading")]
    assert hl.parse_exchange_info(enc(venue.info({"type": "meta"})))[1].symbol == "ETH"
    out: list = []
    assert hl.parse_open_interest(enc(venue.info({"type": "metaAndAssetCtxs"})), {"ETH": 7}.get, 1, 0.0, out) == Outcome.EMITTED
    assert out[0][4] == 7 and out[0][8] == pytest.approx(market.open_interest("ETHUSDT"), rel=1e-6)
    assert set(hl.parse_tickers(enc(venue.info({"type": "metaAndAssetCtxs"})))) == {"BTC", "ETH"}
    out.clear()
    assert hl.parse_l2_book(enc(venue.info({"type": "l2Book", "coin": "BTC"})), {"BTC": 0}.get, 1, out) == Outcome.EMITTED
    assert out[0][7] < out[0][10]
    assert venue.info({"type": "l2Book", "coin": "DOGE"}) is None and venue.info({"type": "userFills"}) is None


# ------------------------------------------------------------------ served protocol

@pytest.fixture(scope="module")
def sim():
    with start_in_thread(venues=["hyperliquid"], rate=400, liquidation_share=0.3, first_cascade_after_s=1.0) as handle:
        yield handle


def _recv_until(ws, predicate, timeout: float = 5.0) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        msg = json.loads(ws.recv(timeout=max(0.01, deadline - time.monotonic())))
        if predicate(msg):
            return msg
    pytest.fail("no matching frame")


def _channel(name):
    return lambda m: m.get("channel") == name


@pytest.mark.process
def test_endpoints_name_native_coins(sim):
    ep = sim.endpoints("hyperliquid")
    assert ep["symbols"] == ["BTC", "ETH", "SOL"]
    assert ep["ws_urls"]["ws"].endswith("/ws")


@pytest.mark.process
def test_subscribe_ack_errors_and_ping_pong(sim):
    sub = {"type": "trades", "coin": "BTC"}
    with connect(sim.endpoints("hyperliquid")["ws_urls"]["ws"]) as ws:
        ws.send(json.dumps({"method": "subscribe", "subscription": sub}))
        assert ws.recv(timeout=5) == json.dumps(
            {"channel": "subscriptionResponse", "data": {"method": "subscribe", "subscription": sub}},
            separators=(",", ":"))
        ws.send(json.dumps({"method": "subscribe", "subscription": sub}))
        assert _recv_until(ws, _channel("error"))["data"].startswith("Already subscribed")
        ws.send(json.dumps({"method": "subscribe", "subscription": {"type": "trades", "coin": "DOGE"}}))
        assert _recv_until(ws, _channel("error"))["data"].startswith("Invalid subscription")
        ws.send("not json")
        assert "Error parsing JSON" in _recv_until(ws, _channel("error"))["data"]
        ws.send(hl.ping_message())
        _recv_until(ws, _channel("pong"))
        ws.send(json.dumps({"method": "unsubscribe", "subscription": sub}))
        ack = _recv_until(ws, _channel("subscriptionResponse"))
        assert ack["data"] == {"method": "unsubscribe", "subscription": sub}
        ws.send(json.dumps({"method": "unsubscribe", "subscription": sub}))
        assert _recv_until(ws, _channel("error"))["data"].startswith("Already unsubscribed")
    assert sim.counters()["hl_errors_sent"] >= 4


@pytest.mark.process
def test_new_subscription_first_gets_the_current_state(sim):
    """Paused, the market sends nothing: whatever arrives is the state Hyperliquid sends on subscribe."""
    with connect(sim.endpoints("hyperliquid")["ws_urls"]["ws"]) as ws:
        wait_until(lambda: sim.counters()["market_time_s"] > 0.5, 10, message="some market history")
        sim.call(sim.sim.pause)
        try:
            for m in hl.subscribe_messages(["trades:ETH", "l2Book:ETH", "activeAssetCtx:ETH"]):
                ws.send(m.decode())
            got = {}
            while len(got) < 3:
                msg = json.loads(ws.recv(timeout=5))
                if msg["channel"] != "subscriptionResponse":
                    got[msg["channel"]] = msg
        finally:
            sim.call(sim.sim.resume)
    parser = hl.Parser(registry())
    parser.parse(b'{"channel":"subscriptionResponse","data":{"method":"subscribe","subscription":'
                 b'{"type":"trades","coin":"ETH"}}}', 1, [])
    out: list = []
    for ch in ("trades", "l2Book", "activeAssetCtx"):
        assert parser.parse(json.dumps(got[ch]).encode(), 1, out)[0] == Outcome.EMITTED, ch
    assert {r[0] for r in out} == {Kind.TRADE, Kind.BOOK_TOP, Kind.MARK, Kind.OPEN_INTEREST}
    assert all(r[3] & 2 for r in out if r[0] == Kind.TRADE)   # the recent-trades batch is flagged SNAPSHOT


@pytest.mark.process
def test_info_requests_over_the_socket(sim):
    with connect(sim.endpoints("hyperliquid")["ws_urls"]["ws"]) as ws:
        ws.send(hl.post_message(11, {"type": "metaAndAssetCtxs"}).decode())
        rid, kind, body = hl.post_response(ws.recv(timeout=5).encode())
        assert (rid, kind) == (11, "info")
        assert [i.symbol for i in hl.parse_exchange_info(body)] == ["BTC", "ETH", "SOL"]
        out: list = []
        assert hl.parse_open_interest(body, {"BTC": 0, "SOL": 2}.get, 1, 0.0, out) == Outcome.EMITTED
        btc_oi = out[0]
        assert btc_oi[8] > 1000 and btc_oi[9] == pytest.approx(btc_oi[7] * btc_oi[8])   # BTC units, USD at mark
        ws.send(hl.post_message(12, {"type": "l2Book", "coin": "SOL"}).decode())
        rid, kind, body = hl.post_response(ws.recv(timeout=5).encode())
        assert (rid, kind) == (12, "info") and hl.parse_l2_book(body, {"SOL": 2}.get, 1, out) == Outcome.EMITTED
        ws.send(json.dumps({"method": "post", "id": 13, "request": {"type": "action", "payload": {}}}))
        assert hl.post_response(ws.recv(timeout=5).encode())[:2] == (13, "error")
        ws.send(json.dumps({"method": "post", "id": "x", "request": {}}))
        assert json.loads(ws.recv(timeout=5))["channel"] == "error"


@pytest.mark.process
def test_post_info_is_served_over_http(sim):
    """``POST /info`` with a JSON body, as the live API takes it (on the server's POST port)."""
    url = sim.endpoints("hyperliquid")["rest_url"] + "/info"
    req = urllib.request.Request(url, data=b'{"type":"meta"}', headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=5) as resp:
        meta = json.loads(resp.read())
    assert {u["name"] for u in meta["universe"]} >= {"BTC", "ETH", "SOL"}
    path, body, _ = hl.EXCHANGE_INFO_REQUEST      # what the feed's REST poller sends
    req = urllib.request.Request(sim.endpoints("hyperliquid")["rest_url"] + path, data=json.dumps(body).encode(),
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=5) as resp:
        infos = hl.parse_exchange_info(resp.read())
    assert {"BTC", "ETH", "SOL"} <= {i.symbol for i in infos}
    bad = urllib.request.Request(url, data=b'{"type":"nope"}', headers={"Content-Type": "application/json"})
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(bad, timeout=5)
    err.value.close()
    assert err.value.code == 422


@pytest.mark.process
def test_silent_connection_is_closed_and_a_busy_one_is_not(sim):
    venue = sim.sim.venue("hyperliquid")
    sim.call(setattr, venue, "idle_timeout_s", 0.5)
    try:
        url = sim.endpoints("hyperliquid")["ws_urls"]["ws"]
        # the busy client buffers without limit, so its closing handshake is not stuck behind unread trades
        with connect(url) as quiet, connect(url, max_queue=None) as busy:
            quiet.send(hl.ping_message())
            assert json.loads(quiet.recv(timeout=5)) == {"channel": "pong"}
            busy.send(hl.subscribe_messages(["trades:BTC"])[0].decode())
            t0 = time.monotonic()
            with pytest.raises(ConnectionClosed):
                while True:
                    quiet.recv(timeout=5)
            assert time.monotonic() - t0 < 4.0
            for _ in range(20):
                busy.recv(timeout=5)            # still open: it keeps receiving trades
        assert sim.counters()["hl_idle_closes"] >= 1
    finally:
        sim.call(setattr, venue, "idle_timeout_s", 60.0)


# ------------------------------------------------------------------ end to end

@pytest.mark.process
def test_wsfeed_receives_trades_books_marks_and_no_liquidations(sim):
    ep = sim.endpoints("hyperliquid")
    ids = {s: i for i, s in enumerate(ep["symbols"])}
    parser = hl.Parser(ids.get)
    attach(parser, hl)
    fast_ping = types.ModuleType("hyperliquid_fast_ping")   # the venue module with a short keepalive period
    fast_ping.__dict__.update(vars(hl))
    fast_ping.PING_INTERVAL_S = 0.3
    vcfg = VenueConfig(symbols=ep["symbols"], ws_urls=ep["ws_urls"], streams=["trades", "book", "mark", "oi"])
    plans = hl.plan(vcfg)
    records: list = []
    want = {Kind.TRADE, Kind.BOOK_TOP, Kind.BOOK_DEPTH, Kind.MARK, Kind.OPEN_INTEREST}
    liq_trades_before = sim.counters()["hl_liquidation_trades"]

    async def main():
        feed = WsFeed(fast_ping, plans, parser, records.extend)
        task = asyncio.create_task(feed.run())
        deadline = time.monotonic() + 8.0
        while time.monotonic() < deadline:
            if want <= {r[0] for r in records} and feed.stats.pings_sent >= 2:
                break
            await asyncio.sleep(0.05)
        feed.stop()
        await task
        return feed.stats

    stats = asyncio.run(main())
    kinds = {r[0] for r in records}
    assert want <= kinds and Kind.LIQUIDATION not in kinds, stats.as_dict()
    assert sim.counters()["hl_liquidation_trades"] > liq_trades_before   # liquidations happened, as trades
    assert stats.outcomes[Outcome.MALFORMED] == 0 and stats.outcomes[Outcome.UNKNOWN] == 0
    assert stats.pings_sent >= 2
    assert stats.outcomes[Outcome.CONTROL] >= len(plans[0].streams) + 1   # acks and at least one pong
    btc = ids["BTC"]
    for r in records:
        assert r[1] == Venue.HYPERLIQUID and r[4] in ids.values()
        assert all(math.isfinite(v) for v in r[7:12]) and min(r[7:10]) >= 0.0
        if r[0] == Kind.TRADE:
            assert r[2] in (Side.BUY, Side.SELL) and r[8] > 0 and r[9] == pytest.approx(r[7] * r[8])
            if r[4] == btc:
                assert 50_000 < r[7] < 200_000 and r[8] < 100     # coin units
        elif r[0] == Kind.BOOK_TOP:
            assert r[7] < r[10]
        elif r[0] == Kind.OPEN_INTEREST:
            assert r[8] > 0 and r[9] == pytest.approx(r[7] * r[8])
