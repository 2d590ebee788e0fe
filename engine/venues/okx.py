"""OKX v5 perpetual swaps: wire contract and a pure parser.

Contract (PROTOCOLS.md §3, as of 2026):

* One public socket class, ``wss://ws.okx.com:8443/ws/v5/public``; pushes are
  ``{"arg":{"channel":..,"instId":..},["action":"snapshot"|"update",]"data":[..]}``,
  numbers are JSON strings except ``seqId``/``prevSeqId``/``checksum``.
* Client messages: ``{"id":"1","op":"subscribe","args":[{"channel":..,"instId":..}]}``, acked
  one ``{"event":"subscribe","arg":{..},"connId":..}`` per arg, errors ``{"event":"error","code":..}``;
  480 subscribe/unsubscribe ops per hour per connection (so batch args), requests <= 64 KB,
  fewer than 30 channels on a connection carrying 400-level ``books``.
* Keepalive: the server drops a socket that pushed nothing for 30 s; the client
  sends the text ``ping`` and gets the text ``pong``.
* Quantities in trades, books and liquidations are **contracts**: base units =
  ``sz * ctVal`` (linear), ``sz * ctVal / px`` (inverse, ``ctVal`` in USD). The
  parser learns ``ctVal`` from the instrument list (``contract_sizes``).
* ``liquidation-orders`` (one subscription per ``instType``) is partial and may be
  out of order; ``side`` is the liquidation *order* side (``sell`` = long liquidated),
  ``posSide`` is ``long``/``short`` in hedge mode and ``net`` otherwise.
* ``books``: snapshot (``prevSeqId`` -1) then updates chained by ``prevSeqId ==``
  previous ``seqId``; an empty update with ``seqId == prevSeqId`` is a heartbeat,
  ``seqId < prevSeqId`` a sequence reset. ``checksum`` is fixed to 0 and unused.
* REST ``https://www.okx.com``: 20 requests per 2 s per endpoint (instruments,
  open interest); the instrument list is one unpaginated response per ``instType``.

Native symbols are instrument ids (``BTC-USDT-SWAP``). Stream names used by the
feed are ``<channel>:<instId>`` (``liquidation-orders:SWAP`` for the per-type channel).
"""
from __future__ import annotations

import math
from typing import Annotated, Callable, Generic, Literal, Mapping, Optional, TypeVar

import msgspec

from engine.books import prev_chain
from engine.record import Flag, Kind, Side, Venue
from engine.venues import ConnectionPlan, InstrumentInfo, Outcome
from engine.venues.common import (CANDLE_ERRORS, CONTROL, DECODE_ERRORS, EMITTED, IGNORED, MALFORMED, PARSED, TRADE,
                                  UNKNOWN, Bounded, Resolved, batches, book_top, array_candles)

__all__ = [
    "VENUE", "DEFAULT_WS_URLS", "DEFAULT_REST_URL", "Parser", "plan", "subscribe_messages", "unsubscribe_messages",
    "streams_for", "stream_symbol", "is_book_stream", "oi_request", "parse_open_interest", "parse_exchange_info",
    "parse_tickers", "contract_sizes", "ping_message", "base_from_symbol",
    "KLINE_PAGE", "kline_request", "parse_klines",
]

VENUE = Venue.OKX
DEFAULT_WS_URLS = {"public": "wss://ws.okx.com:8443/ws/v5/public"}
DEFAULT_REST_URL = "https://www.okx.com"
MESSAGE_INTERVAL_S = 0.1
MAX_STREAMS_PER_CONNECTION = 480       # no documented public cap; keeps one subscribe request far below 64 KB
MAX_BOOK_CHANNELS_PER_CONNECTION = 29  # "fewer than 30 channels" on sockets with 400-level books
MAX_ARGS_PER_SUBSCRIBE = 240           # ~13 KB per op; few ops matter (480 ops/hour/connection)
PING_INTERVAL_S = 20.0                 # the server closes a socket after 30 s without a push
REST_WEIGHT_PER_MINUTE = 600           # 20 requests / 2 s on each public endpoint, one request = weight 1
INST_TYPE = "SWAP"
QUANTITIES_IN_CONTRACTS = True         # the Parser needs contract_sizes (see Parser)
OI_STREAMED = True                     # the `open-interest` channel pushes OI; REST polling is a fallback
trade_stream_ids = False               # `tradeId` is the last id of an aggregation of `count` fills: ids skip
# channels each config stream kind maps to, and the socket class carrying them
CHANNELS = {
    "trades": (("trades", "public"),),
    "book": (("bbo-tbt", "public"), ("books", "books")),
    "mark": (("mark-price", "public"), ("funding-rate", "public")),
    "oi": (("open-interest", "public"),),
}
LIQUIDATION_STREAM = f"liquidation-orders:{INST_TYPE}"
SPARSE_CHANNELS = ("liquidation-orders:", "funding-rate:", "open-interest:")  # legitimately silent > 30 s
_SEQUENCED_BOOKS = frozenset({"books", "books-l2-tbt", "books50-l2-tbt"})
_BOOK_STREAMS = tuple(f"{c}:" for c in _SEQUENCED_BOOKS)
# the synced book (engine/books.py): seqId/prevSeqId chain incl. heartbeat and reset updates (§3.4);
# a gap resubscribes the symbol's book stream, which makes OKX push a new snapshot
BOOK_RULE = prev_chain
BOOK_SOURCE = "resubscribe"
_IGNORED_CHANNELS = frozenset({
    "tickers", "index-tickers", "price-limit", "estimated-price", "opt-summary", "instruments", "status",
    "block-tickers", "public-block-trades", "option-trades", "call-auction-details", "adl-warning",
})
_IGNORED_PREFIXES = ("candle", "mark-price-candle", "index-candle")
_CONTROL_EVENTS = frozenset({
    "subscribe", "unsubscribe", "error", "notice", "channel-conn-count", "channel-conn-count-error",
})
_MAX = 1e15   # bound on any price, size or amount: products of two stay finite (1e308 overflowed)
_MS = 1_000_000
_TS_MAX_MS = (1 << 63) // _MS       # an exchange time that still fits the record's int64 ns field


def ping_message() -> str:
    """The keepalive frame: the text ``ping`` (answered by the text ``pong``)."""
    return "ping"


# -- wire ------------------------------------------------------------------------

def streams_for(symbols: list[str], kinds: list[str]) -> dict[str, list[str]]:
    """Return stream names by socket class (``public``/``books``) for ``symbols``."""
    out: dict[str, list[str]] = {"public": [], "books": []}
    if "liquidations" in kinds:
        out["public"].append(LIQUIDATION_STREAM)
    for kind in kinds:
        for channel, cls in CHANNELS.get(kind, ()):
            out[cls].extend(f"{channel}:{s}" for s in symbols)
    return out


def plan(vcfg, ws_urls: dict[str, str] | None = None, subscribe_in_url: bool = False) -> list[ConnectionPlan]:
    """Shard the configured streams over sockets; ``books`` go on their own, under 30 per socket.

    OKX subscribes by message only, so ``subscribe_in_url`` is ignored.
    """
    url = {**DEFAULT_WS_URLS, **(ws_urls or vcfg.ws_urls or {})}["public"]
    per = max(1, min(vcfg.max_streams_per_connection, MAX_STREAMS_PER_CONNECTION))
    plans = []
    for cls, streams in streams_for(vcfg.symbols, vcfg.streams).items():
        n = min(per, MAX_BOOK_CHANNELS_PER_CONNECTION) if cls == "books" else per
        for i in range(0, len(streams), n):
            chunk = tuple(streams[i:i + n])
            watched = tuple(s for s in chunk if not s.startswith(SPARSE_CHANNELS))
            plans.append(ConnectionPlan(f"{cls}/{i // n}", url, chunk, watched, False))
    return plans


def _arg(stream: str) -> dict[str, str]:
    channel, _, key = stream.partition(":")
    return {"channel": channel, "instType" if channel == "liquidation-orders" else "instId": key}


def subscribe_messages(streams: tuple[str, ...] | list[str], first_id: int = 1) -> list[bytes]:
    """Return subscribe ops for ``streams``, as few as possible (each op counts against 480/hour)."""
    return [msgspec.json.encode({"id": str(first_id + n), "op": "subscribe", "args": [_arg(s) for s in batch]})
            for n, batch in enumerate(batches(streams, MAX_ARGS_PER_SUBSCRIBE))]


def stream_symbol(stream: str) -> str:
    """Native symbol of a stream name (``trades:BTC-USDT-SWAP`` -> ``BTC-USDT-SWAP``; per-type channels -> ``""``)."""
    channel, _, key = stream.partition(":")
    return "" if channel == "liquidation-orders" else key


def oi_request(symbol: str) -> tuple[str, dict[str, str], int]:
    """Return (path, query, weight) of one open-interest poll."""
    return "/api/v5/public/open-interest", {"instType": INST_TYPE, "instId": symbol}, 1


EXCHANGE_INFO_REQUEST = ("/api/v5/public/instruments", {"instType": INST_TYPE}, 1)
TICKERS_REQUEST = ("/api/v5/market/tickers", {"instType": INST_TYPE}, 1)


def is_book_stream(stream: str) -> bool:
    """Whether ``stream`` is a sequenced book (resubscribing it makes OKX push a fresh snapshot)."""
    return stream.startswith(_BOOK_STREAMS)


def unsubscribe_messages(streams: tuple[str, ...] | list[str], first_id: int = 1) -> list[bytes]:
    """Return unsubscribe ops for ``streams`` (book resync: unsubscribe, then subscribe again)."""
    return [m.replace(b'"op":"subscribe"', b'"op":"unsubscribe"', 1) for m in subscribe_messages(streams, first_id)]


# -- messages ----------------------------------------------------------------------

class Arg(msgspec.Struct, gc=False):
    channel: str
    instId: str = ""
    instType: str = ""


# checked by the decoder (out of range: the frame is MALFORMED): an exchange time in ms, a count or id
_Ms = Annotated[int, msgspec.Meta(ge=0, lt=_TS_MAX_MS)]
_Count = Annotated[int, msgspec.Meta(ge=0)]


class TradeData(msgspec.Struct, gc=False):
    """``{"instId":"BTC-USDT","tradeId":"338476307","px":"30236","sz":"0.0002","side":"buy","ts":"1652459224818"}``"""

    instId: str
    px: Bounded
    sz: Bounded
    side: Literal["buy", "sell"]
    ts: _Ms
    tradeId: _Count = 0
    count: _Count = 1


class LiqDetail(msgspec.Struct, gc=False):
    """``{"bkLoss":"0","bkPx":"0.007831","ccy":"","posSide":"short","side":"buy","sz":"13","ts":"1692266434010"}``"""

    side: str
    bkPx: float
    sz: float
    ts: int
    posSide: str = ""


class LiqGroup(msgspec.Struct, gc=False):
    instId: str
    details: list[LiqDetail]
    instType: str = ""


class BookData(msgspec.Struct, gc=False):
    """``{"asks":[["8476.98","415","0","13"]],"bids":[["8476.97","256","0","12"]],"ts":"1597026383085","checksum":0,"prevSeqId":-1,"seqId":123456}``"""

    asks: msgspec.Raw
    bids: msgspec.Raw
    ts: int
    seqId: Optional[int] = None
    prevSeqId: Optional[int] = None


class MarkData(msgspec.Struct, gc=False):
    """``{"instType":"SWAP","instId":"BTC-USDT-SWAP","markPx":"84660.1","ts":"1744590349506"}``"""

    instId: str
    markPx: float
    ts: int


class FundingData(msgspec.Struct, gc=False):
    """``{"instId":"BTC-USDT-SWAP","fundingRate":"0.0001","fundingTime":"1744590349506","nextFundingTime":"1744619149506","ts":"1744590349506"}``"""

    instId: str
    fundingRate: float
    fundingTime: int = 0
    settFundingRate: str = ""    # the rate of the last settlement ("" when not sent)
    ts: int = 0


class OiData(msgspec.Struct, gc=False):
    """``{"instId":"BTC-USDT-SWAP","instType":"SWAP","oi":"2216113.01","oiCcy":"22161.1301","oiUsd":"1939251795.54","ts":"1743041250440"}``"""

    instId: str
    oiCcy: float
    ts: int
    oiUsd: Optional[float] = None


_Item = TypeVar("_Item")


class Frame(msgspec.Struct, Generic[_Item], gc=False):
    """A push on one channel: ``{"arg": {...}, "data": [items]}``."""

    arg: Arg
    data: list[_Item]


class BooksFrame(msgspec.Struct, gc=False):
    arg: Arg
    data: list[BookData]
    action: str = ""


TradesFrame = Frame[TradeData]
LiquidationFrame = Frame[LiqGroup]
MarkFrame = Frame[MarkData]
FundingFrame = Frame[FundingData]
OiFrame = Frame[OiData]


class _Head(msgspec.Struct):
    """Lenient view of any JSON object, used to route a frame the fast path did not take."""

    arg: object = None
    event: object = None


class _OiResponse(msgspec.Struct, gc=False):
    data: list[OiData]
    code: str = "0"


class _Instrument(msgspec.Struct):
    instId: str
    instType: str = ""
    uly: str = ""
    instFamily: str = ""
    baseCcy: str = ""
    quoteCcy: str = ""
    settleCcy: str = ""
    ctVal: str = ""
    ctMult: str = ""
    ctType: str = ""
    tickSz: str = ""
    state: str = ""


class _Instruments(msgspec.Struct):
    data: list[_Instrument]
    code: str = "0"


class _Ticker(msgspec.Struct):
    instId: str
    instType: str = ""
    last: str = ""
    volCcy24h: str = ""


class _Tickers(msgspec.Struct):
    data: list[_Ticker]
    code: str = "0"


def _decoder(t):
    return msgspec.json.Decoder(t, strict=False)


_head_decoder = msgspec.json.Decoder(_Head)
_levels_decoder = _decoder(list[list[float]])
_oi_decoder = _decoder(_OiResponse)
_instruments_decoder = _decoder(_Instruments)
_tickers_decoder = _decoder(_Tickers)
_DecodeErrors = DECODE_ERRORS + (IndexError,)
_PREFIX = b'{"arg":{"channel":"'
_P = len(_PREFIX)
_TAKER = {"buy": Side.BUY, "sell": Side.SELL}
# (side, posSide) -> liquidated position; the order side closes the position on the other side
_LIQ_SIDE = {("sell", "long"): Side.LONG, ("sell", "net"): Side.LONG, ("sell", ""): Side.LONG,
             ("buy", "short"): Side.SHORT, ("buy", "net"): Side.SHORT, ("buy", ""): Side.SHORT}



def _qty_notional(sz: float, ct: float, inverse: bool, px: float) -> tuple[float, float]:
    """(base quantity, USD notional) of ``sz`` contracts at ``px``: ``ctVal`` is USD for inverse, base for linear."""
    if inverse:
        return sz * ct / px, sz * ct
    qty = sz * ct
    return qty, qty * px


def _is_inverse(inst_id: str) -> bool:
    """Coin-margined derivatives are ``X-USD-SWAP`` / ``X-USD-YYMMDD`` (spot ``X-USD`` has two parts)."""
    parts = inst_id.split("-")
    return len(parts) == 3 and parts[1] == "USD"


class Parser:
    """Turn OKX public frames into record tuples.

    ``lookup`` maps an instrument id (``"BTC-USDT-SWAP"``) to an instrument id or
    None (frames of unregistered instruments are IGNORED). ``contract_sizes`` maps an
    instrument id to its ``ctVal`` (see :func:`contract_sizes`): base units per
    contract for linear swaps, USD per contract for inverse ones, 1.0 for spot. It is
    read, not copied, so the feed may fill it later. There is deliberately no
    default: OKX quotes contracts, so a trade, book or liquidation of an instrument
    without a known size is IGNORED (and counted in ``unsized``) rather than
    misstated. Mark price, funding and open interest need no size.

    State kept between frames: the last mark and funding per instrument (a MARK
    record carries both; OKX sends them on two channels). ``books`` (an
    :class:`engine.books.BookSet`, set by :func:`engine.books.attach`) keeps the
    sequenced ``books`` channel synced; without it a snapshot is one BOOK_TOP and
    updates are PARSED.
    """

    books = None
    venue = VENUE   # TRADE records' venue id (engine.venues.okx_spot parses the same trades as OKX_SPOT)

    def __init__(self, lookup: Callable[[str], int | None], flags: int = 0,
                 contract_sizes: Mapping[str, float] | None = None):
        self.lookup = lookup
        self.flags = flags
        self.contract_sizes = {} if contract_sizes is None else contract_sizes
        self.unsized = 0
        self._units = Resolved(self._units_of)   # inst_id -> (instrument id, ctVal, inverse), kept once known
        self._mark: dict[str, float] = {}
        self._funding: dict[str, tuple[float, float, float]] = {}   # rate, fundingTime, settled rate
        entries = {
            "trades": (TradesFrame, self._trades),
            "liquidation-orders": (LiquidationFrame, self._liquidations),
            "mark-price": (MarkFrame, self._marks),
            "funding-rate": (FundingFrame, self._funding_rates),
            "open-interest": (OiFrame, self._open_interest),
            "bbo-tbt": (BooksFrame, self._book_tops),
            "books5": (BooksFrame, self._book_tops),
            **{c: (BooksFrame, self._books) for c in _SEQUENCED_BOOKS},
        }
        decoders = {t: _decoder(t) for t in {t for t, _ in entries.values()}}
        self._routes = {c: (decoders[t], h) for c, (t, h) in entries.items()}
        self._fast = {c.encode(): r for c, r in self._routes.items()}

    def parse(self, payload: bytes, ts_recv: int, out: list) -> tuple[Outcome, str]:
        """Parse one frame; append records to ``out``; return (outcome, stream name)."""
        start = len(out)
        try:
            if payload[:_P] == _PREFIX:
                route = self._fast.get(payload[_P:payload.find(b'"', _P)])
                if route is not None:
                    return route[1](route[0].decode(payload), ts_recv, out)
            return self._slow(payload, ts_recv, out)
        except _DecodeErrors:
            del out[start:]   # a later element of the frame failed after earlier ones were appended
            return self._classify_bad(payload)

    def _slow(self, payload: bytes, ts_recv: int, out: list) -> tuple[Outcome, str]:
        """Keepalive replies, events, known channels in another key order, unknown channels."""
        if payload == b"pong":
            return CONTROL, ""
        head = _head_decoder.decode(payload)
        stream = _stream_of(head.arg)
        if head.event is not None:
            if not isinstance(head.event, str):
                return MALFORMED, stream
            return (CONTROL if head.event in _CONTROL_EVENTS else UNKNOWN), stream
        if not stream:
            return MALFORMED, ""
        channel = head.arg["channel"]
        route = self._routes.get(channel)
        if route is not None:
            return route[1](route[0].decode(payload), ts_recv, out)
        if channel in _IGNORED_CHANNELS or channel.startswith(_IGNORED_PREFIXES):
            return IGNORED, stream
        return UNKNOWN, stream

    @staticmethod
    def _classify_bad(payload: bytes) -> tuple[Outcome, str]:
        """A frame that failed to decode: an event in an unusual shape, or broken."""
        try:
            head = _head_decoder.decode(payload)
        except _DecodeErrors:
            return MALFORMED, ""
        stream = _stream_of(head.arg)
        if isinstance(head.event, str):
            return (CONTROL if head.event in _CONTROL_EVENTS else UNKNOWN), stream
        return MALFORMED, stream

    def _units_of(self, inst_id: str) -> tuple[int, float, bool] | None:
        """(instrument id, ctVal, inverse) of a registered, sized instrument, else None (``self._units`` keeps it)."""
        iid = self.lookup(inst_id)
        if iid is None:
            return None
        ct = self.contract_sizes.get(inst_id)
        if ct is None or not 0.0 < ct < _MAX:
            self.unsized += 1
            return None
        return iid, float(ct), _is_inverse(inst_id)

    # -- handlers: each returns (Outcome, stream) ------------------------------------
    def _trades(self, f: TradesFrame, ts_recv: int, out: list) -> tuple[Outcome, str]:
        """``{"arg":{"channel":"trades","instId":"BTC-USDT"},"data":[{"instId":"BTC-USDT","tradeId":"338476307","px":"30236","sz":"0.0002","side":"buy","ts":"1652459224818"}]}``"""
        stream = "trades:" + f.arg.instId
        start = len(out)
        skipped = False
        units_of = self._units
        for d in f.data:
            px, sz = d.px, d.sz   # every field bounded by the decoder
            if px == 0.0 or sz == 0.0:
                continue
            units = units_of[d.instId]
            if units is None:
                skipped = True
                continue
            iid, ct, inverse = units
            qty, notional = _qty_notional(sz, ct, inverse, px)
            out.append((TRADE, self.venue, _TAKER[d.side], self.flags, iid, d.ts * _MS, ts_recv,
                        px, qty, notional, float(d.tradeId), float(d.count)))
        return (EMITTED if len(out) > start else IGNORED if skipped else PARSED), stream

    def _liquidations(self, f: LiquidationFrame, ts_recv: int, out: list) -> tuple[Outcome, str]:
        """``{"arg":{"channel":"liquidation-orders","instType":"SWAP"},"data":[{"details":[{"bkLoss":"0","bkPx":"0.007831","ccy":"","posSide":"short","side":"buy","sz":"13","ts":"1692266434010"}],"instFamily":"IOST-USDT","instId":"IOST-USDT-SWAP","instType":"SWAP","uly":"IOST-USDT"}]}``

        One subscription covers every swap: groups of unregistered instruments are skipped.
        """
        stream = "liquidation-orders:" + f.arg.instType
        start = len(out)
        skipped = False
        flags = self.flags | Flag.CAPPED   # OKX: "doesn't represent the total number of liquidations"
        for g in f.data:
            units = None
            for d in g.details:
                side = _LIQ_SIDE.get((d.side, d.posSide))
                px, sz, ts = d.bkPx, d.sz, d.ts
                if side is None or not (0.0 < px < _MAX and 0.0 <= sz < _MAX and 0 <= ts < _TS_MAX_MS):
                    del out[start:]
                    return MALFORMED, stream
                if sz == 0.0:
                    continue
                if units is None:
                    units = self._units[g.instId]
                    if units is None:
                        skipped = True
                        break
                iid, ct, inverse = units
                qty, notional = _qty_notional(sz, ct, inverse, px)
                out.append((Kind.LIQUIDATION, VENUE, side, flags, iid, ts * _MS, ts_recv,
                            px, qty, notional, px, 0.0))
        return (EMITTED if len(out) > start else IGNORED if skipped else PARSED), stream

    def _top(self, d: BookData, units: tuple[int, float, bool], flags: int, ts_recv: int, out: list) -> Outcome:
        bids = _levels_decoder.decode(d.bids)
        asks = _levels_decoder.decode(d.asks)
        if not (0 <= d.ts < _TS_MAX_MS):
            return MALFORMED
        if not bids or not asks:
            return PARSED
        (bid, bq, *_), (ask, aq, *_) = bids[0], asks[0]
        iid, ct, inverse = units
        if inverse:
            if not (bid > 0.0 and ask > 0.0):
                return MALFORMED
            bq, aq = bq * ct / bid, aq * ct / ask
        else:
            bq, aq = bq * ct, aq * ct
        return book_top(VENUE, flags, iid, d.ts * _MS, ts_recv, bid, bq, ask, aq, out)

    def _book_tops(self, f: BooksFrame, ts_recv: int, out: list, flags: int = -1) -> tuple[Outcome, str]:
        """``bbo-tbt`` / ``books5``: every push is a complete top -> BOOK_TOP.

        ``{"arg":{"channel":"bbo-tbt","instId":"BTC-USDT"},"data":[{"asks":[["8476.98","415","0","13"]],"bids":[["8476.97","256","0","12"]],"ts":"1597026383085","seqId":123456}]}``
        """
        channel, inst = f.arg.channel, f.arg.instId
        stream = f"{channel}:{inst}"
        if not f.data:
            return PARSED, stream
        units = self._units[inst]
        if units is None:
            return IGNORED, stream
        if flags < 0:
            flags = self.flags | Flag.SNAPSHOT if channel == "books5" else self.flags
        start = len(out)
        outcome = PARSED
        for d in f.data:
            outcome = self._top(d, units, flags, ts_recv, out)
            if outcome is MALFORMED:
                del out[start:]
                return MALFORMED, stream
        return (EMITTED if len(out) > start else outcome), stream

    def _books(self, f: BooksFrame, ts_recv: int, out: list) -> tuple[Outcome, str]:
        """Sequenced books -> the synced book (``books``); without one a snapshot is a BOOK_TOP
        (SNAPSHOT) and an update is PARSED.

        ``{"arg":{"channel":"books","instId":"BTC-USDT"},"action":"update","data":[{"asks":[["8476.98","415","0","13"]],"bids":[],"ts":"1597026383085","checksum":0,"prevSeqId":123456,"seqId":123457}]}``
        """
        channel, inst = f.arg.channel, f.arg.instId
        stream = f"{channel}:{inst}"
        snapshot = f.action == "snapshot"
        if not snapshot and f.action != "update":
            return MALFORMED, stream
        books = self.books
        if books is None:
            if not snapshot:
                return PARSED, stream
            return self._book_tops(f, ts_recv, out, self.flags | Flag.SNAPSHOT)
        units = self._units[inst]
        if units is None:
            return IGNORED, stream
        iid, ct, inverse = units
        start = len(out)
        outcome = PARSED
        for d in f.data:
            if not 0 <= d.ts < _TS_MAX_MS:
                return MALFORMED, stream
            bids, asks = _pairs(d.bids, ct, inverse), _pairs(d.asks, ct, inverse)
            scale = 1.0 if inverse else ct
            # frames from before 2023 carry no sequence: chain them as 0 -> 0 (unchecked)
            seq = 0 if d.seqId is None else d.seqId
            prev = seq if d.prevSeqId is None else d.prevSeqId
            if snapshot:
                outcome = books.snapshot(inst, iid, seq, bids, asks, d.ts * _MS, ts_recv, out, scale=scale)
            else:
                outcome = books.delta(inst, iid, seq, seq, prev, bids, asks, d.ts * _MS, ts_recv, out, scale=scale)
        return (EMITTED if len(out) > start else outcome), stream

    def _marks(self, f: MarkFrame, ts_recv: int, out: list) -> tuple[Outcome, str]:
        """``{"arg":{"channel":"mark-price","instId":"BTC-USDT-SWAP"},"data":[{"instType":"SWAP","instId":"BTC-USDT-SWAP","markPx":"84660.1","ts":"1744590349506"}]}``

        MARK carries the last funding rate seen on ``funding-rate`` (0 until the first one).
        """
        stream = "mark-price:" + f.arg.instId
        start = len(out)
        outcome = PARSED
        for d in f.data:
            px, ts = d.markPx, d.ts
            if not (0.0 < px < _MAX and 0 <= ts < _TS_MAX_MS):
                del out[start:]
                return MALFORMED, stream
            iid = self.lookup(d.instId)
            if iid is None:
                outcome = IGNORED
                continue
            self._mark[d.instId] = px
            rate, next_time, settled = self._funding.get(d.instId, (0.0, 0.0, 0.0))
            out.append((Kind.MARK, VENUE, 0, self.flags, iid, ts * _MS, ts_recv, px, 0.0, settled, rate, next_time))
        return (EMITTED if len(out) > start else outcome), stream

    def _funding_rates(self, f: FundingFrame, ts_recv: int, out: list) -> tuple[Outcome, str]:
        """``{"arg":{"channel":"funding-rate","instId":"BTC-USDT-SWAP"},"data":[{"instId":"BTC-USDT-SWAP","fundingRate":"0.0001","fundingTime":"1744590349506","nextFundingTime":"1744619149506","ts":"1744590349506"}]}``

        ``fundingTime`` is the settlement of the current rate (Binance's ``T``); ``settFundingRate``, the
        rate of the last settlement, rides in the MARK ``notional`` (0 when not sent). Emits MARK
        (with the last mark price) once a mark is known; before that the rates are only kept.
        """
        stream = "funding-rate:" + f.arg.instId
        start = len(out)
        outcome = PARSED
        for d in f.data:
            rate, ts = d.fundingRate, d.ts
            try:
                settled = float(d.settFundingRate) if d.settFundingRate else 0.0
            except ValueError:
                settled = math.nan
            if not (-_MAX < rate < _MAX and -_MAX < settled < _MAX and 0 <= d.fundingTime < _TS_MAX_MS
                    and 0 <= ts < _TS_MAX_MS):
                del out[start:]
                return MALFORMED, stream
            iid = self.lookup(d.instId)
            if iid is None:
                outcome = IGNORED
                continue
            self._funding[d.instId] = (rate, float(d.fundingTime), settled)
            mark = self._mark.get(d.instId)
            if mark is not None:
                out.append((Kind.MARK, VENUE, 0, self.flags, iid, ts * _MS, ts_recv, mark, 0.0, settled,
                            rate, float(d.fundingTime)))
        return (EMITTED if len(out) > start else outcome), stream

    def _open_interest(self, f: OiFrame, ts_recv: int, out: list) -> tuple[Outcome, str]:
        """``{"arg":{"channel":"open-interest","instId":"BTC-USDT-SWAP"},"data":[{"instId":"BTC-USDT-SWAP","instType":"SWAP","oi":"2216113.01000000309","oiCcy":"22161.1301000000309","oiUsd":"1939251795.54769270396321","ts":"1743041250440"}]}``"""
        stream = "open-interest:" + f.arg.instId
        start = len(out)
        outcome = PARSED
        for d in f.data:
            r = _oi_record(d, self.lookup, ts_recv, self._mark.get(d.instId, 0.0), self.flags, out)
            if r is MALFORMED:
                del out[start:]
                return MALFORMED, stream
            if r is IGNORED:
                outcome = IGNORED
        return (EMITTED if len(out) > start else outcome), stream


def _pairs(raw: msgspec.Raw, ct: float, inverse: bool) -> list[tuple[float, float]]:
    """``[["px","sz","0","n"], ..]`` -> ``[(px, sz)]`` for the book; inverse sizes become base units here."""
    levels = _levels_decoder.decode(raw)
    if inverse:
        return [(lv[0], lv[1] * ct / lv[0] if lv[0] > 0.0 else lv[1]) for lv in levels]
    return [(lv[0], lv[1]) for lv in levels]


def _stream_of(arg: object) -> str:
    """Stream name of a frame's ``arg`` object, "" when it has none."""
    if not isinstance(arg, dict):
        return ""
    channel = arg.get("channel")
    if not isinstance(channel, str):
        return ""
    key = arg.get("instType") if channel == "liquidation-orders" else arg.get("instId")
    return f"{channel}:{key if isinstance(key, str) else ''}"


def _oi_record(d: OiData, lookup, ts_recv: int, ref_price: float, flags: int, out: list) -> Outcome:
    """OPEN_INTEREST from one OI object: base = ``oiCcy``, USD = ``oiUsd`` (else at ``ref_price``)."""
    oi, usd, ts = d.oiCcy, d.oiUsd, d.ts
    if usd is None:
        usd = oi * ref_price
    if not (0.0 <= oi < _MAX and 0.0 <= usd < _MAX and 0.0 <= ref_price < _MAX and 0 <= ts < _TS_MAX_MS):
        return MALFORMED
    iid = lookup(d.instId)
    if iid is None:
        return IGNORED
    price = usd / oi if oi > 0.0 else ref_price
    out.append((Kind.OPEN_INTEREST, VENUE, 0, flags, iid, ts * _MS, ts_recv, price, oi, usd, 0.0, 0.0))
    return EMITTED


# -- REST ------------------------------------------------------------------------

def parse_open_interest(payload: bytes, lookup: Callable[[str], int | None], ts_recv: int,
                        ref_price: float, out: list, flags: int = 0) -> Outcome:
    """``GET /api/v5/public/open-interest`` (one or all swaps) -> OPEN_INTEREST records.

    ``{"code":"0","data":[{"instId":"BTC-USDT-SWAP","instType":"SWAP","oi":"2216113.01","oiCcy":"22161.13","oiUsd":"1939251795.5","ts":"1743041250440"}],"msg":""}``
    """
    try:
        msg = _oi_decoder.decode(payload)
    except _DecodeErrors:
        return MALFORMED
    if msg.code != "0":
        return MALFORMED
    start = len(out)
    outcome = PARSED
    for d in msg.data:
        r = _oi_record(d, lookup, ts_recv, ref_price, flags, out)
        if r is MALFORMED:
            del out[start:]
            return MALFORMED
        if r is IGNORED:
            outcome = IGNORED
    return EMITTED if len(out) > start else outcome


def _num(text: str, default: float = 0.0) -> float:
    try:
        v = float(text)
    except ValueError:
        return default
    return v if math.isfinite(v) else default


_CONTRACT_TYPES = {"SWAP": "perpetual", "FUTURES": "future", "SPOT": "spot", "MARGIN": "spot"}


def parse_exchange_info(payload: bytes) -> list[InstrumentInfo] | None:
    """``GET /api/v5/public/instruments`` -> every instrument, or None if the body is unusable.

    ``contract_size`` is ``ctVal * ctMult``: base units per contract for linear
    contracts, **USD** per contract for inverse ones (``quote == "USD"``), 1.0 for spot.
    """
    try:
        msg = _instruments_decoder.decode(payload)
    except _DecodeErrors:
        return None
    if msg.code != "0":
        return None
    out = []
    for i in msg.data:
        kind = _CONTRACT_TYPES.get(i.instType, "other")
        if kind == "spot":
            base, quote, size = i.baseCcy, i.quoteCcy, 1.0
        else:
            family = (i.instFamily or i.uly or i.instId).split("-")
            base, quote = family[0], family[1] if len(family) > 1 else i.settleCcy
            size = _num(i.ctVal) * _num(i.ctMult, 1.0) if i.ctMult else _num(i.ctVal)
        if not base:
            base = i.instId.split("-")[0]
        state = i.state.lower()
        out.append(InstrumentInfo(i.instId, base, quote, kind, "trading" if state == "live" else state,
                                  _num(i.tickSz), size))
    return out


def contract_sizes(infos: list[InstrumentInfo] | None) -> dict[str, float]:
    """The ``contract_sizes`` mapping for :class:`Parser` from :func:`parse_exchange_info` output."""
    return {i.symbol: i.contract_size for i in infos or () if i.contract_size > 0.0}


def parse_tickers(payload: bytes) -> dict[str, float] | None:
    """``GET /api/v5/market/tickers`` -> instrument id -> 24 h traded volume in USD.

    ``volCcy24h`` is base currency for derivatives (times ``last`` = USD) and quote
    currency for spot.
    """
    try:
        msg = _tickers_decoder.decode(payload)
    except _DecodeErrors:
        return None
    if msg.code != "0":
        return None
    out = {}
    for t in msg.data:
        vol = _num(t.volCcy24h, -1.0)
        if vol < 0.0:
            continue
        if t.instType not in ("SPOT", "MARGIN"):
            last = _num(t.last, -1.0)
            if last < 0.0:
                continue
            vol *= last
        out[t.instId] = vol
    return out


# -- klines (the bot's candle bootstrap) --------------------------------------------
KLINE_PATH = "/api/v5/market/history-candles"   # any age (``/market/candles`` reaches back 1440 bars only)
KLINE_PAGE = 100                        # its most rows a request; 20 requests / 2 s, weight 1 here


def kline_request(symbol: str, start_ms: int, end_ms: int) -> tuple[str, dict, int]:
    """``(path, params, weight)`` for the 1-minute candles opening in [start_ms, end_ms) (at most KLINE_PAGE):
    ``after`` asks for bars older than it, ``before`` for bars newer than it."""
    return KLINE_PATH, {"instId": symbol, "bar": "1m", "after": end_ms, "before": start_ms - 1,
                        "limit": KLINE_PAGE}, 1


def parse_klines(payload: bytes, contract_size: float = 1.0, base: int = 6) -> list[tuple] | None:
    """``GET /api/v5/market/history-candles`` (``data`` of ``[ts, o, h, l, c, vol (contracts), volCcy (base),
    volCcyQuote, confirm]`` strings, newest first) -> (open ms, open, high, low, close, base volume, quote volume,
    trades or 0) oldest first, base volume from column ``base`` (a swap's ``volCcy``; a spot pair's is ``vol``);
    None when malformed or ``code`` is not "0"."""
    try:
        body = msgspec.json.decode(payload)
        return array_candles(body["data"], base=base, quote=7) if body["code"] == "0" else None
    except CANDLE_ERRORS:
        return None


def base_from_symbol(symbol: str) -> str:
    """Fallback when the instrument list is unavailable: ``BTC-USDT-SWAP`` -> ``BTC``."""
    return symbol.split("-", 1)[0]
