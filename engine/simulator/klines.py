"""The 1-minute klines every venue simulator serves: :class:`engine.simulator.binance.KlineBook`'s rows
(the trades the venue sent, wall-clock minutes), selected by open time for a venue's own kline route."""
from __future__ import annotations

from .binance import KlineBook

__all__ = ["KlineBook", "select"]


def select(book: KlineBook, symbol: str, start_ms: int | None, end_ms: int | None,
           limit: int) -> list[tuple[int, list]]:
    """``(open ms, [o, h, l, c, base volume, quote volume, trades, taker buy, taker buy quote])`` of the klines
    opening in [start_ms, end_ms] (either may be None), oldest first: the newest ``limit`` of them."""
    rows = book.rows.get(symbol, {})
    times = sorted(t for t in rows if (start_ms is None or t >= start_ms) and (end_ms is None or t <= end_ms))
    return [(t, rows[t]) for t in times[-limit:]]
