"""The one normalized event record shared by every process.

Every feed writes exactly this 64-byte structure into its ring, whatever the
exchange sent. Meaning of the value fields per kind:

=============  ========================  ==================  =====================  ==================  ===================
kind           side                      price               qty (base units)       notional (USD)      aux / aux2
=============  ========================  ==================  =====================  ==================  ===================
TRADE          taker side (BUY/SELL)     trade price         base quantity          price * qty         native trade id / fills aggregated
LIQUIDATION    liquidated position       average fill price  filled base quantity   filled USD value    order price / 0
               (LONG/SHORT)
BOOK_TOP       0                         best bid            bid size               bid+ask USD at top  best ask / ask size
BOOK_DEPTH     0                         mid price           band (share of mid)    USD in band (both)  bid USD / ask USD in band
MARK           0                         mark price          index price (0 = n/a)  settled rate (*)    predicted rate (*) / next funding time (ms)
OPEN_INTEREST  0                         price used for USD  open interest (base)   open interest USD   0 / 0
CONTROL        0                         0                   0                      0                   control code / count
=============  ========================  ==================  =====================  ==================  ===================

(*) Funding rates are per the venue's interval. ``aux`` ("predicted") is the rate the venue quotes for
the coming settlement (a live estimate on most venues); ``notional`` ("settled") is the rate of the
last settlement where the venue sends it (OKX ``settFundingRate``), 0 when it does not: the funding
detector then takes the last ``aux`` before ``aux2`` moved on (engine/detectors/funding.py).

A liquidated LONG position is a forced SELL; ``side`` always names the
position, never the order (see ``docs/ARCHITECTURE.md``).
"""
from __future__ import annotations

import numpy as np

__all__ = [
    "RECORD_DTYPE", "RECORD_SIZE", "Kind", "Side", "Flag", "Control", "Venue",
    "VENUE_NAMES", "venue_id", "empty_records",
]

RECORD_DTYPE = np.dtype(
    [
        ("kind", np.uint8),
        ("venue", np.uint8),
        ("side", np.int8),
        ("flags", np.uint8),
        ("instrument", np.uint32),
        ("ts_exchange", np.int64),  # ns since epoch, exchange clock
        ("ts_recv", np.int64),      # ns since epoch, local clock when the frame arrived
        ("price", np.float64),
        ("qty", np.float64),
        ("notional", np.float64),
        ("aux", np.float64),
        ("aux2", np.float64),
    ],
    align=True,
)
RECORD_SIZE = RECORD_DTYPE.itemsize
assert RECORD_SIZE == 64, RECORD_SIZE


class Kind:
    """Record kinds."""

    TRADE = 1
    LIQUIDATION = 2
    BOOK_TOP = 3
    MARK = 4
    OPEN_INTEREST = 5
    CONTROL = 6
    BOOK_DEPTH = 7   # one record per depth band of a synced book (engine/books.py)

    NAMES = {1: "trade", 2: "liquidation", 3: "book", 4: "mark", 5: "oi", 6: "control", 7: "depth"}


class Side:
    """Side values: trades carry the taker side, liquidations the position side."""

    NONE = 0
    BUY = 1
    SELL = -1
    LONG = 1   # liquidated long position (a forced sell)
    SHORT = -1  # liquidated short position (a forced buy)


class Flag:
    """Bit flags on a record."""

    REPLAY = 1 << 0       # from a recorded capture, not a live socket
    SNAPSHOT = 1 << 1     # part of a snapshot rather than an incremental update
    SYNTHETIC = 1 << 2    # produced by the simulator's synthetic market
    NON_MARKET = 1 << 3   # insurance-fund / ADL fill (Binance @trade X != MARKET)
    CAPPED = 1 << 4       # from a stream known to sample (Binance forceOrder: 1/symbol/s)


class Control:
    """Codes carried in ``aux`` of a CONTROL record."""

    RECONNECTED = 1
    GAP = 2
    STREAM_STALE = 3
    BOOK_INVALID = 4
    PRODUCER_RESTART = 5


class Venue:
    """Exchange ids (one byte)."""

    UNKNOWN = 0
    BINANCE = 1
    BYBIT = 2
    OKX = 3
    GATE = 4
    BITGET = 5
    HYPERLIQUID = 6
    BINANCE_SPOT = 7   # its own id: spot and USD-M share symbol names (BTCUSDT), and instruments key on (venue, symbol)
    BYBIT_SPOT = 8     # likewise: Bybit spot and linear both name BTCUSDT
    OKX_SPOT = 9       # OKX spot (BTC-USDT) beside its swaps, a feed of its own
    SIM = 15


VENUE_NAMES = {
    Venue.BINANCE: "binance",
    Venue.BYBIT: "bybit",
    Venue.OKX: "okx",
    Venue.GATE: "gate",
    Venue.BITGET: "bitget",
    Venue.HYPERLIQUID: "hyperliquid",
    Venue.BINANCE_SPOT: "binance_spot",
    Venue.BYBIT_SPOT: "bybit_spot",
    Venue.OKX_SPOT: "okx_spot",
    Venue.SIM: "sim",
}
_VENUE_IDS = {v: k for k, v in VENUE_NAMES.items()}


def venue_id(name: str) -> int:
    """Return the id of a venue name such as ``"binance"``; raise KeyError if unknown."""
    return _VENUE_IDS[name]


def empty_records(n: int) -> np.ndarray:
    """Return a zeroed array of ``n`` records."""
    return np.zeros(n, dtype=RECORD_DTYPE)
