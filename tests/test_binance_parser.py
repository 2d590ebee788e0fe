"""Binance parser: playback conformance on every USD-M capture, pinned rules, fuzzing."""
from __future__ import annotations

import json
import math
import os
from collections import Counter
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import pytest
from hypothesis import given, settings, strategies as st

from engine.captures import iter_capture
from engine.record import Flag, Kind, Side, Venue
from engine.venues import Outcome, binance
from tests.fuzz_frames import damaged

SHARED = Path(os.environ.get("UNDERTOW_SHARED") or Path(__file__).resolve().parents[2] / "shared") / "data"
needs_data = pytest.mark.skipif(not SHARED.is_dir(), reason=f"shared capture data not found at {SHARED}")


def registry():
    ids: dict[str, int] = {}
    return lambda s: ids.setdefault(s, len(ids))


def stream_type(stream: str) -> str:
    t = stream.split("@", 1)[1]
    return "depth" if t.startswith("depth") else t


# Frames per stream type, copied from PROVENANCE.md sections 1-3 (not from the parser).
EXPECTED = {
    "cryptofeed/sample_data/BINANCE_FUTURES.ws.1.0":
        {"depth": 764, "bookTicker": 613, "aggTrade": 91, "kline_1m": 67},
    "binance_usdm/hftbacktest/btcusdt_20230404.dat.gz":
        {"depth": 4322, "bookTicker": 6765, "trade": 2197, "markPrice@1s": 99, "rest": 1},
    "binance_usdm/hftbacktest/btcusdt_20240718.gz": {"depth": 3326, "bookTicker": 7113, "trade": 974, "rest": 1},
    "binance_usdm/hftbacktest/btcusdt_20240719.gz": {"depth": 5696, "bookTicker": 45147, "trade": 9727},
    "binance_usdm/hftbacktest/ethusdt_20240718.gz": {"depth": 3273, "bookTicker": 9089, "trade": 1640, "rest": 1},
    "binance_usdm/hftbacktest/ethusdt_20240719.gz": {"depth": 5656, "bookTicker": 38239, "trade": 12015},
    "binance_usdm/hftbacktest/btcusdt_20240808.gz": {"depth": 6551, "bookTicker": 66089, "trade": 21313, "rest": 1},
    "binance_usdm/collect-binancefutures/btcusdt_20220811.dat.gz": {"trade": 1326, "depth": 206, "rest": 1},
}
# what each stream type must become
EMITS = {"bookTicker": Kind.BOOK_TOP, "aggTrade": Kind.TRADE, "trade": Kind.TRADE, "markPrice@1s": Kind.MARK,
         "rest": Kind.BOOK_TOP}
QUIET = {"depth": Outcome.PARSED, "kline_1m": Outcome.IGNORED}  # diffs wait for the synced book


def check_record(r):
    assert r[1] == Venue.BINANCE
    for v in r[7:10]:
        assert math.isfinite(v) and v >= 0.0
    assert 1.5e18 < r[5] < 2e18 and r[6] > 0


@pytest.mark.playback
@needs_data
@pytest.mark.parametrize("rel", sorted(EXPECTED))
def test_playback_counts(rel):
    symbol = Path(rel).name.split("_")[0].upper()
    lookup = registry()
    parser = binance.Parser(lookup, flags=Flag.REPLAY)
    per_type, outcomes, by_type_kind = Counter(), Counter(), Counter()
    for fr in iter_capture(SHARED / rel):
        out: list = []
        if fr.direction in ("open", "sent"):
            continue
        if fr.direction == "rest":
            outcome, t = binance.parse_depth_snapshot(fr.payload, symbol, lookup, fr.ts_ns, out, Flag.REPLAY), "rest"
        else:
            outcome, stream = parser.parse(fr.payload, fr.ts_ns, out)
            t = stream_type(stream)
        per_type[t] += 1
        outcomes[outcome] += 1
        for r in out:
            check_record(r)
            assert r[3] & Flag.REPLAY
            by_type_kind[t, r[0]] += 1
        if t in QUIET:
            assert outcome == QUIET[t] and not out
        else:
            assert outcome == Outcome.EMITTED and len(out) == 1, (t, fr.payload[:200])
    assert dict(per_type) == EXPECTED[rel]
    assert outcomes[Outcome.MALFORMED] == 0 and outcomes[Outcome.UNKNOWN] == 0
    for t, kind in EMITS.items():
        assert by_type_kind[t, kind] == EXPECTED[rel].get(t, 0)


@pytest.mark.playback
@needs_data
def test_rest_depth_snapshots_and_exchange_info():
    lookup = registry()
    tops = []
    for fr in iter_capture(SHARED / "cryptofeed/sample_data/BINANCE_FUTURES.http.0.0"):
        symbol = parse_qs(urlparse(fr.url).query)["symbol"][0]
        out: list = []
        assert binance.parse_depth_snapshot(fr.payload, symbol, lookup, fr.ts_ns, out) == Outcome.EMITTED
        tops.append((symbol, out[0]))
    assert [s for s, _ in tops] == ["SUSHIUSDT", "AKROUSDT", "KEEPUSDT", "CTKUSDT"][:len(tops)] or len(tops) == 4
    sushi = dict(tops)["SUSHIUSDT"]
    assert (sushi[0], sushi[7], sushi[8]) == (Kind.BOOK_TOP, 7.6110, 6.0) and sushi[3] & Flag.SNAPSHOT
    assert sushi[10] > sushi[7]  # best ask above best bid

    (fr,) = list(iter_capture(SHARED / "cryptofeed/sample_data/BINANCE_FUTURES.0"))
    infos = {i.symbol: i for i in binance.parse_exchange_info(fr.payload)}
    assert infos["BTCUSDT"].base == "BTC" and infos["BTCUSDT"].quote == "USDT"
    assert infos["BTCUSDT"].contract_type == "perpetual" and infos["BTCUSDT"].tick_size > 0
    assert infos["SUSHIUSDT"].tick_size == 0.001


@pytest.mark.playback
def test_coin_m_is_out_of_scope():
    pytest.skip("binance_coinm / BINANCE_DELIVERY are COIN-M (sizes in USD contracts, dstream.binance.com); "
                "the Binance feed covers USD-M only")


# -- rules pinned on real messages -----------------------------------------------------

BBGO_FORCE_ORDER = (b'{"e":"forceOrder","E":1695714031883,"o":{"s":"BTCUSDT","S":"SELL","o":"LIMIT","f":"IOC",'
                    b'"q":"0.115","p":"26142.12","ap":"26245.10","X":"FILLED","l":"0.115","z":"0.115",'
                    b'"T":1695714031881}}')
REAL_AGG_TRADE = (b'{"stream":"sushiusdt@aggTrade","data":{"e":"aggTrade","E":1626992741127,"a":11361808,'
                  b'"s":"SUSHIUSDT","p":"7.6120","q":"12","f":19434329,"l":19434331,"T":1626992740968,"m":false}}')


def parse_one(payload: bytes, **kw):
    out: list = []
    outcome, stream = binance.Parser(registry(), **kw).parse(payload, 123, out)
    return outcome, stream, out


@pytest.mark.unit
def test_force_order_sell_is_a_liquidated_long():
    outcome, stream, [r] = parse_one(BBGO_FORCE_ORDER)
    assert outcome == Outcome.EMITTED and stream == "btcusdt@forceOrder"
    assert (r[0], r[2], r[3]) == (Kind.LIQUIDATION, Side.LONG, Flag.CAPPED)
    assert (r[7], r[8], r[10]) == (26245.10, 0.115, 26142.12)    # price = ap, qty = z, aux = p
    assert r[9] == pytest.approx(0.115 * 26245.10)
    assert r[5] == 1695714031881_000_000 and r[6] == 123
    _, _, [short] = parse_one(BBGO_FORCE_ORDER.replace(b'"S":"SELL"', b'"S":"BUY"'))
    assert short[2] == Side.SHORT


@pytest.mark.unit
def test_agg_trade_maker_buyer_means_taker_sold():
    _, _, [r] = parse_one(REAL_AGG_TRADE)
    assert (r[0], r[2], r[7], r[8], r[10], r[11]) == (Kind.TRADE, Side.BUY, 7.612, 12.0, 11361808.0, 3.0)
    assert r[5] == 1626992740968_000_000
    _, _, [s] = parse_one(REAL_AGG_TRADE.replace(b'"m":false', b'"m":true'))
    assert s[2] == Side.SELL


@pytest.mark.unit
def test_trade_types_and_sentinels():
    base = b'{"e":"trade","E":1680652700455,"T":1680652700452,"s":"BTCUSDT","t":3535186032,"p":"28145.10","q":"0.002","X":"MARKET","m":true}'
    _, _, [r] = parse_one(base)
    assert r[3] == 0 and r[2] == Side.SELL
    _, _, [ins] = parse_one(base.replace(b'"MARKET"', b'"INSURANCE_FUND"'))
    assert ins[3] & Flag.NON_MARKET
    outcome, _, out = parse_one(base.replace(b'"28145.10"', b'"0"').replace(b'"0.002"', b'"0"').replace(b'"MARKET"', b'"NA"'))
    assert outcome == Outcome.PARSED and out == []


@pytest.mark.unit
def test_mark_price_single_and_array():
    one = {"e": "markPriceUpdate", "E": 1680652701000, "s": "BTCUSDT", "p": "28144.8", "P": "1", "i": "28158.6",
           "r": "-0.0001", "T": 1680681600000}
    _, _, [r] = parse_one(json.dumps({"stream": "btcusdt@markPrice@1s", "data": one}).encode())
    assert (r[0], r[7], r[8], r[10], r[11]) == (Kind.MARK, 28144.8, 28158.6, -0.0001, 1680681600000.0)
    eth = dict(one, s="ETHUSDT", r="", T=0)
    outcome, stream, out = parse_one(json.dumps({"stream": "!markPrice@arr@1s", "data": [one, eth]}).encode())
    assert outcome == Outcome.EMITTED and stream == "!markPrice@arr@1s" and len(out) == 2 and out[1][10] == 0.0
    outcome, _, out = parse_one(json.dumps([one, dict(one, p="NaN")]).encode())
    assert outcome == Outcome.MALFORMED and out == []
    # a bad funding string in a later element spoils the whole frame too: no records of the earlier ones
    outcome, _, out = parse_one(json.dumps({"stream": "!markPrice@arr@1s", "data": [one, dict(eth, r="x")]}).encode())
    assert outcome == Outcome.MALFORMED and out == []


@pytest.mark.unit
def test_partial_depth_and_open_interest_and_acks():
    partial = (b'{"stream":"btcusdt@depth5@100ms","data":{"e":"depthUpdate","E":1,"T":2,"s":"BTCUSDT","U":1,"u":2,'
               b'"pu":0,"b":[["100.5","2"],["100.4","1"]],"a":[["100.6","3"]]}}')
    _, _, [r] = parse_one(partial)
    assert (r[0], r[7], r[8], r[10], r[11], r[9]) == (Kind.BOOK_TOP, 100.5, 2.0, 100.6, 3.0, 100.5 * 2 + 100.6 * 3)
    out: list = []
    oi = b'{"openInterest":"10659.509","symbol":"BTCUSDT","time":1589437530011}'
    assert binance.parse_open_interest(oi, registry(), 5, 60000.0, out) == Outcome.EMITTED
    assert (out[0][0], out[0][8], out[0][7], out[0][9]) == (Kind.OPEN_INTEREST, 10659.509, 60000.0, 10659.509 * 60000.0)
    assert parse_one(b'{"result":null,"id":1}')[0] == Outcome.CONTROL
    assert parse_one(b'{"error":{"code":2,"msg":"Invalid request"},"id":3}')[0] == Outcome.CONTROL
    assert parse_one(b'{"stream":"x@y","data":{"e":"newThing","s":"BTCUSDT"}}')[0] == Outcome.UNKNOWN
    assert parse_one(b'{"stream":"btcusdt@aggTrade","data":{"e":"aggTrade","s":"BTCUSDT"}}')[0] == Outcome.MALFORMED


# -- fuzzing ---------------------------------------------------------------------------

TEMPLATES = [json.loads(REAL_AGG_TRADE)["data"], json.loads(BBGO_FORCE_ORDER),
             {"e": "trade", "E": 1, "T": 2, "s": "BTCUSDT", "t": 3, "p": "1.5", "q": "2", "X": "MARKET", "m": True},
             {"e": "bookTicker", "u": 1, "s": "BTCUSDT", "b": "7.6", "B": "2", "a": "7.7", "A": "3", "T": 1, "E": 2},
             {"e": "markPriceUpdate", "E": 1, "s": "BTCUSDT", "p": "2", "i": "2", "r": "0.1", "T": 3},
             {"e": "depthUpdate", "E": 1, "T": 2, "s": "BTCUSDT", "U": 1, "u": 2, "pu": 0, "b": [["1", "2"]], "a": [["3", "4"]]}]
WEIRD = st.sampled_from(["NaN", "Infinity", "-Infinity", "-1", "-0.5", "1e400", "", "abc", None, True, [], {}, -5,
                         float("nan"), 1e308, "0", 0])


def mutate(draw_obj, template):
    obj = json.loads(json.dumps(template))
    target = obj["o"] if "o" in obj and isinstance(obj["o"], dict) and draw_obj(st.booleans()) else obj
    keys = sorted(target)
    for _ in range(draw_obj(st.integers(1, 3))):
        key = draw_obj(st.sampled_from(keys))
        action = draw_obj(st.sampled_from(["drop", "weird", "type"]))
        if action == "drop":
            target.pop(key, None)
        elif action == "weird":
            target[key] = draw_obj(WEIRD)
        else:
            target[key] = draw_obj(st.sampled_from([1, "1", 1.5, [1], {"a": 1}, "BTCUSDT", "zz"]))
    return obj


@st.composite
def frames(draw):
    obj = mutate(draw, draw(st.sampled_from(TEMPLATES)))
    if draw(st.booleans()):
        obj = {"stream": draw(st.sampled_from(["btcusdt@aggTrade", "btcusdt@depth5", "btcusdt@depth@100ms", "!markPrice@arr"])),
               "data": [obj] if draw(st.booleans()) and obj.get("e") == "markPriceUpdate" else obj}
    raw = json.dumps(obj, allow_nan=True).encode()
    return damaged(draw, raw, intact_weight=1)


@pytest.mark.property
@settings(max_examples=600, deadline=None)
@given(frames())
def test_fuzzed_frames_never_raise_or_emit_bad_numbers(raw):
    out: list = []
    outcome, stream = binance.Parser(registry()).parse(raw, 1, out)
    assert isinstance(outcome, Outcome) and isinstance(stream, str)
    if outcome != Outcome.EMITTED:
        assert out == []
    for r in out:
        for v in (r[7], r[8], r[9]):
            assert math.isfinite(v) and v >= 0.0
        assert math.isfinite(r[10]) and math.isfinite(r[11])


@pytest.mark.property
@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300))
def test_arbitrary_bytes_never_raise(raw):
    out: list = []
    outcome, _ = binance.Parser(registry()).parse(raw, 1, out)
    assert outcome in (Outcome.MALFORMED, Outcome.UNKNOWN, Outcome.CONTROL, Outcome.IGNORED) or out is not None
    assert binance.parse_open_interest(raw, registry(), 1, 1.0, []) in tuple(Outcome)
    assert binance.parse_depth_snapshot(raw, "X", registry(), 1, []) in tuple(Outcome)
    assert binance.parse_exchange_info(raw) is None or isinstance(binance.parse_exchange_info(raw), list)
