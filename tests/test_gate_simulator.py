"""Gate simulator: the served protocol (subscribe/ack/error, ping/pong, size-decimal header, REST) and an
end-to-end run of WsFeed + the Gate venue module against it."""
from __future__ import annotations

import asyncio
import json
import math
import time
import urllib.error
import urllib.request

import pytest
from websockets.sync.client import connect

from engine.books import attach
from engine.config import VenueConfig
from engine.record import Kind, Side, Venue
from engine.simulator import start_in_thread
from engine.simulator.gate import GateVenue, LiquidationBatcher
from engine.simulator.market import Liquidation, SyntheticMarket, Trade
from engine.venues import Outcome, gate
from engine.wsfeed import WsFeed
from tests.conftest import wait_until


@pytest.fixture(scope="module")
def sim():
    with start_in_thread(venues=["gate"], rate=400, liquidation_share=0.3, first_cascade_after_s=1.0) as handle:
        yield handle


def _get(url: str) -> tuple[int, object]:
    try:
        with urllib.request.urlopen(url, timeout=5) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def _recv_until(ws, predicate, timeout: float = 5.0) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        msg = json.loads(ws.recv(timeout=max(0.01, deadline - time.monotonic())))
        if predicate(msg):
            return msg
    pytest.fail("no matching frame")


def _sub(channel: str, payload: list, rid: int = 1) -> str:
    return json.dumps({"time": int(time.time()), "id": rid, "channel": channel, "event": "subscribe",
                       "payload": payload})


# ------------------------------------------------------------------ protocol

@pytest.mark.unit
def test_endpoints_name_native_contracts(sim):
    ep = sim.endpoints("gate")
    assert ep["symbols"] == ["BTC_USDT", "ETH_USDT", "SOL_USDT"]
    assert ep["ws_urls"]["usdt"].endswith("/v4/ws/usdt") and ep["rest_url"].endswith("/api/v4")


@pytest.mark.unit
def test_subscribe_ack_error_and_ping_pong(sim):
    with connect(sim.endpoints("gate")["ws_urls"]["usdt"]) as ws:
        ws.send(_sub("futures.trades", ["BTC_USDT", "ETH_USDT"], 5))
        ack = _recv_until(ws, lambda m: m.get("event") == "subscribe")
        assert ack["channel"] == "futures.trades" and ack["result"] == {"status": "success"} and ack["id"] == 5
        assert ack["payload"] == ["BTC_USDT", "ETH_USDT"] and "error" not in ack
        for bad in (_sub("futures.trades", ["NOPE_USDT"], 6), _sub("futures.nothing", ["BTC_USDT"], 7),
                    _sub("futures.order_book_update", ["BTC_USDT", "1000ms", "20"], 8), "not json"):
            ws.send(bad)
            err = _recv_until(ws, lambda m: "error" in m)
            assert err["error"]["code"] in (1, 2) and err["result"] == {"status": "failed"}
            parsed = gate.Parser(lambda s: 0, contract_sizes={}).parse(json.dumps(err).encode(), 1, [])
            assert parsed[0] == Outcome.CONTROL
        ws.send(gate.ping_message())
        pong = _recv_until(ws, lambda m: m.get("channel") == "futures.pong")
        assert gate.Parser(lambda s: 0).parse(json.dumps(pong).encode(), 1, [])[0] == Outcome.CONTROL
        trade = _recv_until(ws, lambda m: m.get("channel") == "futures.trades" and m.get("event") == "update")
        item = trade["result"][0]
        assert isinstance(item["size"], int) and item["size"] != 0   # no decimal header: integer contracts
        assert item["contract"] in ("BTC_USDT", "ETH_USDT") and isinstance(item["price"], str)


@pytest.mark.unit
def test_size_decimal_header_gives_decimal_strings(sim):
    url = sim.endpoints("gate")["ws_urls"]["usdt"]
    with connect(url, additional_headers=gate.WS_HEADERS) as ws:
        ws.send(_sub("futures.book_ticker", ["ETH_USDT"]))
        msg = _recv_until(ws, lambda m: m.get("channel") == "futures.book_ticker" and m.get("event") == "update")
        assert isinstance(msg["result"]["B"], str) and isinstance(msg["result"]["A"], str)
    with connect(url) as ws:
        ws.send(_sub("futures.book_ticker", ["ETH_USDT"]))
        msg = _recv_until(ws, lambda m: m.get("channel") == "futures.book_ticker" and m.get("event") == "update")
        assert isinstance(msg["result"]["B"], int)


@pytest.mark.unit
def test_book_updates_continue_the_rest_snapshot_id(sim):
    """§4.4 sync: the first update with U <= id+1 <= u exists and later ones chain U == last u + 1."""
    ep = sim.endpoints("gate")
    with connect(ep["ws_urls"]["usdt"]) as ws:
        ws.send(_sub("futures.order_book_update", ["BTC_USDT", "100ms", "20"]))
        _recv_until(ws, lambda m: m.get("event") == "subscribe")
        first = _recv_until(ws, lambda m: m.get("channel") == "futures.order_book_update")["result"]
        status, snap = _get(ep["rest_url"] + "/futures/usdt/order_book?contract=BTC_USDT&limit=20&with_id=true")
        assert status == 200 and len(snap["bids"]) == 20 and float(snap["bids"][0]["p"]) < float(snap["asks"][0]["p"])
        updates = [first] + [_recv_until(ws, lambda m: m.get("channel") == "futures.order_book_update")["result"]
                             for _ in range(15)]
    assert any(u["U"] <= snap["id"] + 1 <= u["u"] for u in updates)
    for prev, cur in zip(updates, updates[1:]):
        assert cur["U"] == prev["u"] + 1
    # the same frames through engine/books.py: the snapshot anchors the buffered deltas, no gap
    parser = gate.Parser(lambda s: 0, contract_sizes={"BTC_USDT": 0.0001})
    books = attach(parser, gate, 20)
    out: list = []
    frame = lambda u: json.dumps({"channel": "futures.order_book_update", "event": "update", "result": u}).encode()
    assert parser.parse(frame(updates[0]), 1, out)[0] == Outcome.PARSED and not out   # buffered, snapshot requested
    assert books.counters()["book_requests"] == 1
    assert parser.book_snapshot("BTC_USDT", json.dumps(snap).encode(), 2, out) == Outcome.EMITTED
    for u in updates[1:]:
        assert parser.parse(frame(u), 3, out)[0] in (Outcome.PARSED, Outcome.EMITTED)
    c = books.counters()
    assert (c["book_gaps"], c["book_resyncs"], c["book_unsynced"]) == (0, 0, 0)
    tops = [r for r in out if r[0] == Kind.BOOK_TOP]
    assert tops and all(50_000 < r[7] < r[10] < 200_000 and 0 < r[8] < 1_000 for r in tops)   # BTC, base units


@pytest.mark.unit
def test_rest_endpoints(sim):
    base = sim.endpoints("gate")["rest_url"]
    status, contracts = _get(base + "/futures/usdt/contracts")
    assert status == 200
    infos = {i.symbol: i for i in gate.parse_exchange_info(json.dumps(contracts).encode())}
    assert infos["BTC_USDT"].contract_size == 0.0001 and infos["ETH_USDT"].contract_size == 0.01
    assert infos["SOL_USDT"].status == "trading" and infos["SOL_USDT"].base == "SOL"
    path, params, _ = gate.oi_request("BTC_USDT")
    status, body = _get(base + path)
    out: list = []
    assert status == 200 and gate.parse_open_interest(json.dumps(body).encode(), lambda s: 0, 1, 0.0, out) \
        == Outcome.EMITTED
    assert out[0][8] == pytest.approx(body["position_size"] * 0.0001) and out[0][7] > 1000
    status, tickers = _get(base + gate.TICKERS_REQUEST[0])
    volumes = gate.parse_tickers(json.dumps(tickers).encode())
    assert status == 200 and set(volumes) == {"BTC_USDT", "ETH_USDT", "SOL_USDT"} and volumes["BTC_USDT"] > 0
    status, stats = _get(base + "/futures/usdt/contract_stats?contract=SOL_USDT")
    assert status == 200 and stats[0]["open_interest"] > 0
    assert _get(base + "/futures/usdt/contracts/NOPE_USDT")[0] == 400
    assert _get(base + "/futures/usdt/order_book?contract=BTC_USDT&limit=abc")[1]["label"] == "INVALID_PARAM_VALUE"
    assert "id" not in _get(base + "/futures/usdt/order_book?contract=BTC_USDT")[1]


# ------------------------------------------------------------------ push rules (simulated time)

@pytest.mark.unit
def test_liquidation_batches_flush_after_one_second_or_at_twenty():
    b = LiquidationBatcher()
    liq = lambda t: Liquidation("BTCUSDT", t, True, 100.0, 100.0, 1.0)
    assert b.offer(liq(0.0)) is None and b.due(0.5) == [] and len(b.due(1.0)[0]) == 1
    batches = [b.offer(liq(2.0 + i * 0.01)) for i in range(20)]
    assert [len(x) for x in batches if x] == [20] and b.early_flushes == 1 and b.due(5.0) == []


@pytest.mark.unit
def test_render_signs_and_units():
    market = SyntheticMarket(["BTCUSDT"], seed=3)
    v = GateVenue(["BTCUSDT"], market=market, throttle=False)
    subs = {"futures.trades:BTC_USDT#d": 1, "futures.public_liquidates:!all": 1}
    frames = v.render([Trade("BTCUSDT", 0.0, 42, 95000.0, 0.0123, False),
                       Liquidation("BTCUSDT", 0.0, True, 94000.0, 94100.0, 0.5)], 0.0, subs, 1_700_000_000_000)
    by_key = {k: json.loads(raw)["result"][0] for k, raw in frames}
    assert by_key["futures.trades:BTC_USDT#d"]["size"] == "-123"      # taker sell, 0.0123 BTC / 0.0001
    assert by_key["futures.public_liquidates:!all"]["size"] == -5000  # long liquidated: sell order, integers
    assert by_key["futures.public_liquidates:!all"]["time"] == 1_700_000_000_000


# ------------------------------------------------------------------ end to end

@pytest.mark.unit
def test_wsfeed_receives_trades_and_liquidations(sim):
    ep = sim.endpoints("gate")
    status, contracts = _get(ep["rest_url"] + gate.EXCHANGE_INFO_REQUEST[0])
    infos = gate.parse_exchange_info(json.dumps(contracts).encode())
    ids = {s: i for i, s in enumerate(ep["symbols"])}
    parser = gate.Parser(ids.get, contract_sizes={i.symbol: i.contract_size for i in infos})
    books = attach(parser, gate, 20)
    vcfg = VenueConfig(symbols=ep["symbols"], ws_urls=ep["ws_urls"], rest_url=ep["rest_url"])
    records: list = []

    async def fetch(symbol: str) -> bytes:
        path, params, _ = gate.depth_snapshot_request(symbol)
        url = ep["rest_url"] + path + "?" + "&".join(f"{k}={v}" for k, v in params.items())
        return await asyncio.to_thread(lambda: urllib.request.urlopen(url, timeout=5).read())

    async def main():
        feed = WsFeed(gate, gate.plan(vcfg), parser, records.extend, snapshot_fetcher=fetch,
                      connect_kwargs={"additional_headers": gate.WS_HEADERS})
        task = asyncio.create_task(feed.run())
        deadline = time.monotonic() + 8.0
        while time.monotonic() < deadline:
            kinds = {r[0] for r in records}
            if {Kind.TRADE, Kind.LIQUIDATION, Kind.BOOK_TOP, Kind.BOOK_DEPTH, Kind.MARK} <= kinds:
                break
            await asyncio.sleep(0.05)
        feed.stop()
        await task
        return feed.stats

    stats = asyncio.run(main())
    kinds = {r[0] for r in records}
    assert {Kind.TRADE, Kind.LIQUIDATION, Kind.BOOK_TOP, Kind.BOOK_DEPTH, Kind.MARK} <= kinds, stats.as_dict()
    c = books.counters()   # every book synced from its REST snapshot, none lost
    assert c["book_snapshots"] >= 3 and c["book_gaps"] == 0 and c["book_unsynced"] == 0, c
    assert stats.outcomes[Outcome.MALFORMED] == 0 and stats.outcomes[Outcome.UNKNOWN] == 0
    assert stats.outcomes[Outcome.CONTROL] >= len(gate.subscribe_messages(gate.plan(vcfg)[0].streams))
    assert parser.missing_contract_size == 0
    for r in records:
        assert r[1] == Venue.GATE and r[4] in ids.values()
        assert all(math.isfinite(v) for v in r[7:12]) and min(r[7:10]) >= 0.0 and r[0] != Kind.CONTROL
    btc = ids["BTC_USDT"]
    for r in records:
        if r[0] in (Kind.TRADE, Kind.LIQUIDATION):
            assert r[8] > 0 and r[9] == pytest.approx(r[7] * r[8])
            assert r[2] in ((Side.BUY, Side.SELL) if r[0] == Kind.TRADE else (Side.LONG, Side.SHORT))
            if r[4] == btc:
                assert 50_000 < r[7] < 200_000 and r[8] < 100   # base units (BTC), not contracts
        elif r[0] == Kind.BOOK_TOP:
            assert r[7] < r[10]
