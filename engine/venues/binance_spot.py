"""Binance spot: wire contract and a pure parser (trades, the all-market 24 h mini-ticker, klines, listing).

Contract (Binance spot API docs, "WebSocket Streams" and "Market Data endpoints"):

* WebSocket base ``wss://stream.binance.com:9443``: raw ``/ws/<s1>/<s2>`` or combined
  ``/stream?streams=<s1>/<s2>`` (each event wrapped as ``{"stream":..,"data":..}``). Live
  ``SUBSCRIBE``/``UNSUBSCRIBE`` JSON as on futures, ack ``{"result":null,"id":N}``.
* Limits: 5 incoming messages per second per socket (pings and pongs count), 1024 streams per
  socket, 300 connections per 5 minutes per IP; every socket is closed at 24 h. The server pings
  every 20 s and drops a socket that has not answered within a minute.
* Streams used: ``<symbol>@aggTrade`` and ``<symbol>@trade`` (``m`` true = the buyer was the maker,
  so the taker SOLD; ``q`` is base asset) and ``!miniTicker@arr`` (every symbol whose 24 h rolling
  statistics changed, once a second: ``c`` last, ``o`` open 24 h ago, ``h``/``l``, ``v`` base volume,
  ``q`` quote volume).
* REST ``https://api.binance.com``: 6000 request weight per minute per IP; ``/api/v3/exchangeInfo``
  weight 20 (``status`` ``TRADING``/``BREAK``/..., ``isSpotTradingAllowed``), ``/api/v3/ticker/24hr``
  weight 80 for every symbol, ``/api/v3/klines`` weight 2 for up to 1000 one-minute rows (the same
  12-field rows as USD-M, taker-buy base volume in field 9).

Spot has no liquidations, open interest, mark price or funding. Instruments are registered under
their own venue id (:data:`engine.record.Venue.BINANCE_SPOT`: ``BTCUSDT`` names both a spot pair and
a USD-M perpetual) with ``Market.SPOT`` (:data:`MARKET`), which is how CVD, the state table and the
bot tell spot from perp flow.
"""
from __future__ import annotations

from typing import Callable, NamedTuple, Union

import msgspec

from engine.instruments import Market
from engine.record import Kind, Side, Venue
from engine.venues import ConnectionPlan, InstrumentInfo, Outcome
from engine.venues.binance import (AggTrade, Trade, _Filter, _Head, base_from_symbol, parse_tickers,
                                   subscribe_messages)
from engine.venues.common import (CONTROL, DECODE_ERRORS, EMITTED, IGNORED, MALFORMED, MAX_VALUE, PARSED, UNKNOWN)

__all__ = [
    "VENUE", "MARKET", "CONTRACT_TYPE", "DEFAULT_WS_URLS", "DEFAULT_REST_URL", "Parser", "SpotTicker", "plan",
    "subscribe_messages", "streams_for", "stream_symbol", "parse_exchange_info", "parse_tickers", "parse_mini_tickers",
    "TICKERS_REQUEST", "EXCHANGE_INFO_REQUEST", "KLINE_PATH", "kline_weight", "is_plain_spot_pair",
    "base_from_symbol", "MINI_TICKER_STREAM",
]

VENUE = Venue.BINANCE_SPOT
MARKET = Market.SPOT                 # engine.symbols.register files every symbol of this module as spot
CONTRACT_TYPE = "spot"               # what "all" / "top:N" select from the listing
LIQUIDATIONS_AVAILABLE = False       # spot has none (coverage says so instead of counting zeros)
DEFAULT_WS_URLS = {"spot": "wss://stream.binance.com:9443"}
DEFAULT_REST_URL = "https://api.binance.com"
MAX_STREAMS_PER_CONNECTION = 1024
MESSAGE_INTERVAL_S = 0.21            # 5 incoming messages/s per spot socket, with margin
MAX_CONNECTION_AGE_S = 86400.0
REST_WEIGHT_PER_MINUTE = 6000
MINI_TICKER_STREAM = "!miniTicker@arr"
# config stream name -> per-symbol suffix; "tickers" is the one all-market stream
TRADE_SUFFIX = "aggTrade"
trade_stream_ids = True              # aggTrade `a` is consecutive per symbol (gap detection)

EXCHANGE_INFO_REQUEST = ("/api/v3/exchangeInfo", {"permissions": "SPOT"}, 20)
TICKERS_REQUEST = ("/api/v3/ticker/24hr", {}, 80)    # weight 80 for every symbol at once
KLINE_PATH = "/api/v3/klines"
KLINE_MAX_LIMIT = 1000

_MS = 1_000_000
# bases that are not a market view of their own: stablecoins and fiat against USDT (ORIGIN's /top10 spot skips them)
_NOT_ASSETS = frozenset({"USDC", "FDUSD", "TUSD", "BUSD", "USDP", "DAI", "USD1", "USDE", "AEUR", "EUR", "EURI",
                         "GBP", "TRY", "BRL", "ARS", "JPY", "PLN", "RON", "ZAR", "UAH", "MXN", "COP", "CZK"})
_LEVERAGED_SUFFIXES = ("UP", "DOWN", "BULL", "BEAR")


def kline_weight(limit: int) -> int:
    """Request weight of ``/api/v3/klines`` (2 whatever the limit, up to 1000 rows)."""
    return 2


def is_plain_spot_pair(base: str, bases: set[str] | frozenset[str]) -> bool:
    """False for a stablecoin/fiat base and for a leveraged token (``BTCUP``: a listed base plus UP/DOWN/BULL/BEAR).

    ``bases`` are the bases listed on the venue: ``JUP`` or ``SYRUP`` stay plain because ``J`` / ``SYR`` are not.
    """
    if base in _NOT_ASSETS:
        return False
    for suffix in _LEVERAGED_SUFFIXES:
        if base.endswith(suffix) and base[: -len(suffix)] in bases:
            return False
    return True


# -- wire ------------------------------------------------------------------------

def streams_for(symbols: list[str], kinds: list[str]) -> list[str]:
    """Stream names for ``symbols`` and the configured ``kinds`` ("trades", "tickers"; others are not spot's)."""
    out = [f"{s.lower()}@{TRADE_SUFFIX}" for s in symbols] if "trades" in kinds else []
    if "tickers" in kinds:
        out.append(MINI_TICKER_STREAM)
    return out


def plan(vcfg, ws_urls: dict[str, str] | None = None, subscribe_in_url: bool = True) -> list[ConnectionPlan]:
    """Shard the configured streams over sockets of at most ``max_streams_per_connection`` (one socket class)."""
    urls = {**DEFAULT_WS_URLS, **(ws_urls or vcfg.ws_urls or {})}
    per = max(1, min(vcfg.max_streams_per_connection, MAX_STREAMS_PER_CONNECTION))
    streams = streams_for(vcfg.symbols, vcfg.streams)
    base = urls["spot"].rstrip("/") + "/stream"
    plans = []
    for i in range(0, len(streams), per):
        chunk = tuple(streams[i:i + per])
        url = f"{base}?streams={'/'.join(chunk)}" if subscribe_in_url else base
        plans.append(ConnectionPlan(f"spot/{i // per}", url, chunk, chunk, subscribe_in_url))
    return plans


def stream_symbol(stream: str) -> str:
    """Native symbol of a stream name (``btcusdt@aggTrade`` -> ``BTCUSDT``; ``!miniTicker@arr`` -> ``""``)."""
    return stream.split("@", 1)[0].upper() if not stream.startswith("!") else ""


# -- messages ----------------------------------------------------------------------

class MiniTicker(msgspec.Struct, tag="24hrMiniTicker", tag_field="e", gc=False):
    """``{"e":"24hrMiniTicker","E":1672515782136,"s":"BNBBTC","c":"0.0025","o":"0.0010","h":"0.0025","l":"0.0010","v":"10000","q":"18"}``"""

    E: int
    s: str
    c: float
    o: float
    h: float
    l: float
    v: float
    q: float


class SpotTicker(NamedTuple):
    """Rolling 24 h statistics of one spot symbol, as the mini-ticker last gave them."""

    last: float
    open: float            # price 24 h ago
    high: float
    low: float
    base_volume: float
    quote_volume: float    # in the quote currency (USD for USDT/USDC/FDUSD pairs)
    ts_ms: int

    @property
    def change_pct(self) -> float:
        return (self.last / self.open - 1.0) * 100.0 if self.open > 0 else 0.0


_Event = Union[AggTrade, Trade, list[MiniTicker]]


class Envelope(msgspec.Struct, gc=False):
    stream: str
    data: _Event


class _SymbolInfo(msgspec.Struct):
    symbol: str
    baseAsset: str
    quoteAsset: str
    status: str = ""
    isSpotTradingAllowed: bool = True
    filters: list[_Filter] = []


class _ExchangeInfo(msgspec.Struct):
    symbols: list[_SymbolInfo]


_envelope_decoder = msgspec.json.Decoder(Envelope, strict=False)
_event_decoder = msgspec.json.Decoder(_Event, strict=False)
_head_decoder = msgspec.json.Decoder(Union[_Head, list])
_mini_decoder = msgspec.json.Decoder(list[MiniTicker], strict=False)
_exchange_info_decoder = msgspec.json.Decoder(_ExchangeInfo, strict=False)
_KNOWN_EVENTS = frozenset({"aggTrade", "trade", "24hrMiniTicker"})
# valid spot events this feed does not subscribe (a stray subscription, or user-data on a shared socket)
_IGNORED_EVENTS = frozenset({"kline", "24hrTicker", "1hTicker", "4hTicker", "1dTicker", "depthUpdate",
                             "avgPrice", "outboundAccountPosition", "executionReport", "balanceUpdate"})


def _ticker(m: MiniTicker) -> SpotTicker | None:
    """The ticker of one mini-ticker element, or None when a value is negative, non-finite or absurd."""
    for x in (m.c, m.o, m.h, m.l, m.v, m.q):
        if not 0.0 <= x < MAX_VALUE:
            return None
    return SpotTicker(m.c, m.o, m.h, m.l, m.v, m.q, m.E)


class Parser:
    """Turn Binance spot frames into record tuples.

    ``lookup`` maps a native symbol to an instrument id or None (trades of unregistered symbols are
    IGNORED). Mini-ticker frames emit no record: their statistics land in :attr:`tickers` (symbol ->
    :class:`SpotTicker`, every symbol the stream names) and the frame counts as PARSED.
    """

    books = None

    def __init__(self, lookup: Callable[[str], int | None], flags: int = 0):
        self.lookup = lookup
        self.flags = flags
        self.tickers: dict[str, SpotTicker] = {}
        self.ticker_frames = 0
        self._handlers = {AggTrade: self._agg_trade, Trade: self._trade, list: self._mini_tickers}

    def parse(self, payload: bytes, ts_recv: int, out: list) -> tuple[Outcome, str]:
        """Parse one frame; append records to ``out``; return (outcome, stream name)."""
        try:
            if payload[:10] == b'{"stream":':
                env = _envelope_decoder.decode(payload)
                return self._handlers[type(env.data)](env.data, ts_recv, out), env.stream
            msg = _event_decoder.decode(payload)
            if type(msg) is list:
                return self._mini_tickers(msg, ts_recv, out), MINI_TICKER_STREAM
            return self._handlers[type(msg)](msg, ts_recv, out), f"{msg.s.lower()}@{msg.__struct_config__.tag}"
        except DECODE_ERRORS:
            return _classify(payload)

    def _trade_record(self, s: str, p: float, q: float, T: int, m: bool, tid: int, fills: int, ts_recv: int,
                      out: list) -> Outcome:
        if not (0.0 <= p < MAX_VALUE and 0.0 <= q < MAX_VALUE and T >= 0):
            return MALFORMED
        if p == 0.0 or q == 0.0:
            return PARSED
        iid = self.lookup(s)
        if iid is None:
            return IGNORED
        # m: the buyer was the maker, so the taker sold
        out.append((Kind.TRADE, VENUE, Side.SELL if m else Side.BUY, self.flags, iid, T * _MS, ts_recv,
                    p, q, p * q, float(tid), float(fills)))
        return EMITTED

    def _agg_trade(self, msg: AggTrade, ts_recv: int, out: list) -> Outcome:
        """``{"e":"aggTrade","E":1672515782136,"s":"BNBBTC","a":12345,"p":"0.001","q":"100","f":100,"l":105,"T":1672515782136,"m":true,"M":true}``"""
        fills = msg.l - msg.f + 1 if msg.l >= msg.f else 1
        return self._trade_record(msg.s, msg.p, msg.q, msg.T, msg.m, msg.a, fills, ts_recv, out)

    def _trade(self, msg: Trade, ts_recv: int, out: list) -> Outcome:
        """``{"e":"trade","E":1672515782136,"s":"BNBBTC","t":12345,"p":"0.001","q":"100","T":1672515782136,"m":true,"M":true}``"""
        return self._trade_record(msg.s, msg.p, msg.q, msg.T, msg.m, msg.a, 1, ts_recv, out)

    def _mini_tickers(self, msgs: list, ts_recv: int, out: list) -> Outcome:
        """``!miniTicker@arr``: a bad element spoils the frame (nothing of it is kept)."""
        fresh = {}
        for m in msgs:
            t = _ticker(m)
            if t is None:
                return MALFORMED
            fresh[m.s] = t
        self.tickers.update(fresh)
        self.ticker_frames += 1
        return PARSED


def _classify(payload: bytes) -> tuple[Outcome, str]:
    """Tell an ack, an unknown event and a broken frame apart (slow path)."""
    try:
        head = _head_decoder.decode(payload)
    except DECODE_ERRORS:
        return MALFORMED, ""
    if type(head) is list:
        return MALFORMED, ""
    stream = head.stream if type(head.stream) is str else ""
    if head.result is not msgspec.UNSET or head.error is not msgspec.UNSET:
        return CONTROL, stream
    e = head.data.get("e") if stream and isinstance(head.data, dict) else head.e
    if not isinstance(e, str) or e in _KNOWN_EVENTS:
        return MALFORMED, stream
    return (IGNORED if e in _IGNORED_EVENTS else UNKNOWN), stream


def parse_mini_tickers(payload: bytes) -> dict[str, SpotTicker] | None:
    """A raw ``!miniTicker@arr`` array -> ticker per symbol; None if the frame (or one element) is unusable."""
    try:
        items = _mini_decoder.decode(payload)
    except DECODE_ERRORS:
        return None
    out = {}
    for m in items:
        t = _ticker(m)
        if t is None:
            return None
        out[m.s] = t
    return out


# -- REST ------------------------------------------------------------------------

def parse_exchange_info(payload: bytes) -> list[InstrumentInfo] | None:
    """``GET /api/v3/exchangeInfo`` -> every pair, normalised; None if the body is unusable.

    ``contract_type`` is "spot" for a plain pair open to spot trading, "other" for a stablecoin/fiat base or a
    leveraged token (:func:`is_plain_spot_pair`) or a pair closed to spot trading; ``status`` "trading" or the raw
    status lower-cased (``break``, ``halt``); sizes are base units (``contract_size`` 1.0).
    """
    try:
        info = _exchange_info_decoder.decode(payload)
    except DECODE_ERRORS:
        return None
    bases = {s.baseAsset for s in info.symbols}
    out = []
    for s in info.symbols:
        tick = next((f.tickSize for f in s.filters if f.filterType == "PRICE_FILTER"), "")
        try:
            tick_size = float(tick) if tick else 0.0
        except ValueError:
            tick_size = 0.0
        plain = s.isSpotTradingAllowed and is_plain_spot_pair(s.baseAsset, bases)
        out.append(InstrumentInfo(s.symbol, s.baseAsset, s.quoteAsset, "spot" if plain else "other",
                                  s.status.lower(), tick_size, 1.0))
    return out
