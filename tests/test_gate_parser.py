"""Gate USDT futures parser: playback conformance on the cryptofeed captures, pinned rules, fuzzing.

Run as a script for the throughput figure (msgspec parser vs stdlib json on the real frames):
``.venv/bin/python -m tests.test_gate_parser``.
"""
from __future__ import annotations

import json
import math
import time
from collections import Counter
from urllib.parse import parse_qs, urlparse

import pytest
from hypothesis import given, settings, strategies as st

from engine.captures import iter_capture
from engine.record import Flag, Kind, Side, Venue
from bench.stdlib_parsers import gate_normalise as stdlib_parse
from engine.venues import Outcome, gate

from .conftest import shared_data_dir

SHARED = shared_data_dir()
needs_data = pytest.mark.skipif(not SHARED.is_dir(), reason=f"shared capture data not found at {SHARED}")
WS = "cryptofeed/sample_data/GATEIO_FUTURES.ws.1.0"
HTTP = "cryptofeed/sample_data/GATEIO_FUTURES.http.0.0"
CONTRACTS = "cryptofeed/sample_data/GATEIO_FUTURES.0"

# Frames per message type, copied from PROVENANCE.md section 1 (not from the parser).
EXPECTED_WS = {"futures.order_book_update": 352, "futures.book_ticker": 75, "futures.candlesticks": 1, "ack": 22}
EXPECTED_REST_BOOKS = 10
# what each type must become
OUTCOMES = {"futures.order_book_update": Outcome.PARSED, "futures.book_ticker": Outcome.EMITTED,
            "futures.candlesticks": Outcome.IGNORED, "ack": Outcome.CONTROL}
# quanto_multiplier of the real contracts (GATEIO_FUTURES.0), for the messages quoted below
SIZES = {"BTC_USDT": 0.0001, "ETH_USDT": 0.01, "SOL_USDT": 1.0, "PHB_USDT": 1.0, "QUICK_USDT": 0.01}


def registry():
    ids: dict[str, int] = {}
    return lambda s: ids.setdefault(s, len(ids))


def message_type(payload: bytes) -> str:
    """Classify a frame with the stdlib, independently of the parser."""
    d = json.loads(payload)
    return "ack" if d["event"] in ("subscribe", "unsubscribe") else d["channel"]


def check_record(r):
    assert r[1] == Venue.GATE
    for v in r[7:10]:
        assert math.isfinite(v) and v >= 0.0
    assert 1.5e18 < r[5] < 2e18 and r[6] > 0


def parse_one(msg, sizes=SIZES, lookup=None) -> tuple[Outcome, str, list]:
    payload = msg if isinstance(msg, bytes) else msg.encode()
    out: list = []
    outcome, stream = gate.Parser(lookup or registry(), contract_sizes=sizes).parse(payload, 1_700_000_000_000_000_000, out)
    return outcome, stream, out


@pytest.fixture(scope="module")
def contract_sizes():
    if not SHARED.is_dir():
        pytest.skip(f"shared capture data not found at {SHARED}")
    (fr,) = list(iter_capture(SHARED / CONTRACTS))
    return {i.symbol: i.contract_size for i in gate.parse_exchange_info(fr.payload)}


# -- playback ----------------------------------------------------------------------------

@pytest.mark.playback
@needs_data
def test_playback_ws_counts(contract_sizes):
    parser = gate.Parser(registry(), flags=Flag.REPLAY, contract_sizes=contract_sizes)
    per_type, outcomes = Counter(), Counter()
    for fr in iter_capture(SHARED / WS):
        if fr.direction != "recv":
            continue
        out: list = []
        outcome, stream = parser.parse(fr.payload, fr.ts_ns, out)
        t = message_type(fr.payload)
        per_type[t] += 1
        outcomes[outcome] += 1
        assert outcome == OUTCOMES[t], (t, fr.payload[:200])
        for r in out:
            check_record(r)
            assert r[3] & Flag.REPLAY and r[0] == Kind.BOOK_TOP and r[7] < r[10]
        assert len(out) == (1 if t == "futures.book_ticker" else 0)
        if t in ("futures.order_book_update", "futures.book_ticker"):
            assert stream == f"{t}:{json.loads(fr.payload)['result']['s']}"
    assert dict(per_type) == EXPECTED_WS
    assert outcomes[Outcome.MALFORMED] == 0 and outcomes[Outcome.UNKNOWN] == 0
    assert parser.missing_contract_size == 0


@pytest.mark.playback
@needs_data
def test_playback_rest_books_and_id_continuity(contract_sizes):
    """Every REST snapshot gives a BOOK_TOP; the stream's next update continues the snapshot's id."""
    lookup = registry()
    snapshot_ids = {}
    n = 0
    for fr in iter_capture(SHARED / HTTP):
        contract = parse_qs(urlparse(fr.url).query)["contract"][0]
        out: list = []
        outcome = gate.parse_depth_snapshot(fr.payload, contract, lookup, fr.ts_ns, out, Flag.REPLAY,
                                            contract_sizes[contract])
        assert outcome == Outcome.EMITTED and len(out) == 1
        n += 1
        r = out[0]
        check_record(r)
        d = json.loads(fr.payload)
        best_bid = max(float(lv["p"]) for lv in d["bids"])
        best_ask = min(float(lv["p"]) for lv in d["asks"])
        assert (r[7], r[10]) == (best_bid, best_ask) and r[3] & Flag.SNAPSHOT
        snapshot_ids[contract] = d["id"]
    assert n == EXPECTED_REST_BOOKS
    # RDNT_USDT: the capture's updates run 203083177.. and the snapshot (id 203083287) sits inside them
    updates = [json.loads(fr.payload)["result"] for fr in iter_capture(SHARED / WS)
               if fr.direction == "recv" and b'"RDNT_USDT"' in fr.payload and b"order_book_update" in fr.payload
               and b'"update"' in fr.payload]
    base = snapshot_ids["RDNT_USDT"]
    assert any(u["U"] <= base + 1 <= u["u"] for u in updates)
    for prev, cur in zip(updates, updates[1:]):
        assert cur["U"] == prev["u"] + 1   # §4.4: continuity U == last u + 1 holds on the real stream


@pytest.mark.playback
@needs_data
def test_playback_synced_books_match_an_independent_rebuild(contract_sizes):
    """Replay the WS capture and the REST snapshots in receive order through engine/books.py (Gate's id rule):
    every contract syncs with no gap, the deltas older than the snapshot are dropped, and each final top of book
    equals a plain-dict rebuild (snapshot + every later delta)."""
    from engine.books import attach

    parser = gate.Parser(registry(), contract_sizes=contract_sizes)
    books = attach(parser, gate, 20)
    ws = [fr for fr in iter_capture(SHARED / WS) if fr.direction == "recv"]
    rest = list(iter_capture(SHARED / HTTP))
    ref: dict[str, tuple[int, dict, dict]] = {}
    expected_stale = Counter()
    for fr in sorted(ws + rest, key=lambda f: f.ts_ns):
        out: list = []
        if fr.direction == "rest":
            contract = parse_qs(urlparse(fr.url).query)["contract"][0]
            assert parser.book_snapshot(contract, fr.payload, fr.ts_ns, out) == Outcome.EMITTED
            d = json.loads(fr.payload)
            ref[contract] = (d["id"], {float(lv["p"]): lv["s"] for lv in d["bids"]},
                             {float(lv["p"]): lv["s"] for lv in d["asks"]})
        else:
            outcome, _ = parser.parse(fr.payload, fr.ts_ns, out)
            assert outcome != Outcome.MALFORMED
        assert all(r[0] in (Kind.BOOK_TOP, Kind.BOOK_DEPTH) for r in out)   # never a BOOK_INVALID control
    for fr in ws:   # the plain rebuild: every delta past the snapshot id, in stream order
        d = json.loads(fr.payload)
        if d["channel"] != "futures.order_book_update" or d["event"] != "update":
            continue
        u = d["result"]
        base, bids, asks = ref[u["s"]]
        if u["u"] <= base:
            expected_stale[u["s"]] += 1
            continue
        for side, levels in ((bids, u["b"]), (asks, u["a"])):
            for lv in levels:
                if lv["s"] == 0:
                    side.pop(float(lv["p"]), None)
                else:
                    side[float(lv["p"])] = lv["s"]
    c = books.counters()
    assert (c["book_gaps"], c["book_resyncs"], c["book_crossed"], c["book_unsynced"]) == (0, 0, 0, 0)
    assert c["book_snapshots"] == EXPECTED_REST_BOOKS and c["book_stale"] == sum(expected_stale.values())
    for contract, (_, bids, asks) in ref.items():
        mult = contract_sizes[contract]
        bid, ask = max(bids), min(asks)
        assert books.book(contract).best() == (bid, pytest.approx(bids[bid] * mult), ask, pytest.approx(asks[ask] * mult))


@pytest.mark.playback
@needs_data
def test_contract_list(contract_sizes):
    (fr,) = list(iter_capture(SHARED / CONTRACTS))
    infos = {i.symbol: i for i in gate.parse_exchange_info(fr.payload)}
    assert len(infos) == len(json.loads(fr.payload)) == 302
    btc = infos["BTC_USDT"]
    assert (btc.base, btc.quote, btc.contract_type, btc.status, btc.contract_size) == \
        ("BTC", "USDT", "perpetual", "trading", 0.0001)
    assert btc.tick_size == 0.1 and infos["ETH_USDT"].contract_size == 0.01 and infos["SOL_USDT"].contract_size == 1.0
    assert [s for s, i in infos.items() if i.status != "trading"] == \
        [c["name"] for c in json.loads(fr.payload) if c["in_delisting"]]


@pytest.mark.playback
@needs_data
def test_open_interest_from_a_real_contract_object():
    """``position_size`` (contracts) x ``quanto_multiplier`` at ``mark_price``, from the real listing."""
    (fr,) = list(iter_capture(SHARED / CONTRACTS))
    ooki = next(c for c in json.loads(fr.payload) if c["name"] == "OOKI_USDT")
    assert (ooki["position_size"], ooki["quanto_multiplier"], ooki["mark_price"]) == (28561, "100", "0.003014")
    out: list = []
    assert gate.parse_open_interest(json.dumps(ooki).encode(), registry(), 1_700_000_000_000_000_000, 0.0, out) \
        == Outcome.EMITTED
    (r,) = out
    assert r[0] == Kind.OPEN_INTEREST and r[8] == 28561 * 100 and r[7] == 0.003014
    assert r[9] == pytest.approx(28561 * 100 * 0.003014)


@pytest.mark.playback
@needs_data
def test_doc_example_fixtures_have_the_parsed_shape():
    """Shape check of nautilus_trader's Gate doc examples, where present (field names only, not market data)."""
    folder = SHARED / "fixtures_doc_examples/nautilus_trader/gate"
    files = sorted(folder.rglob("*.json")) if folder.is_dir() else []
    if not files:
        pytest.skip(f"no Gate doc-example fixtures in {folder.parent} (PROVENANCE.md section 10 lists none)")
    for f in files:
        outcome, _, _ = parse_one(f.read_bytes())
        assert outcome not in (Outcome.MALFORMED,), f.name


# -- rules pinned on real or documented messages ---------------------------------------

def test_liquidation_side_is_the_liquidated_position():
    """PROTOCOLS §4.2 docs example (with the decimal header): negative size = sell order = long liquidated."""
    msg = ('{ "channel": "futures.public_liquidates", "event": "update", "time": 1541505434, "time_ms": 1541505434123, '
           '"result": [ { "price": "215.1", "size": "-124.5", "time": 1541486601123, "contract": "BTC_USDT" }, '
           '{ "price": "215.2", "size": "-10.5", "time": 1541486601456, "contract": "BTC_USDT" } ] }')
    outcome, stream, out = parse_one(msg)
    assert outcome == Outcome.EMITTED and stream == "futures.public_liquidates:BTC_USDT" and len(out) == 2
    r = out[0]
    assert r[0] == Kind.LIQUIDATION and r[2] == Side.LONG and not r[3] & Flag.CAPPED
    assert r[5] == 1541486601123 * 1_000_000
    assert r[7] == 215.1 and r[8] == pytest.approx(124.5 * 0.0001) and r[9] == pytest.approx(124.5 * 0.0001 * 215.1)
    # the same order as a buy: a short position was liquidated
    _, _, out = parse_one(msg.replace('"-124.5"', '"124.5"'))
    assert out[0][2] == Side.SHORT


def test_liquidation_integer_and_pre_2026_seconds_forms():
    """§4.2 without the header (integer sizes) and the pre-2026-08-20 form (item time in seconds, capped stream)."""
    ints = ('{ "channel": "futures.public_liquidates", "event": "update", "time": 1541505434, "time_ms": 1541505434123, '
            '"result": [ { "price": "215.1", "size": -124, "time": 1541486601123, "contract": "BTC_USDT" } ] }')
    _, _, out = parse_one(ints)
    assert out[0][2] == Side.LONG and out[0][8] == pytest.approx(124 * 0.0001)
    old = ('{ "channel": "futures.public_liquidates", "event": "update", "time": 1541505434, "time_ms": 1541505434123, '
           '"result": [ { "price": "215.1", "size": "-124.5", "time": 1541486601, "contract": "BTC_USDT" } ] }')
    _, _, out = parse_one(old)
    assert out[0][5] == 1541486601000 * 1_000_000 and out[0][3] & Flag.CAPPED


def test_trade_side_is_the_taker_side_and_internal_fills_are_flagged():
    """§4.3 docs example: "size positive = buyer, negative = seller"; is_internal = insurance/ADL takeover."""
    msg = ('{ "channel": "futures.trades", "event": "update", "time": 1541503698, "time_ms": 1541503698123, '
           '"result": [ { "size": "-108.5", "id": 27753479, "create_time": 1545136464, '
           '"create_time_ms": 1545136464123, "price": "96.4", "contract": "BTC_USDT", "is_internal": true } ] }')
    outcome, stream, out = parse_one(msg)
    assert outcome == Outcome.EMITTED and stream == "futures.trades:BTC_USDT"
    (r,) = out
    assert r[0] == Kind.TRADE and r[2] == Side.SELL and r[3] & Flag.NON_MARKET
    assert r[5] == 1545136464123 * 1_000_000 and r[10] == 27753479.0
    assert r[8] == pytest.approx(108.5 * 0.0001) and r[9] == pytest.approx(108.5 * 0.0001 * 96.4)
    _, _, out = parse_one(msg.replace('"-108.5"', "108").replace(', "is_internal": true', ""))
    assert out[0][2] == Side.BUY and not out[0][3] & Flag.NON_MARKET and out[0][8] == pytest.approx(108 * 0.0001)


@needs_data
def test_book_sizes_become_base_units():
    """The real QUICK_USDT REST book (quanto_multiplier 0.01): level sizes are contracts."""
    fr = next(fr for fr in iter_capture(SHARED / HTTP) if "contract=QUICK_USDT" in fr.url)
    d = json.loads(fr.payload)
    assert (d["asks"][0], d["bids"][0]) == ({"s": 46, "p": "57"}, {"s": 100, "p": "56.91"})
    out: list = []
    assert gate.parse_depth_snapshot(fr.payload, "QUICK_USDT", registry(), fr.ts_ns, out, 0, SIZES["QUICK_USDT"]) \
        == Outcome.EMITTED
    (r,) = out
    assert (r[7], r[8], r[10], r[11]) == (56.91, pytest.approx(1.0), 57.0, pytest.approx(0.46))
    assert r[9] == pytest.approx(56.91 * 1.0 + 57.0 * 0.46)
    out.clear()   # no contract size, no guess
    assert gate.parse_depth_snapshot(fr.payload, "QUICK_USDT", registry(), fr.ts_ns, out) == Outcome.IGNORED and not out


def test_tickers_give_mark_index_funding_and_stats_give_open_interest():
    """§4.5 docs examples."""
    tickers = ('{ "time": 1541659086, "time_ms": 1541659086123, "channel": "futures.tickers", "event": "update", '
               '"result": [ { "contract": "BTC_USDT", "last": "118.4", "change_percentage": "0.77", "funding_rate": '
               '"-0.000114", "funding_rate_indicative": "0.01875", "mark_price": "118.35", "index_price": "118.36", '
               '"total_size": "73648.5", "volume_24h": "745487577", "quanto_base_rate": "", "low_24h": "99.2", '
               '"high_24h": "132.5", "price_type": "last", "t": 1541659086123 } ] }')
    outcome, _, out = parse_one(tickers)
    assert outcome == Outcome.EMITTED
    assert out[0][0] == Kind.MARK and out[0][7:12] == (118.35, 118.36, 0.0, -0.000114, 0.0)
    stats = ('{ "time": 1541659086, "time_ms": 1541659086123, "channel": "futures.contract_stats", "event": "update", '
             '"result": [ { "time": 1603865400, "contract":"BTC_USDT", "lsr_taker": 100, "lsr_account": 0.5, '
             '"long_liq_size": "0", "short_liq_size": "0", "open_interest": "124724", "short_liq_usd": 0, '
             '"mark_price": "8865", "top_lsr_size": 1.02, "open_interest_usd": 1511, "long_liq_usd": 0 } ] }')
    outcome, _, out = parse_one(stats)
    assert outcome == Outcome.EMITTED
    (r,) = out
    assert r[0] == Kind.OPEN_INTEREST and r[5] == 1603865400 * 10**9
    assert r[8] == pytest.approx(124724 * 0.0001) and r[9] == pytest.approx(124724 * 0.0001 * 8865)


def test_obu_full_snapshot_and_increment():
    """§4.4 docs example of futures.obu (V2): the first push is full; increments wait for the book."""
    full = ('{ "channel": "futures.obu", "result": { "t": 1743673026995, "full": true, "s": "ob.BTC_USDT.400", '
            '"u": 79072179673, "b": [ ["83705.9", "30166"] ], "a": [ ["83706", "4208"] ] }, "time_ms": 1743673026999 }')
    outcome, stream, out = parse_one(full)
    assert outcome == Outcome.EMITTED and stream == "futures.obu:BTC_USDT"
    assert out[0][7:9] == (83705.9, pytest.approx(30166 * 0.0001)) and out[0][3] & Flag.SNAPSHOT
    outcome, _, out = parse_one(full.replace('"full": true', '"full": false, "U": 79072179674'))
    assert outcome == Outcome.PARSED and not out


@pytest.mark.parametrize("msg", [
    '{ "time": 1545404023, "time_ms": 1545404023123, "channel": "futures.pong", "event": "", "result": null }',
    '{ "time": 1545405058, "time_ms": 1545405058123, "channel": "futures.trades", "event": "subscribe", '
    '"result": { "status": "success" } }',
    '{"time":1545405058,"time_ms":1545405058123,"channel":"futures.trades","event":"subscribe",'
    '"error":{"code":2,"message":"unknown contract BTC_USDX"},"result":{"status":"failed"}}',
    '{ "time": 1782378978, "time_ms": 1782378978107, "channel": "futures.system", "event": "update", "result": '
    '{ "type": "upgrade", "msg": "The connection will soon be closed for a service upgrade. Please reconnect." } }',
])
def test_protocol_messages_are_control(msg):
    """§4.1 docs examples: pong, subscribe ack, error reply, upgrade notice."""
    outcome, _, out = parse_one(msg)
    assert outcome == Outcome.CONTROL and not out


def test_ping_message_is_what_the_pong_answers():
    ping = json.loads(gate.ping_message())
    assert ping["channel"] == "futures.ping" and abs(ping["time"] - time.time()) < 5


@pytest.mark.parametrize("msg, expected", [
    ('{"time":1,"time_ms":1,"channel":"futures.new_thing","event":"update","result":[]}', Outcome.UNKNOWN),
    ('{"time":1,"time_ms":1,"channel":"futures.candlesticks","event":"update","result":[]}', Outcome.IGNORED),
    ('{"time":1,"time_ms":1,"channel":"futures.trades","event":"update","result":{"x":1}}', Outcome.MALFORMED),
    ('{"time":1,"channel":"futures.trades","event":"update","result":[{"contract":"BTC_USDT","size":"1","price":"NaN"}]}',
     Outcome.MALFORMED),
    (b'{"channel":"futures.trades"', Outcome.MALFORMED),
    (b"\xff\xfe", Outcome.MALFORMED),
    ("[1,2]", Outcome.MALFORMED),
])
def test_bad_and_unknown_frames_are_counted(msg, expected):
    assert parse_one(msg)[0] == expected


def test_a_contract_without_a_known_size_is_ignored_not_guessed():
    msg = ('{"channel":"futures.trades","event":"update","time_ms":1545136464123,"result":'
           '[{"size":5,"id":1,"create_time_ms":1545136464123,"price":"96.4","contract":"XYZ_USDT"}]}')
    parser = gate.Parser(registry(), contract_sizes=SIZES)
    out: list = []
    assert parser.parse(msg.encode(), 1, out) == (Outcome.IGNORED, "futures.trades:XYZ_USDT") and not out
    assert parser.missing_contract_size == 1


def test_plan_and_subscribe_messages():
    from engine.config import VenueConfig
    vcfg = VenueConfig(symbols=[f"C{i}_USDT" for i in range(300)], max_streams_per_connection=500)
    plans = gate.plan(vcfg)
    assert [len(p.streams) for p in plans] == [400, 400, 400, 300]   # 5 streams x 300 contracts, 400 per socket
    assert all(p.url == gate.DEFAULT_WS_URLS["usdt"] and not p.subscribe_in_url for p in plans)
    liq = [s for p in plans for s in p.streams if s.startswith("futures.public_liquidates:")]
    assert len(liq) == 300 and not any(s in p.watched for p in plans for s in liq)
    msgs = [json.loads(m) for m in gate.subscribe_messages(
        ["futures.trades:BTC_USDT", "futures.trades:ETH_USDT", "futures.order_book_update:BTC_USDT"], first_id=7)]
    assert [(m["channel"], m["event"], m["payload"], m["id"]) for m in msgs] == [
        ("futures.trades", "subscribe", ["BTC_USDT", "ETH_USDT"], 7),
        ("futures.order_book_update", "subscribe", ["BTC_USDT", gate.BOOK_INTERVAL, gate.BOOK_LEVEL], 8)]
    assert gate.stream_symbol("futures.trades:BTC_USDT") == "BTC_USDT" == gate.base_from_symbol("BTC_USDT") + "_USDT"


def test_tickers_rest_gives_usd_volume():
    body = b'[{"contract":"BTC_USDT","last":"100","volume_24h_quote":"5000"},{"contract":"X_USDT","last":"2","volume_24h_base":"10"}]'
    assert gate.parse_tickers(body) == {"BTC_USDT": 5000.0, "X_USDT": 20.0}
    assert gate.parse_tickers(b"{") is None and gate.parse_exchange_info(b"[1]") is None


# -- fuzzing -------------------------------------------------------------------------------

BASES = [
    {"channel": "futures.trades", "event": "update", "time": 1, "time_ms": 1545136464123,
     "result": [{"size": "-108.5", "id": 27753479, "create_time": 1545136464, "create_time_ms": 1545136464123,
                 "price": "96.4", "contract": "BTC_USDT"}]},
    {"channel": "futures.public_liquidates", "event": "update", "time": 1, "time_ms": 1541505434123,
     "result": [{"price": "215.1", "size": "-124.5", "time": 1541486601123, "contract": "BTC_USDT"}]},
    {"channel": "futures.book_ticker", "event": "update", "time": 1, "time_ms": 1684930165631,
     "result": {"t": 1684930165621, "u": 6159967, "s": "PHB_USDT", "b": "0.7379", "B": 814, "a": "0.739", "A": 677}},
    {"channel": "futures.order_book_update", "event": "update", "time": 1, "time_ms": 1,
     "result": {"t": 1615366381417, "s": "BTC_USDT", "U": 2517661101, "u": 2517661113, "full": True,
                "b": [{"p": "54672.1", "s": "1"}], "a": [{"p": "54743.6", "s": "95.2"}]}},
    {"channel": "futures.tickers", "event": "update", "time": 1, "time_ms": 1541659086123,
     "result": [{"contract": "BTC_USDT", "mark_price": "118.35", "index_price": "118.36", "funding_rate": "-0.000114",
                 "t": 1541659086123}]},
    {"channel": "futures.contract_stats", "event": "update", "time": 1, "time_ms": 1,
     "result": [{"time": 1603865400, "contract": "BTC_USDT", "open_interest": "124724", "mark_price": "8865"}]},
    {"channel": "futures.obu", "time_ms": 1743673026999,
     "result": {"t": 1743673026995, "full": True, "s": "ob.BTC_USDT.400", "u": 79072179673,
                "b": [["83705.9", "30166"]], "a": [["83706", "4208"]]}},
]
ODD = st.sampled_from([None, "NaN", "nan", "Infinity", "-Infinity", "inf", "-1", -1, -1e308, 1e309, "", "abc",
                       [], {}, True, 2**70, 0, "0", "1e400", {"p": "1"}, [["1", "-2"]]])


@st.composite
def variants(draw):
    msg = json.loads(json.dumps(draw(st.sampled_from(BASES))))
    for _ in range(draw(st.integers(1, 3))):
        target = msg
        res = msg.get("result")
        if draw(st.booleans()):
            target = res[0] if isinstance(res, list) and res else res
        if not isinstance(target, dict) or not target:
            continue
        key = draw(st.sampled_from(sorted(target)))
        action = draw(st.sampled_from(["drop", "odd", "negate"]))
        if action == "drop":
            del target[key]
        elif action == "odd":
            target[key] = draw(ODD)
        elif isinstance(target[key], str) and target[key][:1].isdigit():
            target[key] = "-" + target[key]
    if draw(st.integers(0, 9)) == 0:
        msg["channel"] = draw(st.sampled_from(["futures.foo", "spot.trades", "", 5]))
    return json.dumps(msg).encode()


def _check_never_bad(payload: bytes):
    parser = gate.Parser(registry(), contract_sizes=SIZES)
    out: list = []
    outcome, stream = parser.parse(payload, 1_700_000_000_000_000_000, out)
    assert isinstance(outcome, Outcome) and isinstance(stream, str)
    if outcome != Outcome.EMITTED:
        assert not out
    for r in out:
        assert all(math.isfinite(v) for v in r[7:12]) and min(r[7:10]) >= 0.0
        if r[0] == Kind.BOOK_TOP:
            assert r[10] > 0.0 and r[11] >= 0.0


@pytest.mark.property
@settings(max_examples=400, deadline=None)
@given(variants())
def test_fuzzed_variants_never_raise_or_emit_bad_values(payload):
    _check_never_bad(payload)


@pytest.mark.property
@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=200) | st.text(max_size=100).map(str.encode))
def test_arbitrary_bytes_are_counted(payload):
    _check_never_bad(payload)
    _check_never_bad(b'{"channel":"futures.trades",' + payload)


@pytest.mark.property
@settings(max_examples=100, deadline=None)
@given(st.binary(max_size=300))
def test_rest_parsers_never_raise(payload):
    out: list = []
    assert gate.parse_open_interest(payload, registry(), 1, 0.0, out) in Outcome
    assert gate.parse_depth_snapshot(payload, "BTC_USDT", registry(), 1, out, 0, 0.0001) in Outcome
    assert gate.parse_exchange_info(payload) is None or isinstance(gate.parse_exchange_info(payload), list)
    assert gate.parse_tickers(payload) is None or isinstance(gate.parse_tickers(payload), dict)
    for r in out:
        assert all(math.isfinite(v) and v >= 0.0 for v in r[7:10])


# -- throughput: msgspec parser vs stdlib json with the same normalisation ---------------------

def real_frames() -> list[bytes]:
    return [fr.payload for fr in iter_capture(SHARED / WS) if fr.direction == "recv" and b'"update"' in fr.payload]


@pytest.mark.playback
@needs_data
def test_stdlib_baseline_normalises_identically(contract_sizes):
    """The baseline measured against is the same normalisation (so the throughput figure compares like with like)."""
    lookup = registry()
    parser = gate.Parser(lookup, contract_sizes=contract_sizes)
    for payload in real_frames():
        a: list = []
        b: list = []
        parser.parse(payload, 1, a)
        stdlib_parse(payload, 1, lookup, contract_sizes, b)
        assert a == b


def measure(repeat: int = 20) -> dict[str, float]:
    """Best-of-``repeat`` µs per frame on the real update frames: msgspec parser vs stdlib."""
    (fr,) = list(iter_capture(SHARED / CONTRACTS))
    sizes = {i.symbol: i.contract_size for i in gate.parse_exchange_info(fr.payload)}
    frames, lookup = real_frames(), registry()
    parser = gate.Parser(lookup, contract_sizes=sizes)
    out: list = []
    cases = {"msgspec": lambda p: parser.parse(p, 1, out), "stdlib": lambda p: stdlib_parse(p, 1, lookup, sizes, out)}
    result = {"frames": float(len(frames))}
    for name, fn in cases.items():
        best = math.inf
        for _ in range(repeat):
            t0 = time.perf_counter()
            for p in frames:
                fn(p)
            best = min(best, time.perf_counter() - t0)
            out.clear()
        result[f"{name}_us_per_frame"] = best / len(frames) * 1e6
    return result


if __name__ == "__main__":
    print(json.dumps(measure()))
