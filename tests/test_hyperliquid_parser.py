"""Hyperliquid parser: playback conformance on the real capture, doc-example shapes, pinned rules, fuzzing."""
from __future__ import annotations

import json
import math
import time
from collections import Counter
from pathlib import Path
from types import SimpleNamespace

import pytest
from hypothesis import given, settings, strategies as st

from engine.captures import iter_capture
from engine.record import Flag, Kind, Side, Venue
from engine.venues import Outcome, hyperliquid as hl
from tests.conftest import shared_data_dir
from tests.fuzz_frames import damaged

SHARED = shared_data_dir()
CAPTURE = "hyperliquid/hftbacktest/btcusd_20250126.gz"
FIXTURES = "fixtures_doc_examples/nautilus_trader/hyperliquid/test_data"
needs_data = pytest.mark.skipif(not (SHARED / CAPTURE).is_file(), reason=f"shared capture data not found at {SHARED}")
needs_fixtures = pytest.mark.skipif(not (SHARED / FIXTURES).is_dir(), reason=f"doc-example fixtures not found at {SHARED}")

# Frames per channel, copied from PROVENANCE.md section 4 (not from the parser).
EXPECTED = {CAPTURE: {"l2Book": 46, "trades": 9}}
EMITS = {"l2Book": Kind.BOOK_TOP, "trades": Kind.TRADE}


def registry():
    ids: dict[str, int] = {}
    return lambda s: ids.setdefault(s, len(ids))


def check_record(r):
    assert r[1] == Venue.HYPERLIQUID
    for v in r[7:10]:
        assert math.isfinite(v) and v >= 0.0
    assert math.isfinite(r[10]) and math.isfinite(r[11])
    assert 1.5e18 < r[5] < 2e18 and r[6] > 0


def capture_frames():
    return [fr for fr in iter_capture(SHARED / CAPTURE) if fr.direction == "recv"]


# -- playback ----------------------------------------------------------------------------

@pytest.mark.playback
@needs_data
def test_playback_counts():
    parser = hl.Parser(registry(), flags=Flag.REPLAY)
    per_type, outcomes, kinds = Counter(), Counter(), Counter()
    trade_objects = 0
    for fr in capture_frames():
        out: list = []
        outcome, stream = parser.parse(fr.payload, fr.ts_ns, out)
        channel = stream.partition(":")[0]
        per_type[channel] += 1
        outcomes[outcome] += 1
        assert outcome == Outcome.EMITTED and stream.endswith(":BTC"), fr.payload[:200]
        for r in out:
            check_record(r)
            assert r[3] & Flag.REPLAY
            kinds[channel, r[0]] += 1
        if channel == "trades":
            trade_objects += len(json.loads(fr.payload)["data"])   # independent count of the trades sent
    assert dict(per_type) == EXPECTED[CAPTURE]
    assert outcomes[Outcome.MALFORMED] == 0 and outcomes[Outcome.UNKNOWN] == 0
    assert kinds["l2Book", Kind.BOOK_TOP] == EXPECTED[CAPTURE]["l2Book"]
    assert kinds["trades", Kind.TRADE] == trade_objects == 64
    assert parser.duplicates == 0
    assert set(kinds) == {("l2Book", Kind.BOOK_TOP), ("trades", Kind.TRADE)}   # never a liquidation


@pytest.mark.playback
@needs_data
def test_trade_side_is_the_taker_side_on_real_frames():
    """A ``B`` trade prints above the mid of the book before it (lifts the ask), an ``A`` trade below."""
    parser = hl.Parser(registry())
    mid, checked = None, Counter()
    for fr in capture_frames():
        out: list = []
        parser.parse(fr.payload, fr.ts_ns, out)
        for r in out:
            if r[0] == Kind.BOOK_TOP:
                assert r[10] > r[7]           # best ask above best bid
                mid = (r[7] + r[10]) / 2
            elif r[0] == Kind.TRADE and mid is not None:
                assert (r[7] > mid) == (r[2] == Side.BUY), r
                checked[r[2]] += 1
    assert checked[Side.BUY] > 10 and checked[Side.SELL] > 10


@pytest.mark.playback
@needs_data
def test_playback_through_the_synced_book():
    """With engine/books.py attached every l2Book push replaces the book: BOOK_TOP on change, depth bands."""
    from engine.books import attach

    parser = hl.Parser(registry())
    books = attach(parser, hl)
    assert books is not None and books.source == "push" and books.rule is None
    kinds, pushes = Counter(), 0
    for fr in capture_frames():
        out: list = []
        outcome, stream = parser.parse(fr.payload, fr.ts_ns, out)
        assert outcome in (Outcome.EMITTED, Outcome.PARSED)
        pushes += stream.startswith("l2Book")
        for r in out:
            check_record(r)
            kinds[r[0]] += 1
    c = books.counters()
    assert pushes == 46 and c["book_snapshots"] == 46 and c["book_crossed"] == 0 and c["book_requests"] == 0
    assert 0 < kinds[Kind.BOOK_TOP] <= 46 and kinds[Kind.BOOK_DEPTH] > 0 and kinds[Kind.CONTROL] == 0
    top = books.book("BTC").best()
    assert top == (105050.0, 1.12931, 105051.0, 6.13423)   # the last push of the capture


# The last trades frame of the capture, verbatim except the users' addresses shortened.
REAL_TRADE = (b'{"channel":"trades","data":[{"coin":"BTC","hash":"0x84f7cbe3596546489dac041c922b5b01650050179ee3058'
              b'030bca59dd434d1d5","px":"105056.0","side":"B","sz":"0.01853","tid":754186699313231,'
              b'"time":1737918853204,"users":["0x592c","0x6802"]}]}')


@pytest.mark.unit
def test_real_trade_is_taker_buy_in_coin_units_and_usd():
    ids = registry()
    out: list = []
    assert hl.Parser(ids).parse(REAL_TRADE, 123, out) == (Outcome.EMITTED, "trades:BTC")
    [r] = out
    assert (r[0], r[2], r[3], r[4]) == (Kind.TRADE, Side.BUY, 0, ids("BTC"))
    assert (r[7], r[8]) == (105056.0, 0.01853)            # BTC, not contracts: sz is coin units
    assert r[9] == pytest.approx(105056.0 * 0.01853)      # USDC notional ~ USD
    assert r[5] == 1737918853204_000_000 and r[6] == 123
    assert (r[10], r[11]) == (0.0, 1.0)                   # tid is a hash: no id for the generic dedup
    out.clear()
    hl.Parser(ids).parse(REAL_TRADE.replace(b'"side":"B"', b'"side":"A"'), 1, out)
    assert out[0][2] == Side.SELL


@pytest.mark.unit
def test_resent_trades_are_dropped_and_the_subscribe_batch_is_a_snapshot():
    parser = hl.Parser(registry())
    ack = b'{"channel":"subscriptionResponse","data":{"method":"subscribe","subscription":{"type":"trades","coin":"BTC"}}}'
    assert parser.parse(ack, 1, []) == (Outcome.CONTROL, "")
    out: list = []
    assert parser.parse(REAL_TRADE, 2, out)[0] == Outcome.EMITTED and out[0][3] & Flag.SNAPSHOT
    out.clear()
    assert parser.parse(REAL_TRADE, 3, out) == (Outcome.PARSED, "trades:BTC") and out == []   # re-sent after a reconnect
    assert parser.duplicates == 1
    same_ms = REAL_TRADE.replace(b"754186699313231", b"754186699313232")
    later = REAL_TRADE.replace(b"1737918853204", b"1737918853999")
    older = REAL_TRADE.replace(b"1737918853204", b"1737918853000").replace(b"754186699313231", b"1")
    for frame, emitted in ((same_ms, True), (later, True), (older, False), (later, False)):
        out.clear()
        parser.parse(frame, 4, out)
        assert bool(out) is emitted and (not out or not out[0][3] & Flag.SNAPSHOT)


@pytest.mark.unit
def test_l2book_snapshot_top_and_bbo():
    book = (b'{"channel":"l2Book","data":{"coin":"BTC","levels":[[{"n":5,"px":"105055.0","sz":"3.03622"},'
            b'{"n":1,"px":"105054.0","sz":"0.1428"}],[{"n":13,"px":"105056.0","sz":"6.34472"}]],"time":1737918843542}}')
    out: list = []
    assert hl.Parser(registry()).parse(book, 9, out) == (Outcome.EMITTED, "l2Book:BTC")
    [r] = out
    assert (r[0], r[3], r[7], r[8], r[10], r[11]) == (Kind.BOOK_TOP, Flag.SNAPSHOT, 105055.0, 3.03622, 105056.0, 6.34472)
    assert r[9] == pytest.approx(105055.0 * 3.03622 + 105056.0 * 6.34472) and r[5] == 1737918843542_000_000
    one_sided = b'{"channel":"l2Book","data":{"coin":"BTC","levels":[[],[{"n":1,"px":"1","sz":"1"}]],"time":1}}'
    assert hl.Parser(registry()).parse(one_sided, 1, []) == (Outcome.PARSED, "l2Book:BTC")
    bbo = b'{"channel":"bbo","data":{"coin":"ETH","time":5,"bbo":[{"px":"2000.1","sz":"2","n":1},{"px":"2000.2","sz":"3","n":2}]}}'
    out.clear()
    assert hl.Parser(registry()).parse(bbo, 1, out) == (Outcome.EMITTED, "bbo:ETH") and out[0][7:9] == (2000.1, 2.0)
    assert hl.Parser(registry()).parse(bbo.replace(b'{"px":"2000.1","sz":"2","n":1}', b"null"), 1, [])[0] == Outcome.PARSED


# ``ws_all_dexs_asset_ctxs.json``: the first context of the main dex (BTC), as activeAssetCtx carries it.
BTC_CTX = {"funding": "-0.0000015186", "openInterest": "27353.17682", "prevDayPx": "76317.0",
           "dayNtlVlm": "1516669192.1953897476", "premium": "-0.0005927453", "oraclePx": "77605.0", "markPx": "77562.0",
           "midPx": "77558.5", "impactPxs": ["77558.0", "77559.0"], "dayBaseVlm": "19707.77457"}


@pytest.mark.unit
def test_active_asset_ctx_gives_mark_funding_and_oi_in_coin_units():
    frame = json.dumps({"channel": "activeAssetCtx", "data": {"coin": "BTC", "ctx": BTC_CTX}}).encode()
    ts = 1_769_916_000_123_000_000
    out: list = []
    assert hl.Parser(registry()).parse(frame, ts, out) == (Outcome.EMITTED, "activeAssetCtx:BTC")
    mark, oi = out
    assert (mark[0], mark[7], mark[8], mark[10]) == (Kind.MARK, 77562.0, 77605.0, -0.0000015186)
    assert mark[11] == 1_769_918_400_000.0 and mark[5] == ts   # next top of the hour; no exchange time in the frame
    assert (oi[0], oi[7], oi[8]) == (Kind.OPEN_INTEREST, 77562.0, 27353.17682)
    assert oi[9] == pytest.approx(27353.17682 * 77562.0)
    bad = json.dumps({"channel": "activeAssetCtx", "data": {"coin": "BTC", "ctx": dict(BTC_CTX, openInterest="-1")}})
    assert hl.Parser(registry()).parse(bad.encode(), ts, out)[0] == Outcome.MALFORMED


@pytest.mark.unit
def test_control_unknown_ignored_and_malformed():
    p = hl.Parser(registry())
    for frame in (b'{"channel":"pong"}', b'{"channel":"error","data":"Invalid subscription {\\"type\\":\\"x\\"}"}',
                  b'{"channel":"subscriptionResponse","data":{"method":"unsubscribe","subscription":{"type":"l2Book","coin":"BTC"}}}',
                  b'{"channel":"post","data":{"id":1,"response":{"type":"error","payload":"bad"}}}'):
        assert p.parse(frame, 1, []) == (Outcome.CONTROL, ""), frame
    assert p.parse(b'{"channel":"allMids","data":{"mids":{"BTC":"1"}}}', 1, [])[0] == Outcome.IGNORED
    assert p.parse(b'{"channel":"newThing","data":{}}', 1, [])[0] == Outcome.UNKNOWN
    for frame in (b'{"channel":"trades","data":[{"coin":"BTC"}]}', b'{"channel":7}', b"[1,2]", b"{", b"",
                  REAL_TRADE.replace(b'"side":"B"', b'"side":"X"'), REAL_TRADE.replace(b'"0.01853"', b'"-0.01853"'),
                  REAL_TRADE.replace(b'"105056.0"', b'"NaN"'), REAL_TRADE.replace(b'"105056.0"', b'"Infinity"'),
                  REAL_TRADE.replace(b'"105056.0"', b'"1e308"').replace(b'"0.01853"', b'"1000"'),   # notional overflows
                  json.dumps({"channel": "activeAssetCtx", "data": {"coin": "BTC", "ctx": dict(BTC_CTX, markPx=1e308)}}).encode()):
        assert p.parse(frame, 1, [])[0] == Outcome.MALFORMED, frame
    assert p.parse(REAL_TRADE, 1, []) == (Outcome.EMITTED, "trades:BTC")
    unregistered = hl.Parser(lambda s: None)
    assert unregistered.parse(REAL_TRADE, 1, []) == (Outcome.IGNORED, "trades:BTC")


# -- doc-example fixtures (shapes only) ---------------------------------------------------

def fixture(name: str) -> bytes:
    return (SHARED / FIXTURES / name).read_bytes()


@pytest.mark.playback
@needs_fixtures
def test_doc_example_shapes():
    ids = registry()
    out: list = []
    book = b'{"channel":"l2Book","data":' + fixture("ws_book_data.json") + b"}"
    assert hl.Parser(ids).parse(book, 1, out) == (Outcome.EMITTED, "l2Book:BTC")
    assert (out[0][7], out[0][8], out[0][10], out[0][11]) == (98450.50, 2.5, 98451.00, 1.5)
    out.clear()
    assert hl.parse_l2_book(fixture("http_l2_book_btc.json"), ids, 1, out) == Outcome.EMITTED   # REST: no "n"
    assert (out[0][7], out[0][8], out[0][10], out[0][11], out[0][3]) == (110427.0, 4.11882, 110428.0, 3.72573, Flag.SNAPSHOT)
    out.clear()
    trades = b'{"channel":"trades","data":' + fixture("http_recent_trades_btc.json") + b"}"   # newest first
    assert hl.Parser(ids).parse(trades, 1, out)[0] == Outcome.EMITTED
    assert [(r[2], r[7], r[8]) for r in out] == [(Side.SELL, 104320.0, 0.015), (Side.BUY, 104310.5, 0.02),
                                                 (Side.SELL, 104300.0, 0.005)]
    infos = hl.parse_exchange_info(fixture("http_meta_perp_sample.json"))
    assert [(i.symbol, i.base, i.quote, i.contract_type, i.status, i.contract_size) for i in infos] == [
        (c, c, "USDC", "perpetual", "trading", 1.0) for c in ("BTC", "ETH", "ATOM")]
    assert [i.tick_size for i in infos] == pytest.approx([0.1, 0.01, 0.0001])   # 6 - szDecimals decimals
    assert hl.Parser(ids).parse(fixture("ws_allmids.json"), 1, [])[0] == Outcome.IGNORED
    assert hl.Parser(ids).parse(fixture("ws_all_dexs_asset_ctxs.json"), 1, [])[0] == Outcome.IGNORED


@pytest.mark.playback
@needs_fixtures
def test_user_liquidation_fill_is_not_a_public_liquidation():
    """``{"channel":"user","data":{"fills":[{…,"side":"A","dir":"Open Short",…,"liquidation":{"liquidatedUser":"0x3608…","markPx":"66607.0","method":"market"}}]}}``

    Only the subscribed user's own fills carry the block; the venue has no
    market-wide liquidation feed, so nothing is inferred from it.
    """
    out: list = []
    assert hl.LIQUIDATIONS_AVAILABLE is False and hl.STREAM_TYPES["liquidations"] == ()
    assert hl.Parser(registry()).parse(fixture("ws_user_fill_liquidation.json"), 1, out) == (Outcome.IGNORED, "")
    assert out == []


@pytest.mark.playback
@needs_fixtures
def test_meta_and_asset_ctxs_give_instruments_volumes_and_open_interest():
    """HL lists BTC, ETH, ATOM as assets 0-2: the meta sample and the first three main-dex contexts form one body."""
    meta = json.loads(fixture("http_meta_perp_sample.json"))
    ctxs = json.loads(fixture("ws_all_dexs_asset_ctxs.json"))["data"]["ctxs"][0][1][:3]
    body = json.dumps([meta, ctxs]).encode()
    infos = {i.symbol: i for i in hl.parse_exchange_info(body)}
    assert infos["BTC"].tick_size == 1.0 and infos["ETH"].tick_size == pytest.approx(0.1)   # 5 significant figures
    assert hl.parse_tickers(body) == {"BTC": 1516669192.1953897476, "ETH": 591989409.9392402172,
                                      "ATOM": 539123.9194869999}
    ids = {"BTC": 0, "ATOM": 1}
    out: list = []
    assert hl.parse_open_interest(body, ids.get, 5, 0.0, out) == Outcome.EMITTED
    assert [(r[0], r[4], r[7], r[8]) for r in out] == [(Kind.OPEN_INTEREST, 0, 77562.0, 27353.17682),
                                                       (Kind.OPEN_INTEREST, 1, 2.1315, 1485517.8400000001)]
    assert hl.parse_tickers(fixture("http_meta_perp_sample.json")) is None   # meta alone has no volumes
    assert hl.parse_exchange_info(b'{"universe":7}') is None
    assert hl.parse_open_interest(b"[]", ids.get, 5, 0.0, []) == Outcome.MALFORMED


# -- wire ---------------------------------------------------------------------------------

def vcfg(symbols, streams=("trades", "book", "mark", "oi", "liquidations"), per=100):
    return SimpleNamespace(symbols=list(symbols), streams=list(streams), ws_urls={}, max_streams_per_connection=per)


@pytest.mark.unit
def test_plan_shards_subscriptions_and_caps_the_ip_total(caplog):
    plans = hl.plan(vcfg(["BTC", "ETH"]))
    assert len(plans) == 1 and plans[0].url == "wss://api.hyperliquid.xyz/ws" and not plans[0].subscribe_in_url
    assert plans[0].streams == ("trades:BTC", "l2Book:BTC", "activeAssetCtx:BTC",
                                "trades:ETH", "l2Book:ETH", "activeAssetCtx:ETH")
    assert plans[0].watched == ("l2Book:BTC", "activeAssetCtx:BTC", "l2Book:ETH", "activeAssetCtx:ETH")
    many = hl.plan(vcfg([f"C{i}" for i in range(300)], per=500))
    assert [len(p.streams) for p in many] == [100] * 9 and len({s for p in many for s in p.streams}) == 900
    capped = hl.plan(vcfg([f"C{i}" for i in range(400)]))
    assert sum(len(p.streams) for p in capped) == hl.MAX_SUBSCRIPTIONS_PER_IP and "per-IP cap" in caplog.text
    assert hl.plan(vcfg(["BTC"]), {"ws": "ws://127.0.0.1:1/ws"})[0].url == "ws://127.0.0.1:1/ws"


@pytest.mark.unit
def test_subscribe_ping_and_rest_requests():
    assert [json.loads(m) for m in hl.subscribe_messages(["trades:SOL", "allMids"])] == [
        {"method": "subscribe", "subscription": {"type": "trades", "coin": "SOL"}},
        {"method": "subscribe", "subscription": {"type": "allMids"}}]
    assert json.loads(hl.ping_message()) == {"method": "ping"}
    assert hl.Parser(registry()).parse(b'{"channel":"pong"}', 1, [])[0] == Outcome.CONTROL
    assert hl.stream_symbol("l2Book:kPEPE") == "kPEPE" and hl.stream_symbol("allMids") == ""
    assert hl.base_from_symbol("kPEPE") == "kPEPE"
    assert hl.REST_METHOD == "POST" and hl.EXCHANGE_INFO_REQUEST == ("/info", {"type": "metaAndAssetCtxs"}, 20)
    assert hl.OI_REQUEST == hl.TICKERS_REQUEST == hl.EXCHANGE_INFO_REQUEST
    assert hl.oi_request is None and hl.OI_STREAMED   # OI rides activeAssetCtx: the feed polls no REST for it
    assert json.loads(hl.unsubscribe_messages(["l2Book:BTC"])[0]) == {
        "method": "unsubscribe", "subscription": {"type": "l2Book", "coin": "BTC"}}
    assert json.loads(hl.post_message(4, {"type": "meta"})) == {
        "method": "post", "id": 4, "request": {"type": "info", "payload": {"type": "meta"}}}
    reply = b'{"channel":"post","data":{"id":4,"response":{"type":"info","payload":{"type":"meta","data":{"universe":[]}}}}}'
    assert hl.post_response(reply) == (4, "info", b'{"universe":[]}')
    err = b'{"channel":"post","data":{"id":5,"response":{"type":"error","payload":"bad request"}}}'
    assert hl.post_response(err) == (5, "error", b'"bad request"')
    assert hl.post_response(REAL_TRADE) is None and hl.post_response(b"{") is None


# -- fuzzing ------------------------------------------------------------------------------

TRADE = json.loads(REAL_TRADE)["data"][0]
TEMPLATES = [
    ("trades", [TRADE]),
    ("l2Book", {"coin": "BTC", "levels": [[{"n": 1, "px": "1.5", "sz": "2"}], [{"n": 2, "px": "1.6", "sz": "3"}]],
                "time": 1737918843542}),
    ("bbo", {"coin": "BTC", "time": 1, "bbo": [{"px": "1.5", "sz": "2", "n": 1}, {"px": "1.6", "sz": "3", "n": 1}]}),
    ("activeAssetCtx", {"coin": "BTC", "ctx": BTC_CTX}),
    ("subscriptionResponse", {"method": "subscribe", "subscription": {"type": "trades", "coin": "BTC"}}),
    ("post", {"id": 1, "response": {"type": "info", "payload": {"type": "meta", "data": {}}}}),
    ("error", "Invalid subscription"),
    ("pong", None),
]
WEIRD = st.sampled_from(["NaN", "Infinity", "-Infinity", "-1", "-0.5", "1e400", "", "abc", None, True, [], {}, -5,
                         float("nan"), 1e308, "0", 0, "B", "A"])


def _targets(obj) -> list:
    """Every dict inside ``obj`` (mutation targets)."""
    found = [obj] if isinstance(obj, dict) else []
    for v in (obj.values() if isinstance(obj, dict) else obj if isinstance(obj, list) else ()):
        found.extend(_targets(v))
    return found


@st.composite
def frames(draw):
    channel, data = draw(st.sampled_from(TEMPLATES))
    obj = {"channel": channel, "data": json.loads(json.dumps(data))}
    for _ in range(draw(st.integers(1, 3))):
        target = draw(st.sampled_from(_targets(obj)))
        if not target:
            continue
        key = draw(st.sampled_from(sorted(target)))
        action = draw(st.sampled_from(["drop", "weird", "type"]))
        if action == "drop":
            target.pop(key, None)
        elif action == "weird":
            target[key] = draw(WEIRD)
        else:
            target[key] = draw(st.sampled_from([1, "1", 1.5, [1], {"a": 1}, "BTC", "zz", "unknownChannel"]))
    raw = json.dumps(obj, allow_nan=True).encode()
    return damaged(draw, raw)


@pytest.mark.property
@settings(max_examples=600, deadline=None)
@given(frames())
def test_fuzzed_frames_never_raise_or_emit_bad_numbers(raw):
    from engine.books import attach

    with_books = hl.Parser(registry())
    attach(with_books, hl)
    for parser in (hl.Parser(registry()), with_books):
        out: list = []
        outcome, stream = parser.parse(raw, 1, out)
        assert isinstance(outcome, Outcome) and isinstance(stream, str)
        if outcome != Outcome.EMITTED:
            assert all(r[0] == Kind.CONTROL for r in out)
        for r in out:
            assert r[0] != Kind.LIQUIDATION
            for v in (r[7], r[8], r[9]):
                assert math.isfinite(v) and v >= 0.0
            assert math.isfinite(r[10]) and math.isfinite(r[11])
    for fn in (hl.parse_exchange_info, hl.parse_tickers, hl.post_response):
        fn(raw)   # REST helpers never raise either
    assert hl.parse_open_interest(raw, registry(), 1, 0.0, []) in Outcome
    assert hl.parse_l2_book(raw, registry(), 1, []) in Outcome


# -- throughput: msgspec parser vs stdlib json + the same normalisation -----------------

def reference_parse(payload: bytes, ts_recv: int, out: list, lookup) -> Outcome:
    """The same normalisation written over ``json.loads`` (trades, l2Book and activeAssetCtx only)."""
    msg = json.loads(payload)
    ch, data = msg["channel"], msg["data"]
    if ch == "trades":
        for t in data:
            px, sz = float(t["px"]), float(t["sz"])
            side = Side.BUY if t["side"] == "B" else Side.SELL
            out.append((Kind.TRADE, Venue.HYPERLIQUID, side, 0, lookup(t["coin"]), t["time"] * 1_000_000, ts_recv,
                        px, sz, px * sz, 0.0, 1.0))
    elif ch == "l2Book":
        b, a = data["levels"][0][0], data["levels"][1][0]
        bp, bq, ap, aq = float(b["px"]), float(b["sz"]), float(a["px"]), float(a["sz"])
        out.append((Kind.BOOK_TOP, Venue.HYPERLIQUID, 0, Flag.SNAPSHOT, lookup(data["coin"]), data["time"] * 1_000_000,
                    ts_recv, bp, bq, bp * bq + ap * aq, ap, aq))
    elif ch == "activeAssetCtx":
        c = data["ctx"]
        mark, oi = float(c["markPx"]), float(c["openInterest"])
        iid = lookup(data["coin"])
        out.append((Kind.MARK, Venue.HYPERLIQUID, 0, 0, iid, ts_recv, ts_recv, mark, float(c["oraclePx"]), 0.0,
                    float(c["funding"]), hl.next_funding_ms(ts_recv)))
        out.append((Kind.OPEN_INTEREST, Venue.HYPERLIQUID, 0, 0, iid, ts_recv, ts_recv, mark, oi, oi * mark, 0.0, 0.0))
    return Outcome.EMITTED


def measure(payloads: list[bytes], rounds: int = 100) -> dict[str, float]:
    """µs per frame of both parsers over ``payloads`` (a fresh parser per round: no dedup across rounds)."""
    lookup = {"BTC": 0, "ETH": 1}.get
    result = {}
    for name in ("msgspec", "stdlib"):
        best = math.inf
        for _ in range(3):
            t0 = time.perf_counter()
            for _ in range(rounds):
                out: list = []
                if name == "msgspec":
                    parse = hl.Parser(lookup).parse
                    for p in payloads:
                        parse(p, 1, out)
                else:
                    for p in payloads:
                        reference_parse(p, 1, out, lookup)
            best = min(best, time.perf_counter() - t0)
        result[name] = best / (rounds * len(payloads)) * 1e6
    return result


@pytest.mark.playback
@needs_data
def test_throughput_msgspec_vs_stdlib(capsys):
    payloads = [fr.payload for fr in capture_frames()]
    payloads.append(json.dumps({"channel": "activeAssetCtx", "data": {"coin": "BTC", "ctx": BTC_CTX}}).encode())
    lookup = {"BTC": 0}.get
    for p in payloads:   # same records from both
        a: list = []
        b: list = []
        hl.Parser(lookup).parse(p, 7, a)
        reference_parse(p, 7, b, lookup)
        assert a == b
    us = measure(payloads, rounds=20)
    with capsys.disabled():
        print(f"\nhyperliquid parse+normalise over {len(payloads)} real frames: msgspec {us['msgspec']:.2f} µs/frame, "
              f"stdlib json {us['stdlib']:.2f} µs/frame ({us['stdlib'] / us['msgspec']:.1f}x)")
    assert us["msgspec"] < us["stdlib"]
