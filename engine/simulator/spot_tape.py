"""A venue's spot tape drawn from the synthetic perpetual market, for the Bybit and OKX spot simulators.

The same model as :mod:`engine.simulator.binance_spot` (and its constants): spot price = perpetual trade price /
(1 + the market's basis); a share of the perpetual's trades has a spot counterpart with its own size; the spot
taker follows the perpetual taker's side most of the time unless :meth:`SpotTape.lead` forces a buy share; trade
ids count up per pair. Each venue draws from its own seeded generator, so the venues' tapes differ.
"""
from __future__ import annotations

import random
from typing import Any, Iterable, NamedTuple

from .binance import listing_volume_usd
from .binance_spot import FOLLOW_SIDE, SPOT_TRADE_SHARE, SPOT_VOLUME_SHARE, _SpotState
from .market import Trade, spec_for

__all__ = ["SpotTape", "SpotPrint"]


class SpotPrint(NamedTuple):
    """One spot trade: ``qty`` in base units, rounded to the pair's step; ``buy`` = the taker bought."""

    symbol: str
    price: float
    qty: float
    buy: bool
    trade_id: int


class SpotTape:
    """Spot trades and rolling 24 h statistics of ``symbols`` (simulator names, ``BTCUSDT``) from ``market``."""

    def __init__(self, symbols: Iterable[str], market: Any, seed: int) -> None:
        self.market = market
        self.rng = random.Random(seed)
        self.state = {s: _SpotState() for s in symbols}
        self.trades = 0

    def lead(self, symbol: str, buy_share: float | None) -> None:
        """Force the share of spot taker buys of ``symbol`` (1.0 = spot-led buying); None = follow the perp."""
        self.state[symbol].buy_share = buy_share

    def price(self, symbol: str, perp_price: float) -> float:
        """The spot price beside a perpetual price: below it while the basis is positive."""
        basis = self.market.states[symbol].basis if self.market is not None else 0.0
        return perp_price / (1.0 + basis)

    def prints(self, events: Iterable) -> list[SpotPrint]:
        """The spot trades of one market step's events (a share of its perpetual trades; zero sizes dropped)."""
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
            out.append(SpotPrint(ev.symbol, price, qty, buy, st.trade_id))
        return out

    def stats(self, symbol: str) -> tuple[float, float, float, float, float, float]:
        """(last, open, high, low, base volume, quote volume) over 24 h: a baseline day plus the trades sent."""
        st, spec = self.state[symbol], spec_for(symbol)
        last = st.last or self.price(symbol, self.market.price(symbol) if self.market is not None else spec.price)
        base_usd = listing_volume_usd(spec) * SPOT_VOLUME_SHARE
        return (last, st.open or last, max(st.high, last), min(st.low or last, last),
                base_usd / last + st.base_volume, base_usd + st.quote_volume)
