"""OKX parser: playback conformance on the OKX captures, pinned rules on real/doc messages, fuzzing."""
from __future__ import annotations

import json
import math
import os
from collections import Counter
from pathlib import Path
from types import SimpleNamespace
from urllib.parse import parse_qs, urlparse

import pytest
from hypothesis import given, settings, strategies as st

from engine.books import BookSet, attach
from engine.captures import iter_capture
from engine.record import Control, Flag, Kind, Side, Venue
from engine.venues import Outcome, okx
from tests.fuzz_frames import damaged

SHARED = Path(os.environ.get("UNDERTOW_SHARED") or Path(__file__).resolve().parents[2] / "shared") / "data"
needs_data = pytest.mark.skipif(not SHARED.is_dir(), reason=f"shared capture data not found at {SHARED}")
WS_CAPTURE = "cryptofeed/sample_data/OKX.ws.1.0"
REST_CAPTURE = "cryptofeed/sample_data/OKX.0"
NAUTILUS = "fixtures_doc_examples/nautilus_trader/okx/test_data"

# Frames per message type, copied from PROVENANCE.md §1 (not from the parser).
EXPECTED_WS = {"books": 290, "trades": 74, "tickers": 28, "subscribe": 18}
EXPECTED_REST_RESPONSES = 25
# ctVal of the linear swaps, as PROVENANCE.md §14 quotes them from OKX.0
PROVENANCE_CT_VAL = {"BTC-USDT-SWAP": 0.01, "ETH-USDT-SWAP": 0.1, "SOL-USDT-SWAP": 1.0, "DOGE-USDT-SWAP": 1000.0}


def registry():
    ids: dict[str, int] = {}
    return lambda s: ids.setdefault(s, len(ids))


def check_record(r):
    assert r[1] == Venue.OKX
    for v in r[7:10]:
        assert math.isfinite(v) and v >= 0.0
    assert math.isfinite(r[10]) and math.isfinite(r[11])
    assert 1.5e18 < r[5] < 2e18 and r[6] > 0


def frame_type(obj: dict) -> str:
    """The message type of a raw frame, from the JSON itself (independent of the parser)."""
    return obj["event"] if "event" in obj else obj["arg"]["channel"]


@pytest.fixture(scope="module")
def capture_sizes() -> dict[str, float]:
    """ctVal of every instrument in the OKX.0 instrument lists (the last answer per instType wins)."""
    if not SHARED.is_dir():
        pytest.skip(f"shared capture data not found at {SHARED}")
    sizes: dict[str, float] = {}
    for fr in iter_capture(SHARED / REST_CAPTURE):
        sizes.update(okx.contract_sizes(okx.parse_exchange_info(fr.payload)))
    return sizes


def ws_frames():
    return [fr for fr in iter_capture(SHARED / WS_CAPTURE) if fr.direction == "recv"]


# -- playback --------------------------------------------------------------------------

@pytest.mark.playback
@needs_data
def test_ws_capture_counts_and_outcomes(capture_sizes):
    """Spot BTC-USDT, inverse future BTC-USD-220527 and inverse swap UNI-USD-SWAP: every trade is a
    TRADE in base units, each book snapshot one BOOK_TOP, updates PARSED (no book attached),
    tickers IGNORED (not used), subscribe events CONTROL."""
    parser = okx.Parser(registry(), flags=Flag.REPLAY, contract_sizes=capture_sizes)
    per_type, outcomes, kinds = Counter(), Counter(), Counter()
    snapshots = trades_in_frames = 0
    for fr in ws_frames():
        obj = json.loads(fr.payload)
        t = frame_type(obj)
        per_type[t] += 1
        out: list = []
        outcome, stream = parser.parse(fr.payload, fr.ts_ns, out)
        outcomes[outcome] += 1
        assert stream == f'{obj["arg"]["channel"]}:{obj["arg"]["instId"]}'
        for r in out:
            check_record(r)
            assert r[3] & Flag.REPLAY
            kinds[t, r[0]] += 1
        if t == "subscribe":
            assert outcome == Outcome.CONTROL and not out
        elif t == "tickers":
            assert outcome == Outcome.IGNORED and not out
        elif t == "trades":
            trades_in_frames += len(obj["data"])
            assert outcome == Outcome.EMITTED and len(out) == len(obj["data"])
        elif obj["action"] == "snapshot":
            snapshots += 1
            assert outcome == Outcome.EMITTED and len(out) == 1 and out[0][3] & Flag.SNAPSHOT
        else:
            assert outcome == Outcome.PARSED and not out
    assert dict(per_type) == EXPECTED_WS
    assert outcomes[Outcome.MALFORMED] == 0 and outcomes[Outcome.UNKNOWN] == 0
    assert snapshots == 3   # one per instrument subscribed
    assert kinds["trades", Kind.TRADE] == trades_in_frames >= EXPECTED_WS["trades"]
    assert kinds["books", Kind.BOOK_TOP] == snapshots
    assert parser.unsized == 0


def reference_tops(capture_sizes) -> dict[str, tuple]:
    """Final best bid/ask per instrument from a plain dict book built straight from the JSON."""
    books: dict[str, tuple[dict, dict]] = {}
    for fr in ws_frames():
        obj = json.loads(fr.payload)
        if obj.get("arg", {}).get("channel") != "books" or "event" in obj:
            continue
        inst = obj["arg"]["instId"]
        if obj["action"] == "snapshot":
            books[inst] = ({}, {})
        for d in obj["data"]:
            for side, key in zip(books[inst], ("bids", "asks")):
                for px, sz, *_ in d[key]:
                    if float(sz) == 0.0:
                        side.pop(float(px), None)
                    else:
                        side[float(px)] = float(sz)
    tops = {}
    for inst, (bids, asks) in books.items():
        b, a = max(bids), min(asks)
        ct = capture_sizes[inst]
        inverse = inst.count("-") == 2 and inst.split("-")[1] == "USD"
        tops[inst] = (b, bids[b] * ct / b if inverse else bids[b] * ct, a, asks[a] * ct / a if inverse else asks[a] * ct)
    return tops


@pytest.mark.playback
@needs_data
def test_ws_capture_through_the_synced_book(capture_sizes):
    """With engine/books.py attached, the 2022 frames (no seqId yet) build books that never cross,
    and the last BOOK_TOP per instrument equals an independent replay of the same frames."""
    lookup = registry()
    parser = okx.Parser(lookup, contract_sizes=capture_sizes)
    books = attach(parser, okx)
    assert isinstance(books, BookSet) and books.source == "resubscribe" and books.rule is okx.BOOK_RULE
    last_top, outcomes = {}, Counter()
    for fr in ws_frames():
        out: list = []
        outcome, stream = parser.parse(fr.payload, fr.ts_ns, out)
        outcomes[outcome] += 1
        for r in out:
            check_record(r)
            assert r[0] != Kind.CONTROL, "a real capture must not lose book sync"
            if r[0] == Kind.BOOK_TOP:
                assert r[7] < r[10]
                last_top[stream] = r[7], r[8], r[10], r[11]
    assert outcomes[Outcome.MALFORMED] == 0
    assert books.counters()["book_unsynced"] == 0 and books.counters()["book_snapshots"] == 3
    for inst, top in reference_tops(capture_sizes).items():
        assert last_top[f"books:{inst}"] == pytest.approx(top, rel=1e-12)


@pytest.mark.playback
@needs_data
def test_rest_instrument_lists():
    frames = list(iter_capture(SHARED / REST_CAPTURE))
    assert len(frames) == EXPECTED_REST_RESPONSES and {f.direction for f in frames} == {"rest"}
    by_symbol = {}
    for fr in frames:
        inst_type = parse_qs(urlparse(fr.url).query)["instType"][0]
        infos = okx.parse_exchange_info(fr.payload)
        raw = json.loads(fr.payload)["data"]
        assert infos is not None and len(infos) == len(raw) > 0
        kind = {"SWAP": "perpetual", "FUTURES": "future", "SPOT": "spot", "OPTION": "other"}[inst_type]
        assert {i.contract_type for i in infos} == {kind}
        by_symbol.update({i.symbol: i for i in infos})
    for sym, ct in PROVENANCE_CT_VAL.items():
        i = by_symbol[sym]
        assert (i.base, i.quote, i.contract_size, i.status) == (sym.split("-")[0], "USDT", ct, "trading")
    btc = by_symbol["BTC-USDT-SWAP"]
    assert btc.tick_size == 0.1
    uni = by_symbol["UNI-USD-SWAP"]   # inverse: ctVal is USD per contract
    assert (uni.base, uni.quote, uni.contract_size) == ("UNI", "USD", 10.0)
    spot = by_symbol["BTC-USDT"]
    assert (spot.base, spot.quote, spot.contract_size, spot.contract_type) == ("BTC", "USDT", 1.0, "spot")
    assert by_symbol["BTC-USD-220527"].contract_type == "future"


@pytest.mark.playback
@needs_data
def test_subscribe_messages_match_the_recorded_client_frames():
    sent = [json.loads(f.payload) for f in iter_capture(SHARED / WS_CAPTURE) if f.direction == "sent"]
    recorded = sent[-1]["args"]
    streams = [f'{a["channel"]}:{a["instId"]}' for a in recorded]
    (msg,) = okx.subscribe_messages(streams, 7)
    ours = json.loads(msg)
    assert ours["op"] == sent[-1]["op"] == "subscribe" and ours["args"] == recorded and ours["id"] == "7"


@pytest.mark.playback
@needs_data
def test_nautilus_doc_example_shapes():
    """Doc examples (not market data): field names and shapes only."""
    d = SHARED / NAUTILUS
    lookup = registry()
    parser = okx.Parser(lookup, contract_sizes={"BTC-USDT": 1.0, "BTC-USD": 1.0})
    out: list = []
    assert parser.parse((d / "ws_trades.json").read_bytes(), 1, out)[0] == Outcome.EMITTED
    assert (out[0][2], out[0][7], out[0][8], out[0][10], out[0][11]) == (Side.BUY, 42219.9, 0.12060306, 130639474.0, 3.0)
    out = []
    assert parser.parse((d / "ws_bbo_tbt.json").read_bytes(), 1, out)[0] == Outcome.EMITTED
    assert (out[0][0], out[0][7], out[0][8], out[0][10], out[0][11]) == (Kind.BOOK_TOP, 8476.97, 256.0, 8476.98, 415.0)
    assert parser.parse((d / "ws_tickers.json").read_bytes(), 1, [])[0] == Outcome.IGNORED
    books = attach(parser, okx)
    out = []
    assert parser.parse((d / "ws_books_snapshot.json").read_bytes(), 1, out)[0] == Outcome.EMITTED
    assert [r[0] for r in out][0] == Kind.BOOK_TOP and out[0][7] == 8476.97 and books.book("BTC-USDT").last_id == 123456
    # the update chains on the snapshot (prevSeqId 123456) and re-sends the same levels: no new top
    assert parser.parse((d / "ws_books_update.json").read_bytes(), 2, [])[0] == Outcome.PARSED
    assert books.book("BTC-USDT").last_id == 123457 and books.book("BTC-USDT").synced
    out = []
    assert parser.parse((d / "ws_funding_rate.json").read_bytes(), 1, out)[0] == Outcome.PARSED  # no mark yet
    infos = okx.parse_exchange_info((d / "http_get_instruments_swap.json").read_bytes())
    by = {i.symbol: i for i in infos}
    assert (by["BTC-USD-SWAP"].quote, by["BTC-USD-SWAP"].contract_size) == ("USD", 100.0)
    assert (by["ETH-USDT-SWAP"].base, by["ETH-USDT-SWAP"].contract_size, by["ETH-USDT-SWAP"].status) == ("ETH", 0.1, "trading")


# -- rules pinned on real or documented messages ------------------------------------------

# PROTOCOLS.md §3.2, the OKX docs' liquidation-orders example
DOC_LIQUIDATION = (b'{"arg":{"channel":"liquidation-orders","instType":"SWAP"},"data":[{"details":[{"bkLoss":"0",'
                   b'"bkPx":"0.007831","ccy":"","posSide":"short","side":"buy","sz":"13","ts":"1692266434010"}],'
                   b'"instFamily":"IOST-USDT","instId":"IOST-USDT-SWAP","instType":"SWAP","uly":"IOST-USDT"}]}')
IOST_CT_VAL = 1000.0   # IOST-USDT-SWAP ctVal in OKX.0 (checked by test_iost_contract_size_is_the_real_one)
# real frames from OKX.ws.1.0 (2022-05-13)
REAL_SPOT_TRADE = (b'{"arg":{"channel":"trades","instId":"BTC-USDT"},"data":[{"instId":"BTC-USDT","tradeId":"338476307",'
                   b'"px":"30236","sz":"0.0002","side":"buy","ts":"1652459224818"}]}')
# PROTOCOLS.md §3.5, the docs' open-interest example
DOC_OI = (b'{"arg":{"channel":"open-interest","instId":"BTC-USDT-SWAP"},"data":[{"instId":"BTC-USDT-SWAP",'
          b'"instType":"SWAP","oi":"2216113.01000000309","oiCcy":"22161.1301000000309",'
          b'"oiUsd":"1939251795.54769270396321","ts":"1743041250440"}]}')


def parse_one(payload: bytes, sizes=None, parser=None):
    out: list = []
    parser = parser or okx.Parser(registry(), contract_sizes=sizes or {})
    outcome, stream = parser.parse(payload, 123, out)
    return outcome, stream, out


@pytest.mark.playback
@needs_data
def test_iost_contract_size_is_the_real_one(capture_sizes):
    assert capture_sizes["IOST-USDT-SWAP"] == IOST_CT_VAL


@pytest.mark.unit
def test_liquidation_order_side_buy_is_a_liquidated_short_in_base_units():
    outcome, stream, [r] = parse_one(DOC_LIQUIDATION, {"IOST-USDT-SWAP": IOST_CT_VAL})
    assert outcome == Outcome.EMITTED and stream == "liquidation-orders:SWAP"
    assert (r[0], r[2], r[3] & Flag.CAPPED) == (Kind.LIQUIDATION, Side.SHORT, Flag.CAPPED)
    assert (r[7], r[8], r[10]) == (0.007831, 13 * IOST_CT_VAL, 0.007831)   # price = bkPx, qty = sz x ctVal
    assert r[9] == pytest.approx(13 * IOST_CT_VAL * 0.007831)                # USD notional
    assert r[5] == 1692266434010_000_000 and r[6] == 123
    sizes = {"IOST-USDT-SWAP": IOST_CT_VAL}
    # one-way mode: posSide "net", the order side alone decides; hedge mode: posSide agrees
    for side, pos, want in (("sell", "net", Side.LONG), ("buy", "net", Side.SHORT), ("sell", "long", Side.LONG)):
        frame = DOC_LIQUIDATION.replace(b'"posSide":"short","side":"buy"', f'"posSide":"{pos}","side":"{side}"'.encode())
        assert parse_one(frame, sizes)[2][0][2] == want
    contradictory = DOC_LIQUIDATION.replace(b'"posSide":"short"', b'"posSide":"long"')
    assert parse_one(contradictory, sizes)[:3:2] == (Outcome.MALFORMED, [])
    # unregistered instruments of the all-swaps channel are skipped; unknown contract size too
    assert parse_one(DOC_LIQUIDATION, {})[0] == Outcome.IGNORED
    parser = okx.Parser(lambda s: None, contract_sizes=sizes)
    assert parse_one(DOC_LIQUIDATION, parser=parser)[0] == Outcome.IGNORED


@pytest.mark.unit
def test_trade_side_is_the_taker_side_and_inverse_sizes_are_usd():
    _, stream, [r] = parse_one(REAL_SPOT_TRADE, {"BTC-USDT": 1.0})
    assert stream == "trades:BTC-USDT"
    assert (r[0], r[2], r[7], r[8], r[10], r[11]) == (Kind.TRADE, Side.BUY, 30236.0, 0.0002, 338476307.0, 1.0)
    assert r[9] == pytest.approx(30236 * 0.0002) and r[5] == 1652459224818_000_000
    sell = REAL_SPOT_TRADE.replace(b'"side":"buy"', b'"side":"sell"')
    assert parse_one(sell, {"BTC-USDT": 1.0})[2][0][2] == Side.SELL
    # the same frame on a linear swap: sz is contracts of ctVal base units
    swap = REAL_SPOT_TRADE.replace(b"BTC-USDT", b"BTC-USDT-SWAP").replace(b'"sz":"0.0002"', b'"sz":"3"')
    _, _, [s] = parse_one(swap, {"BTC-USDT-SWAP": 0.01})
    assert s[8] == pytest.approx(0.03) and s[9] == pytest.approx(0.03 * 30236)
    # inverse (coin-margined): sz contracts of ctVal USD -> base = sz x ctVal / px, notional = sz x ctVal
    inverse = REAL_SPOT_TRADE.replace(b"BTC-USDT", b"BTC-USD-220527").replace(b'"sz":"0.0002"', b'"sz":"7"')
    _, _, [i] = parse_one(inverse, {"BTC-USD-220527": 100.0})
    assert i[9] == pytest.approx(700.0) and i[8] == pytest.approx(700.0 / 30236)
    # an aggregated trade: tradeId is the last id, count the fills
    agg = REAL_SPOT_TRADE.replace(b'"ts":"1652459224818"', b'"ts":"1652459224818","count":"3"')
    assert parse_one(agg, {"BTC-USDT": 1.0})[2][0][11] == 3.0
    assert okx.trade_stream_ids is False


@pytest.mark.unit
def test_open_interest_mark_and_funding():
    _, stream, [r] = parse_one(DOC_OI)
    assert stream == "open-interest:BTC-USDT-SWAP"
    assert (r[0], r[8], r[9]) == (Kind.OPEN_INTEREST, 22161.1301000000309, 1939251795.54769270396321)
    assert r[7] == pytest.approx(1939251795.5477 / 22161.1301)
    parser = okx.Parser(registry())
    funding = (b'{"arg":{"channel":"funding-rate","instId":"BTC-USDT-SWAP"},"data":[{"instId":"BTC-USDT-SWAP",'
               b'"fundingRate":"0.0001","nextFundingRate":"","fundingTime":"1744590349506",'
               b'"nextFundingTime":"1744619149506","ts":"1744590349506"}]}')
    mark = (b'{"arg":{"channel":"mark-price","instId":"BTC-USDT-SWAP"},"data":[{"instType":"SWAP",'
            b'"instId":"BTC-USDT-SWAP","markPx":"84660.1","ts":"1744590349506"}]}')
    _, _, [m0] = parse_one(mark, parser=parser)
    assert (m0[0], m0[7], m0[8], m0[10], m0[11]) == (Kind.MARK, 84660.1, 0.0, 0.0, 0.0)   # no funding seen yet
    _, stream, [f] = parse_one(funding, parser=parser)   # a known mark: funding updates the MARK record
    assert stream == "funding-rate:BTC-USDT-SWAP" and (f[7], f[10], f[11]) == (84660.1, 0.0001, 1744590349506.0)
    _, _, [m1] = parse_one(mark, parser=parser)
    assert (m1[10], m1[11]) == (0.0001, 1744590349506.0)
    out: list = []
    rest = b'{"code":"0","data":[{"instId":"BTC-USDT-SWAP","instType":"SWAP","oi":"10","oiCcy":"0.1","ts":"1"}],"msg":""}'
    assert okx.parse_open_interest(rest, registry(), 5, 60000.0, out) == Outcome.EMITTED
    assert (out[0][7], out[0][8], out[0][9]) == (60000.0, 0.1, 6000.0)   # no oiUsd: priced at ref_price
    assert okx.parse_open_interest(b'{"code":"51001","data":[],"msg":"x"}', registry(), 5, 1.0, []) == Outcome.MALFORMED


@pytest.mark.unit
def test_book_sequence_doc_example_through_the_synced_book():
    """§3.4: snapshot (-1, 10), (10, 15), heartbeat (15, 15), reset (15, 3), (3, 5) keep sync; (7, 9) is a gap."""
    parser = okx.Parser(registry(), contract_sizes={"BTC-USDT-SWAP": 0.01})
    books = attach(parser, okx)
    asked = []
    books.on_resync = asked.append

    def push(action, prev, seq, bids='[["100.0","5","0","1"]]', asks='[["100.5","4","0","2"]]'):
        raw = (f'{{"arg":{{"channel":"books","instId":"BTC-USDT-SWAP"}},"action":"{action}","data":[{{"asks":{asks},'
               f'"bids":{bids},"ts":"1597026383085","checksum":0,"prevSeqId":{prev},"seqId":{seq}}}]}}').encode()
        out: list = []
        return parser.parse(raw, 9, out)[0], out

    outcome, out = push("snapshot", -1, 10)
    assert outcome == Outcome.EMITTED and out[0][0] == Kind.BOOK_TOP
    assert (out[0][7], out[0][8], out[0][10], out[0][11]) == (100.0, 0.05, 100.5, 0.04)   # contracts x 0.01
    assert push("update", 10, 15, bids='[["100.0","7","0","1"]]', asks="[]")[1][0][8] == pytest.approx(0.07)
    assert push("update", 15, 15, bids="[]", asks="[]")[0] == Outcome.PARSED     # heartbeat
    assert push("update", 15, 3, bids="[]", asks='[["100.4","1","0","1"]]')[0] == Outcome.EMITTED   # reset
    assert push("update", 3, 5, bids="[]", asks="[]")[0] == Outcome.PARSED
    assert asked == [] and books.book("BTC-USDT-SWAP").last_id == 5
    outcome, out = push("update", 7, 9)
    assert [(r[0], r[10]) for r in out] == [(Kind.CONTROL, float(Control.BOOK_INVALID))]
    assert asked == ["BTC-USDT-SWAP"]
    assert okx.is_book_stream("books:BTC-USDT-SWAP") and not okx.is_book_stream("books5:BTC-USDT-SWAP")
    (unsub,) = okx.unsubscribe_messages(["books:BTC-USDT-SWAP"], 4)
    assert json.loads(unsub) == {"id": "4", "op": "unsubscribe", "args": [{"channel": "books", "instId": "BTC-USDT-SWAP"}]}


@pytest.mark.unit
def test_control_unknown_ignored_and_malformed():
    ack = b'{"id":"1512","event":"subscribe","arg":{"channel":"tickers","instId":"BTC-USDT"},"connId":"accb8e21"}'
    assert parse_one(ack)[:2] == (Outcome.CONTROL, "tickers:BTC-USDT")
    error = (b'{"id":"1512","event":"error","code":"60012","msg":"Invalid request: {\\"op\\": \\"subscribe\\", '
             b'\\"argss\\":[{ \\"channel\\" : \\"books\\", \\"instId\\" : \\"BTC-USD-191227\\"}]}","connId":"a4d3ae55"}')
    assert parse_one(error)[0] == Outcome.CONTROL
    assert parse_one(b"pong")[:2] == (Outcome.CONTROL, "")
    assert parse_one(b'{"event":"login","code":"0"}')[0] == Outcome.UNKNOWN
    assert parse_one(b'{"arg":{"channel":"newThing","instId":"X"},"data":[]}')[:2] == (Outcome.UNKNOWN, "newThing:X")
    assert parse_one(b'{"arg":{"channel":"candle1m","instId":"X"},"data":[["1"]]}')[0] == Outcome.IGNORED
    assert parse_one(b'{"arg":{"channel":"trades","instId":"X"},"data":[{"instId":"X"}]}')[:2] == (Outcome.MALFORMED, "trades:X")
    assert parse_one(b'{"arg":{"channel":"books","instId":"X"},"action":"weird","data":[]}')[0] == Outcome.MALFORMED
    assert parse_one(b'{"data":[]}')[0] == Outcome.MALFORMED
    assert parse_one(b"[1,2]")[0] == Outcome.MALFORMED
    assert parse_one(b"ping")[0] == Outcome.MALFORMED
    # key order differs from OKX's: the slow path still decodes it
    reordered = b'{"data":[{"instId":"BTC-USDT","tradeId":"1","px":"2","sz":"3","side":"sell","ts":"1652459224818"}],"arg":{"channel":"trades","instId":"BTC-USDT"}}'
    outcome, stream, [r] = parse_one(reordered, {"BTC-USDT": 1.0})
    assert (outcome, stream, r[2], r[8]) == (Outcome.EMITTED, "trades:BTC-USDT", Side.SELL, 3.0)


@pytest.mark.unit
def test_plan_shards_books_and_keeps_sparse_channels_unwatched():
    vcfg = SimpleNamespace(symbols=[f"C{i}-USDT-SWAP" for i in range(40)], streams=["liquidations", "trades", "book", "mark", "oi"],
                           max_streams_per_connection=200, ws_urls={})
    plans = okx.plan(vcfg)
    books = [p for p in plans if p.key.startswith("books/")]
    public = [p for p in plans if p.key.startswith("public/")]
    assert [len(p.streams) for p in books] == [29, 11]
    assert all(s.startswith("books:") for p in books for s in p.streams)
    assert sum(len(p.streams) for p in public) == 1 + 40 * 5 and all(len(p.streams) <= 200 for p in public)
    assert {p.url for p in plans} == {okx.DEFAULT_WS_URLS["public"]} and not any(p.subscribe_in_url for p in plans)
    watched = {s for p in plans for s in p.watched}
    assert "liquidation-orders:SWAP" not in watched and "funding-rate:C0-USDT-SWAP" not in watched
    assert "trades:C0-USDT-SWAP" in watched and "books:C0-USDT-SWAP" in watched
    msgs = okx.subscribe_messages([s for p in public for s in p.streams])
    assert len(msgs) == 1 and max(len(m) for m in msgs) < 64 * 1024
    assert okx.stream_symbol("trades:C0-USDT-SWAP") == "C0-USDT-SWAP" and okx.stream_symbol("liquidation-orders:SWAP") == ""
    assert okx.ping_message() == "ping" and okx.PING_INTERVAL_S < 30.0
    assert okx.base_from_symbol("1000PEPE-USDT-SWAP") == "1000PEPE"


@pytest.mark.unit
def test_tickers_volume_in_usd():
    body = (b'{"code":"0","msg":"","data":[{"instType":"SWAP","instId":"BTC-USDT-SWAP","last":"50000","vol24h":"2000",'
            b'"volCcy24h":"20"},{"instType":"SPOT","instId":"BTC-USDT","last":"50000","volCcy24h":"123.5"},'
            b'{"instType":"SWAP","instId":"BAD-USDT-SWAP","last":"NaN","volCcy24h":"1"}]}')
    assert okx.parse_tickers(body) == {"BTC-USDT-SWAP": 1_000_000.0, "BTC-USDT": 123.5}
    assert okx.parse_tickers(b"{}") is None and okx.parse_tickers(b'{"code":"50011","data":[]}') is None


# -- fuzzing ---------------------------------------------------------------------------

SIZES = {"BTC-USDT-SWAP": 0.01, "IOST-USDT-SWAP": 1000.0, "BTC-USD-SWAP": 100.0}
TEMPLATES = [
    json.loads(DOC_LIQUIDATION), json.loads(DOC_OI),
    {"arg": {"channel": "trades", "instId": "BTC-USDT-SWAP"}, "data": [
        {"instId": "BTC-USDT-SWAP", "tradeId": "130639474", "px": "42219.9", "sz": "12", "side": "buy",
         "ts": "1630048897897", "count": "3", "source": "0", "seqId": 1234}]},
    {"arg": {"channel": "trades", "instId": "BTC-USD-SWAP"}, "data": [
        {"instId": "BTC-USD-SWAP", "tradeId": "1", "px": "42219.9", "sz": "12", "side": "sell", "ts": "1630048897897"}]},
    {"arg": {"channel": "books", "instId": "BTC-USDT-SWAP"}, "action": "snapshot", "data": [
        {"asks": [["8476.98", "415", "0", "13"]], "bids": [["8476.97", "256", "0", "12"]], "ts": "1597026383085",
         "checksum": 0, "prevSeqId": -1, "seqId": 123456}]},
    {"arg": {"channel": "books", "instId": "BTC-USDT-SWAP"}, "action": "update", "data": [
        {"asks": [["8476.98", "0", "0", "0"]], "bids": [["8476.5", "2", "0", "1"]], "ts": "1597026383085",
         "checksum": 0, "prevSeqId": 123456, "seqId": 123457}]},
    {"arg": {"channel": "bbo-tbt", "instId": "BTC-USD-SWAP"}, "data": [
        {"asks": [["8476.98", "415", "0", "13"]], "bids": [["8476.97", "256", "0", "12"]], "ts": "1597026383085", "seqId": 1}]},
    {"arg": {"channel": "mark-price", "instId": "BTC-USDT-SWAP"}, "data": [
        {"instType": "SWAP", "instId": "BTC-USDT-SWAP", "markPx": "84660.1", "ts": "1744590349506"}]},
    {"arg": {"channel": "funding-rate", "instId": "BTC-USDT-SWAP"}, "data": [
        {"instId": "BTC-USDT-SWAP", "fundingRate": "0.0001", "fundingTime": "1744590349506", "ts": "1744590349506"}]},
    {"id": "1", "event": "subscribe", "arg": {"channel": "trades", "instId": "BTC-USDT-SWAP"}, "connId": "a"},
]
WEIRD = st.sampled_from(["NaN", "Infinity", "-Infinity", "-1", "-0.5", "1e400", "", "abc", None, True, [], {}, -5,
                         1e308, "0", 0, "buy", "sell", "long", "net", "snapshot", "update", "99999999999999999999"])


@st.composite
def frames(draw):
    obj = json.loads(json.dumps(draw(st.sampled_from(TEMPLATES))))
    targets = [obj]
    if isinstance(obj.get("data"), list) and obj["data"]:
        targets.append(obj["data"][0])
        if isinstance(obj["data"][0].get("details"), list):
            targets.append(obj["data"][0]["details"][0])
    if isinstance(obj.get("arg"), dict):
        targets.append(obj["arg"])
    for _ in range(draw(st.integers(1, 3))):
        target = draw(st.sampled_from(targets))
        if not target:
            continue
        key = draw(st.sampled_from(sorted(target)))
        action = draw(st.sampled_from(["drop", "weird", "type", "event"]))
        if action == "drop":
            target.pop(key, None)
        elif action == "weird":
            target[key] = draw(WEIRD)
        elif action == "type":
            target[key] = draw(st.sampled_from([1, "1", 1.5, [1], {"a": 1}, "BTC-USDT-SWAP", [["1", "2"]], "zz"]))
        else:
            obj["event"] = draw(st.sampled_from(["subscribe", "error", "brandNew", 5]))
    raw = json.dumps(obj, allow_nan=True).encode()
    return damaged(draw, raw)


def assert_sane(outcome, stream, out):
    assert isinstance(outcome, Outcome) and isinstance(stream, str)
    if outcome != Outcome.EMITTED:
        assert out == []
    for r in out:
        for v in (r[7], r[8], r[9]):
            assert math.isfinite(v) and v >= 0.0
        assert math.isfinite(r[10]) and math.isfinite(r[11])
        if r[0] != Kind.MARK:   # only a funding rate may be negative
            assert r[10] >= 0.0 and r[11] >= 0.0
        assert 0 <= r[5] < 1 << 63


@pytest.mark.property
@settings(max_examples=500, deadline=None)
@given(frames(), st.booleans())
def test_fuzzed_frames_never_raise_or_emit_bad_numbers(raw, with_books):
    parser = okx.Parser(registry(), contract_sizes=SIZES)
    if with_books:
        attach(parser, okx)
    out: list = []
    assert_sane(*parser.parse(raw, 1, out), out)


@pytest.mark.property
@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300))
def test_arbitrary_bytes_never_raise(raw):
    out: list = []
    outcome, _ = okx.Parser(registry(), contract_sizes=SIZES).parse(raw, 1, out)
    assert outcome in tuple(Outcome) and (outcome == Outcome.EMITTED or out == [])
    assert okx.parse_open_interest(raw, registry(), 1, 1.0, []) in tuple(Outcome)
    assert okx.parse_exchange_info(raw) is None or isinstance(okx.parse_exchange_info(raw), list)
    assert okx.parse_tickers(raw) is None or isinstance(okx.parse_tickers(raw), dict)
