"""Venue modules by name, and the types every venue module shares.

A venue module holds one exchange's whole wire contract and is the only place
that knows it. The connection manager (:mod:`engine.wsfeed`), the REST poller
(:mod:`engine.rest`) and the feed actor use only these names from it:

=========================  ===========================================================
``VENUE``                  venue id (:class:`engine.record.Venue`)
``DEFAULT_WS_URLS``        live WebSocket bases by key; ``DEFAULT_REST_URL``
``MESSAGE_INTERVAL_S``     minimum spacing of client messages on one socket
``plan(vcfg, ws_urls)``    list of :class:`ConnectionPlan` (streams sharded per socket)
``subscribe_messages``     ``(streams, first_id) -> list[bytes]`` client frames
``stream_symbol(stream)``  native symbol a stream name carries ("" if none)
``Parser(lookup, flags)``  ``.parse(payload, ts_recv_ns, out) -> (Outcome, stream)``
``trade_stream_ids``       whether TRADE ``aux`` ids are consecutive per instrument
``oi_request(symbol)``     ``(path, params, weight)`` of one open-interest poll
``parse_open_interest``    ``(payload, lookup, ts_recv_ns, ref_price, out) -> Outcome``
``parse_exchange_info``    ``(payload) -> list[InstrumentInfo] | None``
``TICKERS_REQUEST``        ``(path, params, weight)`` of the 24 h tickers; ``parse_tickers(payload)``
                           -> ``{symbol: 24 h USD volume}`` (``top:N`` selection)
``next_page``              optional ``(payload, params) -> params | None`` of a paginated listing
``REST_METHOD``            optional ``"POST"``: params go as a JSON body (Hyperliquid ``/info``)
``Parser(..., contract_sizes=)`` optional: native symbol -> base units per contract (from the listing)
``OI_STREAMED``            optional: open interest arrives on the socket; the feed polls no REST for it
``LIQUIDATIONS_AVAILABLE`` optional ``False``: the venue has no public liquidation stream
``WS_HEADERS``             optional: extra headers on the WebSocket handshake
``REST_HEADERS``           optional: headers on every REST request (:class:`engine.rest.RestPoller`)
``MARKET``/``CONTRACT_TYPE`` optional: instrument market (``Market.SPOT``) and listing type it selects
``BOOK_RULE``/``BOOK_SOURCE`` optional: order-book sequence rule and snapshot source (:mod:`engine.books`)
``unsubscribe_messages``   optional: frames to drop streams (a silent stream is renewed with them)
``PING_INTERVAL_S``        optional: seconds between application-level keepalives
``ping_message()``         optional: the keepalive frame (str = text, bytes = binary); the
                           reply must parse as ``Outcome.CONTROL``
=========================  ===========================================================

Adding a venue: one module here, one line in :data:`VENUES`, one fixture
folder in ``shared/data`` and one expected-counts entry in its playback test.
"""
from __future__ import annotations

import importlib
from enum import IntEnum
from types import ModuleType
from typing import NamedTuple

__all__ = ["VENUES", "load", "Outcome", "ConnectionPlan", "InstrumentInfo"]

VENUES: dict[str, str] = {
    "binance": "engine.venues.binance",
    "bybit": "engine.venues.bybit",
    "okx": "engine.venues.okx",
    "bitget": "engine.venues.bitget",
    "hyperliquid": "engine.venues.hyperliquid",
    "gate": "engine.venues.gate",
    "binance_spot": "engine.venues.binance_spot",
    "bybit_spot": "engine.venues.bybit_spot",
    "okx_spot": "engine.venues.okx_spot",
}


def load(name: str) -> ModuleType:
    """Import and return the venue module called ``name``; raise KeyError if none."""
    return importlib.import_module(VENUES[name])


class Outcome(IntEnum):
    """What the parser made of one frame."""

    EMITTED = 0    # one or more records appended
    PARSED = 1     # valid and understood, nothing to emit (book diff, zero-size sentinel)
    CONTROL = 2    # subscribe ack / error reply / other protocol message
    IGNORED = 3    # valid but not wanted (kline, symbol not registered)
    UNKNOWN = 4    # well-formed JSON of an event type this parser does not know
    MALFORMED = 5  # failed to decode or validate; nothing emitted


OUTCOME_NAMES = {o: o.name.lower() for o in Outcome}


class ConnectionPlan(NamedTuple):
    """One socket: where it connects and which streams it carries."""

    key: str                       # stable name, e.g. "market/0"
    url: str                       # full URL to connect to
    streams: tuple[str, ...]       # streams this socket must carry
    watched: tuple[str, ...]       # streams expected to tick regularly (checked for staleness)
    subscribe_in_url: bool         # True: the URL already subscribes; False: send subscribe_messages


class InstrumentInfo(NamedTuple):
    """Contract metadata from a venue's instrument list."""

    symbol: str
    base: str
    quote: str
    contract_type: str
    status: str
    tick_size: float
    contract_size: float
