"""Pieces several venue modules share: outcome names, decode errors, record tuples, subscribe batching.

Only what is the same on every venue lives here; a venue's wire schema and its
quirks stay in its own module.
"""
from __future__ import annotations

from typing import Sequence, TypeVar

import msgspec

from engine.record import Kind
from engine.venues import Outcome

__all__ = ["MAX_VALUE", "DECODE_ERRORS", "EMITTED", "PARSED", "CONTROL", "IGNORED", "UNKNOWN", "MALFORMED",
           "book_top", "open_interest", "batches"]

MAX_VALUE = 1e15   # bound on any price, size or amount: products of two stay finite (1e308 overflowed)
DECODE_ERRORS = (msgspec.DecodeError, UnicodeDecodeError, ValueError, OverflowError)

EMITTED, PARSED, CONTROL, IGNORED, UNKNOWN, MALFORMED = (
    Outcome.EMITTED, Outcome.PARSED, Outcome.CONTROL, Outcome.IGNORED, Outcome.UNKNOWN, Outcome.MALFORMED)

T = TypeVar("T")


def book_top(venue, flags, iid, ts_ex, ts_recv, bid, bid_qty, ask, ask_qty, out) -> Outcome:
    """Append one BOOK_TOP record (``notional`` = USD on both best levels); MALFORMED if a value is out of range."""
    if not (0.0 < bid < MAX_VALUE and 0.0 < ask < MAX_VALUE and 0.0 <= bid_qty < MAX_VALUE
            and 0.0 <= ask_qty < MAX_VALUE):
        return MALFORMED
    out.append((Kind.BOOK_TOP, venue, 0, flags, iid, ts_ex, ts_recv,
                bid, bid_qty, bid * bid_qty + ask * ask_qty, ask, ask_qty))
    return EMITTED


def open_interest(venue, flags, iid, ts_ex, ts_recv, price, qty) -> tuple:
    """One OPEN_INTEREST record: ``qty`` base units valued at ``price`` (the caller has bounded both)."""
    return (Kind.OPEN_INTEREST, venue, 0, flags, iid, ts_ex, ts_recv, price, qty, qty * price, 0.0, 0.0)


def batches(items: Sequence[T], size: int) -> list[Sequence[T]]:
    """``items`` cut into consecutive slices of at most ``size`` (one subscribe frame each)."""
    return [items[i:i + size] for i in range(0, len(items), size)]
