"""Venue-agnostic synthetic perpetual-futures market.

The market advances in fixed steps of :data:`STEP_S` simulated seconds and
returns neutral events (no venue field names); a venue module formats them.
Everything random comes from one ``numpy.random.Generator`` seeded at
construction, so the same seed and the same number of steps give the same
events.

Model, per symbol:

* price: log random walk whose volatility switches between regimes
  (calm / normal / high), plus the price impact of liquidations;
* trades: Poisson arrivals, heavy-tailed (log-normal) sizes with rare whales,
  taker side skewed by the direction of an active cascade;
* book: a sparse L2 book on the tick grid around price; ``BookTop`` events
  change the best levels, a ``BookDiff`` every 100 ms carries the changed levels
  with ``first_id``/``last_id``/``prev_last_id`` update ids (Binance-style
  chaining, also usable by other venues);
* mark/index/funding once a second (``MarkBatch`` covering all symbols);
* open interest that grows with opening flow and shrinks with liquidations;
* liquidations: sparse small background, optional flat share (benchmarks),
  and cascades: self-exciting (Hawkes) bursts lasting 10-60 s in which each
  liquidation of one side pushes price further the same way and raises volume,
  sometimes on several symbols together;
* returns share one market factor (the first symbol's shock) with loading
  ``correlation``, so pairs have a stable correlation a scenario can break;
* scripted scenarios (:mod:`engine.simulator.scenarios`: whale prints, volume
  bursts, OI explosions/flushes, funding squeezes, book imbalance, depth
  collapse, correlation breaks, cascades, calm hours) via :meth:`SyntheticMarket.script`.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, NamedTuple, Sequence

import numpy as np

__all__ = [
    "STEP_S", "SymbolSpec", "SPECS", "spec_for", "Trade", "Liquidation", "BookTop", "BookDiff",
    "MarkUpdate", "MarkBatch", "Cascade", "SyntheticMarket",
]

STEP_S = 0.01           # simulated seconds per step
BOOK_EVERY = 10         # steps between BookDiff events (100 ms)
MARK_EVERY = 100        # steps between MarkBatch events (1 s)
BOOK_LEVELS = 60        # levels kept on each side of the book
TOP_LEVELS = 20         # levels carried in each BookDiff as a snapshot
SECONDS_PER_YEAR = 365.0 * 86400.0


@dataclass(frozen=True)
class SymbolSpec:
    """Static profile of one instrument: prices, grid, typical sizes, liquidation threshold."""

    symbol: str
    base: str
    quote: str
    price: float            # starting price
    tick: float
    step: float             # quantity step
    price_decimals: int
    qty_decimals: int
    trade_usd: float        # median trade notional
    oi_base: float          # starting open interest, base units
    liq_threshold_usd: float  # ORIGIN single-liquidation threshold
    weight: float           # share of the aggregate event rate
    impact_bps: float       # price impact of a threshold-sized liquidation


SPECS: dict[str, SymbolSpec] = {
    s.symbol: s for s in (
        SymbolSpec("BTCUSDT", "BTC", "USDT", 95_000.0, 0.10, 0.001, 2, 3, 6_000.0, 80_000.0, 100_000.0, 0.5, 0.6),
        SymbolSpec("ETHUSDT", "ETH", "USDT", 3_500.0, 0.01, 0.001, 2, 3, 3_000.0, 1_900_000.0, 50_000.0, 0.3, 0.8),
        SymbolSpec("SOLUSDT", "SOL", "USDT", 180.0, 0.01, 1.0, 4, 0, 1_500.0, 9_000_000.0, 25_000.0, 0.2, 1.0),
    )
}


def spec_for(symbol: str) -> SymbolSpec:
    """Return the profile of ``symbol``; unknown USDT symbols get a generic small-cap one."""
    symbol = symbol.upper()
    if symbol in SPECS:
        return SPECS[symbol]
    base = symbol[:-4] if symbol.endswith(("USDT", "USDC")) else symbol
    return SymbolSpec(symbol, base, symbol[len(base):] or "USDT", 1.0, 0.0001, 1.0, 4, 0,
                      500.0, 50_000_000.0, 10_000.0, 0.1, 3.0)


class Trade(NamedTuple):
    symbol: str
    t: float            # simulated seconds
    trade_id: int
    price: float
    qty: float
    taker_buy: bool


class Liquidation(NamedTuple):
    symbol: str
    t: float
    long_liquidated: bool   # a liquidated long is a forced SELL
    price: float            # order (bankruptcy-ish) price
    avg_price: float        # average fill price
    qty: float


class BookTop(NamedTuple):
    symbol: str
    t: float
    update_id: int
    bid: float
    bid_qty: float
    ask: float
    ask_qty: float


class BookDiff(NamedTuple):
    symbol: str
    t: float
    first_id: int
    last_id: int
    prev_last_id: int
    bids: list              # [(price, qty)], qty 0 removes the level
    asks: list
    top_bids: list          # best TOP_LEVELS levels after the update
    top_asks: list


class MarkUpdate(NamedTuple):
    symbol: str
    mark: float
    index: float
    funding_rate: float


class MarkBatch(NamedTuple):
    t: float
    marks: tuple            # one MarkUpdate per symbol


@dataclass
class Cascade:
    """One liquidation cascade: the side being liquidated and its Hawkes state per symbol."""

    start: float
    end: float
    long_liquidated: bool
    base_rate: dict[str, float]           # exogenous liquidations/s per symbol
    excitation: dict[str, float] = field(default_factory=dict)


@dataclass
class _Book:
    bids: dict[int, float] = field(default_factory=dict)   # tick index -> qty
    asks: dict[int, float] = field(default_factory=dict)
    best_bid: int = 0
    best_ask: int = 0
    update_id: int = 1_000_000
    diff_first_id: int = 1_000_001
    last_diff_id: int = 1_000_000
    dirty_bids: set = field(default_factory=set)
    dirty_asks: set = field(default_factory=set)


@dataclass
class _State:
    spec: SymbolSpec
    log_price: float
    oi: float
    basis: float = 0.0
    trade_id: int = 1_000_000
    book: _Book = field(default_factory=_Book)
    # scenario knobs (neutral values leave the calm model unchanged)
    volume_mult: float = 1.0
    flow_bias: float = 0.0
    basis_target: float = 0.0
    book_mult: list = field(default_factory=lambda: [1.0, 1.0])   # bid, ask resting-size multipliers
    loading: float | None = None      # market-factor loading override (correlation break)

    @property
    def price(self) -> float:
        return math.exp(self.log_price)


# volatility regimes: annualised vol and mean dwell time (s)
_REGIME_VOL = (0.25, 0.55, 1.10)
_REGIME_DWELL_S = (120.0, 90.0, 40.0)
_HAWKES_JUMP = 0.5      # excitation added per liquidation (1/s)
_HAWKES_DECAY = 1.0     # 1/s; branching ratio = jump / decay
_BACKGROUND_LIQ_PER_S = 0.03
_FUNDING_BASE = 0.0001   # 8 h funding rate at zero basis
_FUNDING_BASIS_GAIN = 0.3
_CALM_TRADE_SHARE = 0.4  # of non-liquidation events; the rest are book-top updates


class SyntheticMarket:
    """Generate a deterministic synthetic market for ``symbols``; call :meth:`step` repeatedly."""

    def __init__(self, symbols: Sequence[str] = ("BTCUSDT", "ETHUSDT", "SOLUSDT"), *, seed: int = 7,
                 rate: float = 200.0, cascade_every_s: float = 45.0, first_cascade_after_s: float = 20.0,
                 liquidation_share: float = 0.0, correlation: float = 0.7) -> None:
        if not symbols:
            raise ValueError("at least one symbol is needed")
        if not 0.0 <= liquidation_share < 1.0:
            raise ValueError(f"liquidation_share must be in [0, 1), got {liquidation_share}")
        if not -1.0 <= correlation <= 1.0:
            raise ValueError(f"correlation must be in [-1, 1], got {correlation}")
        self.correlation = float(correlation)
        self.scripted: list = []
        self.calm_until = 0.0
        self.rng = np.random.default_rng(seed)
        self.rate = float(rate)
        self.cascade_every_s = float(cascade_every_s)
        self.liquidation_share = float(liquidation_share)
        self.symbols = [s.upper() for s in symbols]
        self.states = {s: _State(spec_for(s), math.log(spec_for(s).price), spec_for(s).oi_base) for s in self.symbols}
        total_weight = sum(st.spec.weight for st in self.states.values())
        self._weights = np.array([self.states[s].spec.weight / total_weight for s in self.symbols])
        self.steps = 0
        self.regime = 0
        self.cascades: list[Cascade] = []
        self.cascades_started = 0
        self.liquidations_generated = 0
        self.next_cascade_at = first_cascade_after_s if cascade_every_s > 0 else math.inf
        for st in self.states.values():
            self._refill_book(st)
            st.book.dirty_bids.clear()
            st.book.dirty_asks.clear()

    @property
    def t(self) -> float:
        """Simulated seconds since start."""
        return self.steps * STEP_S

    # ---------------------------------------------------------------- queries

    def price(self, symbol: str) -> float:
        return self.states[symbol].price

    def open_interest(self, symbol: str) -> float:
        return self.states[symbol].oi

    def mark(self, symbol: str) -> MarkUpdate:
        st = self.states[symbol]
        return self._mark_of(st)

    def book_snapshot(self, symbol: str, limit: int) -> tuple[int, list, list]:
        """Return ``(last_update_id, bids, asks)`` with at most ``limit`` levels a side, best first."""
        st = self.states[symbol]
        bids, asks = self._top(st, limit)
        return st.book.update_id, bids, asks

    # ---------------------------------------------------------------- control

    def trigger_cascade(self, symbol: str | None = None, *, long_liquidated: bool | None = None,
                        duration_s: float | None = None, all_symbols: bool = False) -> Cascade:
        """Start a cascade now (on ``symbol`` or a weighted random one) and return it."""
        rng = self.rng
        primary = symbol.upper() if symbol else self.symbols[int(rng.choice(len(self.symbols), p=self._weights))]
        side = bool(rng.random() < 0.6) if long_liquidated is None else long_liquidated
        duration = float(rng.uniform(10.0, 60.0)) if duration_s is None else duration_s
        rates = {primary: float(rng.uniform(1.2, 2.2))}
        if all_symbols or rng.random() < 0.35:
            for s in self.symbols:
                if s != primary:
                    rates[s] = float(rng.uniform(0.5, 1.0))
        c = Cascade(self.t, self.t + duration, side, rates, {s: 0.0 for s in rates})
        self.cascades.append(c)
        self.cascades_started += 1
        self.regime = 2
        return c

    def script(self, name: str, symbol: str | None = None, *, at: float | None = None,
               duration: float | None = None, **params) -> Any:
        """Schedule scenario ``name`` on ``symbol`` (default: the first) at simulated time ``at`` (default: now)."""
        from .scenarios import make_scenario
        sym = (symbol or self.symbols[0]).upper()
        if sym not in self.states:
            raise ValueError(f"scenario {name}: unknown symbol {sym!r} (have {', '.join(self.symbols)})")
        sc = make_scenario(name, sym, self.t if at is None else at, duration, **params)
        self.scripted.append(sc)
        return sc

    def print_trade(self, st: _State, usd: float, taker_buy: bool, events: list) -> None:
        """Emit one taker trade of ``usd`` at the touch (whale prints)."""
        spec = st.spec
        price = st.price
        qty = max(spec.step, round(usd / price / spec.step) * spec.step)
        bid = self._snap(price, spec, down=True)
        st.trade_id += 1
        events.append(Trade(spec.symbol, self.t, st.trade_id, bid + spec.tick if taker_buy else bid, qty, taker_buy))
        st.oi += qty * 0.5

    def scale_book(self, st: _State, side: int, factor: float) -> None:
        """Multiply resting size on ``side`` (0 bid, 1 ask) now and in every later draw."""
        if not factor > 0.0:
            raise ValueError(f"book scale factor must be positive, got {factor}")
        st.book_mult[side] *= factor
        levels, dirty = (st.book.bids, st.book.dirty_bids) if side == 0 else (st.book.asks, st.book.dirty_asks)
        for k, q in levels.items():
            levels[k] = self._qty(q * factor, st.spec)
            dirty.add(k)

    @staticmethod
    def basis_for_funding(rate_8h: float) -> float:
        """The basis at which the synthetic funding formula gives ``rate_8h``."""
        return (rate_8h - _FUNDING_BASE) / _FUNDING_BASIS_GAIN

    def _run_scenarios(self, t: float, events: list) -> None:
        keep = []
        for sc in self.scripted:
            if t < sc.start:
                keep.append(sc)
                continue
            st = self.states[sc.symbol]
            if not sc.started:
                sc.started = True
                sc.begin(self, st, events)
            if t < sc.end:
                sc.tick(self, st, t, events)
                keep.append(sc)
            else:
                sc.finished = True
                sc.finish(self, st, events)
        self.scripted = keep

    # ---------------------------------------------------------------- stepping

    def step(self) -> list:
        """Advance one step of :data:`STEP_S` and return its events in order."""
        self.steps += 1
        t = self.t
        rng = self.rng
        events: list = []
        if self.scripted:
            self._run_scenarios(t, events)
        if t >= self.next_cascade_at and t >= self.calm_until:
            c = self.trigger_cascade()
            gap = float(rng.exponential(self.cascade_every_s))
            self.next_cascade_at = t + max(gap, c.end - c.start + 5.0)
        self.cascades = [c for c in self.cascades if c.end > t]
        if rng.random() < STEP_S / _REGIME_DWELL_S[self.regime]:
            self.regime = int(rng.integers(0, 3))
            if t < self.calm_until:
                self.regime = min(self.regime, 1)

        share = self.liquidation_share
        sigma = _REGIME_VOL[self.regime] * math.sqrt(STEP_S / SECONDS_PER_YEAR)
        n_sym = len(self.symbols)
        # draw the step's scalars in a few vector calls: numpy's per-call cost dominates otherwise
        noise = rng.standard_normal(n_sym).tolist()
        uniforms = rng.random(n_sym).tolist()
        biases, means = [], []
        factor = noise[0]   # the first symbol's shock is the market factor
        rho = self.correlation
        for i, sym in enumerate(self.symbols):
            st = self.states[sym]
            if i == 0:
                st.log_price += sigma * factor
            else:
                load = rho if st.loading is None else st.loading
                st.log_price += sigma * (load * factor + math.sqrt(1.0 - load * load) * noise[i])
            bias, intensity = self._cascade_liquidations(st, t, events)
            if share > 0.0:
                self._share_liquidations(st, t, self.rate * share * self._weights[i], events)
            if uniforms[i] < _BACKGROUND_LIQ_PER_S * STEP_S:
                self._background_liquidation(st, t, events)
            biases.append(max(-0.45, min(0.45, bias + st.flow_bias)))
            means.append(self.rate * (1.0 - share) * self._weights[i] * STEP_S * (1.0 + min(intensity, 4.0) / 2.0)
                         * st.volume_mult)
        counts = rng.poisson(np.outer(means, (_CALM_TRADE_SHARE, 1.0 - _CALM_TRADE_SHARE))).tolist()
        for i, sym in enumerate(self.symbols):
            st = self.states[sym]
            self._trades(st, t, counts[i][0], biases[i], events)
            for _ in range(counts[i][1]):
                events.append(self._book_top(st, t))
        if self.steps % BOOK_EVERY == 0:
            for sym in self.symbols:
                events.append(self._book_diff(self.states[sym], t))
        if self.steps % MARK_EVERY == 0:
            events.append(MarkBatch(t, tuple(self._mark_of(self.states[s], drift=True) for s in self.symbols)))
        return events

    def run(self, seconds: float) -> list:
        """Step for ``seconds`` of simulated time and return all events (for tests and tools)."""
        out: list = []
        for _ in range(int(round(seconds / STEP_S))):
            out.extend(self.step())
        return out

    # ---------------------------------------------------------------- internals

    def _cascade_liquidations(self, st: _State, t: float, events: list) -> tuple[float, float]:
        """Emit this step's cascade liquidations for ``st``; return (taker-buy bias, intensity/s)."""
        sym = st.spec.symbol
        bias = 0.0
        intensity = 0.0
        decay = math.exp(-_HAWKES_DECAY * STEP_S)
        for c in self.cascades:
            if sym not in c.base_rate or t < c.start:
                continue
            fade = 1.0 - 0.6 * (t - c.start) / (c.end - c.start)
            lam = c.base_rate[sym] * fade + c.excitation[sym]
            n = int(self.rng.poisson(lam * STEP_S))
            c.excitation[sym] = c.excitation[sym] * decay + _HAWKES_JUMP * n
            for _ in range(n):
                usd = st.spec.liq_threshold_usd * float(self.rng.lognormal(math.log(2.5), 0.8))
                self._liquidate(st, t, c.long_liquidated, usd, events)
            intensity += lam
            bias += -0.25 if c.long_liquidated else 0.25
        return max(-0.4, min(0.4, bias)), intensity

    def _share_liquidations(self, st: _State, t: float, per_s: float, events: list) -> None:
        for _ in range(int(self.rng.poisson(per_s * STEP_S))):
            usd = st.spec.liq_threshold_usd * (1.0 + float(self.rng.exponential(1.0)))
            self._liquidate(st, t, bool(self.rng.random() < 0.5), usd, events, impact=False)

    def _background_liquidation(self, st: _State, t: float, events: list) -> None:
        usd = st.spec.liq_threshold_usd * float(self.rng.lognormal(math.log(0.15), 1.2))
        self._liquidate(st, t, bool(self.rng.random() < 0.5), usd, events)

    def _liquidate(self, st: _State, t: float, long_liquidated: bool, usd: float, events: list,
                   impact: bool = True) -> None:
        spec = st.spec
        price = st.price
        qty = max(spec.step, round(usd / price / spec.step) * spec.step)
        # the forced order crosses the book: a forced sell fills below the market
        sign = -1.0 if long_liquidated else 1.0
        avg = self._snap(price * (1.0 + sign * 0.0004), spec)
        limit = self._snap(price * (1.0 + sign * 0.0015), spec)
        events.append(Liquidation(spec.symbol, t, long_liquidated, limit, avg, qty))
        st.oi = max(0.0, st.oi - qty)
        self.liquidations_generated += 1
        if impact:
            st.log_price += sign * spec.impact_bps * 1e-4 * math.sqrt(usd / spec.liq_threshold_usd)

    def _trades(self, st: _State, t: float, n: int, bias: float, events: list) -> None:
        if n <= 0:
            return
        rng = self.rng
        spec = st.spec
        price = st.price
        draws = rng.random((3, n)).tolist()
        sizes = rng.lognormal(math.log(spec.trade_usd), 1.3, n).tolist()
        bid = self._snap(price, spec, down=True)
        ask = bid + spec.tick
        step = spec.step
        buy_below = 0.5 + bias
        opened = net_usd = 0.0
        for k in range(n):
            usd = sizes[k]
            if draws[0][k] < 0.002:  # whale
                usd *= 50.0 + 350.0 * draws[1][k]
            qty = max(step, round(usd / price / step) * step)
            st.trade_id += 1
            buy = draws[2][k] < buy_below
            events.append(Trade(spec.symbol, t, st.trade_id, ask if buy else bid, qty, buy))
            opened += qty
            net_usd += usd if buy else -usd
        # flow moves price a little and opens slightly more than it closes
        st.log_price += max(-1.0, min(1.0, net_usd / (50.0 * spec.trade_usd))) * 0.2e-4
        st.oi += opened * (0.02 + 0.1 * (draws[1][0] - 0.5))

    def _book_top(self, st: _State, t: float) -> BookTop:
        book = st.book
        self._move_top(st)
        rng = self.rng
        lot = st.spec.trade_usd / st.price
        for s, (side, best) in enumerate(((book.bids, book.best_bid), (book.asks, book.best_ask))):
            side[best] = self._qty(lot * st.book_mult[s] * float(rng.lognormal(1.0, 1.0)), st.spec)
        book.dirty_bids.add(book.best_bid)
        book.dirty_asks.add(book.best_ask)
        book.update_id += 1
        tick = st.spec.tick
        return BookTop(st.spec.symbol, t, book.update_id, book.best_bid * tick, book.bids[book.best_bid],
                       book.best_ask * tick, book.asks[book.best_ask])

    def _book_diff(self, st: _State, t: float) -> BookDiff:
        book = st.book
        self._move_top(st)
        rng = self.rng
        lot = st.spec.trade_usd / st.price
        for _ in range(int(rng.integers(2, 8))):
            depth = int(rng.integers(1, BOOK_LEVELS))
            if rng.random() < 0.5:
                book.bids[book.best_bid - depth] = self._qty(lot * st.book_mult[0] * float(rng.lognormal(1.5, 1.2)),
                                                             st.spec)
                book.dirty_bids.add(book.best_bid - depth)
            else:
                book.asks[book.best_ask + depth] = self._qty(lot * st.book_mult[1] * float(rng.lognormal(1.5, 1.2)),
                                                             st.spec)
                book.dirty_asks.add(book.best_ask + depth)
        self._refill_book(st)
        book.update_id += 1
        tick = st.spec.tick
        bids = [(k * tick, book.bids.get(k, 0.0)) for k in sorted(book.dirty_bids, reverse=True)]
        asks = [(k * tick, book.asks.get(k, 0.0)) for k in sorted(book.dirty_asks)]
        book.dirty_bids.clear()
        book.dirty_asks.clear()
        top_bids, top_asks = self._top(st, TOP_LEVELS)
        diff = BookDiff(st.spec.symbol, t, book.diff_first_id, book.update_id, book.last_diff_id,
                        bids, asks, top_bids, top_asks)
        book.last_diff_id = book.update_id
        book.diff_first_id = book.update_id + 1
        return diff

    def _move_top(self, st: _State) -> None:
        """Re-centre the best levels on the current price, removing crossed levels."""
        book = st.book
        bid = int(math.floor(st.price / st.spec.tick))
        ask = bid + 1
        if bid < book.best_bid:
            gone = [k for k in book.bids if k > bid] if book.best_bid - bid > BOOK_LEVELS else \
                [k for k in range(bid + 1, book.best_bid + 1) if k in book.bids]
            for k in gone:
                del book.bids[k]
                book.dirty_bids.add(k)
        if ask > book.best_ask:
            gone = [k for k in book.asks if k < ask] if ask - book.best_ask > BOOK_LEVELS else \
                [k for k in range(book.best_ask, ask) if k in book.asks]
            for k in gone:
                del book.asks[k]
                book.dirty_asks.add(k)
        book.best_bid, book.best_ask = bid, ask
        lot = st.spec.trade_usd / st.price
        for s, (side, best, dirty) in enumerate(((book.bids, bid, book.dirty_bids), (book.asks, ask, book.dirty_asks))):
            if best not in side:
                side[best] = self._qty(lot * st.book_mult[s] * float(self.rng.lognormal(1.0, 1.0)), st.spec)
                dirty.add(best)

    def _refill_book(self, st: _State) -> None:
        """Keep levels within BOOK_LEVELS ticks of the top: fill gaps sparsely, drop far levels."""
        book = st.book
        if not book.best_bid:
            book.best_bid = int(math.floor(st.price / st.spec.tick))
            book.best_ask = book.best_bid + 1
        lot = st.spec.trade_usd / st.price
        rng = self.rng
        for s, (side, best, sign, dirty) in enumerate(((book.bids, book.best_bid, -1, book.dirty_bids),
                                                       (book.asks, book.best_ask, 1, book.dirty_asks))):
            far = best + sign * BOOK_LEVELS
            for k in [k for k in side if (k - far) * sign > 0]:
                del side[k]
                dirty.add(k)
            if len(side) < BOOK_LEVELS // 2:
                for d in range(BOOK_LEVELS):
                    k = best + sign * d
                    if k not in side and (d == 0 or rng.random() < 0.6):
                        side[k] = self._qty(lot * st.book_mult[s] * float(rng.lognormal(1.5, 1.2)), st.spec)
                        dirty.add(k)

    def _top(self, st: _State, limit: int) -> tuple[list, list]:
        book = st.book
        tick = st.spec.tick
        bids = [(k * tick, book.bids[k]) for k in sorted(book.bids, reverse=True)[:limit]]
        asks = [(k * tick, book.asks[k]) for k in sorted(book.asks)[:limit]]
        return bids, asks

    def _mark_of(self, st: _State, drift: bool = False) -> MarkUpdate:
        if drift:  # basis mean-reverts; a falling market drags it negative
            st.basis = 0.9 * st.basis + 0.1 * st.basis_target + float(self.rng.normal(0.0, 0.00005))
        index = st.price
        mark = index * (1.0 + st.basis)
        funding = max(-0.0075, min(0.0075, _FUNDING_BASE + _FUNDING_BASIS_GAIN * st.basis))
        return MarkUpdate(st.spec.symbol, mark, index, funding)

    @staticmethod
    def _snap(price: float, spec: SymbolSpec, down: bool = False) -> float:
        ticks = math.floor(price / spec.tick) if down else round(price / spec.tick)
        return ticks * spec.tick

    @staticmethod
    def _qty(qty: float, spec: SymbolSpec) -> float:
        return max(spec.step, round(qty / spec.step) * spec.step)
