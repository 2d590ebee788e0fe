"""The parsers' fast path: instrument ids (and Gate's contract sizes) cached on first sight, bounds checked
by the decoder, Gate frames routed by their channel tag."""
from __future__ import annotations

import json

import msgspec
import pytest

from engine.record import Kind, Side
from engine.venues import Outcome, binance, bybit, gate, okx
from engine.venues.common import InstrumentIds

pytestmark = pytest.mark.unit

AGG = (b'{"stream":"sushiusdt@aggTrade","data":{"e":"aggTrade","E":1626992741127,"a":11361808,"s":"SUSHIUSDT",'
       b'"p":"7.6120","q":"12","f":19434329,"l":19434331,"T":1626992740968,"m":false}}')
TRADE = (b'{"stream":"btcusdt@trade","data":{"e":"trade","E":1680652700455,"T":1680652700452,"s":"BTCUSDT",'
         b'"t":3535186032,"p":"28145.10","q":"0.002","X":"MARKET","m":true}}')


class CountingLookup:
    """A feed's lookup that knows only ``known`` and counts its calls."""

    def __init__(self, known: dict[str, int]):
        self.known = known
        self.calls: list[str] = []

    def __call__(self, symbol: str) -> int | None:
        self.calls.append(symbol)
        return self.known.get(symbol)


def test_instrument_ids_ask_the_lookup_once_per_known_symbol_and_again_for_unknown_ones():
    lookup = CountingLookup({"BTCUSDT": 7})
    ids = InstrumentIds(lookup)
    assert [ids["BTCUSDT"], ids["BTCUSDT"], ids["ETHUSDT"], ids["ETHUSDT"]] == [7, 7, None, None]
    assert lookup.calls == ["BTCUSDT", "ETHUSDT", "ETHUSDT"]
    lookup.known["ETHUSDT"] = 9          # registered later: picked up on the next frame
    assert ids["ETHUSDT"] == 9 and "ETHUSDT" in ids


def test_parser_ignores_a_symbol_until_it_is_registered_then_emits_it():
    lookup = CountingLookup({})
    parser = binance.Parser(lookup)
    out: list = []
    assert parser.parse(AGG, 5, out) == (Outcome.IGNORED, "sushiusdt@aggTrade") and out == []
    lookup.known["SUSHIUSDT"] = 3
    for _ in range(3):
        assert parser.parse(AGG, 5, out) == (Outcome.EMITTED, "sushiusdt@aggTrade")
    assert lookup.calls == ["SUSHIUSDT", "SUSHIUSDT"]
    assert [r[4] for r in out] == [3, 3, 3]


def test_agg_trade_and_trade_share_one_record_shape():
    parser = binance.Parser({"SUSHIUSDT": 0, "BTCUSDT": 1}.get)
    out: list = []
    parser.parse(AGG, 5, out)
    parser.parse(TRADE, 6, out)
    agg, trade = out
    assert agg == (Kind.TRADE, binance.VENUE, Side.BUY, 0, 0, 1626992740968_000_000, 5,
                   7.612, 12.0, 7.612 * 12.0, 11361808.0, 3.0)
    assert trade[2] == Side.SELL and trade[10:] == (3535186032.0, 1.0)   # id from "t", one fill
    assert all(type(v) is float for r in out for v in r[7:])


@pytest.mark.parametrize("field, value", [
    (b'"p":"7.6120"', b'"p":"NaN"'), (b'"p":"7.6120"', b'"p":"-1"'), (b'"q":"12"', b'"q":"inf"'),
    (b'"q":"12"', b'"q":"1e15"'), (b'"a":11361808', b'"a":9007199254740994'), (b'"f":19434329', b'"f":"x"'),
    (b'"a":11361808', b'"a":-5'),
])
def test_out_of_range_values_are_malformed_and_keep_the_stream_name(field, value):
    parser = binance.Parser({"SUSHIUSDT": 0}.get)
    out: list = []
    assert parser.parse(AGG.replace(field, value), 5, out) == (Outcome.MALFORMED, "sushiusdt@aggTrade")
    assert out == []


def test_raw_and_combined_frames_give_the_same_record():
    parser = binance.Parser({"SUSHIUSDT": 0}.get)
    raw = AGG[AGG.index(b'"data":') + 7:-1]
    combined, plain = [], []
    assert parser.parse(AGG, 5, combined)[0] == Outcome.EMITTED
    assert parser.parse(raw, 5, plain) == (Outcome.EMITTED, "sushiusdt@aggTrade")
    assert combined == plain


GATE_TICKER = (b'{"time":1684930165,"time_ms":1684930165631,"channel":"futures.book_ticker","event":"update",'
               b'"result":{"t":1684930165621,"u":6159967,"s":"PHB_USDT","b":"0.7379","B":814,"a":"0.739","A":677}}')


def test_gate_contract_size_is_asked_until_known_and_each_miss_counted():
    sizes: dict[str, float] = {}
    parser = gate.Parser({"PHB_USDT": 4}.get, contract_sizes=sizes)
    out: list = []
    for _ in range(2):
        assert parser.parse(GATE_TICKER, 5, out) == (Outcome.IGNORED, "futures.book_ticker:PHB_USDT")
    assert parser.missing_contract_size == 2 and out == []
    sizes["PHB_USDT"] = 10.0     # the feed learns the size later (same mapping)
    assert parser.parse(GATE_TICKER, 5, out) == (Outcome.EMITTED, "futures.book_ticker:PHB_USDT")
    assert out[0][4] == 4 and out[0][8] == 8140.0 and out[0][11] == 6770.0
    assert parser.missing_contract_size == 2


@pytest.mark.parametrize("frame, expected", [
    (GATE_TICKER.replace(b'"channel":"futures.book_ticker"', b'"channel": "futures.book_ticker"'), Outcome.EMITTED),
    (GATE_TICKER.replace(b'"event":"update"', b'"event":"subscribe"'), Outcome.CONTROL),
    (GATE_TICKER.replace(b'futures.book_ticker', b'futures.nothing'), Outcome.UNKNOWN),
    (GATE_TICKER.replace(b'"B":814', b'"B":"x"'), Outcome.MALFORMED),
    (GATE_TICKER.replace(b'"channel":"futures.book_ticker",', b''), Outcome.MALFORMED),
])
def test_gate_frames_routed_by_their_channel_tag(frame, expected):
    parser = gate.Parser({"PHB_USDT": 4}.get, contract_sizes={"PHB_USDT": 1.0})
    assert parser.parse(frame, 5, [])[0] == expected


OKX_TRADE = (b'{"arg":{"channel":"trades","instId":"BTC-USDT-SWAP"},"data":[{"instId":"BTC-USDT-SWAP",'
             b'"tradeId":"7849","px":"30218.8","sz":"2","side":"buy","ts":"1652459199958"}]}')


def test_okx_units_asked_until_the_contract_size_is_known():
    sizes: dict[str, float] = {}
    parser = okx.Parser({"BTC-USDT-SWAP": 2}.get, contract_sizes=sizes)
    out: list = []
    for _ in range(2):
        assert parser.parse(OKX_TRADE, 5, out) == (Outcome.IGNORED, "trades:BTC-USDT-SWAP")
    assert parser.unsized == 2
    sizes["BTC-USDT-SWAP"] = 0.01
    assert parser.parse(OKX_TRADE, 5, out) == (Outcome.EMITTED, "trades:BTC-USDT-SWAP")
    assert out[0][4] == 2 and out[0][8] == pytest.approx(0.02) and parser.unsized == 2


@pytest.mark.parametrize("value", [b'"NaN"', b'"-1"', b'"1e15"'])
def test_okx_trade_price_out_of_range_is_malformed(value):
    parser = okx.Parser({"BTC-USDT-SWAP": 2}.get, contract_sizes={"BTC-USDT-SWAP": 0.01})
    out: list = []
    assert parser.parse(OKX_TRADE.replace(b'"30218.8"', value), 5, out) == (Outcome.MALFORMED, "trades:BTC-USDT-SWAP")
    assert out == []


BOOK_TICKER = (b'{"stream":"btcusdt@bookTicker","data":{"e":"bookTicker","u":2710246762461,"s":"BTCUSDT",'
               b'"b":"28145.10","B":"3.868","a":"28145.20","A":"6.887","T":1680652700430,"E":1680652700435}}')
FORCE_ORDER = (b'{"stream":"btcusdt@forceOrder","data":{"e":"forceOrder","E":1695714031883,"o":{"s":"BTCUSDT",'
               b'"S":"SELL","o":"LIMIT","f":"IOC","q":"0.115","p":"26142.12","ap":"26245.10","X":"FILLED",'
               b'"l":"0.115","z":"0.115","T":1695714031881}}}')


def test_binance_book_ticker_record():
    out: list = []
    assert binance.Parser({"BTCUSDT": 1}.get).parse(BOOK_TICKER, 5, out) == (Outcome.EMITTED, "btcusdt@bookTicker")
    assert out == [(Kind.BOOK_TOP, binance.VENUE, 0, 0, 1, 1680652700430_000_000, 5,
                    28145.10, 3.868, 28145.10 * 3.868 + 28145.20 * 6.887, 28145.20, 6.887)]


@pytest.mark.parametrize("frame", [
    BOOK_TICKER.replace(b'"b":"28145.10"', b'"b":"0"'), BOOK_TICKER.replace(b'"a":"28145.20"', b'"a":"-1"'),
    BOOK_TICKER.replace(b'"B":"3.868"', b'"B":"NaN"'), BOOK_TICKER.replace(b'"A":"6.887"', b'"A":"1e15"'),
    FORCE_ORDER.replace(b'"ap":"26245.10"', b'"ap":"inf"'), FORCE_ORDER.replace(b'"z":"0.115"', b'"z":"-0.1"'),
    FORCE_ORDER.replace(b'"p":"26142.12"', b'"p":"1e16"'), FORCE_ORDER.replace(b'"q":"0.115"', b'"q":"NaN"'),
    FORCE_ORDER.replace(b'"S":"SELL"', b'"S":"SIDEWAYS"'),
])
def test_binance_book_ticker_and_force_order_out_of_range_are_malformed(frame):
    out: list = []
    outcome, stream = binance.Parser({"BTCUSDT": 1}.get).parse(frame, 5, out)
    assert outcome == Outcome.MALFORMED and stream == frame[11:frame.index(b'"', 11)].decode() and out == []


def _bybit_ticker(kind: str, ts: int, **fields) -> bytes:
    return json.dumps({"topic": "tickers.BTCUSDT", "type": kind, "ts": ts, "cs": 1,
                       "data": {"symbol": "BTCUSDT", **fields}}).encode()


BYBIT_TICKERS = [
    _bybit_ticker("snapshot", 1, markPrice="66666.6", indexPrice="66660.19", fundingRate="-0.005",
                  nextFundingTime="1760342400000", openInterest="492373.72", openInterestValue="32824881841.75"),
    _bybit_ticker("delta", 2, markPrice="66700", fundingRate=""),               # "" = n/a: the string path
    _bybit_ticker("delta", 3, openInterest="500000", singleOpenInterest="250000"),
    _bybit_ticker("delta", 4, markPrice="Infinity"),                             # MALFORMED, state kept
    _bybit_ticker("delta", 5, fundingRate=0.0001, nextFundingTime=None),          # a JSON number, a null
    _bybit_ticker("snapshot", 6, markPrice="1", indexPrice=""),
    _bybit_ticker("delta", 7, markPrice="-1"),
]


def test_bybit_ticker_number_path_gives_what_the_string_path_gives(monkeypatch):
    def run() -> list:
        parser, results = bybit.Parser({"BTCUSDT": 1}.get), []
        for frame in BYBIT_TICKERS:
            out: list = []
            results.append((parser.parse(frame, 9, out), out, list(parser.tickers["BTCUSDT"])))
        return results

    fast = run()
    assert [r[0][0] for r in fast] == [Outcome.EMITTED] * 3 + [Outcome.MALFORMED, Outcome.EMITTED,
                                                                Outcome.EMITTED, Outcome.MALFORMED]

    class Refuse:
        @staticmethod
        def decode(payload):
            raise msgspec.ValidationError("string path only")

    monkeypatch.setattr(bybit, "_ticker_numbers_decoder", Refuse)
    assert run() == fast


BYBIT_TRADE = (b'{"topic":"publicTrade.BTCUSDT","type":"snapshot","ts":1672304486868,"data":[{"T":1672304486865,'
               b'"s":"BTCUSDT","S":"Buy","v":"0.001","p":"16578.50","L":"PlusTick","i":"x","BT":false}]}')


@pytest.mark.parametrize("field, value", [
    (b'"S":"Buy"', b'"S":"Up"'), (b'"T":1672304486865', b'"T":-1'), (b'"T":1672304486865', b'"T":9223372036854776'),
    (b'"v":"0.001"', b'"v":"NaN"'),
])
def test_bybit_trade_out_of_range_is_malformed_with_its_topic(field, value):
    out: list = []
    parser = bybit.Parser({"BTCUSDT": 1}.get)
    assert parser.parse(BYBIT_TRADE, 5, out)[0] == Outcome.EMITTED and out[0][2] == Side.BUY
    out.clear()
    assert parser.parse(BYBIT_TRADE.replace(field, value), 5, out) == (Outcome.MALFORMED, "publicTrade.BTCUSDT")
    assert out == []


def test_gate_stream_names_are_made_once_per_contract_and_bounded(monkeypatch):
    parser = gate.Parser({"PHB_USDT": 4, "BTC_USDT": 5}.get, contract_sizes={"PHB_USDT": 1.0, "BTC_USDT": 0.0001})
    btc = GATE_TICKER.replace(b"PHB_USDT", b"BTC_USDT")
    assert [parser.parse(f, 5, [])[1] for f in (GATE_TICKER, btc, GATE_TICKER)] == [
        "futures.book_ticker:PHB_USDT", "futures.book_ticker:BTC_USDT", "futures.book_ticker:PHB_USDT"]
    assert parser.parse(GATE_TICKER.replace(b'"B":814', b'"B":-1'), 5, []) == (Outcome.MALFORMED, "")
    monkeypatch.setattr(gate, "_MAX_STREAMS", 2)
    other = GATE_TICKER.replace(b"PHB_USDT", b"ETH_USDT")   # unregistered: IGNORED, still named
    assert parser.parse(other, 5, []) == (Outcome.IGNORED, "futures.book_ticker:ETH_USDT")
    assert len(parser._routes["futures.book_ticker"][1]) == 2
