"""Bybit v5 spot: taker trades beside the linear perpetuals, through the linear module's parser and REST readers.

Contract (Bybit v5 docs "Connect", "Trade", "Get Instruments Info", "Get Tickers"; PROTOCOLS.md §2), and
every way it differs from :mod:`engine.venues.bybit` (linear):

* WebSocket ``wss://stream.bybit.com/v5/public/spot`` (its own socket class; linear is ``/v5/public/linear``).
  The same ``{"req_id":..,"op":"subscribe","args":[topics]}`` frames and JSON ping, but **at most 10 args per
  subscribe request** on spot (futures have no per-request cap); the 21,000-character cap on a connection's
  topics is the same. The spot ack and pong put ``ret_msg`` ``"subscribe"``/``"pong"`` and may leave out
  ``req_id``; both are CONTROL to the parser as on linear.
* ``publicTrade.{symbol}``: the linear message format (batches of up to 1024, ``S`` = **taker** side, ``v``
  base coin, ``p`` price, ``T`` ms, ``BT`` block trade). On spot ``i`` is a numeric string, not a UUID, and
  the tick direction ``L`` is a futures-only field; neither is read. Trade ids are not consecutive per symbol.
* REST ``https://api.bybit.com`` (600 requests per 5 s per IP, shared with linear):
  ``/v5/market/instruments-info?category=spot`` lists pairs with ``baseCoin``/``quoteCoin``/``status`` and no
  ``contractType`` (every row is a spot pair here; spot is documented as one page, a ``nextPageCursor`` is
  followed anyway);
  ``/v5/market/tickers?category=spot`` gives ``turnover24h`` in the quote coin, as linear does;
  ``/v5/market/kline?category=spot`` the linear rows (``volume`` base coin, ``turnover`` quote), for the bot's
  candle bootstrap (:func:`kline_request`, :func:`~engine.venues.bybit.parse_klines`).

Spot has no liquidations, open interest, mark price or funding; this feed carries trades only (any other
topic's frame is IGNORED). Instruments are registered under their own venue id
(:data:`engine.record.Venue.BYBIT_SPOT`: ``BTCUSDT`` names both a spot pair and a linear perpetual) with
``Market.SPOT``, which is how CVD tells spot from perp flow.
"""
from __future__ import annotations

import msgspec

from engine.instruments import Market
from engine.record import Venue
from engine.venues import ConnectionPlan, InstrumentInfo, bybit
from engine.venues.binance_spot import is_plain_spot_pair
from engine.venues.bybit import (DEFAULT_REST_URL, KLINE_PAGE, MESSAGE_INTERVAL_S, PING_INTERVAL_S, _op_frames,
                                 base_from_symbol, next_page, parse_klines, parse_tickers, ping_message, stream_symbol)
from engine.venues.common import IGNORED

__all__ = [
    "VENUE", "MARKET", "CONTRACT_TYPE", "DEFAULT_WS_URLS", "DEFAULT_REST_URL", "Parser", "plan", "subscribe_messages",
    "unsubscribe_messages", "stream_symbol", "ping_message", "parse_exchange_info", "next_page", "parse_tickers",
    "base_from_symbol", "spot_pairs", "trade_plans", "MESSAGE_INTERVAL_S", "PING_INTERVAL_S", "EXCHANGE_INFO_REQUEST",
    "TICKERS_REQUEST", "MAX_ARGS_PER_SUBSCRIBE", "KLINE_PAGE", "kline_request", "parse_klines",
]

VENUE = Venue.BYBIT_SPOT
MARKET = Market.SPOT                 # engine.symbols.register files every symbol of this module as spot
CONTRACT_TYPE = "spot"               # what "all" / "top:N" select from the listing
LIQUIDATIONS_AVAILABLE = False
CATEGORY = "spot"
DEFAULT_WS_URLS = {"spot": "wss://stream.bybit.com/v5/public/spot"}
MAX_ARGS_PER_SUBSCRIBE = 10          # spot's cap per subscribe request
REST_WEIGHT_PER_MINUTE = 100         # the IP's 600 requests / 5 s are shared with the linear feed; spot asks little
trade_stream_ids = False             # spot trade ids are not consecutive per symbol
EXCHANGE_INFO_REQUEST = ("/v5/market/instruments-info", {"category": CATEGORY, "limit": "1000"}, 1)
TICKERS_REQUEST = ("/v5/market/tickers", {"category": CATEGORY}, 1)
# leveraged tokens: BTC3LUSDT has base coin BTC3L (3x long), BTC3SUSDT BTC3S
_LEVERAGED_SUFFIXES = ("2L", "2S", "3L", "3S", "5L", "5S")


def plan(vcfg, ws_urls: dict[str, str] | None = None, subscribe_in_url: bool = False) -> list[ConnectionPlan]:
    """The linear sharding (topics per socket, 21,000 characters) of the ``publicTrade`` topics on the spot socket.

    Only the "trades" stream kind exists on spot; any other configured kind is left out.
    """
    url = {**DEFAULT_WS_URLS, **(ws_urls or vcfg.ws_urls or {})}["spot"]
    return trade_plans(bybit.plan, vcfg, {"linear": url})


def trade_plans(perp_plan, vcfg, ws_urls) -> list[ConnectionPlan]:
    """A perp module's ``plan`` of the configured "trades" streams alone (the only kind spot has), keyed
    ``spot/...``."""
    trades_only = msgspec.structs.replace(vcfg, streams=[k for k in vcfg.streams if k == "trades"])
    return [p._replace(key="spot/" + p.key.partition("/")[2]) for p in perp_plan(trades_only, ws_urls)]


def kline_request(symbol: str, start_ms: int, end_ms: int) -> tuple[str, dict, int]:
    """The linear :func:`~engine.venues.bybit.kline_request` under ``category=spot``."""
    path, params, weight = bybit.kline_request(symbol, start_ms, end_ms)
    return path, {**params, "category": CATEGORY}, weight


def subscribe_messages(streams: tuple[str, ...] | list[str], first_id: int = 1) -> list[bytes]:
    """Subscribe frames of at most 10 topics each (send them ``MESSAGE_INTERVAL_S`` apart)."""
    return _op_frames("subscribe", streams, first_id, MAX_ARGS_PER_SUBSCRIBE)


def unsubscribe_messages(streams: tuple[str, ...] | list[str], first_id: int = 1) -> list[bytes]:
    """Unsubscribe frames of at most 10 topics each (a silent stream is renewed with them)."""
    return _op_frames("unsubscribe", streams, first_id, MAX_ARGS_PER_SUBSCRIBE)


class Parser(bybit.Parser):
    """The linear parser's ``publicTrade`` handling, records under :data:`VENUE`; quantities are base coin.

    ``orderbook``/``tickers``/``allLiquidation`` frames are IGNORED: the feed never subscribes them on spot,
    and the linear handlers would write them under the linear venue id.
    """

    venue = VENUE

    def _not_spot(self, msg, ts_recv: int, out: list):
        return IGNORED

    _liquidations = _book = _ticker = _not_spot


def spot_pairs(infos: list[InstrumentInfo] | None) -> list[InstrumentInfo] | None:
    """A spot listing with ``contract_type`` "spot" for each plain pair and "other" for a stablecoin/fiat base
    (:func:`~engine.venues.binance_spot.is_plain_spot_pair`) or a leveraged token (``BTC3L`` when BTC is listed)."""
    if infos is None:
        return None
    bases = {i.base for i in infos}
    plain = lambda base: is_plain_spot_pair(base, bases) and not any(
        base.endswith(s) and base[: -len(s)] in bases for s in _LEVERAGED_SUFFIXES)
    return [i._replace(contract_type="spot" if plain(i.base) else "other") for i in infos]


def parse_exchange_info(payload: bytes) -> list[InstrumentInfo] | None:
    """``GET /v5/market/instruments-info?category=spot`` -> the pairs (:func:`spot_pairs`); sizes are base coin
    (``contract_size`` 1.0); None if the body is unusable."""
    return spot_pairs(bybit.parse_exchange_info(payload))
