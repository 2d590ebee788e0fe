"""Pieces several venue modules share: outcome names, decode errors, record tuples, subscribe batching.

Only what is the same on every venue lives here; a venue's wire schema and its
quirks stay in its own module.
"""
from __future__ import annotations

from typing import Annotated, Sequence, TypeVar

import msgspec

from engine.record import Kind
from engine.venues import Outcome

__all__ = ["MAX_VALUE", "DECODE_ERRORS", "EMITTED", "PARSED", "CONTROL", "IGNORED", "UNKNOWN", "MALFORMED",
           "book_top", "open_interest", "batches", "Bounded", "Positive", "FloatId", "Resolved", "InstrumentIds",
           "BOOK_TOP", "TRADE", "LIQUIDATION", "CANDLE_ERRORS", "array_candles", "Heads"]

MAX_VALUE = 1e15   # bound on any price, size or amount: products of two stay finite (1e308 overflowed)
# a price, size or amount in [0, MAX_VALUE), checked by the decoder in C: NaN, inf, a negative or a huge value
# fails the decode (ValidationError, one of DECODE_ERRORS), so a venue's _classify reports the frame MALFORMED
Bounded = Annotated[float, msgspec.Meta(ge=0.0, lt=MAX_VALUE)]
# the same for a value that must not be 0 (a best bid or ask price): book_top()'s bound, checked in C
Positive = Annotated[float, msgspec.Meta(gt=0.0, lt=MAX_VALUE)]
# a trade or update id decoded straight to the float a record column holds: integral values in [0, 2**53]
# are exact; NaN, inf and larger values fail the decode
FloatId = Annotated[float, msgspec.Meta(ge=0.0, le=2.0 ** 53)]
DECODE_ERRORS = (msgspec.DecodeError, UnicodeDecodeError, ValueError, OverflowError)
# what a kline reply that is not the documented shape raises while it is read
CANDLE_ERRORS = (*DECODE_ERRORS, KeyError, IndexError, TypeError)

EMITTED, PARSED, CONTROL, IGNORED, UNKNOWN, MALFORMED = (
    Outcome.EMITTED, Outcome.PARSED, Outcome.CONTROL, Outcome.IGNORED, Outcome.UNKNOWN, Outcome.MALFORMED)

T = TypeVar("T")

# record kinds as plain module constants: the hot paths read them once per record
TRADE, LIQUIDATION, BOOK_TOP = Kind.TRADE, Kind.LIQUIDATION, Kind.BOOK_TOP


class Resolved(dict):
    """``key -> resolve(key)``, asked once per key: a hit is one C-level dict subscript instead of a Python call.

    None answers are not kept: that key is asked again next time (a symbol registered later is picked up).
    Only for answers that never change once given (instrument ids, contract sizes).
    """

    __slots__ = ("resolve",)

    def __init__(self, resolve):
        super().__init__()
        self.resolve = resolve

    def __missing__(self, key):
        value = self.resolve(key)
        if value is not None:
            self[key] = value
        return value


class InstrumentIds(Resolved):
    """Symbol -> instrument id, from the feed's ``lookup`` on first sight of each symbol."""

    __slots__ = ()


class Heads(dict):
    """A push's head, its bytes up to the first ``[`` (action and subscription key, then ``"data":``) -> what a
    parser derived from it once (handler, decoder, stream name ...): one find, one slice and one dict
    subscript per frame instead of routing each frame again. Look up ``heads.get(payload[:payload.find(91)])``
    (91 is ``[``; an int needle is the fastest find).

    A head is kept only if it ends in ``"data":`` and is a whole top-level prefix (``head + b'null}'``
    decodes to an object): JSON is read left to right, so the same bytes are the same action and key in any
    later frame that starts with them. Bounded (heads come from the venue): cleared when ``limit`` are kept.
    """

    __slots__ = ("limit",)
    _check = msgspec.json.Decoder(dict).decode

    def __init__(self, limit: int = 4096):
        super().__init__()
        self.limit = limit

    def learn(self, payload: bytes, route) -> None:
        """Keep ``route`` for ``payload``'s head (a frame that has just decoded and routed the slow way)."""
        head = payload[:payload.find(91)]
        if not head.endswith(b'"data":'):
            return
        try:
            self._check(head + b"null}")
        except DECODE_ERRORS:
            return              # "data": nested in the head, or the head is not a plain prefix
        if len(self) >= self.limit:
            self.clear()
        self[head] = route


def book_top(venue, flags, iid, ts_ex, ts_recv, bid, bid_qty, ask, ask_qty, out) -> Outcome:
    """Append one BOOK_TOP record (``notional`` = USD on both best levels); MALFORMED if a value is out of range."""
    if not (0.0 < bid < MAX_VALUE and 0.0 < ask < MAX_VALUE and 0.0 <= bid_qty < MAX_VALUE
            and 0.0 <= ask_qty < MAX_VALUE):
        return MALFORMED
    out.append((BOOK_TOP, venue, 0, flags, iid, ts_ex, ts_recv,
                bid, bid_qty, bid * bid_qty + ask * ask_qty, ask, ask_qty))
    return EMITTED


def open_interest(venue, flags, iid, ts_ex, ts_recv, price, qty) -> tuple:
    """One OPEN_INTEREST record: ``qty`` base units valued at ``price`` (the caller has bounded both)."""
    return (Kind.OPEN_INTEREST, venue, 0, flags, iid, ts_ex, ts_recv, price, qty, qty * price, 0.0, 0.0)


def batches(items: Sequence[T], size: int) -> list[Sequence[T]]:
    """``items`` cut into consecutive slices of at most ``size`` (one subscribe frame each)."""
    return [items[i:i + size] for i in range(0, len(items), size)]


def array_candles(rows, base: int = 5, quote: int = 6) -> list[tuple]:
    """Kline rows of ``[open ms, open, high, low, close, ...]`` strings (Bybit, OKX, Bitget) -> (open ms, open,
    high, low, close, base volume ``r[base]``, quote volume ``r[quote]``, 0) oldest first; raises one of
    :data:`CANDLE_ERRORS` on a row that is not that shape."""
    return sorted((int(r[0]), float(r[1]), float(r[2]), float(r[3]), float(r[4]), float(r[base]), float(r[quote]), 0)
                  for r in rows)
