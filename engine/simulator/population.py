"""Leveraged positions of the mechanistic market's traders, and the ground truth it records.

:class:`Positions` holds one symbol's open positions in column arrays
(swap-remove, amortised growth) and keeps the two liquidation triggers (the
highest long and the lowest short liquidation price) so the market checks a
price move in O(1). :class:`Truth` records what the engine cannot see: every
liquidation with the position it closed, and the true liquidation map.

Isolated margin: a long opened at ``entry`` with leverage ``L`` and maintenance
margin rate ``mmr`` is liquidated at ``entry * (1 - 1/L + mmr)``, a short at
``entry * (1 + 1/L - mmr)`` (:func:`engine.kernels.zones.liquidation_price`,
the formula the engine's zone model uses too).
"""
from __future__ import annotations

import math
from typing import Sequence

import numpy as np

from engine.record import Side

__all__ = ["POSITION_DTYPE", "LIQUIDATION_DTYPE", "SNAPSHOT_FIELDS", "DEFAULT_LEVERAGE", "DEFAULT_MMR", "LeverageMix",
           "Positions", "Traders", "Truth", "liquidation_prices"]

DEFAULT_LEVERAGE = ((2, 0.14), (3, 0.12), (5, 0.18), (10, 0.20), (20, 0.14), (25, 0.07), (50, 0.08), (75, 0.03),
                    (100, 0.04))
DEFAULT_MMR = 0.005            # maintenance margin rate
_SIZE_SIGMA = 1.2              # log-normal spread of position sizes around the median ...
_SIZE_CAP = 200.0              # ... capped at this many medians
_SEED_SPREAD = 0.01            # log spread of the entries of positions open at the start

POSITION_DTYPE = np.dtype([
    ("id", np.int64), ("side", np.int8), ("entry", np.float64), ("qty", np.float64), ("size_usd", np.float64),
    ("leverage", np.float64), ("liq_price", np.float64), ("opened_t", np.float64),
])

LIQUIDATION_DTYPE = np.dtype([
    ("t", np.float64), ("symbol", "U16"), ("side", np.int8), ("price", np.float64), ("qty", np.float64),
    ("usd", np.float64), ("leverage", np.float64), ("liq_price", np.float64), ("trigger_t", np.float64),
    ("trigger_price", np.float64), ("entry", np.float64), ("position_id", np.int64),
])

SNAPSHOT_FIELDS = ("t", "symbol", "edges", "long_usd", "short_usd")


def liquidation_prices(entry: np.ndarray | float, leverage: np.ndarray | float, mmr: float,
                       side: np.ndarray | int) -> np.ndarray:
    """Isolated-margin liquidation price(s); ``side`` is :data:`Side.LONG` or :data:`Side.SHORT` (scalar or array)."""
    from engine.kernels.zones import liquidation_price
    entry = np.asarray(entry, dtype=np.float64)
    leverage = np.asarray(leverage, dtype=np.float64)
    return np.where(np.asarray(side) == Side.LONG, liquidation_price(entry, leverage, mmr, True),
                    liquidation_price(entry, leverage, mmr, False))


class LeverageMix:
    """A discrete leverage distribution: ``[(leverage, weight), ...]``, weights normalised."""

    def __init__(self, pairs: Sequence[tuple[float, float]], mmr_max: float) -> None:
        if not pairs:
            raise ValueError("leverage mix is empty")
        lev = np.array([float(p[0]) for p in pairs])
        w = np.array([float(p[1]) for p in pairs])
        if np.any(~np.isfinite(lev)) or np.any(lev < 1.0):
            raise ValueError(f"leverage mix: every leverage must be >= 1, got {lev.tolist()}")
        if np.any(w < 0.0) or not w.sum() > 0.0:
            raise ValueError(f"leverage mix: weights must be non-negative with a positive sum, got {w.tolist()}")
        if np.any(1.0 / lev <= mmr_max):
            bad = lev[1.0 / lev <= mmr_max].tolist()
            raise ValueError(f"leverage mix: leverage {bad} leaves no margin above the maintenance rate {mmr_max}")
        self.leverage = lev
        self.weights = w / w.sum()

    def draw(self, rng: np.random.Generator, n: int) -> np.ndarray:
        return self.leverage[rng.choice(len(self.leverage), size=n, p=self.weights)]


class Positions:
    """Open positions of one symbol (column arrays); liquidation triggers kept current."""

    def __init__(self, symbol: str, mmr: float, capacity: int = 1024) -> None:
        self.symbol = symbol
        self.mmr = float(mmr)
        self.data = np.zeros(capacity, dtype=POSITION_DTYPE)
        self.n = 0
        self.next_id = 1
        self.long_trigger = -math.inf     # highest long liquidation price
        self.short_trigger = math.inf     # lowest short liquidation price
        self.long_usd = 0.0               # open notional at entry, per side
        self.short_usd = 0.0
        self.qty = 0.0                    # open base quantity (both sides)

    def view(self) -> np.ndarray:
        return self.data[:self.n]

    def add(self, side: int, entry: float, qty: float, leverage: float, t: float) -> int:
        """Open one position; return its id."""
        if self.n == len(self.data):
            self.data = np.concatenate([self.data, np.zeros(len(self.data), dtype=POSITION_DTYPE)])
        liq = float(liquidation_prices(entry, leverage, self.mmr, side))
        pid = self.next_id
        self.next_id += 1
        usd = entry * qty
        self.data[self.n] = (pid, side, entry, qty, usd, leverage, liq, t)
        self.n += 1
        self._account(side, usd, qty)
        if side == Side.LONG:
            self.long_trigger = max(self.long_trigger, liq)
        else:
            self.short_trigger = min(self.short_trigger, liq)
        return pid

    def remove(self, idx: np.ndarray) -> np.ndarray:
        """Remove the positions at row indices ``idx``; return their rows (a copy)."""
        idx = np.unique(np.asarray(idx, dtype=np.int64))
        rows = self.data[idx].copy()
        if not len(idx):
            return rows
        keep = np.ones(self.n, dtype=bool)
        keep[idx] = False
        self.data[:int(keep.sum())] = self.data[:self.n][keep]
        self.n = int(keep.sum())
        for r in rows:
            self._account(int(r["side"]), -float(r["size_usd"]), -float(r["qty"]))
        self.refresh_triggers()
        return rows

    def crossed(self, price: float) -> np.ndarray:
        """Row indices of the positions whose liquidation price ``price`` has reached, most exposed first."""
        if self.long_trigger < price < self.short_trigger:
            return np.empty(0, dtype=np.int64)
        v = self.view()
        hit = ((v["side"] == Side.LONG) & (price <= v["liq_price"])) | \
              ((v["side"] == Side.SHORT) & (price >= v["liq_price"]))
        idx = np.flatnonzero(hit)
        return idx[np.argsort(np.abs(v["liq_price"][idx] - price))[::-1]]

    def refresh_triggers(self) -> None:
        v = self.view()
        longs = v["side"] == Side.LONG
        self.long_trigger = float(v["liq_price"][longs].max()) if longs.any() else -math.inf
        self.short_trigger = float(v["liq_price"][~longs].min()) if (~longs).any() else math.inf

    def _account(self, side: int, usd: float, qty: float) -> None:
        if side == Side.LONG:
            self.long_usd += usd
        else:
            self.short_usd += usd
        self.qty += qty

    def imbalance(self) -> float:
        """(long - short) / (long + short) open notional, 0 when flat."""
        total = self.long_usd + self.short_usd
        return (self.long_usd - self.short_usd) / total if total > 0.0 else 0.0


class Traders:
    """What leveraged traders do: the side, leverage and size of a new position, which positions close,
    and the population already open at the start. Draws come from the market's generator, in order."""

    def __init__(self, mix: LeverageMix, hold_s: float, rng: np.random.Generator) -> None:
        self.mix = mix
        self.hold_s = hold_s
        self.rng = rng

    @staticmethod
    def long_share(price: float, ema_price: float, funding: float) -> float:
        """New positions chase the recent return (``price`` against its average) and lean against funding."""
        ret = math.log(price / ema_price)
        return max(0.15, min(0.85, 0.5 + 0.25 * math.tanh(ret / 0.005) - 0.15 * math.tanh(funding / 0.0005)))

    def new_position(self, long_share: float, median_usd: float) -> tuple[bool, float, float]:
        """(long, leverage, USD) of one new position."""
        rng = self.rng
        long = bool(rng.random() < long_share)
        usd = min(median_usd * float(rng.lognormal(0.0, _SIZE_SIGMA)), _SIZE_CAP * median_usd)
        return long, float(self.mix.draw(rng, 1)[0]), usd

    def close(self, positions: Positions, n: int) -> np.ndarray:
        """Remove ``n`` random open positions (voluntary closes); return their rows."""
        return positions.remove(self.rng.choice(positions.n, size=min(n, positions.n), replace=False))

    def seed(self, positions: Positions, price: float, median_usd: float, n: int, qty_of) -> None:
        """Open ``n`` positions before the start: entries spread around ``price``, none past its liquidation
        (those were liquidated before). ``qty_of(usd, entry)`` rounds a size to the symbol's quantity step."""
        if n <= 0:
            return
        rng = self.rng
        entries = price * np.exp(rng.normal(0.0, _SEED_SPREAD, n))
        longs = rng.random(n) < 0.5
        lev = self.mix.draw(rng, n)
        usd = np.minimum(median_usd * rng.lognormal(0.0, _SIZE_SIGMA, n), _SIZE_CAP * median_usd)
        opened = -rng.uniform(0.0, self.hold_s, n)
        sides = np.where(longs, Side.LONG, Side.SHORT)
        liq = liquidation_prices(entries, lev, positions.mmr, sides)
        alive = np.where(longs, liq < price, liq > price)
        for i in np.flatnonzero(alive).tolist():
            positions.add(int(sides[i]), float(entries[i]), qty_of(float(usd[i]), float(entries[i])), float(lev[i]),
                          float(opened[i]))


class Truth:
    """Ground truth of a mechanistic market: liquidations, open positions and the true liquidation map."""

    def __init__(self, books: dict[str, Positions], pending: dict[str, list]) -> None:
        self._books = books
        self._pending = pending
        self._liqs: list[tuple] = []
        self.snapshots: list[tuple] = []   # (t, symbol, edges, long_usd, short_usd)

    def record_liquidation(self, row: tuple) -> None:
        """Append one executed liquidation (fields of :data:`LIQUIDATION_DTYPE`, in order)."""
        self._liqs.append(row)

    def liquidations(self) -> np.ndarray:
        """Every executed liquidation so far, in execution order (:data:`LIQUIDATION_DTYPE`)."""
        return np.array(self._liqs, dtype=LIQUIDATION_DTYPE)

    def positions(self, symbol: str) -> np.ndarray:
        """Open positions of ``symbol`` not yet triggered (:data:`POSITION_DTYPE`, a copy)."""
        return self._books[symbol].view().copy()

    def pending(self, symbol: str) -> np.ndarray:
        """Positions whose liquidation price was crossed but whose forced order has not executed yet."""
        rows = [p[2] for p in self._pending[symbol]]
        return np.array(rows, dtype=POSITION_DTYPE) if rows else np.zeros(0, dtype=POSITION_DTYPE)

    def true_map(self, symbol: str, edges: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """USD (entry notional) of open long and short positions by liquidation-price bin ``edges``."""
        edges = np.asarray(edges, dtype=np.float64)
        if edges.ndim != 1 or len(edges) < 2 or np.any(np.diff(edges) <= 0.0):
            raise ValueError("edges must be a strictly increasing 1-d array of at least two prices")
        v = self._books[symbol].view()
        longs = v["side"] == Side.LONG
        long_usd, _ = np.histogram(v["liq_price"][longs], bins=edges, weights=v["size_usd"][longs])
        short_usd, _ = np.histogram(v["liq_price"][~longs], bins=edges, weights=v["size_usd"][~longs])
        return long_usd, short_usd

    def snapshot(self, t: float, symbol: str, edges: np.ndarray) -> None:
        self.snapshots.append((t, symbol, edges, *self.true_map(symbol, edges)))
