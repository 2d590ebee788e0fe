"""Bitget parser: playback conformance on every Bitget capture, pinned rules, fuzzing, wire plan, throughput."""
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

from engine.books import attach
from engine.captures import iter_capture
from engine.config import VenueConfig
from engine.record import Control, Flag, Kind, Side, Venue
from bench.stdlib_parsers import bitget_normalise as _stdlib_parse
from engine.venues import Outcome, bitget
from tests.fuzz_frames import damaged

SHARED = Path(os.environ.get("UNDERTOW_SHARED") or Path(__file__).resolve().parents[2] / "shared") / "data"
needs_data = pytest.mark.skipif(not SHARED.is_dir(), reason=f"shared capture data not found at {SHARED}")
CAPTURES = SHARED / "cryptofeed" / "sample_data"


def registry():
    ids: dict[str, int] = {}
    return lambda s: ids.setdefault(s, len(ids))


def parse_one(payload, lookup=None, **kw):
    out: list = []
    outcome, stream = bitget.Parser(lookup or registry(), **kw).parse(payload, 1, out)
    return outcome, stream, out


def check_record(r):
    assert r[1] == Venue.BITGET
    for v in r[7:10]:
        assert math.isfinite(v) and v >= 0.0
    assert 1.5e18 < r[5] < 2e18 and r[6] > 0


# -- playback ----------------------------------------------------------------------

# Frames per channel, copied from PROVENANCE.md section 1 (not from the parser); "events" = subscribe acks.
EXPECTED = {
    "BITGET.ws.2.0": {"ticker": 217, "books": 194, "trade": 27, "candle1m": 27, "events": 8},
    "BITGET.ws.1.0": {"books": 443, "ticker": 128, "candle1m": 43, "trade": 38, "events": 32},
}


def channel_of(outcome, stream):
    return "events" if outcome is Outcome.CONTROL else stream.split(".", 1)[0]


def replay(name):
    lookup = registry()
    parser = bitget.Parser(lookup, flags=Flag.REPLAY)
    per_channel, outcomes, kinds = Counter(), Counter(), Counter()
    by_outcome = Counter()
    for fr in iter_capture(CAPTURES / name):
        if fr.direction != "recv":
            continue
        out: list = []
        outcome, stream = parser.parse(fr.payload, fr.ts_ns, out)
        ch = channel_of(outcome, stream)
        per_channel[ch] += 1
        outcomes[outcome] += 1
        by_outcome[ch, outcome] += 1
        for r in out:
            check_record(r)
            assert r[3] & Flag.REPLAY
            kinds[r[0]] += 1
    return per_channel, outcomes, by_outcome, kinds


def capture_json(name):
    return [json.loads(fr.payload) for fr in iter_capture(CAPTURES / name) if fr.direction == "recv"]


@pytest.mark.playback
@needs_data
@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_playback_counts(name):
    per_channel, outcomes, _, _ = replay(name)
    assert dict(per_channel) == EXPECTED[name]
    assert outcomes[Outcome.MALFORMED] == 0 and outcomes[Outcome.UNKNOWN] == 0


@pytest.mark.playback
@needs_data
def test_legacy_mix_capture_maps_to_records():
    """v1 mix (instType mc): ticker -> MARK (+ OI when ``holding`` moves), books snapshot -> BOOK_TOP,
    trade updates -> TRADE, the trade snapshot (history) and book deltas -> PARSED, candles IGNORED."""
    _, _, by_outcome, kinds = replay("BITGET.ws.2.0")
    frames = capture_json("BITGET.ws.2.0")
    pushes = [f for f in frames if "action" in f]
    n = Counter((f["arg"]["channel"], f["action"]) for f in pushes)
    trade_items = sum(len(f["data"]) for f in pushes if f["arg"]["channel"] == "trade" and f["action"] == "update")
    holdings = {}
    oi_changes = 0
    for f in pushes:
        if f["arg"]["channel"] == "ticker":
            h = f["data"][0]["holding"]
            oi_changes += holdings.get(f["arg"]["instId"]) != h
            holdings[f["arg"]["instId"]] = h
    assert by_outcome["ticker", Outcome.EMITTED] == 217 and kinds[Kind.MARK] == 217
    assert kinds[Kind.OPEN_INTEREST] == oi_changes >= 2
    assert by_outcome["books", Outcome.EMITTED] == kinds[Kind.BOOK_TOP] == n["books", "snapshot"] == 2
    assert by_outcome["books", Outcome.PARSED] == n["books", "update"]
    assert by_outcome["trade", Outcome.PARSED] == n["trade", "snapshot"]
    assert kinds[Kind.TRADE] == trade_items and by_outcome["trade", Outcome.EMITTED] == n["trade", "update"]
    assert by_outcome["candle1m", Outcome.IGNORED] == 27


@pytest.mark.playback
@needs_data
def test_legacy_spot_capture_is_ignored():
    """v1 spot (instType sp) is not a futures market: every push IGNORED, acks CONTROL, nothing emitted."""
    _, outcomes, by_outcome, kinds = replay("BITGET.ws.1.0")
    assert not kinds
    assert outcomes[Outcome.IGNORED] == 684 - 32 and outcomes[Outcome.CONTROL] == 32


@pytest.mark.playback
@needs_data
def test_legacy_rest_listings():
    """BITGET.0: v1 spot products, USDT-M (umcbl) and coin-M (dmcbl) contracts: one instrument per row."""
    bodies = [(fr.url, fr.payload) for fr in iter_capture(CAPTURES / "BITGET.0") if fr.direction == "rest"]
    assert len(bodies) == 3   # PROVENANCE: 3 responses
    kinds = {}
    for url, body in bodies:
        infos = bitget.parse_exchange_info(body)
        assert infos is not None and len(infos) == len(json.loads(body)["data"])
        kinds[url.split("/api/")[1]] = Counter(i.contract_type for i in infos)
        for i in infos:
            assert i.base and i.quote and i.tick_size > 0 and i.contract_size == 1.0
    assert set(kinds["spot/v1/public/products"]) == {"spot"}
    assert set(kinds["mix/v1/market/contracts?productType=umcbl"]) == {"perpetual"}
    umcbl = {i.symbol: i for i in bitget.parse_exchange_info(bodies[1][1])}
    # {"symbol": "BTCUSDT_UMCBL", .., "quoteCoin": "USDT", "baseCoin": "BTC", .., "priceEndStep": "5", "volumePlace": "3", "pricePlace": "1"}
    assert umcbl["BTCUSDT_UMCBL"].base == "BTC" and umcbl["BTCUSDT_UMCBL"].tick_size == pytest.approx(0.5)


@pytest.mark.playback
def test_doc_example_fixtures():
    d = SHARED / "fixtures_doc_examples" / "nautilus_trader" / "bitget"
    if not d.is_dir():
        pytest.skip(f"no Bitget doc-example fixtures in {d.parent} (nautilus_trader has none for Bitget)")
    for f in sorted(d.rglob("*.json")):   # pragma: no cover - runs only once such fixtures exist
        outcome, _, out = parse_one(f.read_bytes())
        assert outcome is not Outcome.MALFORMED, f
        for r in out:
            check_record(r)


# -- pinned rules ------------------------------------------------------------------

# PROTOCOLS.md §5.2, the v3 UTA docs' push (pretty-printed in the docs; here on one line, keys in doc order).
LIQ_DOC = (b'{"data":[{"symbol":"BTCUSDT","side":"buy","price":"89000","amount":"37.722858","ts":"1736371332162"}],'
           b'"arg":{"instType":"usdt-futures","topic":"liquidation"},"action":"update","ts":1736371332162}')


@pytest.mark.unit
def test_liquidation_buy_is_a_liquidated_long_and_amount_is_quote():
    outcome, stream, out = parse_one(LIQ_DOC)
    assert outcome is Outcome.EMITTED and stream == "liquidation"
    (r,) = out
    assert r[0] == Kind.LIQUIDATION and r[2] == Side.LONG
    assert r[3] & Flag.CAPPED and not r[3] & Flag.SNAPSHOT
    assert r[7] == 89000.0
    assert r[8] == pytest.approx(37.722858 / 89000)        # base units = quote amount / price
    assert r[9] == pytest.approx(37.722858)                # USD notional = the USDT amount
    assert r[5] == 1736371332162 * 1_000_000


@pytest.mark.unit
def test_liquidation_sell_is_a_liquidated_short_on_the_fast_path():
    frame = (b'{"action":"update","arg":{"instType":"usdt-futures","topic":"liquidation"},"data":['
             b'{"symbol":"ETHUSDT","side":"sell","price":"3000","amount":"30000","ts":"1736371332162"},'
             b'{"symbol":"XYZUSDT","side":"buy","price":"1","amount":"5","ts":"1736371332162"}],"ts":1736371332162}')
    known = {"ETHUSDT": 3}
    outcome, _, out = parse_one(frame, known.get)
    assert outcome is Outcome.EMITTED
    (r,) = out                                             # XYZUSDT is not registered
    assert r[2] == Side.SHORT and r[4] == 3 and r[8] == pytest.approx(10.0) and r[9] == pytest.approx(30000.0)


# v2 trade channel docs: an update with one fill; side is the taker side, size is base coin.
TRADE_DOC = (b'{"action":"update","arg":{"instType":"USDT-FUTURES","channel":"trade","instId":"BTCUSDT"},'
             b'"data":[{"ts":"1695716760565","price":"27000.5","size":"0.001","side":"buy","tradeId":"1111111111"}],'
             b'"ts":1695716761589}')


@pytest.mark.unit
def test_trade_side_is_the_taker_side_and_size_is_base():
    outcome, stream, out = parse_one(TRADE_DOC)
    assert outcome is Outcome.EMITTED and stream == "trade.BTCUSDT"
    (r,) = out
    assert r[0] == Kind.TRADE and r[2] == Side.BUY
    assert (r[7], r[8]) == (27000.5, 0.001) and r[9] == pytest.approx(27.0005)
    assert r[10] == 1111111111.0 and r[5] == 1695716760565 * 1_000_000


@pytest.mark.playback
@needs_data
def test_real_legacy_trade_sell_is_taker_sell():
    # BITGET.ws.2.0: {"action":"update","arg":{"instType":"mc","channel":"trade","instId":"UNIUSDT"},"data":[["1649290078916","9.977","1","sell"]]}
    frame = next(fr.payload for fr in iter_capture(CAPTURES / "BITGET.ws.2.0")
                 if b'"channel":"trade","instId":"UNIUSDT"},"data":[["1649290078916"' in fr.payload)
    outcome, _, out = parse_one(frame)
    assert outcome is Outcome.EMITTED
    (r,) = out
    assert r[2] == Side.SELL and (r[7], r[8]) == (9.977, 1.0) and r[10] == 0.0


@pytest.mark.unit
def test_trade_snapshot_is_history_and_large_ids_are_not_rounded():
    snap = TRADE_DOC.replace(b'"update"', b'"snapshot"')
    assert parse_one(snap)[0] is Outcome.PARSED and not parse_one(snap)[2]
    big = TRADE_DOC.replace(b'"1111111111"', b'"1117553416658251777"')   # a 19-digit snowflake id
    assert parse_one(big)[2][0][10] == 0.0


# A real v2 ticker push (quoted in a public repository's tests): mark, index, funding, OI in base coin.
TICKER_REAL = (
    b'{"action":"snapshot","arg":{"instType":"USDT-FUTURES","channel":"ticker","instId":"BIRBUSDT"},"data":[{'
    b'"instId":"BIRBUSDT","lastPr":"0.07623","bidPr":"0.07615","askPr":"0.0762","bidSz":"1863","askSz":"1290",'
    b'"open24h":"0.08453","high24h":"0.10126","low24h":"0.07447","change24h":"-0.09819","fundingRate":"-0.006439",'
    b'"nextFundingTime":"1783080000000","markPrice":"0.07628","indexPrice":"0.0774530536255575",'
    b'"holdingAmount":"23439001","baseVolume":"381989307","quoteVolume":"33328445.00488","openUtc":"0.09095",'
    b'"symbolType":"1","symbol":"BIRBUSDT","deliveryPrice":"0","ts":"1783066672529"}],"ts":1783066672529}')


@pytest.mark.unit
def test_ticker_gives_mark_funding_and_open_interest_once_per_change():
    parser = bitget.Parser(registry())
    out: list = []
    assert parser.parse(TICKER_REAL, 1, out) == (Outcome.EMITTED, "ticker.BIRBUSDT")
    mark, oi = out
    assert mark[0] == Kind.MARK and (mark[7], mark[8]) == (0.07628, 0.0774530536255575)
    assert mark[10] == -0.006439 and mark[11] == 1783080000000.0
    assert oi[0] == Kind.OPEN_INTEREST and oi[8] == 23439001.0 and oi[9] == pytest.approx(23439001 * 0.07628)
    out.clear()
    parser.parse(TICKER_REAL, 2, out)
    assert [r[0] for r in out] == [Kind.MARK]              # holdingAmount unchanged: no second OI record


@pytest.mark.unit
def test_book_snapshot_channels_give_book_top_and_full_depth_deltas_wait():
    books5 = (b'{"action":"snapshot","arg":{"instType":"USDT-FUTURES","channel":"books5","instId":"BTCUSDT"},'
              b'"data":[{"asks":[["27000.5","8.760"],["27001.0","0.400"]],"bids":[["27000.0","2.710"],'
              b'["26999.5","1.460"]],"checksum":0,"seq":123,"ts":"1695716059516"}],"ts":1695716059516}')
    outcome, stream, out = parse_one(books5)
    assert (outcome, stream) == (Outcome.EMITTED, "books5.BTCUSDT")
    (r,) = out
    assert r[0] == Kind.BOOK_TOP and r[3] & Flag.SNAPSHOT
    assert (r[7], r[8], r[10], r[11]) == (27000.0, 2.71, 27000.5, 8.76)
    assert r[9] == pytest.approx(27000.0 * 2.71 + 27000.5 * 8.76)
    delta = books5.replace(b'"books5"', b'"books"').replace(b'"snapshot"', b'"update"')
    assert parse_one(delta)[0] is Outcome.PARSED and not parse_one(delta)[2]


@pytest.mark.unit
@pytest.mark.parametrize("frame, expected", [
    (b"pong", Outcome.CONTROL),
    (b'{"event":"subscribe","arg":{"instType":"USDT-FUTURES","channel":"ticker","instId":"BTCUSDT"}}', Outcome.CONTROL),
    (b'{"event":"subscribe","arg":{"instType":"usdt-futures","topic":"liquidation"},"connId":"x1"}', Outcome.CONTROL),
    (b'{"event":"error","arg":{"instType":"USDT-FUTURES","channel":"ticker","instId":"FOO"},"code":30003,'
     b'"msg":"instType:USDT-FUTURES,channel:ticker,instId:FOO Symbol not exists","op":"subscribe"}', Outcome.CONTROL),
    (b'{"event":"error","code":30012,"msg":"param error"}', Outcome.CONTROL),
    (b'{"event":"notice","msg":"maintenance"}', Outcome.UNKNOWN),
    (b'{"hello":1}', Outcome.UNKNOWN),
    (b'{"action":"snapshot","arg":{"instType":"USDT-FUTURES","channel":"newthing","instId":"BTCUSDT"},"data":[]}',
     Outcome.UNKNOWN),
    (b'{"action":"snapshot","arg":{"instType":"USDT-FUTURES","channel":"candle1m","instId":"BTCUSDT"},'
     b'"data":[["1695685500000","27000","27000.5","27000","27000.5","0.057","1539.0155","1539.0155"]]}', Outcome.IGNORED),
    (b'{"action":"update","arg":{"instType":"COIN-FUTURES","channel":"trade","instId":"BTCUSD"},"data":[]}',
     Outcome.IGNORED),
    (TRADE_DOC.replace(b'"side":"buy"', b'"side":"up"'), Outcome.MALFORMED),
    (TRADE_DOC.replace(b'"0.001"', b'"-0.001"'), Outcome.MALFORMED),
    (TRADE_DOC.replace(b'"27000.5"', b'"NaN"'), Outcome.MALFORMED),
    (TRADE_DOC.replace(b'"update"', b'"partial"'), Outcome.MALFORMED),
    (TRADE_DOC[:-20], Outcome.MALFORMED),
    (b"pon", Outcome.MALFORMED),
    (b"[1,2]", Outcome.MALFORMED),
    (LIQ_DOC.replace(b'"37.722858"', b'"Infinity"'), Outcome.MALFORMED),
])
def test_classification(frame, expected):
    outcome, _, out = parse_one(frame)
    assert outcome is expected
    if expected is not Outcome.EMITTED:
        assert not out


# -- REST ------------------------------------------------------------------------

@pytest.mark.unit
def test_open_interest_contracts_and_tickers_rest():
    oi = (b'{"code":"00000","msg":"success","requestTime":1695796781343,"data":{"openInterestList":'
          b'[{"symbol":"BTCUSDT","size":"34278.06"}],"ts":"1695796781344"}}')
    out: list = []
    assert bitget.parse_open_interest(oi, {"BTCUSDT": 0}.get, 5, 27000.0, out) is Outcome.EMITTED
    assert out[0][0] == Kind.OPEN_INTEREST and out[0][8] == 34278.06 and out[0][9] == pytest.approx(34278.06 * 27000)
    assert bitget.parse_open_interest(oi, {}.get, 5, 27000.0, []) is Outcome.IGNORED
    assert bitget.parse_open_interest(b'{"code":"40034","msg":"x","data":null}', {}.get, 5, 1.0, []) is Outcome.MALFORMED
    assert bitget.parse_open_interest(oi.replace(b'"34278.06"', b'"-1"'), {"BTCUSDT": 0}.get, 5, 1.0, []) \
        is Outcome.MALFORMED

    contracts = (b'{"code":"00000","msg":"success","requestTime":1,"data":['
                 b'{"symbol":"BTCUSDT","baseCoin":"BTC","quoteCoin":"USDT","symbolType":"perpetual",'
                 b'"symbolStatus":"normal","pricePlace":"1","priceEndStep":"1","sizeMultiplier":"0.001"},'
                 b'{"symbol":"1000PEPEUSDT","baseCoin":"1000PEPE","quoteCoin":"USDT","symbolType":"perpetual",'
                 b'"symbolStatus":"maintain","pricePlace":"7","priceEndStep":"1"},'
                 b'{"symbol":"BTCUSDT_260925","baseCoin":"BTC","quoteCoin":"USDT","symbolType":"delivery",'
                 b'"symbolStatus":"normal","pricePlace":"1","priceEndStep":"5"}]}')
    infos = {i.symbol: i for i in bitget.parse_exchange_info(contracts)}
    assert infos["BTCUSDT"] == ("BTCUSDT", "BTC", "USDT", "perpetual", "trading", pytest.approx(0.1), 1.0)
    assert infos["1000PEPEUSDT"].base == "1000PEPE" and infos["1000PEPEUSDT"].status == "maintain"
    assert infos["BTCUSDT_260925"].contract_type == "future" and infos["BTCUSDT_260925"].tick_size == pytest.approx(0.5)
    assert bitget.parse_exchange_info(b'{"code":"40019","msg":"x","data":null}') is None

    tickers = (b'{"code":"00000","msg":"success","data":[{"symbol":"BTCUSDT","lastPr":"64000","baseVolume":"10",'
               b'"quoteVolume":"640000","usdtVolume":"640000"},{"symbol":"ETHUSDT","lastPr":"3000","baseVolume":"2"},'
               b'{"symbol":"BADUSDT","usdtVolume":"NaN"}]}')
    assert bitget.parse_tickers(tickers) == {"BTCUSDT": 640000.0, "ETHUSDT": 6000.0}
    assert bitget.parse_tickers(b"{") is None


# -- wire plan -------------------------------------------------------------------

@pytest.mark.unit
def test_plan_splits_v2_and_v3_and_shards():
    symbols = [f"S{i}USDT" for i in range(30)]
    plans = bitget.plan(VenueConfig(symbols=symbols, max_streams_per_connection=200, depth_levels=15))
    public = [p for p in plans if p.key.startswith("public/")]
    uta = [p for p in plans if p.key.startswith("uta/")]
    # trade + books15 + ticker per symbol (mark and oi share the ticker); 16 whole symbols per socket
    assert [len(p.streams) for p in public] == [48, 42]
    assert public[0].streams[:3] == ("trade.S0USDT", "books15.S0USDT", "ticker.S0USDT")
    assert all(p.url == bitget.DEFAULT_WS_URLS["public"] and not p.subscribe_in_url for p in public)
    assert uta == [("uta/0", bitget.DEFAULT_WS_URLS["uta"], ("liquidation",), (), False)]
    assert "trade.S0USDT" not in public[0].watched and "ticker.S0USDT" in public[0].watched
    msgs = [json.loads(m) for m in bitget.subscribe_messages(public[0].streams)]
    assert [len(m["args"]) for m in msgs] == [25, 23] and all(len(m) < 4096 for m in bitget.subscribe_messages(
        public[0].streams))
    assert msgs[0]["op"] == "subscribe"
    assert msgs[0]["args"][0] == {"instType": "USDT-FUTURES", "channel": "trade", "instId": "S0USDT"}
    assert json.loads(bitget.subscribe_messages(["liquidation"])[0])["args"] == [
        {"instType": "usdt-futures", "topic": "liquidation"}]
    assert bitget.stream_symbol("books15.BTCUSDT") == "BTCUSDT" and bitget.stream_symbol("liquidation") == ""
    assert bitget.ping_message() == "ping" and bitget.PING_INTERVAL_S == 30.0
    assert bitget.plan(VenueConfig(symbols=["BTCUSDT"], depth_levels=5))[0].streams[1] == "books5.BTCUSDT"
    deep = bitget.plan(VenueConfig(symbols=["BTCUSDT"], depth_levels=20))[0].streams
    assert deep[1] == "books.BTCUSDT" and bitget.is_book_stream(deep[1]) and not bitget.is_book_stream("books15.X")
    assert json.loads(bitget.unsubscribe_messages([deep[1]])[0]) == {
        "op": "unsubscribe", "args": [{"instType": "USDT-FUTURES", "channel": "books", "instId": "BTCUSDT"}]}


# -- synced full-depth book (engine/books.py) ----------------------------------------

def book_frame(action, seq, pseq, bids, asks, symbol="BTCUSDT"):
    item = {"asks": [[str(p), str(q)] for p, q in asks], "bids": [[str(p), str(q)] for p, q in bids],
            "checksum": 0, "seq": seq, "ts": "1695716059516"}
    if pseq is not None:
        item["pseq"] = pseq
    return json.dumps({"action": action, "arg": {"instType": "USDT-FUTURES", "channel": "books", "instId": symbol},
                       "data": [item], "ts": 1695716059516}).encode()


def synced_parser():
    parser = bitget.Parser(registry())
    books_ = attach(parser, bitget, depth_levels=20)
    assert books_ is not None and books_.source == "resubscribe"
    return parser, books_


@pytest.mark.unit
def test_full_depth_book_chains_pseq_and_resyncs_on_a_gap():
    parser, books_ = synced_parser()
    asked = []
    books_.on_resync = asked.append
    out: list = []
    assert parser.parse(book_frame("snapshot", 10, None, [(100.0, 1.0), (99.0, 2.0)], [(101.0, 3.0)]), 1, out)[0] \
        is Outcome.EMITTED
    assert out[0][0] == Kind.BOOK_TOP and (out[0][7], out[0][8], out[0][10], out[0][11]) == (100.0, 1.0, 101.0, 3.0)
    out.clear()
    parser.parse(book_frame("update", 11, 10, [(100.0, 0.0)], []), 2, out)   # best bid removed
    tops = [r for r in out if r[0] == Kind.BOOK_TOP]
    assert tops and tops[-1][7] == 99.0 and tops[-1][8] == 2.0
    out.clear()
    parser.parse(book_frame("update", 14, 13, [(98.0, 1.0)], []), 3, out)   # pseq 13 != 11: a gap
    assert asked == ["BTCUSDT"] and not books_.book("BTCUSDT").synced
    assert [r[10] for r in out if r[0] == Kind.CONTROL] == [Control.BOOK_INVALID]
    out.clear()
    parser.parse(book_frame("snapshot", 20, None, [(97.0, 1.0)], [(98.5, 1.0)]), 4, out)   # the resubscribe's snapshot
    assert books_.book("BTCUSDT").synced and out[0][7] == 97.0
    out.clear()
    parser.parse(book_frame("update", 5, 0, [(96.0, 4.0)], [(96.5, 1.0)]), 5, out)   # pseq 0: a new book
    assert books_.book("BTCUSDT").synced and [r[7] for r in out if r[0] == Kind.BOOK_TOP][-1] == 96.0


@pytest.mark.playback
@needs_data
def test_legacy_books_replay_through_the_synced_book():
    """The v1 mix ``books`` (snapshot + deltas with checksums, no seq) taken as a continuous chain:
    every delta applies and the book never crosses."""
    parser, books_ = synced_parser()
    tops = 0
    for fr in iter_capture(CAPTURES / "BITGET.ws.2.0"):
        if fr.direction == "recv" and fr.payload.startswith(b'{"action"') and b'"channel":"books"' in fr.payload[:100]:
            out: list = []
            assert parser.parse(fr.payload, fr.ts_ns, out)[0] in (Outcome.EMITTED, Outcome.PARSED)
            for r in out:
                assert r[0] != Kind.CONTROL
                if r[0] == Kind.BOOK_TOP:
                    check_record(r)
                    assert r[7] < r[10]
                    tops += 1
    c = books_.counters()
    assert c["book_gaps"] == 0 and c["book_crossed"] == 0 and c["book_snapshots"] == 2
    assert tops > 2


# -- fuzzing -----------------------------------------------------------------------

TEMPLATES = [json.loads(f) for f in (TRADE_DOC, LIQ_DOC, TICKER_REAL, (
    b'{"action":"snapshot","arg":{"instType":"USDT-FUTURES","channel":"books15","instId":"BTCUSDT"},'
    b'"data":[{"asks":[["27000.5","8.760"]],"bids":[["27000.0","2.710"]],"checksum":0,"seq":1,"ts":"1695716059516"}],'
    b'"ts":1695716059516}'), (
    b'{"action":"update","arg":{"instType":"mc","channel":"trade","instId":"UNIUSDT"},'
    b'"data":[["1649290078916","9.977","1","sell"]]}'), (
    b'{"action":"snapshot","arg":{"instType":"mc","channel":"ticker","instId":"DASHUSDT"},"data":[{"instId":"DASHUSDT",'
    b'"last":"113.370","capitalRate":"-0.000100","nextSettleTime":1649314800000,"systemTime":1649290077309,'
    b'"markPrice":"113.381","indexPrice":"113.427","holding":"21957.17"}]}'))]
WEIRD = st.sampled_from(["NaN", "Infinity", "-Infinity", "-1", "-0.5", "1e400", "", "abc", None, True, [], {}, -5,
                         1.5, "buy", "sell", "snapshot", "update", "zzz"])


@st.composite
def frames(draw):
    obj = json.loads(json.dumps(draw(st.sampled_from(TEMPLATES))))
    for _ in range(draw(st.integers(1, 3))):
        where = draw(st.sampled_from(["top", "arg", "item"]))
        data = obj.get("data")   # a "top" mutation may have made it any JSON value
        item = data[0] if isinstance(data, list) and data else None
        target = obj if where == "top" else obj.get("arg") if where == "arg" else item
        if isinstance(target, list) and target:
            i = draw(st.integers(0, len(target) - 1))
            target[i] = draw(WEIRD)
            continue
        if not isinstance(target, dict) or not target:
            continue
        key = draw(st.sampled_from(sorted(target)))
        how = draw(st.sampled_from(["drop", "weird", "negate"]))
        if how == "drop":
            del target[key]
        elif how == "weird":
            target[key] = draw(WEIRD)
        elif isinstance(target[key], str) and target[key][:1].isdigit():
            target[key] = "-" + target[key]
    raw = json.dumps(obj).encode()
    return damaged(draw, raw)


@pytest.mark.property
@settings(max_examples=600, deadline=None)
@given(frames())
def test_fuzzed_frames_never_raise_or_emit_bad_numbers(raw):
    out: list = []
    outcome, stream = bitget.Parser(registry()).parse(raw, 1, out)
    assert outcome in Outcome and isinstance(stream, str)
    if outcome is not Outcome.EMITTED:
        assert not out
    for r in out:
        for v in r[7:10]:
            assert math.isfinite(v) and v >= 0.0


@pytest.mark.property
@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=300))
def test_random_bytes_and_rest_bodies_never_raise(raw):
    assert bitget.Parser(registry()).parse(raw, 1, [])[0] in Outcome
    bitget.parse_open_interest(raw, registry(), 1, 1.0, [])
    bitget.parse_exchange_info(raw)
    bitget.parse_tickers(raw)


# -- throughput: msgspec parser vs stdlib json + the same normalisation -------------------

def throughput(repeat: int = 5) -> dict[str, float]:
    """µs per frame for both parsers over the recv frames of BITGET.ws.2.0 (best of ``repeat``)."""
    frames = [fr.payload for fr in iter_capture(CAPTURES / "BITGET.ws.2.0") if fr.direction == "recv"]
    lookup = registry()
    result = {}
    for name, fn in (("msgspec", bitget.Parser(lookup).parse), ("stdlib", lambda p, t, o: _stdlib_parse(p, lookup, t, o))):
        best = float("inf")
        for _ in range(repeat):
            out: list = []
            t0 = time.perf_counter()
            for f in frames:
                fn(f, 1, out)
            best = min(best, time.perf_counter() - t0)
        result[name] = best / len(frames) * 1e6
    result["frames"] = len(frames)
    return result


@pytest.mark.bench
@needs_data
def test_throughput_msgspec_vs_stdlib():
    r = throughput()
    print(f"\nBitget BITGET.ws.2.0 ({r['frames']} frames): msgspec {r['msgspec']:.2f} us/frame, "
          f"stdlib json {r['stdlib']:.2f} us/frame, ratio {r['stdlib'] / r['msgspec']:.2f}x")
    assert r["msgspec"] < r["stdlib"]


if __name__ == "__main__":
    print(throughput())
