"""OKX v5 spot: taker trades beside the swaps, through the swap module's parser and REST readers.

Contract (OKX v5 docs "Trades channel", "Get instruments", "Get tickers"; PROTOCOLS.md §3), and every way it
differs from :mod:`engine.venues.okx` (swaps):

* The **same** public socket, ``wss://ws.okx.com:8443/ws/v5/public``, with the same subscribe ops (480 per hour
  per connection), acks, errors and text ``ping``/``pong`` keepalive (30 s of silence closes it). This feed opens
  its own connections: spot is a venue of its own here, one feed process per venue.
* ``trades`` with a spot ``instId`` (``BTC-USDT``: two parts, no ``-SWAP``): the swap message format (``side`` =
  **taker** side, ``tradeId`` the last id of ``count`` aggregated fills, ``source``, ``seqId``), but ``sz`` is in
  the **base currency**: spot has no contracts and no ``ctVal``.
* REST ``https://www.okx.com`` (20 requests per 2 s per endpoint, keyed on IP and ``instType``):
  ``/api/v5/public/instruments?instType=SPOT`` lists pairs with ``baseCcy``/``quoteCcy``, an empty ``ctVal``
  and ``state`` ``live``; ``/api/v5/market/tickers?instType=SPOT`` gives ``volCcy24h`` in the **quote**
  currency (base currency for swaps; :func:`~engine.venues.okx.parse_tickers` reads both);
  ``/api/v5/market/history-candles?instId=BTC-USDT`` the swap rows and paging (:func:`~engine.venues.okx.kline_request`)
  for the bot's candle bootstrap, but ``vol`` is base currency and ``volCcy`` quote (swaps: contracts, base).

Spot has no liquidations here (``liquidation-orders`` covers MARGIN, not cash spot), open interest, mark price or
funding; this feed carries trades only (any other channel's push is IGNORED). Instruments are registered under
their own venue id (:data:`engine.record.Venue.OKX_SPOT`) with ``Market.SPOT``, which is how CVD tells spot from
perp flow.
"""
from __future__ import annotations

from typing import Callable

from engine.instruments import Market
from engine.record import Venue
from engine.venues import ConnectionPlan, InstrumentInfo, okx
from engine.venues.bybit_spot import spot_pairs, trade_plans
from engine.venues.common import IGNORED
from engine.venues.okx import (DEFAULT_REST_URL, KLINE_PAGE, MESSAGE_INTERVAL_S, PING_INTERVAL_S, base_from_symbol,
                               kline_request, parse_tickers, ping_message, stream_symbol, subscribe_messages,
                               unsubscribe_messages)

__all__ = [
    "VENUE", "MARKET", "CONTRACT_TYPE", "DEFAULT_WS_URLS", "DEFAULT_REST_URL", "Parser", "plan", "subscribe_messages",
    "unsubscribe_messages", "stream_symbol", "ping_message", "parse_exchange_info", "parse_tickers",
    "base_from_symbol", "MESSAGE_INTERVAL_S", "PING_INTERVAL_S", "EXCHANGE_INFO_REQUEST", "TICKERS_REQUEST",
    "KLINE_PAGE", "kline_request", "parse_klines",
]

VENUE = Venue.OKX_SPOT
MARKET = Market.SPOT                 # engine.symbols.register files every symbol of this module as spot
CONTRACT_TYPE = "spot"               # what "all" / "top:N" select from the listing
LIQUIDATIONS_AVAILABLE = False
INST_TYPE = "SPOT"
DEFAULT_WS_URLS = {"public": "wss://ws.okx.com:8443/ws/v5/public"}
REST_WEIGHT_PER_MINUTE = 300         # 20 requests / 2 s per endpoint; spot asks for its listing and tickers only
trade_stream_ids = False             # `tradeId` is the last id of an aggregation of `count` fills: ids skip
EXCHANGE_INFO_REQUEST = ("/api/v5/public/instruments", {"instType": INST_TYPE}, 1)
TICKERS_REQUEST = ("/api/v5/market/tickers", {"instType": INST_TYPE}, 1)


class _BaseUnits(dict):
    """The swap parser's ``contract_sizes`` for spot: every size is already base currency (1.0 for any pair)."""

    def get(self, key, default=None):
        return 1.0


def plan(vcfg, ws_urls: dict[str, str] | None = None, subscribe_in_url: bool = False) -> list[ConnectionPlan]:
    """The swap module's sharding of the ``trades`` streams (``trades:<instId>``) on the public socket.

    Only the "trades" stream kind exists on spot; any other configured kind is left out.
    """
    return trade_plans(okx.plan, vcfg, ws_urls)


class Parser(okx.Parser):
    """The swap parser's ``trades`` handling, records under :data:`VENUE`, sizes taken as base currency.

    Pushes of the other channels are IGNORED: the feed never subscribes them on spot, and the swap handlers
    would write them under the swap venue id.
    """

    venue = VENUE

    def __init__(self, lookup: Callable[[str], int | None], flags: int = 0):
        super().__init__(lookup, flags, contract_sizes=_BaseUnits())

    def _not_spot(self, f, ts_recv: int, out: list, *rest) -> tuple:
        return IGNORED, f"{f.arg.channel}:{f.arg.instId or f.arg.instType}"

    _liquidations = _book_tops = _books = _marks = _funding_rates = _open_interest = _not_spot


def parse_exchange_info(payload: bytes) -> list[InstrumentInfo] | None:
    """``GET /api/v5/public/instruments?instType=SPOT`` -> the pairs (:func:`~engine.venues.bybit_spot.spot_pairs`:
    stablecoin/fiat bases are "other"); sizes are base currency (``contract_size`` 1.0); None if unusable."""
    infos = okx.parse_exchange_info(payload)
    return None if infos is None else spot_pairs([i for i in infos if i.contract_type == "spot"])


def parse_klines(payload: bytes, contract_size: float = 1.0) -> list[tuple] | None:
    """A spot pair's ``history-candles`` (``[ts, o, h, l, c, vol (base), volCcy (quote), volCcyQuote, confirm]``,
    newest first) -> (open ms, OHLC, base volume, quote volume, 0) oldest first; None when malformed or ``code``
    is not "0". The swaps' base volume is ``volCcy``, column 6."""
    return okx.parse_klines(payload, contract_size, base=5)
