"""Bitget simulator: the served v2/v3 protocol, REST, the liquidation sampling rule, and WsFeed end to end."""
from __future__ import annotations

import asyncio
import json
import math
import time
import urllib.error
import urllib.request
from collections import Counter

import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from engine.books import attach
from engine.config import VenueConfig
from engine.record import Kind, Side, Venue
from engine.simulator import start_in_thread
from engine.simulator.bitget import LiquidationSampler
from engine.simulator.market import Liquidation
from engine.venues import Outcome, bitget
from engine.wsfeed import WsFeed

V2 = {"instType": "USDT-FUTURES"}


@pytest.fixture(scope="module")
def sim():
    with start_in_thread(venues=["bitget"], liquidation_share=0.3, rate=400.0) as h:
        yield h


def urls(sim):
    return sim.endpoints("bitget")


def recv_json(ws, timeout=5.0):
    raw = ws.recv(timeout=timeout)
    return raw if raw == "pong" else json.loads(raw)


def subscribe(ws, *args, op="subscribe"):
    ws.send(json.dumps({"op": op, "args": list(args)}))


def get(sim, path):
    try:
        with urllib.request.urlopen(urls(sim)["rest_url"] + path, timeout=5) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


# ------------------------------------------------------------------ WebSocket protocol

@pytest.mark.unit
def test_endpoints_name_native_symbols_and_both_sockets(sim):
    ep = urls(sim)
    assert ep["symbols"] == ["BTCUSDT", "ETHUSDT", "SOLUSDT"]
    assert ep["ws_urls"]["public"].endswith("/v2/ws/public") and ep["ws_urls"]["uta"].endswith("/v3/ws/public")


@pytest.mark.unit
def test_v2_subscribe_acks_each_arg_then_pushes_history_snapshot_and_updates(sim):
    with connect(urls(sim)["ws_urls"]["public"]) as ws:
        trade = {**V2, "channel": "trade", "instId": "BTCUSDT"}
        ticker = {**V2, "channel": "ticker", "instId": "BTCUSDT"}
        subscribe(ws, trade, ticker)
        assert recv_json(ws) == {"event": "subscribe", "arg": trade}
        assert recv_json(ws) == {"event": "subscribe", "arg": ticker}
        first = recv_json(ws)
        assert first["action"] == "snapshot" and first["arg"] == trade     # recent history, not live
        seen = Counter()
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and not (seen["trade", "update"] and seen["ticker", "snapshot"] >= 2):
            m = recv_json(ws)
            seen[m["arg"]["channel"], m["action"]] += 1
            if m["arg"]["channel"] == "trade":
                for t in m["data"]:
                    assert t["side"] in ("buy", "sell") and float(t["size"]) > 0 and t["tradeId"].isdigit()
            else:
                d = m["data"][0]
                assert float(d["markPrice"]) > 0 and float(d["holdingAmount"]) > 0 and d["nextFundingTime"].isdigit()
        assert seen["trade", "update"] and seen["ticker", "snapshot"] >= 2


@pytest.mark.unit
def test_v2_errors_ping_and_unsubscribe(sim):
    with connect(urls(sim)["ws_urls"]["public"]) as ws:
        bad = {**V2, "channel": "ticker", "instId": "NOPEUSDT"}
        subscribe(ws, bad)
        err = recv_json(ws)
        assert err["event"] == "error" and err["code"] == 30003 and "Symbol not exists" in err["msg"]
        assert err["arg"] == bad and err["op"] == "subscribe"
        subscribe(ws, {"instType": "usdt-futures", "topic": "liquidation"})   # a v3 arg on the v2 socket
        assert recv_json(ws)["event"] == "error"
        ws.send("{not json")
        assert recv_json(ws)["event"] == "error"
        ws.send("ping")
        assert recv_json(ws) == "pong"
        b5 = {**V2, "channel": "books5", "instId": "ETHUSDT"}
        subscribe(ws, b5)
        assert recv_json(ws) == {"event": "subscribe", "arg": b5}
        m = recv_json(ws)
        assert m["action"] == "snapshot" and len(m["data"][0]["bids"]) == 5
        assert float(m["data"][0]["bids"][0][0]) < float(m["data"][0]["asks"][0][0])
        subscribe(ws, b5, op="unsubscribe")
        deadline = time.monotonic() + 2
        while time.monotonic() < deadline:   # in-flight pushes may still come, then the ack
            if recv_json(ws).get("event") == "unsubscribe":
                break
        else:
            pytest.fail("no unsubscribe ack")
        with pytest.raises(TimeoutError):
            recv_json(ws, timeout=0.6)     # books5 pushes every 150 ms while subscribed


@pytest.mark.unit
def test_v3_liquidation_topic_position_side_and_quote_amount(sim):
    with connect(urls(sim)["ws_urls"]["uta"]) as ws:
        arg = {"instType": "usdt-futures", "topic": "liquidation"}
        subscribe(ws, arg)
        ack = recv_json(ws)
        assert ack["event"] == "subscribe" and ack["arg"] == arg and ack["connId"]
        m = recv_json(ws, timeout=5)
        assert m["action"] == "update" and m["arg"] == arg
        keys = set()
        for x in m["data"]:
            assert x["side"] in ("buy", "sell") and float(x["amount"]) > 0 and float(x["price"]) > 0
            assert x["ts"].isdigit()
            keys.add((x["symbol"], x["side"]))
        assert len(keys) == len(m["data"])   # sampled: at most one per symbol and side per second
        subscribe(ws, {**V2, "channel": "trade", "instId": "BTCUSDT"})    # v2 arg on the v3 socket
        while (r := recv_json(ws)).get("event") is None:
            pass
        assert r["event"] == "error"


@pytest.mark.unit
def test_client_without_ping_is_closed():
    with start_in_thread(venues=["bitget"]) as h:
        h.call(lambda: setattr(h.sim.venue("bitget"), "ping_timeout_s", 0.5))
        with connect(h.endpoints("bitget")["ws_urls"]["public"]) as ws:
            subscribe(ws, {**V2, "channel": "ticker", "instId": "BTCUSDT"})
            deadline = time.monotonic() + 5
            with pytest.raises(ConnectionClosed):
                while time.monotonic() < deadline:
                    ws.recv(timeout=1)
        assert h.counters()["venues"]["bitget"]["bitget_ping_timeouts"] == 1


# ------------------------------------------------------------------ REST

@pytest.mark.unit
def test_rest_contracts_tickers_open_interest(sim):
    status, body = get(sim, "/api/v2/mix/market/contracts?productType=USDT-FUTURES")
    assert status == 200 and json.loads(body)["code"] == "00000"
    infos = {i.symbol: i for i in bitget.parse_exchange_info(body)}
    assert set(infos) == {"BTCUSDT", "ETHUSDT", "SOLUSDT"}
    assert infos["BTCUSDT"][1:] == ("BTC", "USDT", "perpetual", "trading", pytest.approx(0.1), 1.0)

    status, body = get(sim, "/api/v2/mix/market/tickers?productType=usdt-futures")
    vols = bitget.parse_tickers(body)
    assert status == 200 and set(vols) == set(infos) and all(v > 0 for v in vols.values())

    path, params, _ = bitget.oi_request("ETHUSDT")
    status, body = get(sim, f"{path}?symbol={params['symbol']}&productType={params['productType']}")
    out: list = []
    assert status == 200 and bitget.parse_open_interest(body, {"ETHUSDT": 1}.get, 1, 3500.0, out) is Outcome.EMITTED
    assert out[0][8] > 0 and out[0][9] == pytest.approx(out[0][8] * 3500.0)

    assert get(sim, "/api/v2/mix/market/contracts")[0] == 400                       # productType is required
    status, body = get(sim, "/api/v2/mix/market/open-interest?productType=USDT-FUTURES&symbol=NOPE")
    assert status == 400 and json.loads(body)["data"] is None
    assert get(sim, "/api/v2/mix/market/nothing?productType=USDT-FUTURES")[0] == 404
    status, body = get(sim, "/api/v2/public/time")
    assert status == 200 and json.loads(body)["data"]["serverTime"].isdigit()


# ------------------------------------------------------------------ liquidation push rule

@pytest.mark.unit
def test_sampler_keeps_the_largest_per_symbol_and_side_each_second():
    s = LiquidationSampler(1.0)
    s.offer(Liquidation("BTCUSDT", 0.10, True, 100.0, 100.0, 1.0))
    s.offer(Liquidation("BTCUSDT", 0.20, True, 100.0, 100.0, 3.0))     # larger long: replaces
    s.offer(Liquidation("BTCUSDT", 0.30, True, 100.0, 100.0, 2.0))     # smaller: dropped
    s.offer(Liquidation("BTCUSDT", 0.40, False, 100.0, 100.0, 0.5))    # the short side is kept apart
    assert s.due(0.99) == []
    out = s.due(1.10)
    assert [(x.long_liquidated, x.qty) for x in out] == [(True, 3.0), (False, 0.5)] and s.suppressed == 2
    assert s.due(5.0) == []


# ------------------------------------------------------------------ end to end

@pytest.mark.unit
def test_wsfeed_end_to_end_trades_liquidations_marks_and_synced_book(sim):
    ep = urls(sim)
    ids = {s: i for i, s in enumerate(ep["symbols"])}
    vcfg = VenueConfig(symbols=ep["symbols"], ws_urls=ep["ws_urls"], depth_levels=20)   # full-depth ``books``
    plans = bitget.plan(vcfg)
    assert sorted(p.key for p in plans) == ["public/0", "uta/0"]
    parser = bitget.Parser(ids.get)
    books = attach(parser, bitget, 20)
    records: list = []
    feed = WsFeed(bitget, plans, parser, records.extend)

    async def run():
        task = asyncio.create_task(feed.run())
        deadline = time.monotonic() + 8
        while time.monotonic() < deadline:
            await asyncio.sleep(0.2)
            kinds = Counter(r[0] for r in records)
            if kinds[Kind.LIQUIDATION] >= 3 and kinds[Kind.TRADE] >= 20 and kinds[Kind.MARK] >= 3 \
                    and kinds[Kind.OPEN_INTEREST] and kinds[Kind.BOOK_TOP]:
                break
        feed.stop()
        await task

    asyncio.run(run())
    kinds = Counter(r[0] for r in records)
    stats = feed.stats.as_dict()
    assert kinds[Kind.TRADE] >= 20 and kinds[Kind.LIQUIDATION] >= 3 and kinds[Kind.MARK] >= 3, kinds
    assert kinds[Kind.OPEN_INTEREST] >= 1 and kinds[Kind.BOOK_TOP] >= 1
    assert stats["malformed"] == 0 and stats["unknown"] == 0 and stats["control"] >= 10   # 9 + 1 acks
    assert books.counters()["book_gaps"] == 0
    for r in records:
        if r[0] == Kind.CONTROL:
            continue
        assert r[1] == Venue.BITGET and r[4] in ids.values()
        for v in r[7:10]:
            assert math.isfinite(v) and v >= 0.0
        if r[0] == Kind.TRADE:
            assert r[2] in (Side.BUY, Side.SELL) and r[8] > 0 and r[9] == pytest.approx(r[7] * r[8])
            assert r[10] >= 1_000_000                       # simulator ids fit a float exactly
        elif r[0] == Kind.LIQUIDATION:
            assert r[2] in (Side.LONG, Side.SHORT) and r[8] > 0
            assert r[9] == pytest.approx(r[7] * r[8], rel=1e-6)   # base = USDT amount / price
        elif r[0] == Kind.BOOK_TOP:
            assert r[7] < r[10]
    sides = {r[2] for r in records if r[0] == Kind.TRADE}
    assert sides == {Side.BUY, Side.SELL}
