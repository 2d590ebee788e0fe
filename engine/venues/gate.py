"""Gate.io USDT-settled perpetual futures: wire contract and a pure parser.

Contract (PROTOCOLS.md §4, as of 2026):

* One JSON socket ``wss://fx-ws.gateio.ws/v4/ws/usdt`` carries every channel.
  Client frame ``{"time":s,"channel":"futures.trades","event":"subscribe","payload":["BTC_USDT"]}``;
  ack ``{"time":..,"time_ms":..,"channel":..,"event":"subscribe","result":{"status":"success"}}``
  (an ``error`` object when refused). No documented subscription cap: sockets are
  split by ``max_streams_per_connection`` anyway.
* Keepalive: the server sends protocol pings (websockets answers them); the client
  also sends ``{"time":s,"channel":"futures.ping"}`` every ``PING_INTERVAL_S`` and gets
  ``{"channel":"futures.pong",...}``.
* Sizes are **contracts**, signed; base units = ``abs(size) * quanto_multiplier``
  (REST ``/futures/usdt/contracts``). With the request header ``X-Gate-Size-Decimal: 1``
  (:data:`WS_HEADERS`; :data:`REST_HEADERS` on REST) sizes are decimal strings, else floored integers: both parse.
* ``futures.trades``: sign of ``size`` is the taker side (+ buy); ``is_internal`` fills
  (insurance fund / ADL takeovers) are flagged ``NON_MARKET``.
* ``futures.public_liquidates``: batches of liquidation orders; ``size < 0`` is a sell
  order, i.e. a **long** position liquidated (inferred, §4.2 / §11.2). Item ``time`` is ms
  since 2026-08-20 and seconds before, when the stream was capped at one order per
  contract per second: seconds-stamped items are flagged ``CAPPED``.
* Book: ``futures.order_book_update`` (``U``/``u`` ids, continuity ``U == last u + 1``
  against a REST ``/futures/usdt/order_book?with_id=true`` snapshot of the same level
  count), ``futures.obu`` (V2, ``full`` snapshot first), ``futures.book_ticker`` (BBO).
* Mark/index/funding: ``futures.tickers``; open interest: REST ``/futures/usdt/contracts/{c}``
  ``position_size`` (contracts) or WS ``futures.contract_stats`` ``open_interest``.
* Times: envelope ``time`` s and ``time_ms`` ms; trades ``create_time_ms``; stats ``time`` s.

The parser is pure: bytes in, record tuples appended to a caller's list; the
receive time, the symbol -> instrument lookup and the contract sizes are passed in.
"""
from __future__ import annotations

import time
from typing import Callable, Mapping, Union

import msgspec

from engine.books import id_range
from engine.record import Flag, Kind, Side, Venue
from engine.venues import ConnectionPlan, InstrumentInfo, Outcome
from engine.venues.common import (CANDLE_ERRORS, CONTROL, DECODE_ERRORS, EMITTED, IGNORED, MALFORMED, PARSED, UNKNOWN,
                                   Bounded, InstrumentIds, batches, book_top, open_interest)

__all__ = [
    "VENUE", "DEFAULT_WS_URLS", "DEFAULT_REST_URL", "Parser", "plan", "subscribe_messages", "streams_for",
    "stream_symbol", "ping_message", "oi_request", "parse_open_interest", "parse_exchange_info", "parse_tickers",
    "depth_snapshot_request", "parse_depth_snapshot", "base_from_symbol",
    "KLINE_PAGE", "kline_request", "parse_klines",
]

VENUE = Venue.GATE
DEFAULT_WS_URLS = {"usdt": "wss://fx-ws.gateio.ws/v4/ws/usdt"}
DEFAULT_REST_URL = "https://api.gateio.ws/api/v4"
WS_HEADERS = {"X-Gate-Size-Decimal": "1"}   # decimal contract sizes (integers are floored without it)
REST_HEADERS = WS_HEADERS                    # the same on REST: book snapshots, tickers, contract stats
MAX_STREAMS_PER_CONNECTION = 400     # no documented cap; Gate advises splitting heavy subscriptions
MAX_CONTRACTS_PER_SUBSCRIBE = 100
MESSAGE_INTERVAL_S = 0.11            # no documented client-message rate; stay at 10/s like the simulator
PING_INTERVAL_S = 15.0
INVERSE_CONTRACT_USD = 1.0          # an inverse contract is worth 1 USD (its listing's quanto_multiplier is "0")
REST_WEIGHT_PER_MINUTE = 600         # one weight per request; public futures REST is limited per endpoint
BOOK_INTERVAL = "100ms"
BOOK_LEVEL = "20"                    # WS level; the REST snapshot `limit` must be the same
# the local book: order_book_update deltas synced against the REST snapshot (§4.4) by engine/books.py
BOOK_RULE = id_range
BOOK_SOURCE = "rest"
CHANNELS = {
    "liquidations": "futures.public_liquidates",
    "trades": "futures.trades",
    "mark": "futures.tickers",
    "book": ("futures.book_ticker", "futures.order_book_update"),
}
SPARSE_CHANNELS = ("futures.public_liquidates:",)   # silent for hours in calm markets: never "stale"
trade_stream_ids = False             # ids rise per contract, but consecutiveness is not documented
_IGNORED_CHANNELS = frozenset({
    "futures.candlesticks", "futures.order_book", "futures.contract_info", "futures.contract_stats_all",
})
_CONTROL_CHANNELS = frozenset({"futures.pong", "futures.ping", "futures.system"})
_MAX = 1e15   # bound on any price, size or amount: products of two stay finite (1e308 overflowed)
_MS = 1_000_000


# -- wire ------------------------------------------------------------------------

def streams_for(symbols: list[str], kinds: list[str]) -> list[str]:
    """Return ``"<channel>:<contract>"`` stream names for ``symbols`` (OI comes from REST)."""
    out = []
    for kind in kinds:
        channels = CHANNELS.get(kind, ())
        for ch in (channels,) if isinstance(channels, str) else channels:
            out.extend(f"{ch}:{s}" for s in symbols)
    return out


def plan(vcfg, ws_urls: dict[str, str] | None = None, subscribe_in_url: bool = False) -> list[ConnectionPlan]:
    """Shard the configured streams over sockets of at most ``max_streams_per_connection``."""
    url = {**DEFAULT_WS_URLS, **(ws_urls or vcfg.ws_urls or {})}["usdt"]
    per = max(1, min(vcfg.max_streams_per_connection, MAX_STREAMS_PER_CONNECTION))
    streams = streams_for(vcfg.symbols, vcfg.streams)
    plans = []
    for i in range(0, len(streams), per):
        chunk = tuple(streams[i:i + per])
        watched = tuple(s for s in chunk if not s.startswith(SPARSE_CHANNELS))
        plans.append(ConnectionPlan(f"usdt/{i // per}", url, chunk, watched, False))
    return plans


def subscribe_messages(streams: tuple[str, ...] | list[str], first_id: int = 1) -> list[bytes]:
    """Return subscribe frames: one per channel (contracts batched), one per order-book contract."""
    now = int(time.time())
    by_channel: dict[str, list[str]] = {}
    for s in streams:
        channel, _, contract = s.partition(":")
        by_channel.setdefault(channel, []).append(contract)
    msgs = []
    for channel, contracts in by_channel.items():
        if channel == "futures.order_book_update":
            payloads = [[c, BOOK_INTERVAL, BOOK_LEVEL] for c in contracts]
        else:
            payloads = batches(contracts, MAX_CONTRACTS_PER_SUBSCRIBE)
        for p in payloads:
            msgs.append(msgspec.json.encode({"time": now, "id": first_id + len(msgs), "channel": channel,
                                             "event": "subscribe", "payload": p}))
    return msgs


def stream_symbol(stream: str) -> str:
    """Native contract of a stream name (``futures.trades:BTC_USDT`` -> ``BTC_USDT``)."""
    contract = stream.partition(":")[2]
    return "" if contract.startswith("!") else contract


def ping_message() -> str:
    """The application-level keepalive; the server answers ``futures.pong``."""
    return f'{{"time":{int(time.time())},"channel":"futures.ping"}}'


def oi_request(symbol: str) -> tuple[str, dict[str, str], int]:
    """Return (path, query, weight) of one open-interest poll (the contract's ``position_size``)."""
    return f"/futures/usdt/contracts/{symbol}", {}, 1


def depth_snapshot_request(symbol: str, limit: int = int(BOOK_LEVEL)) -> tuple[str, dict[str, str], int]:
    """Return (path, query, weight) of the REST book snapshot that anchors ``order_book_update`` ids."""
    return "/futures/usdt/order_book", {"contract": symbol, "limit": str(limit), "with_id": "true"}, 1


EXCHANGE_INFO_REQUEST = ("/futures/usdt/contracts", {}, 1)
TICKERS_REQUEST = ("/futures/usdt/tickers", {}, 1)


# -- messages ----------------------------------------------------------------------

class TradeItem(msgspec.Struct, gc=False):
    """``{"size":"-108.5","id":27753479,"create_time":1545136464,"create_time_ms":1545136464123,"price":"96.4","contract":"BTC_USDT","is_internal":true}``"""

    contract: str
    size: float
    price: float
    id: int = 0
    create_time_ms: int = 0
    create_time: float = 0.0
    is_internal: bool = False


class LiquidationItem(msgspec.Struct, gc=False):
    """``{"price":"215.1","size":"-124.5","time":1541486601123,"contract":"BTC_USDT"}`` (``time`` s before 2026-08-20)."""

    contract: str
    size: float
    price: float
    time: int = 0
    time_ms: int = 0


class Level(msgspec.Struct, gc=False):
    p: float
    s: float


class BookUpdate(msgspec.Struct, gc=False):
    """``{"t":1615366381417,"s":"BTC_USDT","U":2517661101,"u":2517661113,"b":[{"p":"54672.1","s":"0"}],"a":[...],"l":"100"}``"""

    s: str
    U: int
    u: int
    b: msgspec.Raw
    a: msgspec.Raw
    t: int = 0
    full: bool = False


class Obu(msgspec.Struct, gc=False):
    """``{"t":1743673026995,"full":true,"s":"ob.BTC_USDT.400","u":79072179673,"b":[["83705.9","30166"]],"a":[["83706","4208"]]}``"""

    s: str
    u: int
    b: msgspec.Raw
    a: msgspec.Raw
    U: int = 0
    t: int = 0
    full: bool = False


class BookTicker(msgspec.Struct, gc=False):
    """``{"t":1684930165621,"u":6159967,"s":"PHB_USDT","b":"0.7379","B":814,"a":"0.739","A":677}``"""

    s: str
    b: float
    B: Bounded          # sizes bounded by the decoder; prices by book_top() (after the contract lookup)
    a: float
    A: Bounded
    t: int = 0
    u: int = 0


class TickerItem(msgspec.Struct, gc=False):
    """``{"contract":"BTC_USDT","last":"118.4","funding_rate":"-0.000114","mark_price":"118.35","index_price":"118.36","total_size":"73648.5","volume_24h_quote":"1665006","t":1541659086123}``"""

    contract: str
    mark_price: float
    index_price: str = ""
    funding_rate: str = ""
    t: int = 0


class StatsItem(msgspec.Struct, gc=False):
    """``{"time":1603865400,"contract":"BTC_USDT","open_interest":"124724","mark_price":"8865","open_interest_usd":1511}``"""

    contract: str
    open_interest: float
    mark_price: float
    time: int = 0


def _update(channel: str, result_type):
    """A whole data frame of ``channel``, tagged by its ``channel`` field (one union decodes every channel)."""
    return msgspec.defstruct(f"Update[{channel}]", [("result", result_type), ("event", str, ""), ("time_ms", int, 0)],
                             tag_field="channel", tag=channel, gc=False)


class _Head(msgspec.Struct):
    """Lenient view of any JSON object, used to classify a frame the fast path refused."""

    channel: object = None
    event: object = None
    error: object = None
    result: msgspec.Raw = msgspec.Raw(b"null")
    time_ms: object = 0


_RESULT_TYPES = {
    "futures.trades": list[TradeItem],
    "futures.public_liquidates": list[LiquidationItem],
    "futures.order_book_update": BookUpdate,
    "futures.obu": Obu,
    "futures.book_ticker": BookTicker,
    "futures.tickers": list[TickerItem],
    "futures.contract_stats": list[StatsItem],
}
# the fast path: one decode picks the channel's Struct by its tag (finding the channel's name in the bytes
# first cost more than the decode itself)
_CHANNEL_OF = {_update(ch, t): ch for ch, t in _RESULT_TYPES.items()}
_decode_update = msgspec.json.Decoder(Union[tuple(_CHANNEL_OF)], strict=False).decode
_RESULT_DECODERS = {ch: msgspec.json.Decoder(t, strict=False) for ch, t in _RESULT_TYPES.items()}
_head_decoder = msgspec.json.Decoder(_Head)
_levels_decoder = msgspec.json.Decoder(list[Level], strict=False)
_pairs_decoder = msgspec.json.Decoder(list[tuple[float, float]], strict=False)
_DecodeErrors = DECODE_ERRORS + (TypeError,)
_DATA_EVENTS = ("update", "all")



def _num(text: str) -> float:
    """A numeric string field that may be empty ("" -> 0.0); NaN for garbage."""
    if not text:
        return 0.0
    try:
        return float(text)
    except ValueError:
        return float("nan")


def _best(bids: list, asks: list) -> tuple[float, float, float, float] | None:
    """Best bid/ask (price, size) of unsorted (price, size) levels, zero-size levels skipped."""
    bid = max(((p, s) for p, s in bids if s > 0.0), default=None)
    ask = min(((p, s) for p, s in asks if s > 0.0), default=None)
    if bid is None or ask is None:
        return None
    return bid[0], bid[1], ask[0], ask[1]


class _Units(dict):
    """Contract -> (instrument id, contract size), kept once both are known; else (id or None, 0.0), asked again
    next time (``size_of`` counts each miss). One dict subscript per frame on the hot path."""

    __slots__ = ("ids", "size_of")

    def __init__(self, ids, size_of):
        super().__init__()
        self.ids = ids
        self.size_of = size_of

    def __missing__(self, contract: str) -> tuple:
        iid = self.ids[contract]
        size = self.size_of(contract) if iid is not None else 0.0
        if size:
            self[contract] = (iid, size)
        return iid, size


class _Streams(dict):
    """Contract -> ``"<channel>:<contract>"`` ("" for none) of one channel, made once per contract (bounded:
    past ``_MAX_STREAMS`` names are made each time)."""

    __slots__ = ("channel",)

    def __init__(self, channel: str):
        super().__init__()
        self.channel = channel

    def __missing__(self, contract: str) -> str:
        name = f"{self.channel}:{contract}" if contract else ""
        if len(self) < _MAX_STREAMS:
            self[contract] = name
        return name


_MAX_STREAMS = 10_000


class Parser:
    """Turn Gate USDT-futures frames into record tuples.

    ``lookup`` maps a contract (``"BTC_USDT"``) to an instrument id or None (IGNORED).
    ``contract_sizes`` maps a contract to its ``quanto_multiplier`` (base units per
    contract, from :func:`parse_exchange_info`); the mapping is read at parse time, so
    the caller may add contracts later. Gate quotes every size in contracts, so there is
    no default: frames of a contract without a known size are IGNORED and counted in
    ``missing_contract_size``. ``flags`` is OR-ed into every record. ``books`` (an
    :class:`engine.books.BookSet`, set by :func:`engine.books.attach`) turns
    ``order_book_update`` deltas into a synced book; without it deltas are PARSED.
    """

    books = None

    def __init__(self, lookup: Callable[[str], int | None], flags: int = 0,
                 contract_sizes: Mapping[str, float] | None = None):
        self.lookup = lookup
        self._ids = InstrumentIds(lookup)
        self.flags = flags
        self.contract_sizes = contract_sizes if contract_sizes is not None else {}
        self.missing_contract_size = 0
        self._units = _Units(self._ids, self._size_of)
        handlers = {
            "futures.trades": self._trades, "futures.public_liquidates": self._liquidations,
            "futures.order_book_update": self._book_update, "futures.obu": self._obu,
            "futures.book_ticker": self._book_ticker, "futures.tickers": self._tickers,
            "futures.contract_stats": self._stats,
        }
        # channel -> (handler, its stream names); the fast path finds it by the decoded Struct's type
        self._routes = {ch: (h, _Streams(ch)) for ch, h in handlers.items()}
        self._routes_of = {t: self._routes[ch] for t, ch in _CHANNEL_OF.items()}

    def parse(self, payload: bytes, ts_recv: int, out: list) -> tuple[Outcome, str]:
        """Parse one frame; append records to ``out``; return (outcome, stream name)."""
        try:
            msg = _decode_update(payload)
        except _DecodeErrors:
            return self._slow(payload, ts_recv, out)
        if msg.event in _DATA_EVENTS or not msg.event:
            return self._dispatch(self._routes_of[type(msg)], msg.result, msg.time_ms, ts_recv, out)
        return CONTROL, ""

    def _dispatch(self, route, result, time_ms, ts_recv, out) -> tuple[Outcome, str]:
        handler, streams = route
        start = len(out)
        try:
            outcome, contract = handler(result, time_ms, ts_recv, out)
        except _DecodeErrors:  # nested level lists are decoded lazily
            outcome, contract = MALFORMED, ""
        if outcome is MALFORMED:
            del out[start:]
        return outcome, streams[contract]

    def _slow(self, payload: bytes, ts_recv: int, out: list) -> tuple[Outcome, str]:
        """Classify a frame the fast path refused: ack, error, unknown channel or broken (slow path)."""
        try:
            head = _head_decoder.decode(payload)
        except _DecodeErrors:
            return MALFORMED, ""
        channel, event = head.channel, head.event
        if not isinstance(channel, str):
            return MALFORMED, ""
        if channel in _CONTROL_CHANNELS or event in ("subscribe", "unsubscribe") or head.error is not None:
            return CONTROL, ""
        if channel in _IGNORED_CHANNELS:
            return IGNORED, ""
        decoder = _RESULT_DECODERS.get(channel)
        if decoder is None:
            return UNKNOWN, ""
        if not (event is None or event == "" or event in _DATA_EVENTS) or not isinstance(head.time_ms, int):
            return MALFORMED, ""
        try:  # a known channel that the fast path missed (spaced JSON) or refused (bad fields)
            result = decoder.decode(head.result)
        except _DecodeErrors:
            return MALFORMED, ""
        return self._dispatch(self._routes[channel], result, head.time_ms, ts_recv, out)

    def _size_of(self, contract: str) -> float:
        size = self.contract_sizes.get(contract)
        if size is None or not 0.0 < size < _MAX:
            self.missing_contract_size += 1
            return 0.0
        return size

    # -- handlers: each returns (Outcome, contract) -------------------------------------
    def _trades(self, items: list[TradeItem], time_ms, ts_recv, out):
        """``{"channel":"futures.trades","event":"update","time_ms":1541503698123,"result":[{"size":-108,"id":27753479,"create_time":1545136464,"create_time_ms":1545136464123,"price":"96.4","contract":"BTC_USDT"}]}``"""
        outcome = IGNORED
        for it in items:
            p, size = it.price, it.size
            if not (0.0 <= p < _MAX and -_MAX < size < _MAX and it.create_time_ms >= 0):
                return MALFORMED, ""
            if p == 0.0 or size == 0.0:
                outcome = PARSED if outcome is IGNORED else outcome
                continue
            iid, mult = self._units[it.contract]
            if not mult:
                continue
            qty = abs(size) * mult
            ts = it.create_time_ms * _MS or int(it.create_time * 1e9) or time_ms * _MS
            flags = self.flags | Flag.NON_MARKET if it.is_internal else self.flags
            out.append((Kind.TRADE, VENUE, Side.BUY if size > 0.0 else Side.SELL, flags, iid, ts, ts_recv,
                        p, qty, p * qty, float(it.id), 1.0))
            outcome = EMITTED
        return outcome, items[0].contract if items else ""

    def _liquidations(self, items: list[LiquidationItem], time_ms, ts_recv, out):
        """``{"channel":"futures.public_liquidates","event":"update","time_ms":1541505434123,"result":[{"price":"215.1","size":"-124.5","time":1541486601123,"contract":"BTC_USDT"}]}``"""
        outcome = IGNORED
        for it in items:
            p, size, t = it.price, it.size, it.time_ms or it.time
            if not (0.0 <= p < _MAX and -_MAX < size < _MAX and t >= 0):
                return MALFORMED, ""
            if p == 0.0 or size == 0.0:
                outcome = PARSED if outcome is IGNORED else outcome
                continue
            iid, mult = self._units[it.contract]
            if not mult:
                continue
            flags = self.flags
            if 0 < t < 100_000_000_000:   # seconds: the pre-2026-08-20 stream, one order per contract per second
                t *= 1000
                flags |= Flag.CAPPED
            qty = abs(size) * mult
            side = Side.LONG if size < 0.0 else Side.SHORT   # a sell order closes a long position
            out.append((Kind.LIQUIDATION, VENUE, side, flags, iid, (t or time_ms) * _MS, ts_recv,
                        p, qty, p * qty, p, 0.0))
            outcome = EMITTED
        return outcome, items[0].contract if items else ""

    def _book_update(self, msg: BookUpdate, time_ms, ts_recv, out):
        """A delta goes to the synced book (PARSED without one); a ``full`` one is a snapshot.

        ``{"channel":"futures.order_book_update","event":"update","result":{"U":203083177,"a":[{"p":"0.2983","s":0}],"b":[],"s":"RDNT_USDT","t":1684930165217,"u":203083177}}``
        """
        if msg.U > msg.u + 1 or msg.u < 0:
            return MALFORMED, ""
        books = self.books
        if books is None and not msg.full:
            return PARSED, msg.s
        bids = [(lv.p, lv.s) for lv in _levels_decoder.decode(msg.b)]
        asks = [(lv.p, lv.s) for lv in _levels_decoder.decode(msg.a)]
        if books is None:
            return self._levels_top(msg.s, bids, asks, msg.t or time_ms, ts_recv, out), msg.s
        iid, mult = self._units[msg.s]
        if not mult:
            return IGNORED, msg.s
        ts = (msg.t or time_ms) * _MS
        if msg.full:
            return books.snapshot(msg.s, iid, msg.u, bids, asks, ts, ts_recv, out, scale=mult), msg.s
        return books.delta(msg.s, iid, msg.U, msg.u, -1, bids, asks, ts, ts_recv, out, scale=mult), msg.s

    def book_snapshot(self, symbol: str, payload: bytes, ts_recv: int, out: list) -> Outcome:
        """REST ``/futures/usdt/order_book?with_id=true`` body -> the synced book of ``symbol``."""
        if self.books is None:
            return IGNORED
        try:
            snap = _snapshot_decoder.decode(payload)
        except _DecodeErrors:
            return MALFORMED
        if snap.id <= 0:
            return MALFORMED   # without ``with_id=true`` the snapshot cannot anchor the deltas
        iid, mult = self._units[symbol]
        if not mult:
            return IGNORED
        bids, asks = [(lv.p, lv.s) for lv in snap.bids], [(lv.p, lv.s) for lv in snap.asks]
        return self.books.snapshot(symbol, iid, snap.id, bids, asks, _snapshot_ts(snap, ts_recv), ts_recv, out,
                                   scale=mult)

    def _obu(self, msg: Obu, time_ms, ts_recv, out):
        """``{"channel":"futures.obu","result":{"t":1743673026995,"full":true,"s":"ob.BTC_USDT.400","u":79072179673,"b":[["83705.9","30166"]],"a":[["83706","4208"]]},"time_ms":1743673026999}``"""
        contract = msg.s.split(".")[1] if msg.s.count(".") == 2 else ""
        if not contract or msg.u < 0:
            return MALFORMED, ""
        if not msg.full:
            return PARSED, contract
        bids, asks = _pairs_decoder.decode(msg.b), _pairs_decoder.decode(msg.a)
        return self._levels_top(contract, bids, asks, msg.t or time_ms, ts_recv, out), contract

    def _levels_top(self, contract, bids, asks, t_ms, ts_recv, out) -> Outcome:
        for p, s in bids + asks:
            if not (0.0 < p < _MAX and 0.0 <= s < _MAX):
                return MALFORMED
        best = _best(bids, asks)
        if best is None:
            return PARSED
        iid, mult = self._units[contract]
        if not mult:
            return IGNORED
        bid, bq, ask, aq = best
        return book_top(VENUE, self.flags | Flag.SNAPSHOT, iid, t_ms * _MS, ts_recv, bid, bq * mult, ask, aq * mult, out)

    def _book_ticker(self, msg: BookTicker, time_ms, ts_recv, out):
        """``{"channel":"futures.book_ticker","event":"update","result":{"t":1684930165621,"u":6159967,"s":"PHB_USDT","b":"0.7379","B":814,"a":"0.739","A":677}}``"""
        iid, mult = self._units[msg.s]
        if not mult:
            return IGNORED, msg.s
        return book_top(VENUE, self.flags, iid, (msg.t or time_ms) * _MS, ts_recv,
                         msg.b, msg.B * mult, msg.a, msg.A * mult, out), msg.s

    def _tickers(self, items: list[TickerItem], time_ms, ts_recv, out):
        """MARK: mark, index, funding rate (next funding time: not in the frame, 0).

        ``{"channel":"futures.tickers","event":"update","time_ms":1541659086123,"result":[{"contract":"BTC_USDT","last":"118.4","funding_rate":"-0.000114","mark_price":"118.35","index_price":"118.36","total_size":"73648.5","t":1541659086123}]}``
        """
        outcome = IGNORED
        for it in items:
            m, i, r = it.mark_price, _num(it.index_price), _num(it.funding_rate)
            if not (0.0 < m < _MAX and 0.0 <= i < _MAX and -_MAX < r < _MAX and it.t >= 0):
                return MALFORMED, ""
            iid = self._ids[it.contract]
            if iid is None:
                continue
            out.append((Kind.MARK, VENUE, 0, self.flags, iid, (it.t or time_ms) * _MS, ts_recv, m, i, 0.0, r, 0.0))
            outcome = EMITTED
        return outcome, items[0].contract if items else ""

    def _stats(self, items: list[StatsItem], time_ms, ts_recv, out):
        """OPEN_INTEREST from ``open_interest`` (contracts) at ``mark_price``.

        ``{"channel":"futures.contract_stats","event":"update","result":[{"time":1603865400,"contract":"BTC_USDT","open_interest":"124724","mark_price":"8865","open_interest_usd":1511}]}``
        """
        outcome = IGNORED
        for it in items:
            oi, m = it.open_interest, it.mark_price
            if not (0.0 <= oi < _MAX and 0.0 <= m < _MAX and it.time >= 0):
                return MALFORMED, ""
            iid, mult = self._units[it.contract]
            if not mult:
                continue
            qty = oi * mult
            ts = it.time * 1_000_000_000 or time_ms * _MS
            out.append(open_interest(VENUE, self.flags, iid, ts, ts_recv, m, qty))
            outcome = EMITTED
        return outcome, items[0].contract if items else ""


# -- REST ------------------------------------------------------------------------

class _Contract(msgspec.Struct):
    """One item of ``GET /futures/usdt/contracts`` (also ``/contracts/{name}``), trimmed."""

    name: str
    quanto_multiplier: str = ""
    type: str = "direct"
    order_price_round: str = ""
    mark_price: str = ""
    position_size: float = 0.0
    in_delisting: bool = False
    status: str = ""


class _Ticker(msgspec.Struct):
    contract: str
    last: str = ""
    volume_24h_quote: str = ""
    volume_24h_base: str = ""


class _Snapshot(msgspec.Struct, gc=False):
    """``{"current":1684930166.384,"update":1684930166.35,"asks":[{"s":803,"p":"0.2974"}],"bids":[...],"id":203083287}``"""

    asks: list[Level]
    bids: list[Level]
    id: int = 0
    current: float = 0.0
    update: float = 0.0


_contract_decoder = msgspec.json.Decoder(_Contract, strict=False)
_contracts_decoder = msgspec.json.Decoder(list[_Contract], strict=False)
_tickers_decoder = msgspec.json.Decoder(list[_Ticker], strict=False)
_snapshot_decoder = msgspec.json.Decoder(_Snapshot, strict=False)


def parse_exchange_info(payload: bytes) -> list[InstrumentInfo] | None:
    """``GET /futures/{usdt,btc}/contracts`` -> every contract (all perpetual), or None if unusable.

    ``contract_size`` is ``quanto_multiplier`` (base per contract), or :data:`INVERSE_CONTRACT_USD` (USD per
    contract) for an inverse contract (BTC-settled ``BTC_USD``).
    """
    try:
        contracts = _contracts_decoder.decode(payload)
    except _DecodeErrors:
        return None
    out = []
    for c in contracts:
        base, _, quote = c.name.partition("_")
        if not base or not quote:
            continue
        mult = INVERSE_CONTRACT_USD if c.type == "inverse" else _num(c.quanto_multiplier)
        if not 0.0 < mult < _MAX:
            continue    # no usable contract size: sizes could not be converted
        tick = _num(c.order_price_round)
        if c.in_delisting:
            status = "delisting"
        else:
            status = c.status.lower() if c.status and c.status.lower() != "trading" else "trading"
        out.append(InstrumentInfo(c.name, base, quote, "perpetual", status,
                                  tick if 0.0 < tick < _MAX else 0.0, mult))
    return out


def parse_tickers(payload: bytes) -> dict[str, float] | None:
    """``GET /futures/usdt/tickers`` -> contract -> 24 h volume in USD (USDT quote volume)."""
    try:
        tickers = _tickers_decoder.decode(payload)
    except _DecodeErrors:
        return None
    out = {}
    for t in tickers:
        usd = _num(t.volume_24h_quote)
        if not usd:
            usd = _num(t.volume_24h_base) * _num(t.last)
        if 0.0 <= usd < _MAX:
            out[t.contract] = usd
    return out


def parse_open_interest(payload: bytes, lookup: Callable[[str], int | None], ts_recv: int,
                        ref_price: float, out: list, flags: int = 0) -> Outcome:
    """``GET /futures/{usdt,btc}/contracts/{c}`` -> OPEN_INTEREST: ``position_size`` x multiplier, USD at mark.

    The body carries its own multiplier and mark price; ``ref_price`` is used only when
    the mark is missing. It has no timestamp: the exchange time is the receive time.
    An inverse contract's ``position_size`` is USD (:data:`INVERSE_CONTRACT_USD` each), converted to base
    at the mark (PARSED, nothing emitted, without any price).
    """
    try:
        c = _contract_decoder.decode(payload)
    except _DecodeErrors:
        return MALFORMED
    inverse = c.type == "inverse"
    mult = INVERSE_CONTRACT_USD if inverse else _num(c.quanto_multiplier)
    mark, oi = _num(c.mark_price) or ref_price, c.position_size
    if not (0.0 < mult < _MAX and 0.0 <= mark < _MAX and 0.0 <= oi < _MAX):
        return MALFORMED
    iid = lookup(c.name)
    if iid is None:
        return IGNORED
    if inverse and mark == 0.0:
        return PARSED
    qty = oi * mult / mark if inverse else oi * mult
    out.append(open_interest(VENUE, flags, iid, ts_recv, ts_recv, mark, qty))
    return EMITTED


def parse_depth_snapshot(payload: bytes, symbol: str, lookup: Callable[[str], int | None], ts_recv: int,
                         out: list, flags: int = 0, contract_size: float | None = None) -> Outcome:
    """``GET /futures/usdt/order_book?with_id=true`` -> one BOOK_TOP flagged SNAPSHOT.

    The body names no contract (pass ``symbol``) and sizes are contracts: without a
    ``contract_size`` the snapshot is IGNORED.
    """
    try:
        snap = _snapshot_decoder.decode(payload)
    except _DecodeErrors:
        return MALFORMED
    levels = [(lv.p, lv.s) for lv in snap.bids], [(lv.p, lv.s) for lv in snap.asks]
    for p, s in levels[0] + levels[1]:
        if not (0.0 < p < _MAX and 0.0 <= s < _MAX):
            return MALFORMED
    best = _best(*levels)
    if best is None:
        return PARSED
    iid = lookup(symbol)
    if iid is None or not (contract_size is not None and 0.0 < contract_size < _MAX):
        return IGNORED
    bid, bq, ask, aq = best
    return book_top(VENUE, flags | Flag.SNAPSHOT, iid, _snapshot_ts(snap, ts_recv), ts_recv, bid, bq * contract_size,
                    ask, aq * contract_size, out)


def _snapshot_ts(snap: _Snapshot, ts_recv: int) -> int:
    """``current`` is float seconds with ms precision."""
    return round(snap.current * 1000.0) * _MS if 0.0 < snap.current < 1e11 else ts_recv


# -- klines (the bot's candle bootstrap) --------------------------------------------
KLINE_PATH = "/futures/usdt/candlesticks"
KLINE_PAGE = 1000                       # Gate serves at most 2000 points a request


def kline_request(symbol: str, start_ms: int, end_ms: int) -> tuple[str, dict, int]:
    """``(path, params, weight)`` for the 1-minute candles opening in [start_ms, end_ms) (at most KLINE_PAGE):
    ``from``/``to`` in seconds, both inclusive (Gate refuses ``limit`` beside them)."""
    return KLINE_PATH, {"contract": symbol, "interval": "1m", "from": start_ms // 1000,
                        "to": (end_ms - 1) // 1000}, 1


def parse_klines(payload: bytes, contract_size: float = 1.0) -> list[tuple] | None:
    """``GET /futures/usdt/candlesticks`` (objects ``{t: seconds, o, h, l, c, v: contracts, sum: quote volume}``,
    ``v`` a decimal string with ``X-Gate-Size-Decimal`` else an integer) -> (open ms, open, high, low, close, base volume, quote volume, trades or 0) oldest
    first, base volume = ``v`` x ``contract_size`` (the quanto multiplier); None when malformed."""
    try:
        rows = msgspec.json.decode(payload)
        out = [(int(r["t"]) * 1000, float(r["o"]), float(r["h"]), float(r["l"]), float(r["c"]),
                float(r["v"]) * contract_size, float(r["sum"]), 0) for r in rows]
    except CANDLE_ERRORS:
        return None
    return sorted(out)


def base_from_symbol(symbol: str) -> str:
    """Fallback when the contract list is unavailable: ``BTC_USDT`` -> ``BTC``."""
    return symbol.partition("_")[0]
