"""Bitget USDT-M futures: wire contract and a pure parser.

Contract (PROTOCOLS.md §5, as of 2026):

* Two public sockets that must not be mixed: v2 "classic" ``/v2/ws/public``
  (args ``{"instType":"USDT-FUTURES","channel":..,"instId":..}``) carries
  ``trade``, ``books``/``books1``/``books5``/``books15`` and ``ticker``; v3 "UTA"
  ``/v3/ws/public`` (args ``{"instType":"usdt-futures","topic":..}``) carries the
  only public ``liquidation`` topic (per instType, no symbol).
* Client messages ``{"op":"subscribe","args":[..]}``, one ack per arg
  ``{"event":"subscribe","arg":{..}}``; errors ``{"event":"error","code":..,"msg":..}``.
  10 messages/s per socket (the text ``ping`` included); 240 subscribe requests
  per hour per socket; 1000 channels per socket, fewer than 50 recommended.
* Keepalive: the client sends the text ``ping`` every 30 s and gets ``pong``; no
  ``ping`` for 2 min closes the socket, and every socket is closed at 24 h.
* Pushes ``{"action":"snapshot"|"update","arg":{..},"data":[..],"ts":<ms>}``;
  numbers are strings, times ms. v2 USDT-FUTURES sizes are **base coin**
  (contract size 1.0); ``trade`` replays recent history as its first
  ``snapshot``, which is not live and emits nothing.
* ``liquidation``: ``side`` is the **position** side (``buy`` = a long was
  liquidated), ``amount`` is **quote** (USDT), so base = ``amount / price``; the
  feed is aggregated/sampled (records carry ``Flag.CAPPED``).
* ``ticker`` carries mark, index, funding, next funding time and
  ``holdingAmount`` (open interest, base coin).
* REST ``https://api.bitget.com``: 6000 requests/min per IP; contracts
  ``/api/v2/mix/market/contracts`` (not paginated), OI
  ``/api/v2/mix/market/open-interest``, 24 h tickers ``/api/v2/mix/market/tickers``.

The legacy v1 ``mix`` stream (instType ``mc``, recorded captures only) has the same
envelope: its ``ticker`` (``capitalRate``, ``holding``), ``books`` and array-shaped
``trade`` are parsed too; v1 spot (``sp``) and candles are IGNORED.

Trade ids (``tradeId``) are 19-digit snowflakes: a float64 ``aux`` cannot hold them
exactly, and equal rounded ids would make the feed's dedup drop real trades, so
``aux`` carries the id only when it is below 2**53 (0 otherwise: no id).
"""
from __future__ import annotations

from typing import Annotated, Callable, Literal, Mapping

import msgspec

from engine.books import prev_chain_zero_reset
from engine.record import Flag, Kind, Side, Venue
from engine.venues import ConnectionPlan, InstrumentInfo, Outcome
from engine.venues.binance import base_from_symbol
from engine.venues.common import (CANDLE_ERRORS, CONTROL, DECODE_ERRORS, EMITTED, IGNORED, LIQUIDATION, MALFORMED,
                                   MAX_VALUE, PARSED, TRADE, UNKNOWN, Bounded, Heads, InstrumentIds, Positive,
                                   array_candles, batches, book_top, open_interest)

__all__ = [
    "VENUE", "DEFAULT_WS_URLS", "DEFAULT_REST_URL", "Parser", "plan", "subscribe_messages", "streams_for",
    "stream_symbol", "oi_request", "parse_open_interest", "parse_exchange_info", "parse_tickers",
    "base_from_symbol", "ping_message", "unsubscribe_messages", "is_book_stream",
    "KLINE_PAGE", "kline_request", "parse_klines",
]

VENUE = Venue.BITGET
DEFAULT_WS_URLS = {"public": "wss://ws.bitget.com/v2/ws/public", "uta": "wss://ws.bitget.com/v3/ws/public"}
DEFAULT_REST_URL = "https://api.bitget.com"
PRODUCT_TYPE = "USDT-FUTURES"        # v2 spelling
UTA_INST_TYPE = "usdt-futures"       # v3 spelling
MAX_STREAMS_PER_CONNECTION = 50      # hard limit 1000; the docs strongly recommend fewer than 50
MAX_ARGS_PER_SUBSCRIBE = 25          # keeps one subscribe frame well under 4 KiB
MESSAGE_INTERVAL_S = 0.12            # 10 messages/s per socket, pings included
PING_INTERVAL_S = 30.0
OI_STREAMED = True                   # the v2 ticker pushes holdingAmount: the feed polls no REST for OI
MAX_CONNECTION_AGE_S = 86400.0
REST_WEIGHT_PER_MINUTE = 6000        # every public GET weighs 1
BOOK_CHANNELS = (1, 5, 15)           # snapshot channels books<N>; ``books`` is full depth with deltas
# ``books`` (asked for by depth_levels > 15) is kept in engine/books.py: ``pseq`` must equal the previous
# ``seq``, ``pseq == 0`` is a reset; a resubscription makes Bitget push a fresh snapshot (§5.1, §5.2)
BOOK_RULE = prev_chain_zero_reset
BOOK_SOURCE = "resubscribe"
LIQUIDATION_STREAM = "liquidation"
trade_stream_ids = False             # snowflake ids: increasing, never consecutive

_MAX = 1e15   # bound on any price, size or amount: products of two stay finite (1e308 overflowed)
_MS = 1_000_000
_EXACT_ID = float(1 << 53)
_CONTROL_EVENTS = frozenset({"subscribe", "unsubscribe", "error", "login"})
_IGNORED_PREFIXES = ("candle", "index-candle", "mark-candle")


# -- wire ------------------------------------------------------------------------

def _book_channel(depth_levels: int) -> str:
    """``books1/5/15`` snapshots up to 15 levels; beyond, the full-depth ``books`` kept as a synced book."""
    n = next((d for d in BOOK_CHANNELS if d >= depth_levels), None)
    return "books" if n is None else f"books{n}"


def streams_for(symbols: list[str], kinds: list[str], depth_levels: int) -> dict[str, list[str]]:
    """Return stream names by socket (``public`` = v2, ``uta`` = v3) for ``symbols``.

    A stream name is ``<channel>.<instId>`` (``ticker.BTCUSDT``) or ``liquidation``.
    ``mark`` and ``oi`` both come from ``ticker``.
    """
    channels: list[str] = []
    for kind in kinds:
        ch = {"trades": "trade", "mark": "ticker", "oi": "ticker"}.get(kind)
        if kind == "book":
            ch = _book_channel(depth_levels)
        if ch is not None and ch not in channels:
            channels.append(ch)
    public = [f"{ch}.{s}" for s in symbols for ch in channels]   # symbol-major: plan() keeps a symbol on one socket
    return {"public": public, "uta": [LIQUIDATION_STREAM] if "liquidations" in kinds else []}


def plan(vcfg, ws_urls: dict[str, str] | None = None, subscribe_in_url: bool = False) -> list[ConnectionPlan]:
    """Shard the configured streams over sockets; Bitget always subscribes by message."""
    urls = {**DEFAULT_WS_URLS, **(ws_urls or vcfg.ws_urls or {})}
    limit = max(1, min(vcfg.max_streams_per_connection, MAX_STREAMS_PER_CONNECTION))
    plans = []
    for path, streams in streams_for(vcfg.symbols, vcfg.streams, vcfg.depth_levels).items():
        per_symbol = len({s.partition(".")[0] for s in streams}) or 1
        per = limit - limit % per_symbol if limit >= per_symbol else limit
        for i in range(0, len(streams), per):
            chunk = tuple(streams[i:i + per])
            # trades of quiet symbols and liquidations are silent for long spells: never "stale"
            watched = tuple(s for s in chunk if s.startswith(("ticker.", "books")))
            plans.append(ConnectionPlan(f"{path}/{i // per}", urls[path], chunk, watched, False))
    return plans


def _arg(stream: str) -> dict[str, str]:
    if stream == LIQUIDATION_STREAM:
        return {"instType": UTA_INST_TYPE, "topic": "liquidation"}
    channel, _, inst = stream.partition(".")
    return {"instType": PRODUCT_TYPE, "channel": channel, "instId": inst}


def _op_frames(op: str, streams: tuple[str, ...] | list[str]) -> list[bytes]:
    return [msgspec.json.encode({"op": op, "args": [_arg(s) for s in batch]})
            for batch in batches(streams, MAX_ARGS_PER_SUBSCRIBE)]


def subscribe_messages(streams: tuple[str, ...] | list[str], first_id: int = 1) -> list[bytes]:
    """Return subscribe frames for ``streams`` (Bitget has no request id; ``first_id`` is unused)."""
    return _op_frames("subscribe", streams)


def unsubscribe_messages(streams: tuple[str, ...] | list[str], first_id: int = 1) -> list[bytes]:
    """Return unsubscribe frames for ``streams`` (a book resync unsubscribes, then subscribes again)."""
    return _op_frames("unsubscribe", streams)


def is_book_stream(stream: str) -> bool:
    """Whether a stream is the full-depth book (resubscribed to resync that symbol's book)."""
    return stream.startswith("books.")


def ping_message() -> str:
    """The keepalive: the text ``ping`` (answered by the text ``pong``)."""
    return "ping"


def stream_symbol(stream: str) -> str:
    """Native symbol of a stream name (``trade.BTCUSDT`` -> ``BTCUSDT``; ``liquidation`` -> ``""``)."""
    return stream.partition(".")[2]


def oi_request(symbol: str) -> tuple[str, dict[str, str], int]:
    """Return (path, query, weight) of one open-interest poll."""
    return "/api/v2/mix/market/open-interest", {"symbol": symbol, "productType": PRODUCT_TYPE}, 1


EXCHANGE_INFO_REQUEST = ("/api/v2/mix/market/contracts", {"productType": PRODUCT_TYPE}, 1)
TICKERS_REQUEST = ("/api/v2/mix/market/tickers", {"productType": PRODUCT_TYPE}, 1)


# -- messages ----------------------------------------------------------------------

class Arg(msgspec.Struct, gc=False):
    """Subscription key of a push: v2 ``channel``/``instId``, v3 ``topic``/``symbol``."""

    instType: str = ""
    channel: str = ""
    instId: str = ""
    topic: str = ""
    symbol: str = ""


# decoder-checked bounds (out of range: the frame is MALFORMED): times, a funding rate, a side
_Ms = Annotated[int, msgspec.Meta(ge=0)]
_Rate = Annotated[float, msgspec.Meta(gt=-MAX_VALUE, lt=MAX_VALUE)]
_Side = Literal["buy", "sell"]


class TradeItem(msgspec.Struct, gc=False):
    """v2 ``trade``: ``{"ts":"1695716760565","price":"27000.5","size":"0.001","side":"buy","tradeId":"1111111111"}``"""

    ts: _Ms
    price: Bounded
    size: Bounded
    side: _Side
    tradeId: int = 0


class BookItem(msgspec.Struct, gc=False):
    """``books*``: ``{"asks":[["27000.5","8.760"]],"bids":[["27000.0","2.710"]],"checksum":0,"seq":123,"ts":"1695716059516"}``"""

    asks: msgspec.Raw
    bids: msgspec.Raw
    ts: int = 0
    checksum: int = 0
    seq: int = 0
    pseq: int = -1                   # seen since 2026-06 (JKorf/Bitget.Net PR #89); -1: absent


class TickerItem(msgspec.Struct, gc=False):
    """v2 ``ticker`` (fields used): ``markPrice``, ``indexPrice``, ``fundingRate``, ``nextFundingTime``, ``holdingAmount``, ``ts``."""

    markPrice: Positive
    indexPrice: Bounded = 0.0
    fundingRate: _Rate = 0.0
    nextFundingTime: _Ms = 0
    holdingAmount: float = -1.0      # -1: absent
    ts: _Ms = 0


class LegacyTickerItem(msgspec.Struct, gc=False):
    """v1 mix ``ticker``: ``{"instId":"DASHUSDT","markPrice":"113.381","indexPrice":"113.427","capitalRate":"-0.000100","nextSettleTime":1649314800000,"systemTime":1649290077309,"holding":"21957.17",..}``

    Read into :class:`TickerItem`'s names (``capitalRate`` is the funding rate, ``holding`` the open
    interest, ``systemTime`` the time), so one handler serves both."""

    markPrice: Positive
    indexPrice: Bounded = 0.0
    fundingRate: _Rate = msgspec.field(default=0.0, name="capitalRate")
    nextFundingTime: _Ms = msgspec.field(default=0, name="nextSettleTime")
    holdingAmount: float = msgspec.field(default=-1.0, name="holding")
    ts: _Ms = msgspec.field(default=0, name="systemTime")


class LiquidationItem(msgspec.Struct, gc=False):
    """v3 ``liquidation``: ``{"symbol":"BTCUSDT","side":"buy","price":"89000","amount":"37.722858","ts":"1736371332162"}``"""

    symbol: str
    side: _Side
    price: Bounded
    amount: Bounded
    ts: _Ms


_MARK = Kind.MARK
_LegacyTrade = tuple[_Ms, Bounded, Bounded, _Side]   # v1 mix ``trade``: ["1649290078916","9.977","1","sell"]


_frame_decoders: dict = {}


def _frame_decoder(item_type) -> msgspec.json.Decoder:
    """Decoder of a whole push ``{"action","arg","data":[item..],"ts"}`` (one per item type)."""
    if item_type not in _frame_decoders:
        frame = msgspec.defstruct("Frame", [("action", str), ("arg", Arg), ("data", list[item_type]), ("ts", int, 0)],
                                  gc=False)
        _frame_decoders[item_type] = msgspec.json.Decoder(frame, strict=False)
    return _frame_decoders[item_type]


class _Envelope(msgspec.Struct, gc=False):
    """Lenient view of any push or event; ``data`` decoded later by the route found in ``arg``."""

    action: object = None
    arg: object = None
    data: msgspec.Raw = msgspec.Raw(b"null")
    event: object = None


class _ContractInfo(msgspec.Struct):
    symbol: str
    baseCoin: str = ""
    quoteCoin: str = ""
    symbolType: str = ""
    symbolStatus: str = ""
    status: str = ""                 # v1 spot products
    pricePlace: int = -1
    priceEndStep: float = 1.0
    priceScale: int = -1             # v1 spot products


class _Listing(msgspec.Struct):
    data: list[_ContractInfo]


class _TickerRow(msgspec.Struct):
    symbol: str
    lastPr: float = 0.0
    baseVolume: float = 0.0
    quoteVolume: float = -1.0
    usdtVolume: float = -1.0


class _Tickers(msgspec.Struct):
    data: list[_TickerRow]


class _OIRow(msgspec.Struct):
    symbol: str
    size: float


class _OIData(msgspec.Struct):
    openInterestList: list[_OIRow]
    ts: int = 0


class _OIReply(msgspec.Struct):
    data: _OIData


_envelope_decoder = msgspec.json.Decoder(_Envelope)
_levels_decoder = msgspec.json.Decoder(list[tuple[float, float]], strict=False)
_level_decoder = msgspec.json.Decoder(list[float], strict=False)
_listing_decoder = msgspec.json.Decoder(_Listing, strict=False)
_tickers_decoder = msgspec.json.Decoder(_Tickers, strict=False)
_oi_decoder = msgspec.json.Decoder(_OIReply, strict=False)

_DecodeErrors = DECODE_ERRORS

_TAKER = {"buy": Side.BUY, "sell": Side.SELL}
_POSITION = {"buy": Side.LONG, "sell": Side.SHORT}     # Bitget names the liquidated position


def _best_level(raw: msgspec.Raw) -> tuple[float, float] | None:
    """The first ``[price, size]`` of a level list, without decoding the other levels (None: no levels)."""
    text = bytes(raw)
    i = text.find(b"[", 1)
    if i < 0:
        if _levels_decoder.decode(text):   # not a list of levels at all: raises
            raise ValueError("book side is not a list of levels")
        return None
    level = _level_decoder.decode(text[i:text.find(b"]", i) + 1])
    if len(level) < 2:
        raise ValueError("book level without a size")
    return level[0], level[1]


def _stream_name(arg: Arg) -> str:
    """The stream a push belongs to: ``channel.instId``, or the one liquidation stream (v3 ``topic``)."""
    return LIQUIDATION_STREAM if arg.topic else f"{arg.channel}.{arg.instId}"


def _route_key(payload: bytes) -> tuple[bytes, bytes] | None:
    """``(instType, channel)`` (v3: ``(instType, b"v3:" + topic)``) read from the frame's head, where
    the venue puts ``"arg":{"instType":..,"channel"|"topic":..``; None if the head looks otherwise."""
    i = payload.find(b'"instType":"', 0, 160)
    if i < 0:
        return None
    i += 12
    j = payload.find(b'"', i, i + 24)
    if j < 0:
        return None
    if payload.startswith(b',"channel":"', j + 1):
        k = j + 13
        e = payload.find(b'"', k, k + 40)
        return (payload[i:j], payload[k:e]) if e > 0 else None
    if payload.startswith(b',"topic":"', j + 1):
        k = j + 11
        e = payload.find(b'"', k, k + 40)
        return (payload[i:j], b"v3:" + payload[k:e]) if e > 0 else None
    return None


class Parser:
    """Turn Bitget frames into record tuples.

    ``lookup`` maps a native symbol (``"BTCUSDT"``) to an instrument id or None
    (frames of unregistered symbols are IGNORED). ``flags`` is OR-ed into every
    record. ``contract_sizes`` maps a symbol to base units per size unit; every
    Bitget USDT-FUTURES size is already base coin, so the default is 1.0 and
    :func:`parse_exchange_info` reports 1.0 for every listing.
    ``books`` (an :class:`engine.books.BookSet`, set by :func:`engine.books.attach`) keeps the
    full-depth ``books`` channel; without it a ``books`` snapshot gives one BOOK_TOP and its
    updates are PARSED. ``books1/5/15`` pushes are whole snapshots and give BOOK_TOP directly.
    """

    books = None

    def __init__(self, lookup: Callable[[str], int | None], flags: int = 0,
                 contract_sizes: Mapping[str, float] | None = None):
        self.lookup = lookup
        self._ids = InstrumentIds(lookup)
        self.flags = flags
        self.contract_sizes = dict(contract_sizes or {})
        self._last_oi: dict[int, float] = {}
        self._book_seq: dict[str, int] = {}   # last ``books`` seq per symbol, for frames without pseq/seq
        books = (self._books, BookItem)
        # (instType upper-cased, channel or "v3:"+topic) -> (handler, item type)
        routes = {
            (b"USDT-FUTURES", b"trade"): (self._trade, TradeItem),
            (b"USDT-FUTURES", b"ticker"): (self._ticker, TickerItem),
            (b"USDT-FUTURES", b"books"): books,
            (b"USDT-FUTURES", b"v3:liquidation"): (self._liquidation, LiquidationItem),
            (b"MC", b"trade"): (self._legacy_trade, _LegacyTrade),
            (b"MC", b"ticker"): (self._ticker, LegacyTickerItem),
            (b"MC", b"books"): books,
        }
        for n in BOOK_CHANNELS:
            routes[b"USDT-FUTURES", b"books%d" % n] = books
        # the venue spells instType upper-case on v2 and lower-case on v3 and v1
        routes.update({(inst.lower(), ch): r for (inst, ch), r in routes.items()})
        # per route: the handler, a one-pass decoder of the whole frame, and one of ``data`` alone
        self._routes = {k: (h, _frame_decoder(item), msgspec.json.Decoder(list[item], strict=False))
                        for k, (h, item) in routes.items()}
        self._heads = Heads()

    def parse(self, payload: bytes, ts_recv: int, out: list) -> tuple[Outcome, str]:
        """Parse one frame; append records to ``out``; return (outcome, stream name)."""
        if type(payload) is not bytes:
            payload = bytes(payload) if not isinstance(payload, str) else payload.encode()
        # a stream's pushes repeat one head (action, arg): routed once, then found by that head
        route = self._heads.get(payload[:payload.find(91)])
        if route is None:
            return self._route(payload, ts_recv, out)
        handler, decode, action, arg, stream = route
        try:
            data = decode(payload).data
        except _DecodeErrors:
            return self._slow(payload, ts_recv, out)
        return self._dispatch(handler, action, arg, data, ts_recv, out, stream)

    def _route(self, payload: bytes, ts_recv: int, out: list) -> tuple[Outcome, str]:
        """A head not seen yet: route by the (instType, channel) at the frame's start, learn the head."""
        if payload == b"pong":
            return CONTROL, ""
        route = self._routes.get(_route_key(payload))
        if route is None:   # events, unknown channels, ``arg`` keys in another order
            return self._slow(payload, ts_recv, out)
        handler, decoder, _ = route
        try:
            msg = decoder.decode(payload)
        except _DecodeErrors:
            return self._slow(payload, ts_recv, out)
        stream = _stream_name(msg.arg)
        self._heads.learn(payload, (handler, decoder.decode, msg.action, msg.arg, stream))
        return self._dispatch(handler, msg.action, msg.arg, msg.data, ts_recv, out, stream)

    def _dispatch(self, handler, action: str, arg: Arg, data: list, ts_recv: int, out: list,
                  stream: str) -> tuple[Outcome, str]:
        start = len(out)
        try:
            outcome = handler(action, arg, data, ts_recv, out)
        except (TypeError, *_DecodeErrors):   # e.g. a book level that is not a [price, size] pair
            outcome = MALFORMED
        if outcome is MALFORMED:
            del out[start:]
        return outcome, stream

    def _slow(self, payload: bytes, ts_recv: int, out: list) -> tuple[Outcome, str]:
        """Events, unknown channels, reordered keys and broken frames (slow path)."""
        try:
            env = _envelope_decoder.decode(payload)
        except _DecodeErrors:
            return MALFORMED, ""
        if isinstance(env.event, str):
            return (CONTROL if env.event in _CONTROL_EVENTS else UNKNOWN), ""
        if env.event is not None or not isinstance(env.arg, dict):
            return (MALFORMED if env.action is not None or env.arg is not None else UNKNOWN), ""
        try:
            arg = msgspec.convert(env.arg, Arg)
        except msgspec.ValidationError:
            return MALFORMED, ""
        name = arg.channel or (("v3:" + arg.topic) if arg.topic else "")
        stream = LIQUIDATION_STREAM if arg.topic == "liquidation" else f"{arg.channel or arg.topic}.{arg.instId or arg.symbol}"
        inst = arg.instType.upper()
        route = self._routes.get((inst.encode(), name.encode()))
        if route is None:
            if inst not in ("USDT-FUTURES", "MC") or name.split(":")[-1].startswith(_IGNORED_PREFIXES):
                return IGNORED, stream      # other products (spot, coin-M), candles
            return UNKNOWN, stream
        if not isinstance(env.action, str):
            return MALFORMED, stream
        handler, _, data_decoder = route
        try:
            data = data_decoder.decode(env.data)
        except _DecodeErrors:
            return MALFORMED, stream
        return self._dispatch(handler, env.action, arg, data, ts_recv, out, _stream_name(arg))

    # -- handlers: each returns an Outcome ----------------------------------------
    def _size(self, symbol: str) -> float:
        return self.contract_sizes.get(symbol, 1.0) if self.contract_sizes else 1.0

    # trades: prices, sizes, times and sides are checked by the decoder; p = 0 or q = 0 is no trade
    def _trade(self, action: str, arg: Arg, data: list[TradeItem], ts_recv: int, out: list) -> Outcome:
        """``{"action":"update","arg":{"instType":"USDT-FUTURES","channel":"trade","instId":"BTCUSDT"},"data":[{"ts":"1695716760565","price":"27000.5","size":"0.001","side":"buy","tradeId":"1111111111"}],"ts":1695716761589}``"""
        if action != "update":
            return PARSED if action == "snapshot" else MALFORMED   # the snapshot replays history
        symbol = arg.instId
        iid = self._ids[symbol]
        if iid is None:
            return IGNORED
        mult, flags, start = self._size(symbol), self.flags, len(out)
        for t in data:
            p, q = t.price, t.size
            if p != 0.0 and q != 0.0:
                q *= mult
                tid = t.tradeId
                out.append((TRADE, VENUE, _TAKER[t.side], flags, iid, t.ts * _MS, ts_recv, p, q, p * q,
                            float(tid) if 0 < tid < _EXACT_ID else 0.0, 1.0))
        return EMITTED if len(out) > start else PARSED

    def _legacy_trade(self, action: str, arg: Arg, data: list, ts_recv: int, out: list) -> Outcome:
        """v1 mix: ``{"action":"update","arg":{"instType":"mc","channel":"trade","instId":"UNIUSDT"},"data":[["1649290078916","9.977","1","sell"]]}``"""
        if action != "update":
            return PARSED if action == "snapshot" else MALFORMED
        symbol = arg.instId
        iid = self._ids[symbol]
        if iid is None:
            return IGNORED
        mult, flags, start = self._size(symbol), self.flags, len(out)
        for ts, p, q, side in data:
            if p != 0.0 and q != 0.0:
                q *= mult
                out.append((TRADE, VENUE, _TAKER[side], flags, iid, ts * _MS, ts_recv, p, q, p * q, 0.0, 1.0))
        return EMITTED if len(out) > start else PARSED

    def _books(self, action: str, arg: Arg, data: list[BookItem], ts_recv: int, out: list) -> Outcome:
        """``books<N>`` and every ``snapshot`` -> BOOK_TOP; a full-depth ``update`` is PARSED (the synced book is a later issue).

        ``{"action":"snapshot","arg":{"instType":"USDT-FUTURES","channel":"books5","instId":"BTCUSDT"},"data":[{"asks":[["27000.5","8.760"]],"bids":[["27000.0","2.710"]],"checksum":0,"seq":123,"ts":"1695716059516"}],"ts":1695716059516}``
        """
        if action not in ("snapshot", "update"):
            return MALFORMED
        if self.books is not None and arg.channel == "books" and data:
            return self._synced_book(action, arg.instId, data[-1], ts_recv, out)
        if action == "update" or not data:
            return PARSED
        item = data[-1]
        best_bid = _best_level(item.bids)
        best_ask = _best_level(item.asks)
        if best_bid is None or best_ask is None:
            return PARSED
        iid = self._ids[arg.instId]
        if iid is None:
            return IGNORED
        mult = self._size(arg.instId)
        (bid, bq), (ask, aq) = best_bid, best_ask
        return book_top(VENUE, self.flags | Flag.SNAPSHOT, iid, item.ts * _MS, ts_recv,
                         bid, bq * mult, ask, aq * mult, out)

    def _synced_book(self, action: str, symbol: str, item: BookItem, ts_recv: int, out: list) -> Outcome:
        """Feed the full-depth ``books`` channel to the BookSet. A delta chains ``pseq`` to the previous
        ``seq``; frames without ``pseq`` (or, v1, without ``seq``) are taken as continuous."""
        iid = self._ids[symbol]
        if iid is None:
            return IGNORED
        bids = _levels_decoder.decode(item.bids)
        asks = _levels_decoder.decode(item.asks)
        mult = self._size(symbol)
        if action == "snapshot":
            seq = item.seq or 1
            self._book_seq[symbol] = seq
            return self.books.snapshot(symbol, iid, seq, bids, asks, item.ts * _MS, ts_recv, out, scale=mult)
        last = self._book_seq.get(symbol, -1)
        prev = item.pseq if item.pseq >= 0 else last
        seq = item.seq or last + 1
        self._book_seq[symbol] = seq
        return self.books.delta(symbol, iid, seq, seq, prev, bids, asks, item.ts * _MS, ts_recv, out, scale=mult)

    def _ticker(self, action: str, arg: Arg, data: list[TickerItem], ts_recv: int, out: list) -> Outcome:
        """MARK per item, and OPEN_INTEREST when the holding changed (v2 ``ticker``; v1 mix ``ticker`` as
        :class:`LegacyTickerItem`).

        ``{"action":"snapshot","arg":{"instType":"USDT-FUTURES","channel":"ticker","instId":"BIRBUSDT"},"data":[{"instId":"BIRBUSDT","lastPr":"0.07623",..,"fundingRate":"-0.006439","nextFundingTime":"1783080000000","markPrice":"0.07628","indexPrice":"0.0774530536255575","holdingAmount":"23439001",..,"ts":"1783066672529"}],"ts":1783066672529}``
        """
        symbol = arg.instId
        outcome = PARSED
        for t in data:
            holding = t.holdingAmount
            if not (holding == -1.0 or 0.0 <= holding < _MAX):   # the rest is bounded by the decoder
                return MALFORMED
            iid = self._ids[symbol]
            if iid is None:
                return IGNORED
            ts_ex, mark = t.ts * _MS, t.markPrice
            out.append((_MARK, VENUE, 0, self.flags, iid, ts_ex, ts_recv, mark, t.indexPrice, 0.0, t.fundingRate,
                        float(t.nextFundingTime)))
            if holding >= 0.0 and self._last_oi.get(iid) != holding:   # the ticker repeats it several times a second
                self._last_oi[iid] = holding
                out.append(open_interest(VENUE, self.flags, iid, ts_ex, ts_recv, mark, holding * self._size(symbol)))
            outcome = EMITTED
        return outcome

    def _liquidation(self, action: str, arg: Arg, data: list[LiquidationItem], ts_recv: int, out: list) -> Outcome:
        """v3 ``{"action":"update","arg":{"instType":"usdt-futures","topic":"liquidation"},"data":[{"symbol":"BTCUSDT","side":"buy","price":"89000","amount":"37.722858","ts":"1736371332162"}],"ts":1736371332162}``

        ``buy`` = a long position was liquidated; ``amount`` is USDT. A ``snapshot``
        (if the venue sends one) is emitted flagged SNAPSHOT: it may repeat old events.
        """
        if action not in ("snapshot", "update"):
            return MALFORMED
        flags = self.flags | Flag.CAPPED | (Flag.SNAPSHOT if action == "snapshot" else 0)
        outcome = PARSED
        for x in data:
            p, amount = x.price, x.amount   # bounded by the decoder
            if p == 0.0 or amount == 0.0:
                continue
            iid = self._ids[x.symbol]
            if iid is None:
                if outcome is PARSED:
                    outcome = IGNORED
                continue
            out.append((LIQUIDATION, VENUE, _POSITION[x.side], flags, iid, x.ts * _MS, ts_recv,
                        p, amount / p, amount, p, 0.0))
            outcome = EMITTED
        return outcome


# -- REST ------------------------------------------------------------------------

def parse_open_interest(payload: bytes, lookup: Callable[[str], int | None], ts_recv: int,
                        ref_price: float, out: list, flags: int = 0) -> Outcome:
    """``GET /api/v2/mix/market/open-interest`` -> OPEN_INTEREST (base coin; USD at ``ref_price``, 0 when unknown).

    ``{"code":"00000","msg":"success","requestTime":1695796781343,"data":{"openInterestList":[{"symbol":"BTCUSDT","size":"34278.06"}],"ts":"1695796781344"}}``
    """
    try:
        msg = _oi_decoder.decode(payload)
    except _DecodeErrors:
        return MALFORMED
    if not 0.0 <= ref_price < _MAX or msg.data.ts < 0:
        return MALFORMED
    start = len(out)
    outcome = IGNORED
    for row in msg.data.openInterestList:
        oi = row.size
        if not 0.0 <= oi < _MAX:
            del out[start:]
            return MALFORMED
        iid = lookup(row.symbol)
        if iid is None:
            continue
        out.append(open_interest(VENUE, flags, iid, msg.data.ts * _MS, ts_recv, ref_price, oi))
        outcome = EMITTED
    return outcome


def _contract_type(c: _ContractInfo) -> str:
    kind = c.symbolType.lower()
    if kind:
        return {"perpetual": "perpetual", "delivery": "future"}.get(kind, "other")
    # v1 listings name the product in the symbol: BTCUSDT_UMCBL (perp), BTCUSD_DMCBL_220624 (future), .._SPBL
    parts = c.symbol.split("_")
    if len(parts) == 2 and parts[1].endswith("MCBL"):
        return "perpetual"
    if len(parts) == 3 and parts[1].endswith("MCBL"):
        return "future"
    return "spot" if parts[-1] == "SPBL" else "other"


def parse_exchange_info(payload: bytes) -> list[InstrumentInfo] | None:
    """``GET /api/v2/mix/market/contracts`` -> every listing, or None if the body is unusable.

    ``symbolStatus`` ``normal`` (v1 spot: ``online``) becomes ``trading``; sizes are base
    coin, so ``contract_size`` is 1.0 (``sizeMultiplier`` is an order step, not a contract value).
    """
    try:
        listing = _listing_decoder.decode(payload)
    except _DecodeErrors:
        return None
    out = []
    for c in listing.data:
        raw = (c.symbolStatus or c.status).lower()
        status = "trading" if raw in ("normal", "online") else raw
        if c.pricePlace >= 0:
            tick = c.priceEndStep * 10.0 ** -c.pricePlace
        else:
            tick = 10.0 ** -c.priceScale if c.priceScale >= 0 else 0.0
        if not 0.0 <= tick < _MAX:
            tick = 0.0
        out.append(InstrumentInfo(c.symbol, c.baseCoin, c.quoteCoin, _contract_type(c), status, tick, 1.0))
    return out


# -- klines (the bot's candle bootstrap) --------------------------------------------
KLINE_PATH = "/api/v2/mix/market/candles"
KLINE_PAGE = 1000                       # its most rows a request (default 100)


def kline_request(symbol: str, start_ms: int, end_ms: int) -> tuple[str, dict, int]:
    """``(path, params, weight)`` for the 1-minute candles opening in [start_ms, end_ms) (at most KLINE_PAGE)."""
    return KLINE_PATH, {"symbol": symbol, "productType": PRODUCT_TYPE, "granularity": "1m", "startTime": start_ms,
                        "endTime": end_ms, "limit": KLINE_PAGE}, 1


def parse_klines(payload: bytes, contract_size: float = 1.0) -> list[tuple] | None:
    """``GET /api/v2/mix/market/candles`` (``data`` of ``[ts, open, high, low, close, baseVolume, quoteVolume]``
    strings) -> (open ms, open, high, low, close, base volume, quote volume, trades or 0) oldest first; None when malformed or ``code`` is not "00000"."""
    try:
        body = msgspec.json.decode(payload)
        return array_candles(body["data"]) if body["code"] == "00000" else None
    except CANDLE_ERRORS:
        return None


def parse_tickers(payload: bytes) -> dict[str, float] | None:
    """``GET /api/v2/mix/market/tickers`` -> native symbol -> 24 h volume in USD (USDT taken as USD)."""
    try:
        msg = _tickers_decoder.decode(payload)
    except _DecodeErrors:
        return None
    out: dict[str, float] = {}
    for r in msg.data:
        usd = r.usdtVolume if r.usdtVolume != -1.0 else r.quoteVolume if r.quoteVolume != -1.0 else r.baseVolume * r.lastPr
        if 0.0 <= usd < _MAX:
            out[r.symbol] = usd
    return out
