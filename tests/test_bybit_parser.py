"""Bybit v5 linear parser: playback conformance, doc-example shapes, pinned rules, wire plan, fuzzing.

Run as a script for the msgspec-vs-stdlib throughput figures:
``.venv/bin/python -m tests.test_bybit_parser``.
"""
from __future__ import annotations

import json
import math
import os
import time
from collections import Counter
from pathlib import Path

import msgspec
import pytest
from hypothesis import given, settings, strategies as st

from engine.books import attach, unit_step
from engine.captures import iter_capture
from engine.config import VenueConfig
from engine.record import Flag, Kind, Side, Venue
from engine.venues import Outcome, bybit
from tests.fuzz_frames import damaged

SHARED = Path(os.environ.get("UNDERTOW_SHARED") or Path(__file__).resolve().parents[2] / "shared") / "data"
needs_data = pytest.mark.skipif(not SHARED.is_dir(), reason=f"shared capture data not found at {SHARED}")
DOCS = SHARED / "fixtures_doc_examples/nautilus_trader/bybit/test_data"
needs_docs = pytest.mark.skipif(not DOCS.is_dir(), reason=f"nautilus Bybit doc examples not found at {DOCS}")
OB500 = "bybit/nautilus_trader/2024-12-01_XRPUSDT_ob500.data"


def registry():
    ids: dict[str, int] = {}
    return lambda s: ids.setdefault(s, len(ids))


def parse_one(payload: bytes, parser: bybit.Parser | None = None):
    out: list = []
    outcome, topic = (parser or bybit.Parser(registry())).parse(payload, 123, out)
    return outcome, topic, out


def check_record(r):
    assert r[1] == Venue.BYBIT
    for v in r[7:10]:
        assert math.isfinite(v) and v >= 0.0
    assert math.isfinite(r[10]) and math.isfinite(r[11])
    assert 1.5e18 < r[5] < 2e18


# -- playback ----------------------------------------------------------------------

# Frames per message type, from PROVENANCE.md §1 (BYBIT.*) and §5 (ob500), not from the parser.
EXPECTED = {
    OB500: {"orderbook/snapshot": 1, "orderbook/delta": 49},
    "cryptofeed/sample_data/BYBIT.ws.25.0": {"orderBookL2_25": 3260, "trade": 66, "ack": 16},
    "cryptofeed/sample_data/BYBIT.ws.26.0": {"orderBookL2_25": 1018, "trade": 76, "ack": 4},
}
# v5 book: the snapshot gives the top, deltas wait for the synced book; legacy v2: counted, never used
OUTCOME = {"orderbook/snapshot": Outcome.EMITTED, "orderbook/delta": Outcome.PARSED,
           "orderBookL2_25": Outcome.IGNORED, "trade": Outcome.IGNORED, "ack": Outcome.CONTROL}


def message_type(payload: bytes) -> str:
    """Independent classification with the stdlib (topic family, plus the v5 snapshot/delta type)."""
    obj = json.loads(payload)
    if "topic" not in obj:
        return "ack" if "success" in obj else "other"
    family = obj["topic"].split(".")[0]
    return f"{family}/{obj['type']}" if family == "orderbook" else family


@pytest.mark.playback
@needs_data
@pytest.mark.parametrize("rel", sorted(EXPECTED))
def test_playback_counts(rel):
    parser = bybit.Parser(registry(), flags=Flag.REPLAY)
    per_type, outcomes = Counter(), Counter()
    for fr in iter_capture(SHARED / rel):
        if fr.direction != "recv":
            continue
        out: list = []
        outcome, topic = parser.parse(fr.payload, fr.ts_ns or 1, out)
        t = message_type(fr.payload)
        per_type[t] += 1
        outcomes[outcome] += 1
        assert outcome == OUTCOME[t], (t, fr.payload[:120])
        assert len(out) == (1 if outcome == Outcome.EMITTED else 0)
        for r in out:
            assert r[0] == Kind.BOOK_TOP and r[3] == Flag.REPLAY | Flag.SNAPSHOT
            check_record(r)
        if t.startswith("orderbook"):
            assert topic == "orderbook.500.XRPUSDT"
    assert dict(per_type) == EXPECTED[rel]
    assert outcomes[Outcome.MALFORMED] == 0 and outcomes[Outcome.UNKNOWN] == 0


@pytest.mark.playback
@needs_data
def test_ob500_snapshot_top_matches_the_frame_and_update_ids_are_contiguous():
    frames = [fr.payload for fr in iter_capture(SHARED / OB500)]
    first = json.loads(frames[0])["data"]
    _, _, [r] = parse_one(frames[0])
    bid, bq = map(float, first["b"][0])
    ask, aq = map(float, first["a"][0])
    assert (r[7], r[8], r[10], r[11]) == (bid, bq, ask, aq) == (1.9531, 6203.0, 1.9532, 10480.0)
    assert r[9] == pytest.approx(bid * bq + ask * aq)
    assert r[5] == json.loads(frames[0])["cts"] * 1_000_000   # matching-engine time when present
    # an observation for the synced book (PROTOCOLS §11.10): on this real excerpt u steps by exactly 1
    us = [json.loads(f)["data"]["u"] for f in frames]
    assert us == list(range(us[0], us[0] + len(us)))


def replay_book(frames: list[bytes]) -> tuple[dict, dict]:
    """Independent stdlib reconstruction of a Bybit book (snapshot resets, size 0 deletes, else set)."""
    bids: dict[float, float] = {}
    asks: dict[float, float] = {}
    for f in frames:
        m = json.loads(f)
        if m["type"] == "snapshot":
            bids.clear()
            asks.clear()
        for side, key in ((bids, "b"), (asks, "a")):
            for p, q in m["data"][key]:
                if float(q) == 0.0:
                    side.pop(float(p), None)
                else:
                    side[float(p)] = float(q)
    return bids, asks


@pytest.mark.playback
@needs_data
def test_ob500_through_the_synced_book():
    frames = [fr.payload for fr in iter_capture(SHARED / OB500)]
    parser = bybit.Parser({"XRPUSDT": 4}.get, flags=Flag.REPLAY)
    books = attach(parser, bybit, depth_levels=50)
    assert books.source == "resubscribe" and books.rule is unit_step
    tops, outcomes = [], Counter()
    for f in frames:
        out: list = []
        outcomes[parser.parse(f, 1, out)[0]] += 1
        assert not [r for r in out if r[0] == Kind.CONTROL]          # never loses sync on real data
        tops += [r for r in out if r[0] == Kind.BOOK_TOP]
    assert outcomes[Outcome.MALFORMED] == 0 and outcomes[Outcome.EMITTED] >= 1
    counters = books.counters()
    assert (counters["book_snapshots"], counters["book_gaps"], counters["book_stale"]) == (1, 0, 0)
    bids, asks = replay_book(frames)
    bid, ask = max(bids), min(asks)
    assert (tops[-1][7], tops[-1][8], tops[-1][10], tops[-1][11]) == (bid, bids[bid], ask, asks[ask])
    book = books.book("XRPUSDT")
    assert book.bids == bids and book.asks == asks
    # a replayed older delta is stale; "u"=1 is a restart and resets the book
    assert parser.parse(frames[5], 1, [])[0] == Outcome.PARSED and books.counters()["book_stale"] == 1
    reset = json.loads(frames[1])
    reset["data"]["u"] = 1
    parser.parse(json.dumps(reset).encode(), 1, [])
    assert books.book("XRPUSDT").bids == {float(p): float(q) for p, q in reset["data"]["b"] if float(q)}


@pytest.mark.playback
@needs_data
def test_legacy_v2_rest_listing_is_not_a_v5_instrument_list():
    (fr,) = list(iter_capture(SHARED / "cryptofeed/sample_data/BYBIT.0"))
    assert fr.direction == "rest" and b'"ret_code":0' in fr.payload
    assert bybit.parse_exchange_info(fr.payload) is None
    assert bybit.next_page(fr.payload, {}) is None
    assert bybit.parse_tickers(fr.payload) is None


# -- documentation examples (shapes only: nautilus' files are doc examples, some edited) --

@pytest.mark.unit
@needs_docs
def test_doc_example_shapes():
    ids = {"BTCUSDT": 5, "ETHUSDT": 6}
    parser = bybit.Parser(ids.get)
    outcome, topic, liqs = parse_one((DOCS / "ws_all_liquidation.json").read_bytes(), parser)
    assert (outcome, topic, [r[2] for r in liqs]) == (Outcome.EMITTED, "allLiquidation.BTCUSDT", [Side.LONG, Side.SHORT])
    assert [(r[7], r[8]) for r in liqs] == [(96250.5, 0.015), (97410.0, 1.25)]

    outcome, _, [top] = parse_one((DOCS / "ws_orderbook_snapshot.json").read_bytes(), parser)
    assert (top[0], top[7], top[8], top[10], top[11]) == (Kind.BOOK_TOP, 27450.0, 0.5, 27451.0, 0.75)
    assert parse_one((DOCS / "ws_orderbook_delta.json").read_bytes(), parser)[0] == Outcome.PARSED

    # this file's topic "trade.linear.BTCUSDT" does not exist; the data items have the v5 shape
    trade = json.loads((DOCS / "ws_public_trade.json").read_bytes())
    assert parse_one(json.dumps(trade).encode(), parser)[:2] == (Outcome.IGNORED, "trade.linear.BTCUSDT")
    trade["topic"] = "publicTrade.BTCUSDT"
    _, _, [t] = parse_one(json.dumps(trade).encode(), parser)
    assert (t[0], t[2], t[4], t[7], t[8]) == (Kind.TRADE, Side.BUY, 5, 27451.0, 0.010)

    _, _, (mark, oi) = parse_one((DOCS / "ws_ticker_linear.json").read_bytes(), parser)
    assert (mark[0], mark[7], mark[8], mark[10], mark[11]) == (Kind.MARK, 17217.33, 17227.36, -0.000212, 1673280000000.0)
    assert (oi[0], oi[7], oi[8], oi[9]) == (Kind.OPEN_INTEREST, 17217.33, 68744.761, 1183601235.91)

    infos = bybit.parse_exchange_info((DOCS / "http_get_instruments_linear.json").read_bytes())
    assert [(i.symbol, i.base, i.quote, i.contract_type, i.status, i.tick_size, i.contract_size) for i in infos] == [
        ("BTCUSDT", "BTC", "USDT", "perpetual", "trading", 0.5, 1.0),
        ("ETHUSDT", "ETH", "USDT", "perpetual", "trading", 0.05, 1.0)]
    assert bybit.next_page((DOCS / "http_get_instruments_linear.json").read_bytes(), {"limit": "1000"}) is None


# -- rules pinned on documented messages (PROTOCOLS.md §2, verbatim from Bybit's docs) --

DOC_ALL_LIQUIDATION = (b'{"topic":"allLiquidation.ROSEUSDT","type":"snapshot","ts":1739502303204,"data":[{"T":1739502302929,'
                       b'"s":"ROSEUSDT","S":"Sell","v":"20000","p":"0.04499"}]}')
DOC_PUBLIC_TRADE = (b'{"topic":"publicTrade.BTCUSDT","type":"snapshot","ts":1672304486868,"data":[{"T":1672304486865,'
                    b'"s":"BTCUSDT","S":"Buy","v":"0.001","p":"16578.50","L":"PlusTick",'
                    b'"i":"20f43950-d8dd-5b31-9112-a178eb6023af","BT":false,"seq":1783284617}]}')
DOC_BOOK_DELTA = (b'{"topic":"orderbook.50.BTCUSDT","type":"delta","ts":1687940967466,"data":{"s":"BTCUSDT",'
                  b'"b":[["30247.20","30.028"],["30240.00","0"]],"a":[["30248.70","0"]],"u":177400507,'
                  b'"seq":66544703342},"cts":1687940967464}')
DOC_ACK = b'{"success":true,"ret_msg":"","conn_id":"3cd84cb1-4d06-4a05-930a-2efe5fc70f0f","req_id":"","op":"subscribe"}'
DOC_PONG = b'{"success":true,"ret_msg":"pong","conn_id":"465772b1-7630-4fdc-a492-e003e6f0f260","req_id":"","op":"ping"}'
DOC_LEGACY_LIQUIDATION = (b'{"topic":"liquidation.BTCUSDT","type":"snapshot","ts":1703485237953,"data":{"updatedTime":'
                          b'1703485237953,"symbol":"BTCUSDT","side":"Sell","size":"0.003","price":"43511.70"}}')


@pytest.mark.unit
def test_all_liquidation_side_is_the_position_side_in_base_units_and_usd():
    """Docs: "When you receive a Buy update, this means that a long position has been liquidated"."""
    outcome, topic, [r] = parse_one(DOC_ALL_LIQUIDATION)
    assert (outcome, topic) == (Outcome.EMITTED, "allLiquidation.ROSEUSDT")
    assert (r[0], r[2], r[3]) == (Kind.LIQUIDATION, Side.SHORT, 0)        # "Sell" = a short was liquidated
    assert (r[7], r[8], r[10]) == (0.04499, 20000.0, 0.04499)              # bankruptcy price; v in base coin
    assert r[9] == pytest.approx(20000 * 0.04499)                          # USD notional
    assert (r[5], r[6]) == (1739502302929_000_000, 123)
    _, _, [long] = parse_one(DOC_ALL_LIQUIDATION.replace(b'"S":"Sell"', b'"S":"Buy"'))
    assert long[2] == Side.LONG
    assert not r[3] & Flag.CAPPED                                           # allLiquidation pushes every one


@pytest.mark.unit
def test_public_trade_side_is_the_taker_side_in_base_units_and_usd():
    outcome, topic, [r] = parse_one(DOC_PUBLIC_TRADE)
    assert (outcome, topic) == (Outcome.EMITTED, "publicTrade.BTCUSDT")
    assert (r[0], r[2], r[7], r[8], r[10], r[11]) == (Kind.TRADE, Side.BUY, 16578.5, 0.001, 0.0, 1.0)
    assert r[9] == pytest.approx(16.5785) and r[5] == 1672304486865_000_000
    _, _, [s] = parse_one(DOC_PUBLIC_TRADE.replace(b'"S":"Buy"', b'"S":"Sell"'))
    assert s[2] == Side.SELL
    _, _, [bt] = parse_one(DOC_PUBLIC_TRADE.replace(b'"BT":false', b'"BT":true'))
    assert bt[3] & Flag.NON_MARKET                                          # block trade: off-book
    assert bybit.trade_stream_ids is False                                  # "i" is a UUID: no gap check


@pytest.mark.unit
def test_batches_emit_one_record_each_and_a_bad_element_spoils_the_frame():
    frame = json.loads(DOC_PUBLIC_TRADE)
    second = dict(frame["data"][0], S="Sell", v="2.5", p="16578.00")
    frame["data"].append(second)
    _, _, out = parse_one(json.dumps(frame).encode())
    assert [(r[2], r[8]) for r in out] == [(Side.BUY, 0.001), (Side.SELL, 2.5)]
    frame["data"].append(dict(second, v="-1"))
    assert parse_one(json.dumps(frame).encode())[::2] == (Outcome.MALFORMED, [])


@pytest.mark.unit
def test_contract_sizes_scale_quantities_and_default_to_base_units():
    parser = bybit.Parser(registry(), contract_sizes={"ROSEUSDT": 10.0})
    _, _, [r] = parse_one(DOC_ALL_LIQUIDATION, parser)
    assert (r[8], r[9]) == (200000.0, pytest.approx(200000 * 0.04499))
    unusable = bybit.Parser(registry(), contract_sizes={"ROSEUSDT": float("nan"), "BTCUSDT": -1.0})
    assert unusable.contract_sizes == {} and parse_one(DOC_ALL_LIQUIDATION, unusable)[2][0][8] == 20000.0


@pytest.mark.unit
def test_order_book_snapshot_delta_and_reset():
    assert parse_one(DOC_BOOK_DELTA)[:2] == (Outcome.PARSED, "orderbook.50.BTCUSDT")
    snap = DOC_BOOK_DELTA.replace(b'"delta"', b'"snapshot"')
    # the only ask level has size 0: no top yet
    assert parse_one(snap)[::2] == (Outcome.PARSED, [])
    full = snap.replace(b'[["30248.70","0"]]', b'[["30248.70","1.5"]]')
    _, _, [top] = parse_one(full)
    assert (top[0], top[3], top[7], top[8], top[10], top[11]) == (
        Kind.BOOK_TOP, Flag.SNAPSHOT, 30247.2, 30.028, 30248.7, 1.5)
    assert top[5] == 1687940967464_000_000
    # "u"=1: the service restarted; the message overwrites the book even when typed delta
    reset = full.replace(b'"snapshot"', b'"delta"').replace(b'"u":177400507', b'"u":1')
    assert parse_one(reset)[0] == Outcome.EMITTED
    assert parse_one(full.replace(b'"snapshot"', b'"partial"'))[0] == Outcome.MALFORMED
    assert parse_one(full.replace(b'"30247.20"', b'"NaN"'))[0] == Outcome.MALFORMED


@pytest.mark.unit
def test_ticker_deltas_merge_into_the_snapshot():
    parser = bybit.Parser({"BTCUSDT": 1}.get)
    snap = {"topic": "tickers.BTCUSDT", "type": "snapshot", "ts": 1760325052630, "cs": 1, "data": {
        "symbol": "BTCUSDT", "lastPrice": "66666.60", "markPrice": "66666.60", "indexPrice": "66660.19",
        "openInterest": "492373.72", "openInterestValue": "32824881841.75", "singleOpenInterest": "246186.86",
        "singleOpenInterestValue": "16412440920.87", "fundingRate": "-0.005", "nextFundingTime": "1760342400000",
        "fundingIntervalHour": "8", "bid1Price": "66666.60", "preOpenPrice": ""}}
    _, _, (mark, oi) = parse_one(json.dumps(snap).encode(), parser)
    assert (mark[7], mark[8], mark[10], mark[11]) == (66666.6, 66660.19, -0.005, 1760342400000.0)
    assert (oi[7], oi[8], oi[9]) == (66666.6, 246186.86, 16412440920.87)   # single side preferred

    def delta(ts, **fields):
        return json.dumps({"topic": "tickers.BTCUSDT", "type": "delta", "ts": ts, "cs": 2,
                           "data": {"symbol": "BTCUSDT", **fields}}).encode()

    _, _, [m] = parse_one(delta(1760325052730, markPrice="66700.00"), parser)
    assert (m[0], m[7], m[8], m[10], m[11]) == (Kind.MARK, 66700.0, 66660.19, -0.005, 1760342400000.0)
    _, _, [o] = parse_one(delta(1760325052830, singleOpenInterest="250000", openInterest="500000"), parser)
    assert (o[0], o[7], o[8], o[9]) == (Kind.OPEN_INTEREST, 66700.0, 250000.0, 16412440920.87)
    assert o[5] == 1760325052830_000_000
    assert parse_one(delta(1760325052930, lastPrice="66701.00", bid1Price="66700.90"), parser)[::2] == (
        Outcome.PARSED, [])
    assert parse_one(delta(1760325053030, markPrice="Infinity"), parser)[0] == Outcome.MALFORMED
    assert parse_one(delta(1760325053030, openInterest="-3"), parser)[0] == Outcome.MALFORMED
    _, _, [m2] = parse_one(delta(1760325053130, fundingRate="0.0001"), parser)
    assert (m2[7], m2[10]) == (66700.0, 0.0001)                            # the bad delta changed nothing
    # without singleOpenInterest the both-sides figure is used, valued at the mark when no value came
    p2 = bybit.Parser({"ETHUSDT": 2}.get)
    eth = {"topic": "tickers.ETHUSDT", "type": "delta", "ts": 1760325052630,
           "data": {"symbol": "ETHUSDT", "markPrice": "4000", "openInterest": "10"}}
    _, _, (_, e) = parse_one(json.dumps(eth).encode(), p2)
    assert (e[7], e[8], e[9]) == (4000.0, 10.0, 40000.0)


@pytest.mark.unit
def test_control_unknown_legacy_and_broken_frames():
    assert parse_one(DOC_ACK)[0] == Outcome.CONTROL
    assert parse_one(DOC_PONG)[0] == Outcome.CONTROL
    failed = b'{"success":false,"ret_msg":"error:handler not found,topic:foo.BTCUSDT","conn_id":"x","req_id":"2","op":"subscribe"}'
    assert parse_one(failed)[0] == Outcome.CONTROL
    # the removed liquidation.{symbol} topic never yields a liquidation
    assert parse_one(DOC_LEGACY_LIQUIDATION)[::2] == (Outcome.IGNORED, [])
    assert parse_one(b'{"topic":"newThing.BTCUSDT","type":"snapshot","ts":1,"data":{}}')[:2] == (
        Outcome.UNKNOWN, "newThing.BTCUSDT")
    assert parse_one(b'{"hello":1}')[0] == Outcome.UNKNOWN
    assert parse_one(b'{"topic":"publicTrade.BTCUSDT","type":"snapshot","ts":1,"data":[{"s":"BTCUSDT"}]}')[0] == \
        Outcome.MALFORMED
    assert parse_one(b'{"topic":7}')[0] == Outcome.MALFORMED
    assert parse_one(b'[1,2]')[0] == Outcome.MALFORMED
    assert parse_one(b'{"topic":"publicTrade.BTC')[0] == Outcome.MALFORMED
    assert parse_one(b"")[0] == Outcome.MALFORMED


@pytest.mark.unit
def test_any_key_order_and_spacing_parse_like_the_compact_frame():
    pretty = json.dumps({"data": json.loads(DOC_PUBLIC_TRADE)["data"], "ts": 1672304486868, "type": "snapshot",
                         "topic": "publicTrade.BTCUSDT"}, indent=2).encode()
    assert parse_one(pretty) == parse_one(DOC_PUBLIC_TRADE)


@pytest.mark.unit
def test_unregistered_symbols_are_ignored():
    parser = bybit.Parser({"BTCUSDT": 1}.get)
    assert parse_one(DOC_ALL_LIQUIDATION, parser)[::2] == (Outcome.IGNORED, [])


# -- wire --------------------------------------------------------------------------

@pytest.mark.unit
def test_plan_topics_and_sharding():
    cfg = VenueConfig(symbols=["BTCUSDT", "ETHUSDT"], depth_levels=20)
    (p,) = bybit.plan(cfg)
    assert p.url == "wss://stream.bybit.com/v5/public/linear" and not p.subscribe_in_url
    assert p.streams == ("allLiquidation.BTCUSDT", "publicTrade.BTCUSDT", "orderbook.50.BTCUSDT", "tickers.BTCUSDT",
                         "allLiquidation.ETHUSDT", "publicTrade.ETHUSDT", "orderbook.50.ETHUSDT", "tickers.ETHUSDT")
    assert bybit.topics_for(["X"], ["book"], 100) == ["orderbook.200.X"]
    assert bybit.topics_for(["X"], ["book"], 5000) == ["orderbook.1000.X"]
    assert "allLiquidation.BTCUSDT" not in p.watched and "tickers.BTCUSDT" in p.watched
    assert not any(s.startswith("liquidation.") for s in p.streams)
    assert bybit.plan(cfg, {"linear": "ws://h:1/v5/public/linear"})[0].url == "ws://h:1/v5/public/linear"
    # 1000 symbols x 4 topics: every socket under the 21,000-character args limit and the topic cap
    many = VenueConfig(symbols=[f"S{i:04d}USDT" for i in range(1000)], max_streams_per_connection=2000)
    plans = bybit.plan(many)
    assert sum(len(x.streams) for x in plans) == 4000 and len({s for x in plans for s in x.streams}) == 4000
    assert all(sum(map(len, x.streams)) <= bybit.MAX_ARGS_CHARS_PER_CONNECTION for x in plans)
    assert len(plans) == math.ceil(sum(len(s) for x in plans for s in x.streams) / 21_000)
    capped = bybit.plan(VenueConfig(symbols=[f"S{i}USDT" for i in range(25)], max_streams_per_connection=40))
    assert [len(x.streams) for x in capped] == [40, 40, 20]
    assert [x.key for x in capped] == ["linear/0", "linear/1", "linear/2"]


@pytest.mark.unit
def test_subscribe_ping_and_stream_symbol():
    topics = [f"publicTrade.S{i}USDT" for i in range(250)]
    msgs = [json.loads(m) for m in bybit.subscribe_messages(topics, 7)]
    assert [m["req_id"] for m in msgs] == ["7", "8", "9"] and {m["op"] for m in msgs} == {"subscribe"}
    assert sum((m["args"] for m in msgs), []) == topics
    assert json.loads(bybit.ping_message())["op"] == "ping" and bybit.PING_INTERVAL_S == 20.0
    (unsub,) = [json.loads(m) for m in bybit.unsubscribe_messages(["orderbook.50.BTCUSDT"], 3)]
    assert unsub == {"req_id": "3", "op": "unsubscribe", "args": ["orderbook.50.BTCUSDT"]}
    assert bybit.is_book_stream("orderbook.50.BTCUSDT") and not bybit.is_book_stream("tickers.BTCUSDT")
    assert bybit.stream_symbol("orderbook.50.BTCUSDT") == "BTCUSDT"
    assert bybit.stream_symbol("tickers.1000PEPEUSDT") == "1000PEPEUSDT"
    assert bybit.stream_symbol("nothing") == ""


# -- REST --------------------------------------------------------------------------

@pytest.mark.unit
def test_rest_open_interest_pagination_tickers_and_base():
    oi = (b'{"retCode":0,"retMsg":"OK","result":{"symbol":"BTCUSDT","category":"linear","list":[{"openInterest":'
          b'"461134384.00000000","timestamp":"1669571400000"}],"nextPageCursor":""},"retExtInfo":{},"time":1672053548579}')
    out: list = []
    assert bybit.parse_open_interest(oi, {"BTCUSDT": 3}.get, 9, 2.0, out) == Outcome.EMITTED
    assert (out[0][0], out[0][4], out[0][5], out[0][8]) == (Kind.OPEN_INTEREST, 3, 1669571400000_000_000, 461134384.0)
    assert (out[0][7], out[0][9]) == (2.0, 922268768.0)
    single = oi.replace(b'"timestamp"', b'"singleOpenInterest":"230567192","timestamp"')
    out.clear()
    bybit.parse_open_interest(single, {"BTCUSDT": 3}.get, 9, 2.0, out)
    assert out[0][8] == 230567192.0
    assert bybit.parse_open_interest(b'{"retCode":10001,"retMsg":"params error","result":{}}', dict().get, 1, 1.0,
                                     []) == Outcome.CONTROL
    page = (b'{"retCode":0,"retMsg":"OK","result":{"category":"linear","list":[{"symbol":"BTC-26DEC25",'
            b'"contractType":"LinearFutures","status":"PreLaunch","baseCoin":"BTC","quoteCoin":"USDT",'
            b'"settleCoin":"USDT","priceFilter":{"tickSize":"0.10"}}],"nextPageCursor":"abc%3D1"}}')
    (info,) = bybit.parse_exchange_info(page)
    assert (info.contract_type, info.status, info.base, info.tick_size) == ("future", "prelaunch", "BTC", 0.1)
    assert bybit.next_page(page, {"category": "linear", "limit": "1000"}) == {
        "category": "linear", "limit": "1000", "cursor": "abc%3D1"}
    tickers = (b'{"retCode":0,"retMsg":"OK","result":{"category":"linear","list":[{"symbol":"BTCUSDT",'
               b'"turnover24h":"4936790807.6521","volume24h":"73191.3870"},{"symbol":"XUSDT","turnover24h":""}]}}')
    assert bybit.parse_tickers(tickers) == {"BTCUSDT": 4936790807.6521}
    assert [bybit.base_from_symbol(s) for s in ("BTCUSDT", "1000PEPEUSDT", "BTCPERP", "ETH-26DEC25")] == [
        "BTC", "1000PEPE", "BTC", "ETH"]


# -- fuzzing ---------------------------------------------------------------------------

TEMPLATES = [json.loads(DOC_ALL_LIQUIDATION), json.loads(DOC_PUBLIC_TRADE), json.loads(DOC_BOOK_DELTA),
             json.loads(DOC_BOOK_DELTA.replace(b'"delta"', b'"snapshot"').replace(b'"0"]]', b'"2"]]')),
             {"topic": "tickers.BTCUSDT", "type": "snapshot", "ts": 1, "cs": 1,
              "data": {"symbol": "BTCUSDT", "markPrice": "2", "indexPrice": "2", "fundingRate": "0.1",
                       "nextFundingTime": "3", "openInterest": "5", "openInterestValue": "10"}},
             {"topic": "tickers.BTCUSDT", "type": "delta", "ts": 1, "data": {"symbol": "BTCUSDT", "openInterest": "7"}},
             json.loads(DOC_ACK), json.loads(DOC_LEGACY_LIQUIDATION)]
WEIRD = st.sampled_from(["NaN", "Infinity", "-Infinity", "-1", "-0.5", "1e400", "", "abc", None, True, [], {}, -5,
                         float("nan"), 1e308, "0", 0, 10**20, "Buy", "Sell", "delta", "snapshot", "newTopic.X"])


def mutate(draw, template):
    obj = json.loads(json.dumps(template))
    data = obj.get("data")
    for _ in range(draw(st.integers(1, 3))):
        if isinstance(data, list) and data and draw(st.booleans()):
            target = data[draw(st.integers(0, len(data) - 1))]
        elif isinstance(data, dict) and draw(st.booleans()):
            target = data
        else:
            target = obj
        if not isinstance(target, dict) or not target:
            continue
        key = draw(st.sampled_from(sorted(target)))
        action = draw(st.sampled_from(["drop", "weird", "type"]))
        if action == "drop":
            target.pop(key, None)
        elif action == "weird":
            target[key] = draw(WEIRD)
        else:
            target[key] = draw(st.sampled_from([1, "1", 1.5, [1], {"a": 1}, "BTCUSDT", [["1", "-2"]], [[]]]))
    return obj


@st.composite
def frames(draw):
    obj = mutate(draw, draw(st.sampled_from(TEMPLATES)))
    raw = json.dumps(obj, allow_nan=True, indent=draw(st.sampled_from([None, None, 1]))).encode()
    return damaged(draw, raw)


@pytest.mark.property
@settings(max_examples=700, deadline=None)
@given(frames())
def test_fuzzed_frames_never_raise_or_emit_bad_numbers(raw):
    parser = bybit.Parser(registry())
    for _ in range(2):   # twice: the second pass runs against ticker state the first one left
        out: list = []
        outcome, topic = parser.parse(raw, 1, out)
        assert isinstance(outcome, Outcome) and isinstance(topic, str)
        if outcome != Outcome.EMITTED:
            assert out == []
        else:
            assert out
        for r in out:
            for v in (r[7], r[8], r[9]):
                assert math.isfinite(v) and v >= 0.0
            assert math.isfinite(r[10]) and math.isfinite(r[11])
            assert 0 <= r[5] < 1 << 63
            if r[0] in (Kind.TRADE, Kind.LIQUIDATION, Kind.BOOK_TOP):
                assert r[7] > 0.0 and r[8] > 0.0


@pytest.mark.property
@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300))
def test_arbitrary_bytes_never_raise(raw):
    outcome, _, out = parse_one(raw)
    assert isinstance(outcome, Outcome) and (out == [] or outcome == Outcome.EMITTED)
    assert bybit.parse_open_interest(raw, registry(), 1, 1.0, []) in tuple(Outcome)
    assert bybit.parse_exchange_info(raw) is None or isinstance(bybit.parse_exchange_info(raw), list)
    assert bybit.next_page(raw, {}) is None or isinstance(bybit.next_page(raw, {}), dict)
    assert bybit.parse_tickers(raw) is None or isinstance(bybit.parse_tickers(raw), dict)


# -- throughput: msgspec parser versus json.loads + the same normalisation ------------

def stdlib_parse(payload: bytes, ts: int, ids: dict, out: list) -> None:
    """The same normalisation written with ``json.loads`` (the baseline; no validation beyond float())."""
    m = json.loads(payload)
    family = m["topic"].split(".", 1)[0]
    if family == "publicTrade":
        for t in m["data"]:
            p, q = float(t["p"]), float(t["v"])
            out.append((Kind.TRADE, Venue.BYBIT, Side.BUY if t["S"] == "Buy" else Side.SELL,
                        Flag.NON_MARKET if t.get("BT") else 0, ids[t["s"]], t["T"] * 1_000_000, ts,
                        p, q, p * q, 0.0, 1.0))
    elif family == "allLiquidation":
        for t in m["data"]:
            p, q = float(t["p"]), float(t["v"])
            out.append((Kind.LIQUIDATION, Venue.BYBIT, Side.LONG if t["S"] == "Buy" else Side.SHORT, 0, ids[t["s"]],
                        t["T"] * 1_000_000, ts, p, q, p * q, p, 0.0))
    elif family == "orderbook":
        d = m["data"]
        if m["type"] == "snapshot" or d["u"] == 1:
            b, bq = map(float, d["b"][0])
            a, aq = map(float, d["a"][0])
            out.append((Kind.BOOK_TOP, Venue.BYBIT, 0, Flag.SNAPSHOT, ids[d["s"]], m.get("cts", m["ts"]) * 1_000_000,
                        ts, b, bq, b * bq + a * aq, a, aq))
    elif family == "tickers":
        d = m["data"]
        mark = float(d["markPrice"])
        out.append((Kind.MARK, Venue.BYBIT, 0, 0, ids[d["symbol"]], m["ts"] * 1_000_000, ts, mark,
                    float(d["indexPrice"]), 0.0, float(d["fundingRate"]), float(d["nextFundingTime"])))
        oi = float(d["openInterest"])
        out.append((Kind.OPEN_INTEREST, Venue.BYBIT, 0, 0, ids[d["symbol"]], m["ts"] * 1_000_000, ts, mark, oi,
                    float(d["openInterestValue"]), 0.0, 0.0))


def bench_frames() -> dict[str, list[bytes]]:
    """Real v5 book frames (the ob500 excerpt) and the documented trade/liquidation/ticker frames."""
    groups = {"orderbook (real, 1 snapshot + 49 deltas)": [fr.payload for fr in iter_capture(SHARED / OB500)]}
    groups["publicTrade (doc)"] = [DOC_PUBLIC_TRADE]
    groups["allLiquidation (doc)"] = [DOC_ALL_LIQUIDATION]
    if DOCS.is_dir():
        groups["tickers snapshot (doc)"] = [msgspec.json.encode(msgspec.json.decode(
            (DOCS / "ws_ticker_linear.json").read_bytes()))]
    return groups


def per_frame_s(fn, frames: list[bytes], repeat: int = 5, min_frames: int = 20_000) -> float:
    reps = max(1, min_frames // len(frames))
    best = math.inf
    for _ in range(repeat):
        out: list = []
        t0 = time.perf_counter()
        for _ in range(reps):
            for f in frames:
                fn(f, 1, out)
                out.clear()
        best = min(best, time.perf_counter() - t0)
    return best / (reps * len(frames))


@pytest.mark.playback
@needs_data
def test_stdlib_baseline_produces_the_same_records():
    """The throughput comparison is fair only if both sides produce identical records."""
    ids = {"XRPUSDT": 0, "BTCUSDT": 1, "ROSEUSDT": 2}
    for frames in bench_frames().values():
        for f in frames:
            a: list = []
            b: list = []
            bybit.Parser(ids.get).parse(f, 1, a)
            stdlib_parse(f, 1, ids, b)
            assert a == b


def main() -> None:
    ids = {"XRPUSDT": 0, "BTCUSDT": 1, "ROSEUSDT": 2}
    parser = bybit.Parser(ids.get)
    print(f"{'frames':44s} {'msgspec us':>11s} {'stdlib us':>10s} {'speed-up':>9s}")
    for name, frames in bench_frames().items():
        fast = per_frame_s(parser.parse, frames)
        slow = per_frame_s(lambda f, ts, out: stdlib_parse(f, ts, ids, out), frames)
        print(f"{name:44s} {fast * 1e6:11.2f} {slow * 1e6:10.2f} {slow / fast:8.1f}x")


if __name__ == "__main__":
    main()
