"""Binance USDⓈ-M futures: wire contract and a pure parser.

Contract (PROTOCOLS.md §1, as of 2026):

* WebSocket bases split by traffic class; one socket carries one class only:
  ``/public`` for ``@depth*`` and ``@bookTicker``; ``/market`` for ``@aggTrade``,
  ``@trade``, ``@markPrice*``, ``@forceOrder``. Combined mode
  ``<base>/stream?streams=a/b`` wraps each event as ``{"stream":..,"data":..}``.
* Client messages: ``SUBSCRIBE``/``UNSUBSCRIBE`` JSON, ack ``{"result":null,"id":N}``;
  at most 10 incoming messages per second per socket; at most 1024 streams per socket.
* The server pings every 3 min and drops a socket without pong within 10 min;
  every socket is closed at 24 h.
* REST ``https://fapi.binance.com``: 2400 request weight per minute per IP;
  ``/fapi/v1/openInterest`` weight 1; ``/fapi/v1/exchangeInfo`` weight 1;
  429 = back off, 418 = banned, both with ``Retry-After``.
* Quantities are base asset; prices and sizes are JSON strings; times are ms.
* ``forceOrder`` is a sample (latest liquidation per symbol per 1000 ms) and
  ``o.S`` is the side of the liquidation *order*: SELL means a long was liquidated.

The parser is pure: bytes in, record tuples appended to a caller's list; the
receive time and the symbol -> instrument lookup are passed in.
"""
from __future__ import annotations

from typing import Callable, Union
from urllib.parse import urlencode

import msgspec

from engine.books import pu_chain
from engine.record import Flag, Kind, Side, Venue
from engine.venues import ConnectionPlan, InstrumentInfo, Outcome
from engine.venues.common import (BOOK_TOP, CONTROL, DECODE_ERRORS, EMITTED, IGNORED, LIQUIDATION, MALFORMED, PARSED,
                                   TRADE, UNKNOWN, Bounded, FloatId, InstrumentIds, Positive, batches, book_top,
                                   open_interest)

__all__ = [
    "VENUE", "DEFAULT_WS_URLS", "DEFAULT_REST_URL", "Parser", "plan", "subscribe_messages",
    "streams_for", "stream_symbol", "oi_request", "parse_open_interest", "parse_depth_snapshot", "parse_exchange_info",
    "parse_tickers", "TICKERS_REQUEST",
]

VENUE = Venue.BINANCE
DEFAULT_WS_URLS = {"public": "wss://fstream.binance.com/public", "market": "wss://fstream.binance.com/market"}
DEFAULT_REST_URL = "https://fapi.binance.com"
MAX_STREAMS_PER_CONNECTION = 1024
MESSAGE_INTERVAL_S = 0.11            # 10 incoming messages/s per socket, with margin
MAX_CONNECTION_AGE_S = 86400.0
MAX_PARAMS_PER_SUBSCRIBE = 100
REST_WEIGHT_PER_MINUTE = 2400
PARTIAL_DEPTHS = (5, 10, 20)
# the local book: @depth@100ms diffs synced against the REST snapshot (§1.5) by engine/books.py
BOOK_RULE = pu_chain
BOOK_SOURCE = "rest"
DEPTH_SNAPSHOT_LIMIT = 1000
# the trade stream each config stream name maps to, and the socket class carrying it
STREAM_SUFFIX = {
    "liquidations": (("forceOrder", "market"),),
    "trades": (("aggTrade", "market"),),
    "mark": (("markPrice@1s", "market"),),
    # real-time best bid/ask, plus the diffs of the local book
    "book": (("bookTicker", "public"), ("depth@100ms", "public")),
}
SPARSE_SUFFIXES = ("@forceOrder",)   # silent for hours in calm markets: never "stale"
trade_stream_ids = True              # aggTrade `a` and trade `t` are consecutive per symbol
_IGNORED_EVENTS = frozenset({
    "kline", "continuous_kline", "24hrTicker", "24hrMiniTicker", "contractInfo",
    "assetIndexUpdate", "compositeIndex", "indexPriceUpdate",
})
_MAX = 1e15   # bound on any price, size or amount: products of two stay finite (1e308 overflowed)
_MS = 1_000_000
_SELL, _BUY = Side.SELL, Side.BUY
_LIQUIDATED = {"SELL": Side.LONG, "BUY": Side.SHORT}   # order side -> the position it closed


# -- wire ------------------------------------------------------------------------

def streams_for(symbols: list[str], kinds: list[str], depth_levels: int) -> dict[str, list[str]]:
    """Return stream names by socket class (``public``/``market``) for ``symbols`` (the book keeps
    ``depth_levels`` itself: the diff stream carries every level)."""
    out: dict[str, list[str]] = {"public": [], "market": []}
    for kind in kinds:
        if kind not in STREAM_SUFFIX:
            continue  # "oi" is REST-only on Binance
        for suffix, path in STREAM_SUFFIX[kind]:
            out[path].extend(f"{s.lower()}@{suffix}" for s in symbols)
    return out


def plan(vcfg, ws_urls: dict[str, str] | None = None, subscribe_in_url: bool = True) -> list[ConnectionPlan]:
    """Shard the configured streams over sockets of at most ``max_streams_per_connection``."""
    urls = {**DEFAULT_WS_URLS, **(ws_urls or vcfg.ws_urls or {})}
    per = max(1, min(vcfg.max_streams_per_connection, MAX_STREAMS_PER_CONNECTION))
    plans = []
    for path, streams in streams_for(vcfg.symbols, vcfg.streams, vcfg.depth_levels).items():
        for i in range(0, len(streams), per):
            chunk = tuple(streams[i:i + per])
            base = urls[path].rstrip("/") + "/stream"
            url = f"{base}?streams={'/'.join(chunk)}" if subscribe_in_url else base
            watched = tuple(s for s in chunk if not s.endswith(SPARSE_SUFFIXES))
            plans.append(ConnectionPlan(f"{path}/{i // per}", url, chunk, watched, subscribe_in_url))
    return plans


def subscribe_messages(streams: tuple[str, ...] | list[str], first_id: int = 1) -> list[bytes]:
    """Return SUBSCRIBE frames for ``streams`` (send them ``MESSAGE_INTERVAL_S`` apart)."""
    return [msgspec.json.encode({"method": "SUBSCRIBE", "params": list(params), "id": first_id + n})
            for n, params in enumerate(batches(streams, MAX_PARAMS_PER_SUBSCRIBE))]


def stream_symbol(stream: str) -> str:
    """Native symbol of a stream name (``btcusdt@aggTrade`` -> ``BTCUSDT``; ``!markPrice@arr`` -> ``""``)."""
    return stream.split("@", 1)[0].upper() if not stream.startswith("!") else ""


def oi_request(symbol: str) -> tuple[str, dict[str, str], int]:
    """Return (path, query, weight) of one open-interest poll."""
    return "/fapi/v1/openInterest", {"symbol": symbol}, 1


EXCHANGE_INFO_REQUEST = ("/fapi/v1/exchangeInfo", {}, 1)
TICKERS_REQUEST = ("/fapi/v1/ticker/24hr", {}, 40)   # weight 40 for all symbols at once (1 with a symbol)


def depth_snapshot_request(symbol: str, limit: int = DEPTH_SNAPSHOT_LIMIT) -> tuple[str, dict[str, str], int]:
    """Return (path, query, weight) of the REST book snapshot the local book syncs against."""
    weight = 2 if limit <= 50 else 5 if limit <= 100 else 10 if limit <= 500 else 20
    return "/fapi/v1/depth", {"symbol": symbol, "limit": str(limit)}, weight


def depth_snapshot_url(rest_url: str, symbol: str, limit: int = 1000) -> str:
    return f"{rest_url.rstrip('/')}/fapi/v1/depth?{urlencode({'symbol': symbol, 'limit': limit})}"


# -- messages ----------------------------------------------------------------------

_TAGGED = dict(tag_field="e", gc=False)


class AggTrade(msgspec.Struct, tag="aggTrade", **_TAGGED):
    """``{"e":"aggTrade","E":1626992741127,"a":11361808,"s":"SUSHIUSDT","p":"7.6120","q":"12","f":19434329,"l":19434329,"T":1626992740968,"m":false}``"""

    s: str
    p: Bounded
    q: Bounded
    T: int
    m: bool
    # ids as floats: the record's float columns take them as decoded (exact below 2**53)
    a: FloatId = 0.0
    f: FloatId = 0.0
    l: FloatId = 0.0


class Trade(AggTrade, tag="trade"):
    """``{"e":"trade","E":1680652700455,"T":1680652700452,"s":"BTCUSDT","t":3535186032,"p":"28145.10","q":"0.002","X":"MARKET","m":true}``

    An aggTrade of one fill whose id is ``t``, plus the execution type (one handler serves both).
    """

    a: FloatId = msgspec.field(default=0.0, name="t")
    X: str = "MARKET"


class LiquidationOrder(msgspec.Struct, gc=False):
    s: str
    S: str
    ap: Bounded
    z: Bounded
    T: int
    p: Bounded = 0.0
    q: Bounded = 0.0
    X: str = ""


class ForceOrder(msgspec.Struct, tag="forceOrder", **_TAGGED):
    """``{"e":"forceOrder","E":1695714031883,"o":{"s":"BTCUSDT","S":"SELL","o":"LIMIT","f":"IOC","q":"0.115","p":"26142.12","ap":"26245.10","X":"FILLED","l":"0.115","z":"0.115","T":1695714031881}}``"""

    E: int
    o: LiquidationOrder


class BookTicker(msgspec.Struct, tag="bookTicker", **_TAGGED):
    """``{"e":"bookTicker","u":600859600576,"s":"SUSHIUSDT","b":"7.6110","B":"2","a":"7.6120","A":"297","T":1626992741012,"E":1626992741017}``"""

    s: str
    b: Positive
    B: Bounded
    a: Positive
    A: Bounded
    E: int = 0
    T: int = 0


class DepthUpdate(msgspec.Struct, tag="depthUpdate", **_TAGGED):
    """``{"e":"depthUpdate","E":1626992741077,"T":1626992740974,"s":"AKROUSDT","U":600859599831,"u":600859599831,"pu":600859598737,"b":[],"a":[["0.01737","437848"]]}``"""

    s: str
    E: int
    U: int
    u: int
    b: msgspec.Raw
    a: msgspec.Raw
    T: int = 0
    pu: int = -1


class MarkPrice(msgspec.Struct, tag="markPriceUpdate", **_TAGGED):
    """``{"e":"markPriceUpdate","E":1680652701000,"s":"BTCUSDT","p":"28144.80000000","P":"28156.91523026","i":"28158.64021739","r":"0.00010000","T":1680681600000}``"""

    E: int
    s: str
    p: float
    i: float = 0.0
    r: str = ""          # "" on delivery contracts
    T: int = 0


_Event = Union[AggTrade, Trade, ForceOrder, BookTicker, DepthUpdate, MarkPrice, list[MarkPrice]]


class Envelope(msgspec.Struct, gc=False):
    stream: str
    data: _Event


class _Head(msgspec.Struct):
    """Lenient view of any JSON object, used only to classify a frame that failed to decode."""

    e: object = None
    stream: object = None
    data: object = None
    result: object = msgspec.UNSET
    error: object = msgspec.UNSET
    id: object = msgspec.UNSET


class DepthSnapshot(msgspec.Struct, gc=False):
    """REST ``/fapi/v1/depth``: ``{"lastUpdateId":600859605926,"E":1626992741264,"T":1626992741261,"bids":[["7.6110","6"]],"asks":[["7.6120","297"]]}``"""

    lastUpdateId: int
    bids: list[tuple[float, float]]
    asks: list[tuple[float, float]]
    E: int = 0
    T: int = 0
    symbol: str = ""


class OpenInterest(msgspec.Struct, gc=False):
    """REST ``/fapi/v1/openInterest``: ``{"openInterest":"10659.509","symbol":"BTCUSDT","time":1589437530011}``"""

    openInterest: float
    symbol: str
    time: int


class _Filter(msgspec.Struct):
    filterType: str
    tickSize: str = ""


class _SymbolInfo(msgspec.Struct):
    symbol: str
    baseAsset: str
    quoteAsset: str
    contractType: str = ""
    status: str = ""
    contractStatus: str = ""
    contractSize: float = 1.0
    filters: list[_Filter] = []


class _ExchangeInfo(msgspec.Struct):
    symbols: list[_SymbolInfo]


class _Ticker24h(msgspec.Struct):
    """REST ``/fapi/v1/ticker/24hr`` item: ``{"symbol":"BTCUSDT","volume":"8913.30","quoteVolume":"15.30e7",..}``"""

    symbol: str
    quoteVolume: float = 0.0


_envelope_decoder = msgspec.json.Decoder(Envelope, strict=False)
_decode_envelope = _envelope_decoder.decode
_event_decoder = msgspec.json.Decoder(_Event, strict=False)
_head_decoder = msgspec.json.Decoder(Union[_Head, list])
_levels_decoder = msgspec.json.Decoder(list[tuple[float, float]], strict=False)
_snapshot_decoder = msgspec.json.Decoder(DepthSnapshot, strict=False)
_oi_decoder = msgspec.json.Decoder(OpenInterest, strict=False)
_exchange_info_decoder = msgspec.json.Decoder(_ExchangeInfo, strict=False)
_tickers_decoder = msgspec.json.Decoder(list[_Ticker24h], strict=False)
_DecodeErrors = DECODE_ERRORS



class Parser:
    """Turn Binance frames into record tuples.

    ``lookup`` maps a native symbol (``"BTCUSDT"``) to an instrument id or None
    (frames of unregistered symbols are IGNORED). ``flags`` is OR-ed into every
    record (e.g. ``Flag.REPLAY``). ``partial_depth`` says whether un-wrapped
    ``depthUpdate`` payloads are partial-depth snapshots (a combined envelope
    tells by its stream name). ``books`` (an :class:`engine.books.BookSet`, set by
    :func:`engine.books.attach`) turns diffs into a synced book; without it diffs are PARSED.
    """

    books = None

    def __init__(self, lookup: Callable[[str], int | None], flags: int = 0, partial_depth: bool = False):
        self.lookup = lookup
        self._ids = InstrumentIds(lookup)
        self.flags = flags
        self.partial_depth = partial_depth
        self._handlers = {
            AggTrade: self._agg_trade, Trade: self._trade, ForceOrder: self._force_order,
            BookTicker: self._book_ticker, DepthUpdate: self._depth, MarkPrice: self._mark,
            list: self._mark_array,
        }

    def parse(self, payload: bytes, ts_recv: int, out: list) -> tuple[Outcome, str]:
        """Parse one frame; append records to ``out``; return (outcome, stream name)."""
        # Every live socket is combined-stream: decode the envelope first, in one call; look at the
        # frame's head only when that fails (a raw /ws/ event, an ack or a broken frame).
        try:
            env = _decode_envelope(payload)
            data = env.data
            return self._handlers[type(data)](data, env.stream, ts_recv, out), env.stream
        except _DecodeErrors:
            if payload[:10] == b'{"stream":':
                return self._classify(payload)
        try:
            msg = _event_decoder.decode(payload)
            return self._handlers[type(msg)](msg, "", ts_recv, out), _raw_stream(msg)
        except _DecodeErrors:
            return self._classify(payload)

    @staticmethod
    def _classify(payload: bytes) -> tuple[Outcome, str]:
        """Tell an ack, an unknown event and a broken frame apart (slow path)."""
        try:
            head = _head_decoder.decode(payload)
        except _DecodeErrors:
            return MALFORMED, ""
        if type(head) is list:
            return MALFORMED, ""
        stream = head.stream if type(head.stream) is str else ""
        if head.result is not msgspec.UNSET or head.error is not msgspec.UNSET:
            return CONTROL, stream
        e = head.e
        if stream and isinstance(head.data, dict):
            e = head.data.get("e")
        if not isinstance(e, str) or e in _KNOWN_EVENTS:
            return MALFORMED, stream
        return (IGNORED if e in _IGNORED_EVENTS else UNKNOWN), stream

    # -- handlers: each returns an Outcome ----------------------------------------
    def _agg_trade(self, msg: AggTrade, stream, ts_recv, out, flags=None) -> Outcome:
        """``{"stream":"sushiusdt@aggTrade","data":{"e":"aggTrade","E":1626992741127,"a":11361808,"s":"SUSHIUSDT","p":"7.6120","q":"12","f":19434329,"l":19434329,"T":1626992740968,"m":false}}``"""
        p = msg.p   # bounded by the decoder
        q = msg.q
        if p == 0.0 or q == 0.0:
            return PARSED  # sentinel trade (p=0/q=0): nothing traded
        iid = self._ids[msg.s]
        if iid is None:
            return IGNORED
        first, last = msg.f, msg.l
        out.append((TRADE, VENUE, _SELL if msg.m else _BUY, self.flags if flags is None else flags, iid, msg.T * _MS,
                    ts_recv, p, q, p * q, msg.a, last - first + 1.0 if last >= first else 1.0))
        return EMITTED

    def _trade(self, msg: Trade, stream, ts_recv, out) -> Outcome:
        """``{"stream":"btcusdt@trade","data":{"e":"trade","E":1680652700455,"T":1680652700452,"s":"BTCUSDT","t":3535186032,"p":"28145.10","q":"0.002","X":"MARKET","m":true}}``"""
        flags = self.flags if msg.X == "MARKET" else self.flags | Flag.NON_MARKET
        return self._agg_trade(msg, stream, ts_recv, out, flags)

    def _force_order(self, msg: ForceOrder, stream, ts_recv, out) -> Outcome:
        """``{"e":"forceOrder","E":1695714031883,"o":{"s":"BTCUSDT","S":"SELL","o":"LIMIT","f":"IOC","q":"0.115","p":"26142.12","ap":"26245.10","X":"FILLED","l":"0.115","z":"0.115","T":1695714031881}}``"""
        o = msg.o
        side = _LIQUIDATED.get(o.S)
        if side is None:
            return MALFORMED
        ap, z = o.ap, o.z   # ap, z, p, q bounded by the decoder
        if z == 0.0 or ap == 0.0:
            return PARSED  # nothing filled yet
        iid = self._ids[o.s]
        if iid is None:
            return IGNORED
        out.append((LIQUIDATION, VENUE, side, self.flags | Flag.CAPPED, iid, (o.T or msg.E) * _MS, ts_recv,
                    ap, z, ap * z, o.p, 0.0))
        return EMITTED

    def _book_ticker(self, msg: BookTicker, stream, ts_recv, out) -> Outcome:
        """``{"stream":"btcusdt@bookTicker","data":{"e":"bookTicker","u":2710246762461,"s":"BTCUSDT","b":"28145.10","B":"3.868","a":"28145.20","A":"6.887","T":1680652700430,"E":1680652700435}}``"""
        iid = self._ids[msg.s]
        if iid is None:
            return IGNORED
        b, bq, a, aq = msg.b, msg.B, msg.a, msg.A   # bounded by the decoder, as book_top() would check
        out.append((BOOK_TOP, VENUE, 0, self.flags, iid, (msg.T or msg.E) * _MS, ts_recv,
                    b, bq, b * bq + a * aq, a, aq))
        return EMITTED

    def _depth(self, msg: DepthUpdate, stream, ts_recv, out) -> Outcome:
        """Partial ``@depth<N>`` -> BOOK_TOP; a diff goes to the synced book (PARSED without one).

        ``{"stream":"btcusdt@depth@0ms","data":{"e":"depthUpdate","E":1721347022557,"T":1721347022553,"s":"BTCUSDT","U":4984028370826,"u":4984028373334,"pu":4984028370730,"b":[["63620.10","0.000"]],"a":[["63944.00","0.095"]]}}``
        """
        partial = stream[stream.find("@depth") + 6:][:1].isdigit() if stream else self.partial_depth
        if not partial and self.books is None:
            return PARSED
        bids = _levels_decoder.decode(msg.b)
        asks = _levels_decoder.decode(msg.a)
        if not partial:
            iid = self._ids[msg.s]
            if iid is None:
                return IGNORED
            return self.books.delta(msg.s, iid, msg.U, msg.u, msg.pu, bids, asks, (msg.T or msg.E) * _MS, ts_recv, out)
        if not bids or not asks:
            return PARSED
        iid = self._ids[msg.s]
        if iid is None:
            return IGNORED
        (bid, bq), (ask, aq) = bids[0], asks[0]
        return book_top(VENUE, self.flags | Flag.SNAPSHOT, iid, (msg.T or msg.E) * _MS, ts_recv,
                         bid, bq, ask, aq, out)

    def book_snapshot(self, symbol: str, payload: bytes, ts_recv: int, out: list) -> Outcome:
        """REST ``/fapi/v1/depth`` body -> the synced book of ``symbol`` (records once consistent)."""
        if self.books is None:
            return IGNORED
        try:
            msg = _snapshot_decoder.decode(payload)
        except _DecodeErrors:
            return MALFORMED
        iid = self._ids[symbol]
        if iid is None:
            return IGNORED
        return self.books.snapshot(symbol, iid, msg.lastUpdateId, msg.bids, msg.asks, (msg.T or msg.E) * _MS,
                                   ts_recv, out)

    def _mark_one(self, msg: MarkPrice, ts_recv, out) -> Outcome:
        p, i = msg.p, msg.i
        try:
            r = float(msg.r) if msg.r else 0.0
        except ValueError:      # in an array, raising would leave the earlier elements' records in ``out``
            return MALFORMED
        if not (0.0 < p < _MAX and 0.0 <= i < _MAX and -_MAX < r < _MAX and msg.T >= 0):
            return MALFORMED
        iid = self._ids[msg.s]
        if iid is None:
            return IGNORED
        out.append((Kind.MARK, VENUE, 0, self.flags, iid, msg.E * _MS, ts_recv, p, i, 0.0, r, float(msg.T)))
        return EMITTED

    def _mark(self, msg: MarkPrice, stream, ts_recv, out) -> Outcome:
        """``{"stream":"btcusdt@markPrice@1s","data":{"e":"markPriceUpdate","E":1680652701000,"s":"BTCUSDT","p":"28144.80000000","P":"28156.91523026","i":"28158.64021739","r":"0.00010000","T":1680681600000}}``"""
        return self._mark_one(msg, ts_recv, out)

    def _mark_array(self, msgs: list, stream, ts_recv, out) -> Outcome:
        """``!markPrice@arr``: a JSON array of markPriceUpdate objects; a bad element spoils the frame."""
        start = len(out)
        outcome = IGNORED
        for m in msgs:
            r = self._mark_one(m, ts_recv, out)
            if r is MALFORMED:
                del out[start:]
                return MALFORMED
            if r is EMITTED:
                outcome = EMITTED
        return outcome


def _raw_stream(msg) -> str:
    """Stream name of an un-wrapped payload (raw ``/ws/`` mode carries none)."""
    if type(msg) is list:
        return "!markPrice@arr"
    symbol = msg.o.s if type(msg) is ForceOrder else msg.s
    return f"{symbol.lower()}@{msg.__struct_config__.tag}"


_KNOWN_EVENTS = frozenset({"aggTrade", "trade", "forceOrder", "bookTicker", "depthUpdate", "markPriceUpdate"})


# -- REST ------------------------------------------------------------------------

def parse_open_interest(payload: bytes, lookup: Callable[[str], int | None], ts_recv: int,
                        ref_price: float, out: list, flags: int = 0) -> Outcome:
    """``GET /fapi/v1/openInterest`` -> OPEN_INTEREST (USD at ``ref_price``; 0 when unknown)."""
    try:
        msg = _oi_decoder.decode(payload)
    except _DecodeErrors:
        return MALFORMED
    oi = msg.openInterest
    if not (0.0 <= oi < _MAX and 0.0 <= ref_price < _MAX):
        return MALFORMED
    iid = lookup(msg.symbol)
    if iid is None:
        return IGNORED
    out.append(open_interest(VENUE, flags, iid, msg.time * _MS, ts_recv, ref_price, oi))
    return EMITTED


def parse_depth_snapshot(payload: bytes, symbol: str, lookup: Callable[[str], int | None], ts_recv: int,
                         out: list, flags: int = 0) -> Outcome:
    """``GET /fapi/v1/depth`` -> one BOOK_TOP flagged SNAPSHOT (the snapshot names no symbol: pass it)."""
    try:
        msg = _snapshot_decoder.decode(payload)
    except _DecodeErrors:
        return MALFORMED
    if not msg.bids or not msg.asks:
        return PARSED
    iid = lookup(msg.symbol or symbol)
    if iid is None:
        return IGNORED
    (bid, bq), (ask, aq) = msg.bids[0], msg.asks[0]
    return book_top(VENUE, flags | Flag.SNAPSHOT, iid, (msg.T or msg.E) * _MS, ts_recv, bid, bq, ask, aq, out)


def _contract_type(raw: str) -> str:
    if raw.endswith("PERPETUAL"):            # PERPETUAL, TRADIFI_PERPETUAL
        return "perpetual"
    if raw.endswith(("_QUARTER", "_MONTH")):  # CURRENT_QUARTER, NEXT_QUARTER, ...
        return "future"
    return "other"                           # "" on contracts being settled or delisted


def parse_exchange_info(payload: bytes) -> list[InstrumentInfo] | None:
    """``GET /fapi/v1/exchangeInfo`` (or COIN-M ``/dapi/v1/exchangeInfo``) -> every instrument; None if unusable.

    ``contract_type`` is "perpetual"/"future"/"other"; ``status`` "trading" or the raw status lower-cased.
    USD-M sizes are already base units, so ``contract_size`` is 1.0; a COIN-M contract (quote ``USD``)
    keeps its ``contractSize``, in USD per contract (100 for BTCUSD_PERP, 10 for the others).
    """
    try:
        info = _exchange_info_decoder.decode(payload)
    except _DecodeErrors:
        return None
    out = []
    for s in info.symbols:
        tick = next((f.tickSize for f in s.filters if f.filterType == "PRICE_FILTER"), "")
        try:
            tick_size = float(tick) if tick else 0.0
        except ValueError:
            tick_size = 0.0
        size = s.contractSize if s.quoteAsset == "USD" and 0.0 < s.contractSize < _MAX else 1.0
        out.append(InstrumentInfo(s.symbol, s.baseAsset, s.quoteAsset, _contract_type(s.contractType),
                                  (s.status or s.contractStatus).lower(), tick_size, size))
    return out


def parse_tickers(payload: bytes) -> dict[str, float] | None:
    """``GET /fapi/v1/ticker/24hr`` -> 24 h quote volume (USDT/USDC, taken as USD) per symbol; None if unusable."""
    try:
        items = _tickers_decoder.decode(payload)
    except _DecodeErrors:
        return None
    return {t.symbol: t.quoteVolume for t in items if 0.0 <= t.quoteVolume < _MAX}


def base_from_symbol(symbol: str, quotes: tuple[str, ...] = ("USDT", "USDC", "BUSD", "USD")) -> str:
    """Fallback when exchangeInfo is unavailable: strip the quote (``BTCUSDT`` -> ``BTC``)."""
    core = symbol.split("_", 1)[0]
    for q in quotes:
        if core.endswith(q) and len(core) > len(q):
            return core[: -len(q)]
    return core
