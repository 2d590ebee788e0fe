"""The simulated venue book: resting limit orders of one symbol on a grid of price levels.

:class:`LevelBook` is what a market order walks in the mechanistic market
(:mod:`engine.simulator.mechanics`): levels :data:`LEVEL_BPS` apart hold a
target size (``depth`` USD per basis point, each level with its own drawn
factor), a sweep empties them and moves the bid/ask boundary, makers refill
them towards their target (the touch faster), and the book reports its changes
as the :class:`~engine.simulator.market.BookTop` and
:class:`~engine.simulator.market.BookDiff` events every venue module renders.
"""
from __future__ import annotations

import math

import numpy as np

from .market import BOOK_LEVELS, TOP_LEVELS, BookDiff, BookTop, SymbolSpec

__all__ = ["LevelBook", "LEVEL_BPS"]

LEVEL_BPS = 0.5                  # spacing of book levels (rounded to whole ticks)
_TOUCH_LEVELS = 4                # levels a side nearest the touch ...
_TOUCH_REFILL_SPEEDUP = 6.0      # ... refill this many times faster (makers requote the touch first)


class LevelBook:
    """Resting orders of one symbol on a grid of levels ``gap`` ticks apart.

    Level ``k`` sits at price ``k * gap * tick``; bids are the levels ``<= ref``,
    asks ``> ref``; each side keeps :data:`BOOK_LEVELS` levels (quantity 0 =
    consumed, refilling). Levels beyond that are deep liquidity at target.
    """

    def __init__(self, spec: SymbolSpec, price: float, depth_bp_usd: float, rng: np.random.Generator) -> None:
        self.spec = spec
        self.gap = max(1, round(price * LEVEL_BPS * 1e-4 / spec.tick))
        self.level_usd = depth_bp_usd * self.gap * spec.tick / price * 1e4   # target notional of one level
        self._level, self._decimals = self.gap * spec.tick, spec.price_decimals
        self._prices: dict[int, float] = {}   # level -> price, memoised
        self.mult = [1.0, 1.0]            # bid, ask multipliers (scenarios, regimes)
        self.rng = rng
        self.bids: dict[int, float] = {}
        self.asks: dict[int, float] = {}
        self._unit: dict[int, float] = {}     # level -> target quantity at multiplier 1
        self._step = spec.step
        self.off: set = set()                 # kept levels away from their target (refilling)
        self.dirty_bids: set = set()
        self.dirty_asks: set = set()
        self.touched = True                   # the best levels may have changed
        self.ref = int(math.floor(price / (self.gap * spec.tick)))
        self.update_id = 1_000_000
        self.diff_first_id = 1_000_001
        self.last_diff_id = 1_000_000
        self.last_top: tuple = ()
        self._extend()
        self.dirty_bids.clear()
        self.dirty_asks.clear()

    def price_of(self, k: int) -> float:
        """Price of level ``k``, rounded to the symbol's decimals."""
        p = self._prices.get(k)
        if p is None:
            p = self._prices[k] = round(k * self._level, self._decimals)
        return p

    def target(self, k: int) -> float:
        """Target resting quantity (base) of level ``k``."""
        unit = self._unit.get(k)
        if unit is None:      # a level's own size factor (mean 1) is drawn once, kept while the level is kept
            unit = self._unit[k] = self.level_usd * float(self.rng.lognormal(-0.08, 0.4)) / self.price_of(k)
        return self._round(unit * self.mult[0 if k <= self.ref else 1])

    def _round(self, qty: float) -> float:
        return round(qty / self._step) * self._step

    def sweep(self, buy: bool, qty: float) -> list[tuple[float, float]]:
        """Fill a market order of ``qty`` base against the book; return its fills ``[(price, qty)]``."""
        levels, dirty, sign = (self.asks, self.dirty_asks, 1) if buy else (self.bids, self.dirty_bids, -1)
        k = self.ref + 1 if buy else self.ref
        fills: list[tuple[float, float]] = []
        remaining = qty
        half = self.spec.step / 2.0
        while remaining > half:
            have = levels.get(k)
            if have is None:          # past the kept levels: deep liquidity at its target
                have = self.target(k)
            if have > 0.0:
                take = min(have, remaining)
                fills.append((self.price_of(k), take))
                remaining -= take
                levels[k] = self._round(have - take)
                dirty.add(k)
                self.off.add(k)
            if remaining > half:
                k += sign
        self.touched = True
        rests = levels.get(k, 0.0) > 0.0      # the last level still rests on its side
        new_ref = (k - 1 if rests else k) if buy else (k if rests else k - 1)
        if new_ref != self.ref:
            self._move_ref(new_ref)
        return fills

    def _move_ref(self, new_ref: int) -> None:
        """Move the bid/ask boundary; swept levels change side, empty and refilling; each side keeps
        :data:`BOOK_LEVELS` levels (far ones dropped, new far ones added at target)."""
        old, n = self.ref, BOOK_LEVELS
        up = new_ref > old
        src, dst = (self.asks, self.bids) if up else (self.bids, self.asks)
        self.ref = new_ref
        for k in (range(old + 1, new_ref + 1) if up else range(new_ref + 1, old + 1)):
            src.pop(k, None)          # consumed: its removal is already in the dirty set
            dst[k] = 0.0
            self.off.add(k)
        if up:
            self._drop(self.bids, self.dirty_bids, range(old - n + 1, new_ref - n + 1))
            self._fill(self.asks, self.dirty_asks, range(max(old + n + 1, new_ref + 1), new_ref + n + 1))
        else:
            self._drop(self.asks, self.dirty_asks, range(new_ref + n + 1, old + n + 1))
            self._fill(self.bids, self.dirty_bids, range(new_ref - n + 1, min(old - n + 1, new_ref + 1)))

    def _extend(self) -> None:
        """Fill both sides' :data:`BOOK_LEVELS` levels at target (start)."""
        self._fill(self.bids, self.dirty_bids, range(self.ref - BOOK_LEVELS + 1, self.ref + 1))
        self._fill(self.asks, self.dirty_asks, range(self.ref + 1, self.ref + BOOK_LEVELS + 1))

    def _drop(self, levels: dict, dirty: set, ks: range) -> None:
        for k in ks:
            if levels.pop(k, 0.0) > 0.0:
                dirty.add(k)
            self._unit.pop(k, None)
            self.off.discard(k)

    def _fill(self, levels: dict, dirty: set, ks: range) -> None:
        for k in ks:
            if k not in levels:
                levels[k] = self.target(k)
                dirty.add(k)

    def refill(self, alpha: float, share: float = 1.0) -> None:
        """Makers requote: a random ``share`` of the levels away from their target each move ``alpha`` of the
        way there (a level at its target within a quantity step is done)."""
        if not self.off:
            return
        ks = sorted(self.off)
        picked = (self.rng.random(len(ks)) < share).tolist() if share < 1.0 else [True] * len(ks)
        fast = 1.0 - (1.0 - alpha) ** _TOUCH_REFILL_SPEEDUP
        ref = self.ref
        for k, pick in zip(ks, picked):
            if not pick:
                continue
            levels, dirty = (self.bids, self.dirty_bids) if k <= ref else (self.asks, self.dirty_asks)
            q = levels[k]
            target = self.target(k)
            new = self._round(q + (target - q) * (fast if -_TOUCH_LEVELS < k - ref <= _TOUCH_LEVELS else alpha))
            if new == q:
                new = target
                self.off.discard(k)
            if new != q:
                levels[k] = new
                dirty.add(k)
        self.touched = True

    def scale(self, side: int, factor: float) -> None:
        """Multiply resting size on ``side`` (0 bid, 1 ask) now and in every later target."""
        self.mult[side] *= factor
        levels, dirty = (self.bids, self.dirty_bids) if side == 0 else (self.asks, self.dirty_asks)
        for k, q in levels.items():
            levels[k] = self._round(q * factor)
            dirty.add(k)
            self.off.add(k)
        self.touched = True

    def top(self, limit: int) -> tuple[list, list]:
        """Best ``limit`` non-empty levels a side, best first, as ``[(price, qty)]``."""
        out: tuple[list, list] = ([], [])
        for side, levels, ks in ((out[0], self.bids, range(self.ref, self.ref - BOOK_LEVELS, -1)),
                                 (out[1], self.asks, range(self.ref + 1, self.ref + 1 + BOOK_LEVELS))):
            for k in ks:
                q = levels.get(k, 0.0)
                if q > 0.0:
                    side.append((self.price_of(k), q))
                    if len(side) == limit:
                        break
        return out

    def depth_usd(self, bps: float, price: float) -> tuple[float, float]:
        """Resting USD within ``bps`` of ``price`` on the bid and ask side."""
        lo, hi = price * (1.0 - bps * 1e-4), price * (1.0 + bps * 1e-4)
        bid = sum(q * self.price_of(k) for k, q in self.bids.items() if self.price_of(k) >= lo)
        ask = sum(q * self.price_of(k) for k, q in self.asks.items() if self.price_of(k) <= hi)
        return bid, ask

    def best(self) -> tuple[float, float, float, float] | None:
        """(bid, bid qty, ask, ask qty) of the best non-empty levels, None when a side is empty."""
        bids, asks = self.bids, self.asks
        b = next((k for k in range(self.ref, self.ref - BOOK_LEVELS, -1) if bids.get(k, 0.0) > 0.0), None)
        a = next((k for k in range(self.ref + 1, self.ref + 1 + BOOK_LEVELS) if asks.get(k, 0.0) > 0.0), None)
        if b is None or a is None:
            return None
        return self.price_of(b), bids[b], self.price_of(a), asks[a]

    def book_top(self, symbol: str, t: float) -> BookTop | None:
        """A BookTop event if the best levels changed since the last one."""
        if not self.touched:
            return None
        self.touched = False
        top = self.best()
        if top is None or top == self.last_top:
            return None
        self.last_top = top
        self.update_id += 1
        return BookTop(symbol, t, self.update_id, *top)

    def book_diff(self, symbol: str, t: float) -> BookDiff:
        """The levels changed since the last diff (quantity 0 = removed) and the top after it."""
        self.update_id += 1
        bids = [(self.price_of(k), self.bids.get(k, 0.0)) for k in sorted(self.dirty_bids, reverse=True)]
        asks = [(self.price_of(k), self.asks.get(k, 0.0)) for k in sorted(self.dirty_asks)]
        self.dirty_bids.clear()
        self.dirty_asks.clear()
        top_bids, top_asks = self.top(TOP_LEVELS)
        diff = BookDiff(symbol, t, self.diff_first_id, self.update_id, self.last_diff_id, bids, asks,
                        top_bids, top_asks)
        self.last_diff_id = self.update_id
        self.diff_first_id = self.update_id + 1
        return diff
