"""Bybit v5 linear (USDT/USDC perpetuals): wire contract and a pure parser.

Contract (PROTOCOLS.md §2, as of 2026):

* One public WebSocket per category: ``wss://stream.bybit.com/v5/public/linear``.
  Client frames ``{"req_id":..,"op":"subscribe","args":[topics]}``; ack
  ``{"success":true,"ret_msg":"","conn_id":..,"req_id":..,"op":"subscribe"}``,
  failure the same with ``"success":false`` and the reason in ``ret_msg``.
* No per-request args limit for futures, but at most 21,000 characters of
  ``args`` per connection; at most 500 new connections per 5 min per IP.
* The *client* pings (``{"op":"ping"}``, every 20 s); the server never does
  and drops a socket after 10 min without ping or data. The pong is an ack
  with ``"op":"ping","ret_msg":"pong"``.
* Data frames ``{"topic":..,"type":"snapshot"|"delta","ts":ms,"data":..[,"cts"][,"cs"]}``:
  ``publicTrade.{s}`` (batches, ``S`` = taker side), ``allLiquidation.{s}``
  (every liquidation, 500 ms batches, ``S`` = liquidated *position* side:
  Buy = a long was liquidated), ``orderbook.{1|50|200|1000}.{s}`` (snapshot,
  then deltas whose ``u`` steps by 1; a skipped ``u`` is a gap, a snapshot or
  ``u == 1`` resets the book), ``tickers.{s}``
  (snapshot, then deltas carrying only the changed fields).
* Linear quantities are base coin; numbers are JSON strings; times are ms.
* REST ``https://api.bybit.com``: 600 requests per 5 s per IP; the instrument
  list pages with ``cursor`` (``nextPageCursor``) past ``limit`` (max 1000).

The removed ``liquidation.{s}`` topic (one order per second, object ``data``)
is never subscribed; frames of it, and of the legacy v2 API, are IGNORED.
"""
from __future__ import annotations

import math
from typing import Annotated, Callable, Literal, Mapping, Optional, Union

import msgspec

from engine.books import unit_step
from engine.record import Flag, Kind, Side, Venue
from engine.venues import ConnectionPlan, InstrumentInfo, Outcome
from engine.venues.common import (CANDLE_ERRORS, CONTROL, DECODE_ERRORS, EMITTED, IGNORED, MALFORMED, PARSED, UNKNOWN,
                                  Bounded, InstrumentIds, LIQUIDATION, TRADE, batches, book_top, open_interest,
                                  array_candles)

__all__ = [
    "VENUE", "DEFAULT_WS_URLS", "DEFAULT_REST_URL", "Parser", "plan", "topics_for", "subscribe_messages",
    "unsubscribe_messages", "is_book_stream", "stream_symbol", "ping_message", "oi_request", "parse_open_interest",
    "parse_exchange_info", "next_page", "parse_tickers", "base_from_symbol",
    "KLINE_PAGE", "kline_request", "parse_klines",
]

VENUE = Venue.BYBIT
DEFAULT_WS_URLS = {"linear": "wss://stream.bybit.com/v5/public/linear"}
DEFAULT_REST_URL = "https://api.bybit.com"
CATEGORY = "linear"
MAX_ARGS_CHARS_PER_CONNECTION = 21_000   # Bybit's per-connection limit (characters of all topics)
MAX_ARGS_PER_SUBSCRIBE = 100             # futures have no per-request cap; keep frames modest
MESSAGE_INTERVAL_S = 0.11                # not documented for public sockets; stay at <10 messages/s
PING_INTERVAL_S = 20.0
# the budget is per rolling minute and may all be spent in one burst: 500 keeps even
# that inside Bybit's 600 requests per 5 s
REST_WEIGHT_PER_MINUTE = 500
BOOK_DEPTHS = (50, 200, 1000)            # linear depths with deltas (level 1 is snapshot-only)
# the local book (engine/books.py): orderbook.{N} snapshot + deltas, each u the last + 1 (a skipped u is a
# gap: every delta of the real orderbook.500 capture steps by 1), u == 1 resets; a resubscription makes
# Bybit push a fresh snapshot (§2.4)
BOOK_RULE = unit_step
BOOK_SOURCE = "resubscribe"
trade_stream_ids = False                 # trade ids are UUID strings: TRADE aux is 0
OI_STREAMED = True                       # tickers.{s} pushes open interest; REST polling is optional

_MAX = 1e15   # bound on any price, size or amount: products of two stay finite (1e308 overflowed)
_MS = 1_000_000
_TS_MAX = (1 << 63) // _MS               # ms timestamps past this do not fit the record's int64 ns
_BUY, _SELL = "Buy", "Sell"
_TAKER = {_BUY: Side.BUY, _SELL: Side.SELL}           # trade S: the taker's side
_POSITION = {_BUY: Side.LONG, _SELL: Side.SHORT}      # liquidation S: the liquidated position's side


# -- wire ------------------------------------------------------------------------

def _book_depth(depth_levels: int) -> int:
    return next((d for d in BOOK_DEPTHS if d >= depth_levels), BOOK_DEPTHS[-1])


def topics_for(symbols: list[str], kinds: list[str], depth_levels: int) -> list[str]:
    """Return the topics for ``symbols`` (``mark`` and ``oi`` share ``tickers.{s}``)."""
    out: list[str] = []
    for s in symbols:
        for kind in kinds:
            if kind == "liquidations":
                out.append(f"allLiquidation.{s}")
            elif kind == "trades":
                out.append(f"publicTrade.{s}")
            elif kind == "book":   # the synced book gives the top; level 1 would duplicate it
                out.append(f"orderbook.{_book_depth(depth_levels)}.{s}")
            elif kind in ("mark", "oi"):
                out.append(f"tickers.{s}")
    return list(dict.fromkeys(out))


def plan(vcfg, ws_urls: dict[str, str] | None = None, subscribe_in_url: bool = False) -> list[ConnectionPlan]:
    """Shard the topics over sockets: at most ``max_streams_per_connection`` topics and 21,000 characters each.

    Bybit cannot subscribe in the URL, so ``subscribe_in_url`` is ignored.
    """
    url = {**DEFAULT_WS_URLS, **(ws_urls or vcfg.ws_urls or {})}["linear"]
    per = max(1, vcfg.max_streams_per_connection)
    chunks: list[list[str]] = [[]]
    chars = 0
    for topic in topics_for(list(vcfg.symbols), vcfg.streams, vcfg.depth_levels):
        if chunks[-1] and (len(chunks[-1]) >= per or chars + len(topic) > MAX_ARGS_CHARS_PER_CONNECTION):
            chunks.append([])
            chars = 0
        chunks[-1].append(topic)
        chars += len(topic)
    return [ConnectionPlan(f"linear/{i}", url, tuple(c), tuple(t for t in c if not t.startswith("allLiquidation.")),
                           False)
            for i, c in enumerate(chunks) if c]


def _op_frames(op: str, streams: tuple[str, ...] | list[str], first_id: int,
               per: int = MAX_ARGS_PER_SUBSCRIBE) -> list[bytes]:
    return [msgspec.json.encode({"req_id": str(first_id + n), "op": op, "args": list(args)})
            for n, args in enumerate(batches(streams, per))]


def subscribe_messages(streams: tuple[str, ...] | list[str], first_id: int = 1) -> list[bytes]:
    """Return subscribe frames for ``streams`` (send them ``MESSAGE_INTERVAL_S`` apart)."""
    return _op_frames("subscribe", streams, first_id)


def unsubscribe_messages(streams: tuple[str, ...] | list[str], first_id: int = 1) -> list[bytes]:
    """Return unsubscribe frames for ``streams`` (a book resync unsubscribes, then subscribes again)."""
    return _op_frames("unsubscribe", streams, first_id)


def is_book_stream(stream: str) -> bool:
    """Whether a topic is an order-book stream (resubscribed to resync that symbol's book)."""
    return stream.startswith("orderbook.")


def ping_message() -> str:
    """The client keepalive; the reply (``"op":"ping","ret_msg":"pong"``) parses as CONTROL."""
    return '{"req_id":"ping","op":"ping"}'


def stream_symbol(stream: str) -> str:
    """Native symbol of a topic (``orderbook.50.BTCUSDT`` -> ``BTCUSDT``)."""
    return stream.rsplit(".", 1)[1] if "." in stream else ""


def oi_request(symbol: str) -> tuple[str, dict[str, str], int]:
    """Return (path, query, weight) of one open-interest poll (the latest 5-minute point)."""
    return "/v5/market/open-interest", {"category": CATEGORY, "symbol": symbol, "intervalTime": "5min",
                                        "limit": "1"}, 1


EXCHANGE_INFO_REQUEST = ("/v5/market/instruments-info", {"category": CATEGORY, "limit": "1000"}, 1)
TICKERS_REQUEST = ("/v5/market/tickers", {"category": CATEGORY}, 1)


# -- messages ----------------------------------------------------------------------

# checked by the decoder (out of range: the frame is MALFORMED): an exchange time in ms, a side
_Ms = Annotated[int, msgspec.Meta(ge=0, lt=_TS_MAX)]
_Side = Literal["Buy", "Sell"]


class TradeItem(msgspec.Struct, gc=False):
    """``{"T":1672304486865,"s":"BTCUSDT","S":"Buy","v":"0.001","p":"16578.50","L":"PlusTick","i":"20f43950-…","BT":false,"seq":1783284617}``"""

    T: _Ms
    s: str
    S: _Side
    v: Bounded
    p: Bounded
    BT: bool = False


class TradeMsg(msgspec.Struct, gc=False):
    topic: str
    data: list[TradeItem]
    ts: int = 0


class LiquidationItem(msgspec.Struct, gc=False):
    """``{"T":1739502302929,"s":"ROSEUSDT","S":"Sell","v":"20000","p":"0.04499"}`` (``p`` = bankruptcy price)."""

    T: _Ms
    s: str
    S: _Side
    v: Bounded
    p: Bounded


class LiquidationMsg(msgspec.Struct, gc=False):
    topic: str
    data: list[LiquidationItem]
    ts: int = 0


class BookData(msgspec.Struct, gc=False):
    """``{"s":"BTCUSDT","b":[["30247.20","30.028"]],"a":[["30248.70","0"]],"u":177400507,"seq":66544703342}``"""

    s: str
    b: msgspec.Raw
    a: msgspec.Raw
    u: int
    seq: int = 0


class BookMsg(msgspec.Struct, gc=False):
    topic: str
    type: str
    data: BookData
    ts: int = 0
    cts: int = 0


_Num = Optional[Union[str, float]]


class TickerData(msgspec.Struct, gc=False):
    """The ticker fields used, in the parser's state order; ``None`` = absent (unchanged in a delta), ``""`` = n/a."""

    symbol: str
    markPrice: _Num = None
    indexPrice: _Num = None
    fundingRate: _Num = None
    nextFundingTime: _Num = None
    openInterest: _Num = None
    openInterestValue: _Num = None
    singleOpenInterest: _Num = None
    singleOpenInterestValue: _Num = None


_Rate = Annotated[float, msgspec.Meta(ge=-_MAX, lt=_MAX)]


class TickerNumbers(msgspec.Struct, gc=False):
    """:class:`TickerData` when every field given is a number in range (the usual push): decoded and bounded in C.
    A push with a ``""`` (n/a) or a bad value fails this and is read as TickerData."""

    symbol: str
    markPrice: Optional[Bounded] = None
    indexPrice: Optional[Bounded] = None
    fundingRate: Optional[_Rate] = None
    nextFundingTime: Optional[Bounded] = None
    openInterest: Optional[Bounded] = None
    openInterestValue: Optional[Bounded] = None
    singleOpenInterest: Optional[Bounded] = None
    singleOpenInterestValue: Optional[Bounded] = None


class TickerMsg(msgspec.Struct, gc=False):
    topic: str
    type: str
    data: TickerData
    ts: int = 0


class TickerNumbersMsg(TickerMsg):
    data: TickerNumbers


class _Head(msgspec.Struct):
    """Lenient view of any JSON object, used only to classify a frame off the fast path."""

    topic: object = msgspec.UNSET
    op: object = msgspec.UNSET
    success: object = msgspec.UNSET


_trade_decoder = msgspec.json.Decoder(TradeMsg, strict=False)
_liq_decoder = msgspec.json.Decoder(LiquidationMsg, strict=False)
_book_decoder = msgspec.json.Decoder(BookMsg, strict=False)
_ticker_decoder = msgspec.json.Decoder(TickerMsg, strict=False)
_ticker_numbers_decoder = msgspec.json.Decoder(TickerNumbersMsg, strict=False)
_head_decoder = msgspec.json.Decoder(Union[_Head, list])
_levels_decoder = msgspec.json.Decoder(list[tuple[float, float]], strict=False)
_DecodeErrors = DECODE_ERRORS + (TypeError,)

# topic families known but not consumed: v5 ones not subscribed, the removed ``liquidation``,
# and the legacy v2 API (``trade``, ``orderBookL2_25``, ...) still found in old captures
_IGNORED_FAMILIES = frozenset({
    "kline", "liquidation", "tickers_lt", "kline_lt", "lt", "insurance", "priceLimit", "adlAlert", "orderbook_rpi",
    "trade", "orderBookL2_25", "orderBook_200", "instrument_info", "klineV2", "candle",
})


# lower bound of each TickerData number field (funding may be negative; a zero mark means not trading)
_TICKER_LOW = (0.0, 0.0, -_MAX, 0.0, 0.0, 0.0, 0.0, 0.0)


class Parser:
    """Turn Bybit v5 linear frames into record tuples.

    ``lookup`` maps a native symbol (``"BTCUSDT"``) to an instrument id or None
    (frames of unregistered symbols are IGNORED). ``flags`` is OR-ed into every
    record. ``contract_sizes`` maps a symbol to base units per contract; the
    default 1.0 is exact for the linear category, which quotes base coin.
    Ticker deltas are merged into per-symbol state, so one Parser serves one feed.
    ``books`` (an :class:`engine.books.BookSet`, set by :func:`engine.books.attach`)
    keeps the ``orderbook.{50,200,1000}`` books; without it a snapshot gives one
    BOOK_TOP and deltas are PARSED. ``orderbook.1`` frames always give BOOK_TOP directly.
    """

    books = None
    venue = VENUE   # TRADE records' venue id (engine.venues.bybit_spot parses the same trades as BYBIT_SPOT)

    def __init__(self, lookup: Callable[[str], int | None], flags: int = 0,
                 contract_sizes: Mapping[str, float] | None = None):
        self.lookup = lookup
        self._ids = InstrumentIds(lookup)
        self.flags = flags
        self.contract_sizes = {s: float(c) for s, c in (contract_sizes or {}).items() if 0.0 < c < _MAX}
        self.tickers: dict[str, list] = {}   # symbol -> merged TickerData numbers (None = unknown)
        self._handlers = {
            "publicTrade": (_trade_decoder, self._trades), "allLiquidation": (_liq_decoder, self._liquidations),
            "orderbook": (_book_decoder, self._book), "tickers": (_ticker_decoder, self._ticker),
        }

    def parse(self, payload: bytes, ts_recv: int, out: list) -> tuple[Outcome, str]:
        """Parse one frame; append records to ``out``; return (outcome, topic)."""
        try:
            head = payload[:16]
            if head == b'{"topic":"public':
                msg = _trade_decoder.decode(payload)
                return self._trades(msg, ts_recv, out), msg.topic
            if head == b'{"topic":"orderb':
                msg = _book_decoder.decode(payload)
                return self._book(msg, ts_recv, out), msg.topic
            if head == b'{"topic":"ticker':
                try:
                    msg = _ticker_numbers_decoder.decode(payload)
                except _DecodeErrors:
                    msg = _ticker_decoder.decode(payload)
                return self._ticker(msg, ts_recv, out), msg.topic
            if head == b'{"topic":"allLi':
                msg = _liq_decoder.decode(payload)
                return self._liquidations(msg, ts_recv, out), msg.topic
        except _DecodeErrors:
            pass
        return self._classify(payload, ts_recv, out)

    def _classify(self, payload: bytes, ts_recv: int, out: list) -> tuple[Outcome, str]:
        """Any key order or spacing; acks, pongs, unknown and legacy topics (slow path)."""
        try:
            head = _head_decoder.decode(payload)
        except _DecodeErrors:
            return MALFORMED, ""
        if type(head) is not _Head:
            return MALFORMED, ""
        topic = head.topic
        if topic is msgspec.UNSET:
            known = head.op is not msgspec.UNSET or head.success is not msgspec.UNSET
            return (CONTROL if known else UNKNOWN), ""
        if type(topic) is not str:
            return MALFORMED, ""
        family = topic.split(".", 1)[0]
        handler = self._handlers.get(family)
        if handler is None:
            return (IGNORED if family in _IGNORED_FAMILIES else UNKNOWN), topic
        decoder, handle = handler
        start = len(out)
        try:
            msg = decoder.decode(payload)
            return handle(msg, ts_recv, out), topic
        except _DecodeErrors:
            del out[start:]
            return MALFORMED, topic

    # -- handlers: each returns an Outcome ----------------------------------------
    def _trades(self, msg: TradeMsg, ts_recv: int, out: list) -> Outcome:
        """``{"topic":"publicTrade.BTCUSDT","type":"snapshot","ts":1672304486868,"data":[{"T":1672304486865,"s":"BTCUSDT","S":"Buy","v":"0.001","p":"16578.50","L":"PlusTick","i":"20f43950-d8dd-5b31-9112-a178eb6023af","BT":false,"seq":1783284617}]}``"""
        start = len(out)
        skipped = False
        ids, sizes, flags, venue = self._ids, self.contract_sizes, self.flags, self.venue
        for it in msg.data:
            p, v = it.p, it.v   # bounded by the decoder, as are T and S
            if p == 0.0 or v == 0.0:
                continue
            iid = ids[it.s]
            if iid is None:
                skipped = True
                continue
            q = v * sizes.get(it.s, 1.0) if sizes else v
            out.append((TRADE, venue, _TAKER[it.S], flags | Flag.NON_MARKET if it.BT else flags, iid, it.T * _MS,
                        ts_recv, p, q, p * q, 0.0, 1.0))
        return EMITTED if len(out) > start else IGNORED if skipped else PARSED

    def _liquidations(self, msg: LiquidationMsg, ts_recv: int, out: list) -> Outcome:
        """``{"topic":"allLiquidation.ROSEUSDT","type":"snapshot","ts":1739502303204,"data":[{"T":1739502302929,"s":"ROSEUSDT","S":"Sell","v":"20000","p":"0.04499"}]}``

        ``S`` is the liquidated position's side ("Buy" = a long was liquidated);
        ``p`` is the bankruptcy price, the only price given (record price and aux).
        """
        start = len(out)
        skipped = False
        ids, sizes = self._ids, self.contract_sizes
        for it in msg.data:
            p, v = it.p, it.v   # bounded by the decoder, as are T and S
            if p == 0.0 or v == 0.0:
                continue
            iid = ids[it.s]
            if iid is None:
                skipped = True
                continue
            q = v * sizes.get(it.s, 1.0) if sizes else v
            out.append((LIQUIDATION, VENUE, _POSITION[it.S], self.flags, iid, it.T * _MS, ts_recv,
                        p, q, p * q, p, 0.0))
        return EMITTED if len(out) > start else IGNORED if skipped else PARSED

    def _book(self, msg: BookMsg, ts_recv: int, out: list) -> Outcome:
        """Through the synced book when attached; else a snapshot (or a ``u == 1`` reset) -> BOOK_TOP, a delta PARSED.

        ``{"topic":"orderbook.50.BTCUSDT","type":"delta","ts":1687940967466,"data":{"s":"BTCUSDT","b":[["30247.20","30.028"],["30240.00","0"]],"a":[["30248.70","0"]],"u":177400507,"seq":66544703342},"cts":1687940967464}``
        """
        d = msg.data
        kind = msg.type
        if not (0 <= msg.ts < _TS_MAX and 0 <= msg.cts < _TS_MAX):
            return MALFORMED
        books = self.books
        if books is not None and (kind == "snapshot" or kind == "delta") and not msg.topic.startswith("orderbook.1."):
            iid = self._ids[d.s]
            if iid is None:
                return IGNORED
            bids = _levels_decoder.decode(d.b)
            asks = _levels_decoder.decode(d.a)
            size = self.contract_sizes.get(d.s, 1.0) if self.contract_sizes else 1.0
            ts = (msg.cts or msg.ts) * _MS
            if kind == "snapshot":
                return books.snapshot(d.s, iid, d.u, bids, asks, ts, ts_recv, out, scale=size)
            return books.delta(d.s, iid, d.u, d.u, -1, bids, asks, ts, ts_recv, out, scale=size)
        if kind != "snapshot":
            if kind != "delta":
                return MALFORMED
            if d.u != 1:
                return PARSED
        bids = _levels_decoder.decode(d.b)
        asks = _levels_decoder.decode(d.a)
        size = self.contract_sizes.get(d.s, 1.0) if self.contract_sizes else 1.0
        bid = _best(bids)
        ask = _best(asks)
        if bid is None or ask is None:
            return MALFORMED if bid is False or ask is False else PARSED
        iid = self._ids[d.s]
        if iid is None:
            return IGNORED
        return book_top(VENUE, self.flags | Flag.SNAPSHOT, iid, (msg.cts or msg.ts) * _MS, ts_recv,
                         bid[0], bid[1] * size, ask[0], ask[1] * size, out)

    def _ticker(self, msg: TickerMsg, ts_recv: int, out: list) -> Outcome:
        """Merge a snapshot/delta into the symbol's state; MARK when mark fields came, OPEN_INTEREST when OI came.

        ``{"topic":"tickers.BTCUSDT","type":"snapshot","data":{"symbol":"BTCUSDT",…,"markPrice":"17217.33","indexPrice":"17227.36","openInterest":"68744.761","openInterestValue":"1183601235.91",…,"nextFundingTime":"1673280000000","fundingRate":"-0.000212",…},"cs":24987956059,"ts":1673272861686}``
        """
        d = msg.data
        kind = msg.type
        if kind != "snapshot" and kind != "delta" or not 0 <= msg.ts < _TS_MAX:
            return MALFORMED
        raw = msgspec.structs.astuple(d)   # symbol, then the number fields in TickerData order
        prev = self.tickers.get(d.symbol)
        if type(d) is TickerNumbers:       # numbers bounded by the decoder; absent (None) = unchanged
            st = list(raw[1:]) if prev is None or kind == "snapshot" else [
                p if v is None else v for v, p in zip(raw[1:], prev)]
        else:
            st = _merge_strings(raw, prev, kind)
            if st is None:
                return MALFORMED
        iid = self._ids[d.symbol]
        if iid is None:
            return IGNORED
        self.tickers[d.symbol] = st
        mark, index, funding, next_funding, oi, oi_value, single, single_value = st
        start = len(out)
        ts = msg.ts * _MS
        if mark and (raw[1] is not None or raw[2] is not None or raw[3] is not None or raw[4] is not None):
            out.append((Kind.MARK, VENUE, 0, self.flags, iid, ts, ts_recv, mark, index or 0.0, 0.0,
                        funding or 0.0, next_funding or 0.0))
        if raw[5] is not None or raw[7] is not None:
            # prefer the single-side figure (comparable with other venues, §2.5); USD at the mark if not given
            qty, usd = (single, single_value) if single is not None else (oi, oi_value)
            if qty is not None:
                if self.contract_sizes:
                    qty *= self.contract_sizes.get(d.symbol, 1.0)
                price = mark or 0.0
                out.append((Kind.OPEN_INTEREST, VENUE, 0, self.flags, iid, ts, ts_recv, price, qty,
                            qty * price if usd is None else usd, 0.0, 0.0))
        return EMITTED if len(out) > start else PARSED


def _merge_strings(raw: tuple, prev: list | None, kind: str) -> list | None:
    """TickerData numbers (``raw``: symbol, then the fields) merged into ``prev``: absent (None) = unchanged,
    "" = not applicable; None if a value is unusable (checked before the state changes)."""
    st = [None] * 8 if prev is None or kind == "snapshot" else prev.copy()
    for i in range(8):
        v = raw[i + 1]
        if v is not None:
            if v == "":
                st[i] = None
                continue
            x = float(v)
            if not (_TICKER_LOW[i] <= x < _MAX):
                return None
            st[i] = x
    return st


def _best(levels: list[tuple[float, float]]):
    """First level with a positive size; None if there is none, False if a number is unusable."""
    for p, q in levels:
        if not (0.0 < p < _MAX and 0.0 <= q < _MAX):
            return False
        if q > 0.0:
            return p, q
    return None


# -- REST ------------------------------------------------------------------------

class _OIPoint(msgspec.Struct):
    openInterest: float
    timestamp: int
    singleOpenInterest: Optional[float] = None


class _OIResult(msgspec.Struct):
    """``{"symbol":"BTCUSDT","category":"linear","list":[{"openInterest":"461134384.00000000","timestamp":"1669571400000"}],"nextPageCursor":""}``"""

    symbol: str
    points: list[_OIPoint] = msgspec.field(name="list")


class _Response(msgspec.Struct):
    """Every v5 REST body: ``{"retCode":0,"retMsg":"OK","result":{…},"retExtInfo":{},"time":…}``; errors carry ``result: {}``."""

    retCode: int
    result: msgspec.Raw = msgspec.Raw(b"null")


class _PriceFilter(msgspec.Struct, frozen=True):
    tickSize: str = ""


class _Instrument(msgspec.Struct):
    symbol: str
    contractType: str = ""
    status: str = ""
    baseCoin: str = ""
    quoteCoin: str = ""
    settleCoin: str = ""
    priceFilter: _PriceFilter = _PriceFilter()


class _InstrumentPage(msgspec.Struct):
    items: list[_Instrument] = msgspec.field(name="list")
    nextPageCursor: Optional[str] = None


class _Ticker24h(msgspec.Struct):
    symbol: str
    turnover24h: str = ""


class _TickerList(msgspec.Struct):
    items: list[_Ticker24h] = msgspec.field(name="list")


_response_decoder = msgspec.json.Decoder(_Response)
_oi_decoder = msgspec.json.Decoder(_OIResult, strict=False)
_instruments_decoder = msgspec.json.Decoder(_InstrumentPage, strict=False)
_tickers_decoder = msgspec.json.Decoder(_TickerList, strict=False)


def _result(payload: bytes, decoder):
    """The decoded ``result`` of a successful response; None for an error reply; raise when unusable."""
    resp = _response_decoder.decode(payload)
    return decoder.decode(resp.result) if resp.retCode == 0 else None
_CONTRACT_TYPES = {"LinearPerpetual": "perpetual", "InversePerpetual": "perpetual",
                   "LinearFutures": "future", "InverseFutures": "future"}


def parse_open_interest(payload: bytes, lookup: Callable[[str], int | None], ts_recv: int,
                        ref_price: float, out: list, flags: int = 0) -> Outcome:
    """``GET /v5/market/open-interest`` -> OPEN_INTEREST (single side when given; USD at ``ref_price``)."""
    try:
        result = _result(payload, _oi_decoder)
    except _DecodeErrors:
        return MALFORMED
    if result is None:
        return CONTROL   # an error reply (retCode != 0)
    if not result.points:
        return PARSED
    point = result.points[0]   # newest first
    oi = point.singleOpenInterest if point.singleOpenInterest is not None else point.openInterest
    if not (0.0 <= oi < _MAX and 0.0 <= ref_price < _MAX):
        return MALFORMED
    iid = lookup(result.symbol)
    if iid is None:
        return IGNORED
    out.append(open_interest(VENUE, flags, iid, point.timestamp * _MS, ts_recv, ref_price, oi))
    return EMITTED


def parse_exchange_info(payload: bytes) -> list[InstrumentInfo] | None:
    """One page of ``GET /v5/market/instruments-info`` -> instrument metadata, or None if unusable."""
    try:
        page = _result(payload, _instruments_decoder)
    except _DecodeErrors:
        return None
    if page is None:
        return None
    out = []
    for i in page.items:
        try:
            tick = float(i.priceFilter.tickSize) if i.priceFilter.tickSize else 0.0
        except ValueError:
            tick = 0.0
        status = i.status.lower()
        out.append(InstrumentInfo(i.symbol, i.baseCoin or base_from_symbol(i.symbol), i.quoteCoin or i.settleCoin,
                                  _CONTRACT_TYPES.get(i.contractType, "other"), status,
                                  tick if math.isfinite(tick) and tick > 0 else 0.0, 1.0))
    return out


def next_page(payload: bytes, params: dict) -> dict | None:
    """Params of the next instrument page (``cursor`` = ``nextPageCursor``), or None on the last page."""
    try:
        page = _result(payload, _instruments_decoder)
    except _DecodeErrors:
        return None
    cursor = page.nextPageCursor if page is not None else None
    return {**params, "cursor": cursor} if cursor else None


def parse_tickers(payload: bytes) -> dict[str, float] | None:
    """``GET /v5/market/tickers?category=linear`` -> symbol -> 24 h turnover (quote coin, ~USD)."""
    try:
        tickers = _result(payload, _tickers_decoder)
    except _DecodeErrors:
        return None
    if tickers is None:
        return None
    out = {}
    for t in tickers.items:
        try:
            usd = float(t.turnover24h)
        except ValueError:
            continue
        if 0.0 <= usd < _MAX:
            out[t.symbol] = usd
    return out


# -- klines (the bot's candle bootstrap) --------------------------------------------
KLINE_PATH = "/v5/market/kline"
KLINE_PAGE = 1000                       # Bybit's most rows a request (default 200)


def kline_request(symbol: str, start_ms: int, end_ms: int) -> tuple[str, dict, int]:
    """``(path, params, weight)`` for the 1-minute klines opening in [start_ms, end_ms) (at most KLINE_PAGE)."""
    return KLINE_PATH, {"category": CATEGORY, "symbol": symbol, "interval": "1", "start": start_ms,
                        "end": end_ms - 1, "limit": KLINE_PAGE}, 1


def parse_klines(payload: bytes, contract_size: float = 1.0) -> list[tuple] | None:
    """``GET /v5/market/kline`` (``result.list`` of ``[start, open, high, low, close, volume, turnover]``
    strings, newest first; linear volume is in base coin) -> (open ms, open, high, low, close, base volume, quote volume, trades or 0) oldest first; None when malformed."""
    try:
        return array_candles(msgspec.json.decode(payload)["result"]["list"])
    except CANDLE_ERRORS:
        return None


def base_from_symbol(symbol: str) -> str:
    """Fallback when the instrument list is unavailable (``BTCUSDT``, ``BTCPERP``, ``BTC-26DEC25`` -> ``BTC``)."""
    core = symbol.split("-", 1)[0]
    for q in ("USDT", "USDC", "PERP", "USD"):
        if core.endswith(q) and len(core) > len(q):
            return core[: -len(q)]
    return core
