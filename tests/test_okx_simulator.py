"""OKX simulator: the served protocol (subscribe/ack/error, ping/pong, books snapshot + seqId chain,
idle close, REST) and an end-to-end run of WsFeed + the OKX venue module against it."""
from __future__ import annotations

import asyncio
import json
import math
import time
import urllib.error
import urllib.request

import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from engine.books import attach
from engine.config import VenueConfig
from engine.record import Flag, Kind, Side, Venue
from engine.simulator import start_in_thread
from engine.simulator.market import Liquidation, MarkBatch, MarkUpdate, SyntheticMarket, Trade
from engine.simulator.okx import OkxVenue
from engine.venues import Outcome, okx
from engine.wsfeed import WsFeed

SYMBOLS = ["BTC-USDT-SWAP", "ETH-USDT-SWAP", "SOL-USDT-SWAP"]


@pytest.fixture(scope="module")
def sim():
    with start_in_thread(venues=["okx"], rate=400, liquidation_share=0.3, first_cascade_after_s=1.0) as handle:
        yield handle


def _get(url: str) -> tuple[int, object]:
    try:
        with urllib.request.urlopen(url, timeout=5) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def _recv_until(ws, predicate, timeout: float = 5.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        raw = ws.recv(timeout=max(0.01, deadline - time.monotonic()))
        msg = raw if raw == "pong" else json.loads(raw)
        if predicate(msg):
            return msg
    pytest.fail("no matching frame")


def _sub(*args: dict, op: str = "subscribe", rid: str | None = "7") -> str:
    body = {"op": op, "args": list(args)}
    if rid is not None:
        body["id"] = rid
    return json.dumps(body)


# ------------------------------------------------------------------ protocol

@pytest.mark.unit
def test_endpoints_name_native_instruments(sim):
    ep = sim.endpoints("okx")
    assert ep["symbols"] == SYMBOLS
    assert ep["ws_urls"] == {"public": f"ws://127.0.0.1:{sim.port}/ws/v5/public"} and ep["rest_url"].endswith(str(sim.port))


@pytest.mark.unit
def test_subscribe_acks_errors_and_ping_pong(sim):
    with connect(sim.endpoints("okx")["ws_urls"]["public"]) as ws:
        ws.send(_sub({"channel": "trades", "instId": "BTC-USDT-SWAP"}, {"channel": "liquidation-orders", "instType": "SWAP"}))
        acks = [json.loads(ws.recv(timeout=5)) for _ in range(2)]
        assert [(a["event"], a["id"], a["arg"]) for a in acks] == [
            ("subscribe", "7", {"channel": "trades", "instId": "BTC-USDT-SWAP"}),
            ("subscribe", "7", {"channel": "liquidation-orders", "instType": "SWAP"})]
        assert acks[0]["connId"] == acks[1]["connId"] and len(acks[0]["connId"]) == 8
        trade = _recv_until(ws, lambda m: m != "pong" and m.get("arg", {}).get("channel") == "trades")
        assert trade["data"][0]["instId"] == "BTC-USDT-SWAP" and trade["data"][0]["side"] in ("buy", "sell")
        ws.send("ping")
        assert _recv_until(ws, lambda m: m == "pong") == "pong"
        ws.send(_sub({"channel": "trades", "instId": "XRP-USDT-SWAP"}))
        err = _recv_until(ws, lambda m: m != "pong" and m.get("event") == "error")
        assert err["code"] == "60018" and err["id"] == "7" and "XRP-USDT-SWAP" in err["msg"]
        ws.send(_sub({"channel": "books-l2-tbt", "instId": "BTC-USDT-SWAP"}, rid=None))
        err = _recv_until(ws, lambda m: m != "pong" and m.get("event") == "error")
        assert err["code"] == "64003" and "id" not in err
        ws.send("{not json")
        assert _recv_until(ws, lambda m: m != "pong" and m.get("event") == "error")["code"] == "60012"
        ws.send(_sub({"channel": "trades", "instId": "BTC-USDT-SWAP"}, op="unsubscribe"))
        assert _recv_until(ws, lambda m: m != "pong" and m.get("event") == "unsubscribe")["arg"]["channel"] == "trades"


@pytest.mark.unit
def test_books_snapshot_then_chained_updates(sim):
    """A books subscriber gets a snapshot (prevSeqId -1, checksum 0) and then updates whose prevSeqId is
    the previous seqId; the venue parser keeps the synced book without a gap."""
    with connect(sim.endpoints("okx")["ws_urls"]["public"]) as ws:
        ws.send(_sub({"channel": "books", "instId": "BTC-USDT-SWAP"}))
        assert json.loads(ws.recv(timeout=5))["event"] == "subscribe"
        frames = [json.loads(ws.recv(timeout=5)) for _ in range(15)]
    assert frames[0]["action"] == "snapshot" and all(f["action"] == "update" for f in frames[1:])
    snap = frames[0]["data"][0]
    assert snap["prevSeqId"] == -1 and snap["checksum"] == 0 and len(snap["bids"]) > 20
    assert all(len(level) == 4 and level[2] == "0" for level in snap["asks"])
    seq = snap["seqId"]
    for f in frames[1:]:
        d = f["data"][0]
        assert d["prevSeqId"] == seq and d["checksum"] == 0 and d["seqId"] >= seq
        seq = d["seqId"]
    parser = okx.Parser({"BTC-USDT-SWAP": 0}.get, contract_sizes={"BTC-USDT-SWAP": 0.01})
    books = attach(parser, okx)
    for f in frames:
        out: list = []
        parser.parse(json.dumps(f, separators=(",", ":")).encode(), 1, out)
        assert Kind.CONTROL not in {r[0] for r in out}
    assert books.book("BTC-USDT-SWAP").synced and books.counters()["book_gaps"] == 0


@pytest.mark.unit
def test_idle_socket_is_closed_and_ping_keeps_it_open(sim):
    venue = sim.sim.venue("okx")
    old = venue.idle_close_s
    sim.call(setattr, venue, "idle_close_s", 0.6)
    try:
        with connect(sim.endpoints("okx")["ws_urls"]["public"]) as quiet, \
                connect(sim.endpoints("okx")["ws_urls"]["public"]) as pinging:
            for ws in (quiet, pinging):   # an ack, then nothing: funding pushes only every 30 s
                ws.send(_sub({"channel": "funding-rate", "instId": "SOL-USDT-SWAP"}))
                assert json.loads(ws.recv(timeout=5))["event"] == "subscribe"
            deadline = time.monotonic() + 3.0
            closed = False
            while time.monotonic() < deadline and not closed:
                pinging.send("ping")
                try:
                    quiet.recv(timeout=0.2)
                except TimeoutError:
                    continue
                except ConnectionClosed:
                    closed = True
            assert closed and quiet.close_code == 4004
            pinging.send("ping")
            assert _recv_until(pinging, lambda m: m == "pong") == "pong"
    finally:
        sim.call(setattr, venue, "idle_close_s", old)
    assert sim.counters()["venues"]["okx"]["okx_idle_closes"] >= 1


@pytest.mark.unit
def test_rest_endpoints(sim):
    rest = sim.endpoints("okx")["rest_url"]
    status, body = _get(rest + "/api/v5/public/instruments?instType=SWAP")
    assert status == 200 and body["code"] == "0"
    listed = {i.symbol: i for i in okx.parse_exchange_info(json.dumps(body).encode())}
    infos = {s: i for s, i in listed.items() if i.quote == "USDT"}   # inverse/USDC swaps: tests/test_margin_oi_sim.py
    assert set(infos) == set(SYMBOLS)
    assert [infos[s].contract_size for s in SYMBOLS] == [0.01, 0.1, 1.0]
    assert all(i.contract_type == "perpetual" and i.status == "trading" and i.quote == "USDT" for i in infos.values())
    assert _get(rest + "/api/v5/public/instruments")[0] == 400
    status, body = _get(rest + "/api/v5/public/open-interest?instType=SWAP&instId=ETH-USDT-SWAP")
    out: list = []
    assert okx.parse_open_interest(json.dumps(body).encode(), {"ETH-USDT-SWAP": 5}.get, 1, 0.0, out) == Outcome.EMITTED
    (r,) = out
    assert r[4] == 5 and r[8] > 100_000 and 1_000 < r[7] < 10_000   # base ETH, USD price from oiUsd / oiCcy
    assert float(body["data"][0]["oi"]) == pytest.approx(r[8] / 0.1, rel=1e-6)   # contracts
    status, body = _get(rest + "/api/v5/market/tickers?instType=SWAP")
    volumes = okx.parse_tickers(json.dumps(body).encode())
    assert set(volumes) == set(SYMBOLS) and volumes["BTC-USDT-SWAP"] > volumes["SOL-USDT-SWAP"] > 0
    assert _get(rest + "/api/v5/public/open-interest?instType=SWAP&instId=NOPE-USDT-SWAP")[1]["code"] == "51001"
    assert _get(rest + "/api/v5/public/time")[1]["data"][0]["ts"].isdigit()
    status, body = _get(rest + "/api/v5/public/liquidation-orders?instType=SWAP&uly=BTC-USDT&state=filled")
    assert status == 200 and all(g["instId"] == "BTC-USDT-SWAP" for g in body["data"])


@pytest.mark.unit
def test_render_units_sides_and_cap():
    market = SyntheticMarket(["BTCUSDT"], seed=1)
    venue = OkxVenue(["BTCUSDT"], market=market, throttle=True)
    subs = {"liquidation-orders:SWAP": {object()}, "trades:BTC-USDT-SWAP": {object()},
            "mark-price:BTC-USDT-SWAP": {object()}, "funding-rate:BTC-USDT-SWAP": {object()}}
    liqs = [Liquidation("BTCUSDT", 0.0, True, 90_000.0, 90_100.0, 0.5),
            Liquidation("BTCUSDT", 0.2, False, 91_000.0, 90_900.0, 0.25)]
    frames = venue.render([Trade("BTCUSDT", 0.0, 9, 90_000.0, 1.234, False), *liqs], 0.2, subs, 1_700_000_000_000)
    (trade,) = [json.loads(raw) for name, raw in frames]
    assert trade["data"][0]["sz"] == "123.4" and trade["data"][0]["side"] == "sell"   # contracts of 0.01 BTC
    assert venue.render([], 0.5, subs, 1_700_000_000_000) == []   # the 1 s window is still open
    ((name, raw),) = venue.render([], 1.0, subs, 1_700_000_000_000)
    group = json.loads(raw)["data"][0]
    assert name == "liquidation-orders:SWAP" and group["instId"] == "BTC-USDT-SWAP" and group["uly"] == "BTC-USDT"
    (d,) = group["details"]   # the latest of the window; the first was suppressed
    assert (d["side"], d["sz"], d["bkPx"]) == ("buy", "25.0", "91000.00") and venue.throttle.suppressed == 1
    parser = okx.Parser({"BTC-USDT-SWAP": 3}.get, contract_sizes={"BTC-USDT-SWAP": 0.01})
    out: list = []
    assert parser.parse(raw, 1, out)[0] == Outcome.EMITTED
    assert (out[0][2], out[0][8], out[0][9]) == (Side.SHORT, pytest.approx(0.25), pytest.approx(0.25 * 91_000))
    assert out[0][3] & Flag.CAPPED
    batch = MarkBatch(1.0, (MarkUpdate("BTCUSDT", 90_000.0, 89_990.0, 0.0001),))
    venue.mark_count = 29   # the next batch is a funding push (every 30 s)
    names = sorted(n for n, _ in venue.render([batch], 1.0, subs, 1_700_000_000_000))
    assert names == ["funding-rate:BTC-USDT-SWAP", "mark-price:BTC-USDT-SWAP"]


# ------------------------------------------------------------------ end to end

@pytest.mark.unit
def test_wsfeed_receives_trades_liquidations_books_and_marks(sim):
    ep = sim.endpoints("okx")
    status, body = _get(ep["rest_url"] + okx.EXCHANGE_INFO_REQUEST[0] + "?instType=SWAP")
    infos = okx.parse_exchange_info(json.dumps(body).encode())
    ids = {s: i for i, s in enumerate(ep["symbols"])}
    parser = okx.Parser(ids.get, contract_sizes=okx.contract_sizes(infos))
    books = attach(parser, okx)
    vcfg = VenueConfig(symbols=ep["symbols"], ws_urls=ep["ws_urls"], rest_url=ep["rest_url"])
    records: list = []
    want = {Kind.TRADE, Kind.LIQUIDATION, Kind.BOOK_TOP, Kind.BOOK_DEPTH, Kind.MARK, Kind.OPEN_INTEREST}

    async def main():
        feed = WsFeed(okx, okx.plan(vcfg), parser, records.extend)
        task = asyncio.create_task(feed.run())
        deadline = time.monotonic() + 8.0
        while time.monotonic() < deadline and not want <= {r[0] for r in records}:
            await asyncio.sleep(0.05)
        feed.stop()
        await task
        return feed.stats

    stats = asyncio.run(main())
    kinds = {r[0] for r in records}
    assert want <= kinds, stats.as_dict()
    assert stats.outcomes[Outcome.MALFORMED] == 0 and stats.outcomes[Outcome.UNKNOWN] == 0
    assert stats.outcomes[Outcome.CONTROL] >= sum(len(p.streams) for p in okx.plan(vcfg))   # one ack per arg
    assert parser.unsized == 0 and books.counters()["book_gaps"] == 0
    btc = ids["BTC-USDT-SWAP"]
    for r in records:
        assert r[1] == Venue.OKX and r[4] in ids.values() and r[0] != Kind.CONTROL
        assert all(math.isfinite(v) for v in r[7:12]) and min(r[7:10]) >= 0.0
        if r[0] in (Kind.TRADE, Kind.LIQUIDATION):
            assert r[8] > 0 and r[9] == pytest.approx(r[7] * r[8])
            assert r[2] in ((Side.BUY, Side.SELL) if r[0] == Kind.TRADE else (Side.LONG, Side.SHORT))
            if r[4] == btc:
                assert 50_000 < r[7] < 200_000 and r[8] < 100   # base units (BTC), not contracts
        elif r[0] == Kind.BOOK_TOP:
            assert r[7] < r[10]
        elif r[0] == Kind.OPEN_INTEREST and r[4] == btc:
            assert 50_000 < r[7] < 200_000 and r[9] == pytest.approx(r[7] * r[8], rel=1e-6)
