"""Hyperliquid perpetuals: wire contract and a pure parser.

Contract (PROTOCOLS.md §6, Hyperliquid API docs, as of 2026):

* One WebSocket ``wss://api.hyperliquid.xyz/ws``; nothing is subscribed in the URL.
  One client message per subscription:
  ``{"method":"subscribe","subscription":{"type":"trades","coin":"SOL"}}``, acked
  ``{"channel":"subscriptionResponse","data":{"method":"subscribe","subscription":{...}}}``;
  errors come as ``{"channel":"error","data":"<text>"}``. Data frames are
  ``{"channel":"<type>","data":...}``.
* Keepalive: the server closes a connection that has had no traffic for 60 s; the
  client sends ``{"method":"ping"}`` and gets ``{"channel":"pong"}`` (every 50 s here,
  as the official SDK does).
* Limits per IP: 1000 subscriptions, 100 connections and 2000 client messages per
  minute (the last two ❓, PROTOCOLS.md §11.8).
* Coins are named ``BTC``, ``ETH``, ``kPEPE`` (= 1000 PEPE); no quote suffix, every
  perp settles in USDC. Sizes are coin units, prices USDC, both JSON strings; ms times.
* ``trades``: ``side`` ``B``/``A`` is the aggressor (taker) side (❓ §11.8, as aggr
  and nktkas read it). ``tid`` is a 50-bit hash, not a sequence: records carry
  ``aux = 0`` so the generic id-based dedup and gap check stay off, and the parser
  drops re-delivered trades itself by ``(time, tid)`` per coin (a subscription, and
  every reconnect, starts with a batch of recent trades).
* ``l2Book``: full snapshots (``levels = [bids, asks]``), pushed per block at most
  every 0.5 s; no sequence numbers, no checksum: each one replaces the book.
* ``activeAssetCtx``: mark, oracle (index), hourly funding and open interest in
  coin units (single- or double-sided is ❓ §11.8); it carries no timestamp, so its
  records use the receive time. Open interest is therefore never polled over REST
  (``oi_request = None``); :data:`OI_REQUEST` + :func:`parse_open_interest` remain
  for a caller that wants a one-off snapshot of every coin.
* **No public liquidation stream.** Liquidations exist only in per-user channels
  (``userEvents``, ``userFills`` with a ``liquidation`` block). Liquidation fills
  reach the public ``trades`` stream as ordinary trades with nothing marking them,
  so this module never emits ``Kind.LIQUIDATION``: see :data:`LIQUIDATIONS_AVAILABLE`.
* REST is ``POST https://api.hyperliquid.xyz/info`` with a JSON body
  (``{"type":"metaAndAssetCtxs"}``); weight 20 of 1200 per minute per IP. The
  request tuples below are ``(path, json_body, weight)`` and :data:`REST_METHOD`
  says they must be POSTed. The same info requests also work over the socket:
  :func:`post_message` / :func:`post_response`.
"""
from __future__ import annotations

import logging
import math
from typing import Annotated, Callable, Literal, Union

import msgspec

from engine.record import Flag, Kind, Side, Venue
from engine.venues import ConnectionPlan, InstrumentInfo, Outcome
from engine.venues.common import (CANDLE_ERRORS, CONTROL, DECODE_ERRORS, EMITTED, IGNORED, MALFORMED, PARSED, TRADE,
                                   UNKNOWN, InstrumentIds, book_top, open_interest)

__all__ = [
    "VENUE", "DEFAULT_WS_URLS", "DEFAULT_REST_URL", "REST_METHOD", "LIQUIDATIONS_AVAILABLE", "Parser", "plan",
    "streams_for", "subscribe_messages", "unsubscribe_messages", "stream_symbol", "ping_message", "OI_REQUEST",
    "parse_open_interest",
    "parse_exchange_info", "parse_tickers", "parse_l2_book", "post_message", "post_response", "base_from_symbol",
    "KLINE_PAGE", "kline_request", "parse_klines",
]

log = logging.getLogger("undertow.venues.hyperliquid")

VENUE = Venue.HYPERLIQUID
DEFAULT_WS_URLS = {"ws": "wss://api.hyperliquid.xyz/ws"}
DEFAULT_REST_URL = "https://api.hyperliquid.xyz"
REST_METHOD = "POST"                 # every request below is POST <path> with the params as the JSON body
INFO_PATH = "/info"
REST_WEIGHT_PER_MINUTE = 1200
DEFAULT_QUOTE = "USDC"               # every perp margins in USDC (for registration without the instrument list)
MAX_SUBSCRIPTIONS_PER_IP = 1000
MAX_STREAMS_PER_CONNECTION = 100     # our sharding choice: well under the per-IP total and connection caps
MESSAGE_INTERVAL_S = 0.105           # 2000 messages/min per IP over a few sockets; also the simulator's 10/s
PING_INTERVAL_S = 50.0               # the server drops a connection after 60 s without traffic
FUNDING_INTERVAL_MS = 3_600_000      # funding is paid hourly; ``funding`` is the hourly rate
LIQUIDATIONS_AVAILABLE = False       # no public market-wide liquidation stream (PROTOCOLS.md §0.1, §6)
# the local book (engine/books.py): every l2Book push is a whole book, no sequence rule, nothing to request
BOOK_RULE = None
BOOK_SOURCE = "push"
OI_STREAMED = True                   # open interest arrives on activeAssetCtx, so the feed polls none:
oi_request = None                    # (per-symbol REST polls would each fetch every coin; see OI_REQUEST)
trade_stream_ids = False             # tid is a hash, not a per-coin sequence
# config stream name -> subscription types ("mark" and "oi" share one activeAssetCtx subscription)
STREAM_TYPES = {
    "trades": ("trades",),
    "book": ("l2Book",),
    "mark": ("activeAssetCtx",),
    "oi": ("activeAssetCtx",),
    "liquidations": (),
}
_WATCHED_TYPES = ("l2Book", "activeAssetCtx")   # tick regularly; trades of a quiet coin may not
_IGNORED_CHANNELS = frozenset({
    "allMids", "candle", "activeSpotAssetCtx", "allDexsAssetCtxs", "activeAssetData", "notification", "webData2",
    "webData3", "user", "userEvents", "userFills", "userFundings", "userNonFundingLedgerUpdates", "orderUpdates",
    "userTwapSliceFills", "userTwapHistory",
})
_INF = float("inf")
_FLOAT_MAX = 1.7976931348623157e308
_TAKER = {"B": Side.BUY, "A": Side.SELL}
_MS = 1_000_000
_INFO_BODY = {"type": "metaAndAssetCtxs"}
EXCHANGE_INFO_REQUEST = (INFO_PATH, _INFO_BODY, 20)
TICKERS_REQUEST = (INFO_PATH, _INFO_BODY, 20)
OI_REQUEST = (INFO_PATH, _INFO_BODY, 20)   # one answer carries every coin's open interest


# -- wire ------------------------------------------------------------------------

def streams_for(symbols: list[str], kinds: list[str]) -> list[str]:
    """Return stream names (``"<type>:<coin>"``) for ``symbols``, grouped by coin."""
    types: list[str] = []
    for kind in kinds:
        for t in STREAM_TYPES.get(kind, ()):
            if t not in types:
                types.append(t)
    return [f"{t}:{s}" for s in symbols for t in types]


def plan(vcfg, ws_urls: dict[str, str] | None = None, subscribe_in_url: bool = False) -> list[ConnectionPlan]:
    """Shard the configured streams over sockets (subscriptions are always sent as messages).

    At most :data:`MAX_SUBSCRIPTIONS_PER_IP` streams are planned; the rest are
    dropped with a warning (list the most important symbols first).
    """
    url = {**DEFAULT_WS_URLS, **(ws_urls or vcfg.ws_urls or {})}["ws"]
    streams = streams_for(vcfg.symbols, vcfg.streams)
    if len(streams) > MAX_SUBSCRIPTIONS_PER_IP:
        log.warning("hyperliquid: %d streams requested, the per-IP cap is %d; dropping %d",
                    len(streams), MAX_SUBSCRIPTIONS_PER_IP, len(streams) - MAX_SUBSCRIPTIONS_PER_IP)
        streams = streams[:MAX_SUBSCRIPTIONS_PER_IP]
    per = max(1, min(vcfg.max_streams_per_connection, MAX_STREAMS_PER_CONNECTION))
    plans = []
    for i in range(0, len(streams), per):
        chunk = tuple(streams[i:i + per])
        watched = tuple(s for s in chunk if s.split(":", 1)[0] in _WATCHED_TYPES)
        plans.append(ConnectionPlan(f"ws/{i // per}", url, chunk, watched, False))
    return plans


def subscription(stream: str) -> dict:
    """The subscription object of a stream name (``"l2Book:BTC"`` -> ``{"type":"l2Book","coin":"BTC"}``)."""
    t, _, coin = stream.partition(":")
    return {"type": t, "coin": coin} if coin else {"type": t}


def subscribe_messages(streams: tuple[str, ...] | list[str], first_id: int = 1) -> list[bytes]:
    """Return one subscribe frame per stream (Hyperliquid subscriptions carry no id)."""
    return [msgspec.json.encode({"method": "subscribe", "subscription": subscription(s)}) for s in streams]


def unsubscribe_messages(streams: tuple[str, ...] | list[str], first_id: int = 1) -> list[bytes]:
    """Return one unsubscribe frame per stream (the subscription object must match the subscribe's)."""
    return [msgspec.json.encode({"method": "unsubscribe", "subscription": subscription(s)}) for s in streams]


def stream_symbol(stream: str) -> str:
    """Native coin of a stream name (``trades:BTC`` -> ``BTC``; ``allMids`` -> ``""``)."""
    return stream.partition(":")[2]


def ping_message() -> str:
    """The application-level keepalive; the reply ``{"channel":"pong"}`` parses as CONTROL."""
    return '{"method":"ping"}'


def post_message(req_id: int, payload: dict) -> bytes:
    """An info request sent over the socket: ``{"method":"post","id":N,"request":{"type":"info","payload":{...}}}``."""
    return msgspec.json.encode({"method": "post", "id": req_id, "request": {"type": "info", "payload": payload}})


# -- messages ----------------------------------------------------------------------

_TAGGED = dict(tag_field="channel", gc=False)


# a price or size in [0, inf), checked by the decoder (NaN, inf or a negative value: the frame is MALFORMED)
_Finite = Annotated[float, msgspec.Meta(ge=0.0, le=_FLOAT_MAX)]


class WsTrade(msgspec.Struct, gc=False):
    """``{"coin":"BTC","hash":"0xde47…475b","px":"105056.0","side":"B","sz":"0.00219","tid":121451470284048,"time":1737918794873,"users":["0xe9ed…","0x6802…"]}``"""

    coin: str
    side: Literal["B", "A"]          # the taker: B = buy, A = sell (ask side hit)
    px: _Finite
    sz: _Finite
    time: Annotated[int, msgspec.Meta(ge=0)]
    tid: int = 0


class Level(msgspec.Struct, gc=False):
    """``{"n":5,"px":"105055.0","sz":"3.03622"}``"""

    px: float
    sz: float
    n: int = 0


class WsBook(msgspec.Struct, gc=False):
    """Each side stays raw (syntax-checked JSON): only its first level is decoded, see :func:`_best`."""

    coin: str
    levels: tuple[msgspec.Raw, msgspec.Raw]
    time: int = 0


class WsBbo(msgspec.Struct, gc=False):
    coin: str
    bbo: tuple[Union[Level, None], Union[Level, None]]
    time: int = 0


class PerpCtx(msgspec.Struct, gc=False):
    """``{"funding":"0.0000125","openInterest":"605822.2558","prevDayPx":"2094.6","dayNtlVlm":"591989409.94","oraclePx":"2124.6","markPx":"2123.7","midPx":"2123.95",…}``"""

    markPx: float
    oraclePx: float
    funding: float
    openInterest: float
    dayNtlVlm: float = 0.0


class WsAssetCtx(msgspec.Struct, gc=False):
    coin: str
    ctx: PerpCtx


class Trades(msgspec.Struct, tag="trades", **_TAGGED):
    data: list[WsTrade]


class L2Book(msgspec.Struct, tag="l2Book", **_TAGGED):
    data: WsBook


class Bbo(msgspec.Struct, tag="bbo", **_TAGGED):
    data: WsBbo


class ActiveAssetCtx(msgspec.Struct, tag="activeAssetCtx", **_TAGGED):
    data: WsAssetCtx


class SubscriptionResponse(msgspec.Struct, tag="subscriptionResponse", **_TAGGED):
    """``{"channel":"subscriptionResponse","data":{"method":"subscribe","subscription":{"type":"trades","coin":"SOL"}}}``"""

    data: msgspec.Raw = msgspec.Raw(b"null")


class Error(msgspec.Struct, tag="error", **_TAGGED):
    data: msgspec.Raw = msgspec.Raw(b"null")


class Pong(msgspec.Struct, tag="pong", **_TAGGED):
    pass


class Post(msgspec.Struct, tag="post", **_TAGGED):
    """A reply to :func:`post_message`: ``{"channel":"post","data":{"id":N,"response":{"type":"info","payload":{"type":..,"data":..}}}}``"""

    data: msgspec.Raw = msgspec.Raw(b"null")


_Frame = Union[Trades, L2Book, Bbo, ActiveAssetCtx, SubscriptionResponse, Error, Pong, Post]


class _Head(msgspec.Struct):
    """Lenient view of any JSON object, used only to classify a frame that failed to decode."""

    channel: object = None


class _Subscription(msgspec.Struct, frozen=True):
    type: str = ""
    coin: str = ""


class _AckData(msgspec.Struct):
    method: str = ""
    subscription: _Subscription = _Subscription()


class _Universe(msgspec.Struct):
    name: str
    szDecimals: int = 0
    maxLeverage: int = 0
    isDelisted: Union[bool, None] = None


class _Meta(msgspec.Struct):
    universe: list[_Universe]


class _RestCtx(msgspec.Struct):
    markPx: Union[float, None] = None
    openInterest: float = 0.0
    dayNtlVlm: float = 0.0


class _PostPayload(msgspec.Struct):
    type: str = ""
    data: msgspec.Raw = msgspec.Raw(b"null")


class _PostResponse(msgspec.Struct):
    type: str
    payload: msgspec.Raw = msgspec.Raw(b"null")


class _PostData(msgspec.Struct):
    id: int
    response: _PostResponse


_frame_decoder = msgspec.json.Decoder(_Frame, strict=False)
_head_decoder = msgspec.json.Decoder(Union[_Head, list])
_ack_decoder = msgspec.json.Decoder(_AckData)
_book_decoder = msgspec.json.Decoder(WsBook, strict=False)
_info_decoder = msgspec.json.Decoder(Union[_Meta, tuple[_Meta, list[_RestCtx]]], strict=False)
_post_decoder = msgspec.json.Decoder(_PostData)
_post_payload_decoder = msgspec.json.Decoder(_PostPayload)
_level_decoder = msgspec.json.Decoder(Level, strict=False)
_side_decoder = msgspec.json.Decoder(list[Level], strict=False)
_DecodeErrors = DECODE_ERRORS
_KNOWN_CHANNELS = frozenset({"trades", "l2Book", "bbo", "activeAssetCtx"})
_CONTROL_CHANNELS = frozenset({"subscriptionResponse", "error", "pong", "post"})


def next_funding_ms(ts_ns: int) -> float:
    """The next top of the hour after ``ts_ns`` (Hyperliquid pays funding hourly), in ms."""
    return float((ts_ns // _MS // FUNDING_INTERVAL_MS + 1) * FUNDING_INTERVAL_MS)


class Parser:
    """Turn Hyperliquid frames into record tuples.

    ``lookup`` maps a coin (``"BTC"``) to an instrument id or None (frames of
    unregistered coins are IGNORED); ``flags`` is OR-ed into every record.
    Sizes are already coin units, so no contract sizes are needed. The parser
    keeps, per coin, the newest trade time and the tids seen at it, to drop the
    recent-trades batch re-sent on every (re)subscription (``duplicates`` counts
    them); the first trades frame after a subscribe ack is flagged SNAPSHOT.
    ``books`` (an :class:`engine.books.BookSet`, set by :func:`engine.books.attach`)
    keeps each pushed book whole (BOOK_TOP on change, BOOK_DEPTH bands); without
    it only the first level of each side is decoded, into one BOOK_TOP per push.
    """

    books = None

    def __init__(self, lookup: Callable[[str], int | None], flags: int = 0):
        self.lookup = lookup
        self._ids = InstrumentIds(lookup)
        self.flags = flags
        self.duplicates = 0
        self._last_trade: dict[str, tuple[int, set[int]]] = {}
        self._fresh: set[str] = set()
        self._handlers = {
            Trades: self._trades, L2Book: self._book, Bbo: self._bbo, ActiveAssetCtx: self._ctx,
            SubscriptionResponse: self._ack, Error: _control, Pong: _control, Post: _control,
        }

    def parse(self, payload: bytes, ts_recv: int, out: list) -> tuple[Outcome, str]:
        """Parse one frame; append records to ``out``; return (outcome, stream name)."""
        try:
            msg = _frame_decoder.decode(payload)
        except _DecodeErrors:
            return _classify(payload)
        return self._handlers[type(msg)](msg, ts_recv, out)

    # -- handlers: each returns (Outcome, stream) ------------------------------------
    def _trades(self, msg: Trades, ts_recv: int, out: list) -> tuple[Outcome, str]:
        """``{"channel":"trades","data":[{"coin":"BTC","hash":"0x84f7…d1d5","px":"105056.0","side":"B","sz":"0.01853","tid":754186699313231,"time":1737918853204,"users":["0x592c…","0x6802…"]}]}``"""
        trades = msg.data
        if not trades:
            return PARSED, ""
        coin = trades[0].coin
        flags = self.flags
        if coin in self._fresh:
            self._fresh.discard(coin)
            flags |= Flag.SNAPSHOT
        start = len(out)
        # coin -> [iid, newest time before this frame, its tids, newest time after it, its tids];
        # committed only once the whole frame is valid. Older frames' trades are the duplicates:
        # the order inside a frame does not matter (REST recentTrades lists newest first).
        state: dict[str, list] = {}
        ignored = dups = 0
        for t in trades:
            px, sz, ms = t.px, t.sz, t.time   # each bounded by the decoder, the side too
            if not px * sz < _INF:
                del out[start:]
                return MALFORMED, f"trades:{coin}"
            if px == 0.0 or sz == 0.0:
                continue
            st = state.get(t.coin)
            if st is None:
                prev_t, prev_tids = self._last_trade.get(t.coin, (-1, frozenset()))
                st = state[t.coin] = [self._ids[t.coin], prev_t, prev_tids, prev_t, set(prev_tids)]
            if st[0] is None:
                ignored += 1
                continue
            if ms < st[1] or (ms == st[1] and t.tid in st[2]):
                dups += 1
                continue
            if ms > st[3]:
                st[3] = ms
                st[4] = {t.tid}
            elif ms == st[3]:
                st[4].add(t.tid)
            out.append((TRADE, VENUE, _TAKER[t.side], flags, st[0], ms * _MS, ts_recv, px, sz, px * sz, 0.0, 1.0))
        for c, st in state.items():
            if st[0] is not None:
                self._last_trade[c] = (st[3], st[4])
        self.duplicates += dups
        if len(out) > start:
            return EMITTED, f"trades:{coin}"
        return (IGNORED if ignored else PARSED), f"trades:{coin}"

    def _book(self, msg: L2Book, ts_recv: int, out: list) -> tuple[Outcome, str]:
        """``{"channel":"l2Book","data":{"coin":"BTC","levels":[[{"n":5,"px":"105055.0","sz":"3.03622"},…],[{"n":13,"px":"105056.0","sz":"6.34472"},…]],"time":1737918843542}}``"""
        book = msg.data
        stream = "l2Book:" + book.coin
        if self.books is None:
            return _book_record(book, ts_recv, out, self.lookup, self.flags | Flag.SNAPSHOT), stream
        try:
            bids, asks = _side_decoder.decode(book.levels[0]), _side_decoder.decode(book.levels[1])
        except _DecodeErrors:
            return MALFORMED, stream
        bids = [(lv.px, lv.sz) for lv in bids]
        asks = [(lv.px, lv.sz) for lv in asks]
        for px, sz in bids + asks:
            if not (0.0 < px and 0.0 <= sz and px * sz < _INF):
                return MALFORMED, stream
        iid = self._ids[book.coin]
        if iid is None:
            return IGNORED, stream
        return self.books.snapshot(book.coin, iid, book.time, bids, asks, book.time * _MS, ts_recv, out), stream

    def _bbo(self, msg: Bbo, ts_recv: int, out: list) -> tuple[Outcome, str]:
        """``{"channel":"bbo","data":{"coin":"BTC","time":1737918843542,"bbo":[{"px":"105055.0","sz":"3.03622","n":5},{"px":"105056.0","sz":"6.34472","n":13}]}}``"""
        d = msg.data
        stream = "bbo:" + d.coin
        bid, ask = d.bbo
        if bid is None or ask is None:
            return PARSED, stream
        iid = self._ids[d.coin]
        if iid is None:
            return IGNORED, stream
        return _top(self.flags, iid, d.time * _MS, ts_recv, bid, ask, out), stream

    def _ctx(self, msg: ActiveAssetCtx, ts_recv: int, out: list) -> tuple[Outcome, str]:
        """MARK (mark, oracle as index, hourly funding, next hour) + OPEN_INTEREST (coin units, USD at mark).

        ``{"channel":"activeAssetCtx","data":{"coin":"BTC","ctx":{"funding":"-0.0000015186","openInterest":"27353.17682","prevDayPx":"76317.0","dayNtlVlm":"1516669192.19","premium":"-0.00059","oraclePx":"77605.0","markPx":"77562.0","midPx":"77558.5","impactPxs":["77558.0","77559.0"],"dayBaseVlm":"19707.77457"}}}``
        """
        d = msg.data
        stream = "activeAssetCtx:" + d.coin
        c = d.ctx
        mark, oracle, funding, oi = c.markPx, c.oraclePx, c.funding, c.openInterest
        if not (0.0 < mark < _INF and 0.0 <= oracle < _INF and -_INF < funding < _INF and 0.0 <= oi * mark < _INF):
            return MALFORMED, stream
        iid = self._ids[d.coin]
        if iid is None:
            return IGNORED, stream
        flags = self.flags
        out.append((Kind.MARK, VENUE, 0, flags, iid, ts_recv, ts_recv, mark, oracle, 0.0, funding,
                    next_funding_ms(ts_recv)))
        out.append(open_interest(VENUE, flags, iid, ts_recv, ts_recv, mark, oi))
        return EMITTED, stream

    def _ack(self, msg: SubscriptionResponse, ts_recv: int, out: list) -> tuple[Outcome, str]:
        try:
            ack = _ack_decoder.decode(msg.data)
        except _DecodeErrors:
            return CONTROL, ""
        sub = ack.subscription
        if ack.method == "subscribe" and sub.type == "trades" and sub.coin:
            self._fresh.add(sub.coin)   # the next trades frame of this coin is the recent-trades batch
        return CONTROL, ""


def _control(msg, ts_recv: int, out: list) -> tuple[Outcome, str]:
    return CONTROL, ""


def _classify(payload: bytes) -> tuple[Outcome, str]:
    """Tell an unknown channel, an unwanted one and a broken frame apart (slow path)."""
    try:
        head = _head_decoder.decode(payload)
    except _DecodeErrors:
        return MALFORMED, ""
    if type(head) is list:
        return MALFORMED, ""
    ch = head.channel
    if not isinstance(ch, str) or ch in _KNOWN_CHANNELS:
        return MALFORMED, ""
    if ch in _CONTROL_CHANNELS:
        return CONTROL, ""
    return (IGNORED if ch in _IGNORED_CHANNELS else UNKNOWN), ""


class _BadSide(ValueError):
    """A book side that is not an array of levels."""


def _best(side: msgspec.Raw) -> Level | None:
    """First level of a raw side ``[{"n":5,"px":"105055.0","sz":"3.03622"},…]``, None when empty.

    A level is a flat object, so the first ``}`` closes it: decoding only that
    slice skips building 20 levels per side that the top of book never reads.
    """
    raw = bytes(side)
    if raw[:1] != b"[":
        raise _BadSide(raw[:20])
    end = raw.find(b"}")
    if end < 0:
        if raw[1:].strip() != b"]":
            raise _BadSide(raw[:20])
        return None
    start = raw.find(b"{")
    if not 0 < start < end or raw[1:start].strip():
        raise _BadSide(raw[:20])
    return _level_decoder.decode(raw[start:end + 1])


def _book_record(book: WsBook, ts_recv: int, out: list, lookup, flags: int) -> Outcome:
    try:
        b, a = _best(book.levels[0]), _best(book.levels[1])
    except _DecodeErrors:
        return MALFORMED
    if b is None or a is None:
        return PARSED
    iid = lookup(book.coin)
    if iid is None:
        return IGNORED
    return _top(flags, iid, book.time * _MS, ts_recv, b, a, out)


def _top(flags: int, iid: int, ts_ex: int, ts_recv: int, bid: Level, ask: Level, out: list) -> Outcome:
    if not bid.px * bid.sz + ask.px * ask.sz < _INF:   # finite prices and sizes can still overflow the notional
        return MALFORMED
    return book_top(VENUE, flags, iid, ts_ex, ts_recv, bid.px, bid.sz, ask.px, ask.sz, out)


# -- REST (POST /info) -----------------------------------------------------------

def post_response(frame: bytes) -> tuple[int, str, bytes] | None:
    """Unwrap a ``post`` reply: ``(id, response type, body)``; ``body`` is what ``POST /info`` would return.

    Response type ``"info"`` carries ``payload = {"type": .., "data": <body>}``;
    ``"error"`` carries a text. None when ``frame`` is no post reply.
    """
    try:
        msg = _frame_decoder.decode(frame)
        if type(msg) is not Post:
            return None
        d = _post_decoder.decode(msg.data)
        if d.response.type == "info":
            return d.id, "info", bytes(_post_payload_decoder.decode(d.response.payload).data)
        return d.id, d.response.type, bytes(d.response.payload)
    except _DecodeErrors:
        return None


def _decode_info(payload: bytes):
    try:
        info = _info_decoder.decode(payload)
    except _DecodeErrors:
        return None, None
    if type(info) is tuple:
        meta, ctxs = info
        return meta, ctxs if len(ctxs) == len(meta.universe) else None
    return info, None


def tick_size(sz_decimals: int, price: float | None) -> float:
    """Price increment: at most ``6 - szDecimals`` decimals and 5 significant figures (integers always allowed)."""
    tick = 10.0 ** -(6 - sz_decimals)
    if price is not None and 0.0 < price < _INF:
        tick = max(tick, min(1.0, 10.0 ** (math.floor(math.log10(price)) - 4)))
    return tick


def parse_exchange_info(payload: bytes) -> list[InstrumentInfo] | None:
    """``{"type":"meta"}`` or ``{"type":"metaAndAssetCtxs"}`` -> every perp of the universe, or None.

    ``{"universe":[{"name":"BTC","szDecimals":5,"maxLeverage":40,"isDelisted":null}]}``, or that
    object and the list of contexts in a two-element array. Delisted coins have
    status ``"delisted"``; the tick follows from ``szDecimals`` and, when the
    contexts give it, the mark price.
    """
    meta, ctxs = _decode_info(payload)
    if meta is None:
        return None
    out = []
    for i, u in enumerate(meta.universe):
        price = ctxs[i].markPx if ctxs is not None else None
        out.append(InstrumentInfo(u.name, u.name, "USDC", "perpetual", "delisted" if u.isDelisted else "trading",
                                  tick_size(u.szDecimals, price), 1.0))
    return out


def parse_tickers(payload: bytes) -> dict[str, float] | None:
    """``metaAndAssetCtxs`` -> coin -> 24 h traded notional (``dayNtlVlm``, USDC ~ USD), listed coins only."""
    meta, ctxs = _decode_info(payload)
    if meta is None or ctxs is None:
        return None
    return {u.name: c.dayNtlVlm for u, c in zip(meta.universe, ctxs)
            if not u.isDelisted and 0.0 <= c.dayNtlVlm < _INF}


def parse_open_interest(payload: bytes, lookup: Callable[[str], int | None], ts_recv: int,
                        ref_price: float, out: list, flags: int = 0) -> Outcome:
    """``metaAndAssetCtxs`` -> OPEN_INTEREST for every registered coin (USD at its mark, else ``ref_price``).

    Entries with unusable numbers are skipped; MALFORMED only when none is usable.
    """
    meta, ctxs = _decode_info(payload)
    if meta is None or ctxs is None:
        return MALFORMED
    start, bad, seen = len(out), 0, 0
    for u, c in zip(meta.universe, ctxs):
        iid = lookup(u.name)
        if iid is None:
            continue
        seen += 1
        price = c.markPx if c.markPx is not None else ref_price
        oi = c.openInterest
        if not (0.0 <= price < _INF and 0.0 <= oi < _INF and oi * price < _INF):
            bad += 1
            continue
        out.append(open_interest(VENUE, flags, iid, ts_recv, ts_recv, price, oi))
    if len(out) > start:
        return EMITTED
    return MALFORMED if bad else IGNORED


def parse_l2_book(payload: bytes, lookup: Callable[[str], int | None], ts_recv: int, out: list,
                  flags: int = 0) -> Outcome:
    """``{"type":"l2Book","coin":"BTC"}`` body -> one BOOK_TOP flagged SNAPSHOT."""
    try:
        book = _book_decoder.decode(payload)
    except _DecodeErrors:
        return MALFORMED
    return _book_record(book, ts_recv, out, lookup, flags | Flag.SNAPSHOT)


# -- klines (the bot's candle bootstrap) --------------------------------------------
KLINE_PAGE = 1000                       # the venue keeps the last 5000 candles of a coin


def kline_request(symbol: str, start_ms: int, end_ms: int) -> tuple[str, dict, int]:
    """``(path, body, weight)`` of ``candleSnapshot`` for the 1-minute candles opening in [start_ms, end_ms)
    (POSTed): weight 20 plus one per 60 candles returned, counted for a full page."""
    return INFO_PATH, {"type": "candleSnapshot", "req": {"coin": symbol, "interval": "1m", "startTime": start_ms,
                                                         "endTime": end_ms - 1}}, 20 + -(-KLINE_PAGE // 60)


def parse_klines(payload: bytes, contract_size: float = 1.0) -> list[tuple] | None:
    """``candleSnapshot`` (objects ``{t, T, s, i, o, c, h, l, v: base volume, n: trades}``) -> (open ms, open, high, low, close, base volume, quote volume, trades or 0)
    oldest first, quote volume as ``v`` x the candle's mean of open and close (the venue sends none);
    None when malformed."""
    try:
        rows = msgspec.json.decode(payload)
        out = []
        for r in rows:
            o, c, v = float(r["o"]), float(r["c"]), float(r["v"])
            out.append((int(r["t"]), o, float(r["h"]), float(r["l"]), c, v, v * (o + c) / 2, int(r["n"])))
    except CANDLE_ERRORS:
        return None
    return sorted(out)


def base_from_symbol(symbol: str, quotes: tuple[str, ...] = ()) -> str:
    """Hyperliquid names perps by their base coin (``BTC``, ``kPEPE``): the symbol is the base."""
    return symbol
