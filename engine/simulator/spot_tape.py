"""The spot tape every spot simulator (Binance, Bybit, OKX) draws from the synthetic perpetual market.

Model: spot price = perpetual trade price / (1 + the market's basis), so spot sits below the perpetual when the
basis is positive; a share of the perpetual's trades (:data:`SPOT_TRADE_SHARE`) has a spot counterpart with its
own size; the spot taker follows the perpetual taker's side most of the time (:data:`FOLLOW_SIDE`) unless
:meth:`SpotTape.lead` forces a buy share; trade ids count up per pair. Each venue draws from its own seeded
generator, so the venues' tapes differ. :class:`SpotVenue` is what the spot venue simulators share beside it.
"""
from __future__ import annotations

import dataclasses
import random
from typing import Any, Iterable, NamedTuple
from urllib.parse import urlsplit

from .binance import listing_volume_usd
from .klines import KlineBook
from .market import Trade, spec_for

__all__ = ["SpotTape", "SpotPrint", "SpotVenue", "idle_stats", "SPOT_TRADE_SHARE", "FOLLOW_SIDE",
           "SPOT_VOLUME_SHARE"]

SPOT_TRADE_SHARE = 0.6     # of the perpetual's trades that have a spot counterpart
FOLLOW_SIDE = 0.7          # probability a spot taker trades the perpetual taker's side
SPOT_VOLUME_SHARE = 0.4    # spot 24 h volume against the perpetual's synthetic listing volume


@dataclasses.dataclass
class _SpotState:
    """One spot pair's tape and rolling statistics (since the simulator started, on top of a baseline)."""

    trade_id: int = 5_000_000
    last: float = 0.0
    open: float = 0.0
    high: float = 0.0
    low: float = 0.0
    base_volume: float = 0.0
    quote_volume: float = 0.0
    buy_share: float | None = None   # forced taker-buy probability (lead), None = follow the perpetual


class SpotPrint(NamedTuple):
    """One spot trade: ``qty`` in base units, rounded to the pair's step; ``buy`` = the taker bought."""

    symbol: str
    price: float
    qty: float
    buy: bool
    trade_id: int


class SpotTape:
    """Spot trades, their 1-minute klines and rolling 24 h statistics of ``symbols`` (simulator names,
    ``BTCUSDT``) from ``market``."""

    def __init__(self, symbols: Iterable[str], market: Any, seed: int) -> None:
        self.market = market
        self.rng = random.Random(seed)
        self.state = {s: _SpotState() for s in symbols}
        self.klines = KlineBook()
        self.trades = 0

    def lead(self, symbol: str, buy_share: float | None) -> None:
        """Force the share of spot taker buys of ``symbol`` (1.0 = spot-led buying); None = follow the perp."""
        self.state[symbol].buy_share = buy_share

    def price(self, symbol: str, perp_price: float) -> float:
        """The spot price beside a perpetual price: below it while the basis is positive."""
        basis = self.market.states[symbol].basis if self.market is not None else 0.0
        return perp_price / (1.0 + basis)

    def prints(self, events: Iterable, now_ms: int) -> list[SpotPrint]:
        """The spot trades of one market step's events (a share of its perpetual trades; zero sizes dropped),
        each also added to :attr:`klines` at ``now_ms``."""
        out = []
        rng = self.rng
        for ev in events:
            if type(ev) is not Trade or ev.symbol not in self.state or rng.random() >= SPOT_TRADE_SHARE:
                continue
            st = self.state[ev.symbol]
            price = self.price(ev.symbol, ev.price)
            qty = round(ev.qty * rng.lognormvariate(-0.7, 0.5), spec_for(ev.symbol).qty_decimals)
            if qty <= 0.0:
                continue
            share = st.buy_share
            buy = rng.random() < share if share is not None else (ev.taker_buy == (rng.random() < FOLLOW_SIDE))
            st.trade_id += 1
            if not st.open:
                st.open = st.high = st.low = price
            st.last, st.high, st.low = price, max(st.high, price), min(st.low, price)
            st.base_volume += qty
            st.quote_volume += qty * price
            self.trades += 1
            self.klines.add(ev.symbol, price, qty, buy, now_ms)
            out.append(SpotPrint(ev.symbol, price, qty, buy, st.trade_id))
        return out

    def stats(self, symbol: str) -> tuple[float, float, float, float, float, float]:
        """(last, open, high, low, base volume, quote volume) over 24 h: a baseline day plus the trades sent."""
        st, spec = self.state[symbol], spec_for(symbol)
        last = st.last or self.price(symbol, self.market.price(symbol) if self.market is not None else spec.price)
        base_usd = listing_volume_usd(spec) * SPOT_VOLUME_SHARE
        return (last, st.open or last, max(st.high, last), min(st.low or last, last),
                base_usd / last + st.base_volume, base_usd + st.quote_volume)


def idle_stats(price: float, quote_volume: float) -> tuple[float, float, float, float, float, float]:
    """:meth:`SpotTape.stats` of a pair that is listed but never trades here (a venue's listing extras)."""
    return price, price, price, price, quote_volume / price, quote_volume


class SpotVenue:
    """Mixin (before the perpetual venue class) for a spot venue simulator: its :class:`SpotTape` in ``self.tape``
    (:meth:`open_tape`), on one WebSocket path, ``ws_path``, whose sessions are of ``ws_category`` (a venue with
    other paths overrides :meth:`owns` and :meth:`open_session`)."""

    ws_path: str
    ws_category: str
    tape: SpotTape

    def open_tape(self, symbols: Iterable[str], market: Any, seed: int) -> None:
        """Draw the spot trades from ``market`` with ``seed``; the perpetual's kline routes serve their klines."""
        self.tape = SpotTape(symbols, market, seed)
        self.klines = self.tape.klines

    def owns(self, path: str) -> bool:
        return urlsplit(path).path.rstrip("/") == self.ws_path

    def open_session(self, path: str) -> tuple[str, bool, list[str]]:
        if not self.owns(path):
            raise ValueError(path)
        return self.ws_category, False, []

    def lead(self, symbol: str, buy_share: float | None) -> None:
        """Force the share of spot taker buys of ``symbol``; None = follow the perpetual (:meth:`SpotTape.lead`)."""
        self.tape.lead(symbol, buy_share)
