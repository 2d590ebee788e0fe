"""Mechanistic perpetual-futures market: cascades emerge from leveraged positions meeting a finite book.

A drop-in for :class:`~engine.simulator.market.SyntheticMarket` (same neutral
events, same query methods, so every venue module serves it unchanged), but
nothing here is drawn as "a cascade": per symbol

* a **book** of resting limit orders on a level grid
  (:class:`~engine.simulator.levelbook.LevelBook`, ``depth`` USD per basis
  point per side): every market order walks it, so its impact is set by the
  depth the venues publish; consumed levels refill towards their target with
  time constant ``refill_s``;
* **noise traders** send taker orders (Poisson, log-normal sizes) whose side
  follows a slow sentiment shared across symbols (``correlation``);
* **leveraged traders** open positions (arrival rate, log-normal size,
  leverage mix, long share that follows the recent return and leans against
  funding), each a market order whose fill is the entry, and close them at
  rate ``1/hold_s`` with the opposite market order;
* a position whose liquidation price the traded price reaches is taken over by
  the liquidation engine and, after an exponential delay (``liq_delay_s``),
  sold (long) or bought (short) at market: a ``Liquidation`` event (side of the
  liquidated position) and the taker trades it causes. Its impact can reach
  more liquidation prices: that is the cascade, and how far it runs depends on
  the clustering of liquidation prices against the depth, which the engine
  only sees indirectly;
* open interest is the base quantity of open (and triggered, not yet
  executed) positions; funding comes from a basis that mean-reverts to
  ``basis_target`` plus a term in the long/short imbalance, as in SyntheticMarket.

Regimes (:mod:`engine.simulator.regimes`) script depth, flow and shocks; the
scenarios of :mod:`engine.simulator.scenarios` that act through flow, book,
basis or whale prints work here too. :attr:`MechanisticMarket.truth` keeps
the ground truth (:class:`~engine.simulator.population.Truth`).
"""
from __future__ import annotations

import heapq
import math
from typing import Any, Mapping, Sequence

import numpy as np

from engine.record import Side

from .levelbook import LevelBook
from .market import (BOOK_EVERY, MARK_EVERY, STEP_S, Liquidation, MarkBatch, MarkUpdate, SymbolSpec, SyntheticMarket,
                     Trade, _FUNDING_BASE, _FUNDING_BASIS_GAIN, spec_for)
from .population import DEFAULT_LEVERAGE, DEFAULT_MMR, LeverageMix, Positions, Traders, Truth
from .regimes import MECHANISTIC_SCENARIOS, REGIMES, Regime

__all__ = ["MechanisticMarket", "REGIMES", "DEFAULT_LEVERAGE"]

DEPTH_TRADES = 50.0              # resting USD per bp per side, in median trades
_BASIS_IMBALANCE_GAIN = 0.001    # basis per unit of (long - short) / open notional
_SENTIMENT_TAU_S = 60.0          # noise-flow sentiment: OU time constant ...
_SENTIMENT_SD = 0.06             # ... and stationary sd of the buy-probability tilt
_RETURN_EMA_S = 300.0            # horizon of the return new positions chase
_VALUE_EMA_S = 1800.0            # value traders lean against the distance from this slow average ...
_VALUE_PULL = 0.12               # ... by up to this much buy probability ...
_VALUE_SCALE = 0.01              # ... reached around this log distance
_REFILL_SHARE = 0.25             # share of the refilling levels requoted at each book update
_EPISODE_GAP_S = 30.0            # liquidations further apart than this start a new episode


class _Sym:
    """Per-symbol state; the attribute names the scenarios module uses are kept."""

    def __init__(self, spec: SymbolSpec, book: LevelBook, positions: Positions, depth_bp_usd: float,
                 position_usd: float) -> None:
        self.spec = spec
        self.book = book
        self.positions = positions
        self.depth_bp_usd = depth_bp_usd      # resting USD per basis point per side at multiplier 1
        self.position_usd = position_usd      # median new position
        self.price = spec.price            # last traded price
        self.ema_price = spec.price        # for the return new positions chase
        self.value_price = spec.price      # slow average value traders revert to
        self.trade_id = 1_000_000
        self.pending: list = []            # heap of (exec_t, seq, position row, trigger_t, trigger_price)
        self.pending_qty = 0.0
        self.basis = 0.0
        self.last_liq_t = -math.inf
        self.sentiment = 0.0
        # scenario knobs (scenarios.py): neutral values leave the model unchanged
        self.volume_mult = 1.0
        self.flow_bias = 0.0
        self.basis_target = 0.0
        self.loading: float | None = None

    @property
    def book_mult(self) -> list:
        return self.book.mult

    @property
    def oi(self) -> float:
        return self.positions.qty + self.pending_qty


class MechanisticMarket(SyntheticMarket):
    """A market whose liquidations come from a population of leveraged positions; see the module doc."""

    def __init__(self, symbols: Sequence[str] = ("BTCUSDT", "ETHUSDT", "SOLUSDT"), *, seed: int = 7,
                 rate: float = 200.0, correlation: float = 0.7, regime: str | Regime = "calm",
                 depth: float = 1.0, refill_s: float = 8.0, open_rate: float | None = None, hold_s: float = 1800.0,
                 position_usd: float = 5.0, leverage: Sequence[tuple[float, float]] = DEFAULT_LEVERAGE,
                 mmr: float | Mapping[str, float] = DEFAULT_MMR, liq_delay_s: float = 0.4,
                 snapshot_every_s: float = 60.0, snapshot_range: float = 0.15, snapshot_bins: int = 120) -> None:
        if not symbols:
            raise ValueError("at least one symbol is needed")
        if not -1.0 <= correlation <= 1.0:
            raise ValueError(f"correlation must be in [-1, 1], got {correlation}")
        for name, v in (("rate", rate), ("depth", depth), ("refill_s", refill_s), ("hold_s", hold_s),
                        ("position_usd", position_usd)):
            if not (math.isfinite(v) and v > 0.0):
                raise ValueError(f"{name} must be a positive number, got {v}")
        if not (math.isfinite(liq_delay_s) and liq_delay_s >= 0.0):
            raise ValueError(f"liq_delay_s must be >= 0, got {liq_delay_s}")
        if open_rate is not None and not open_rate >= 0.0:
            raise ValueError(f"open_rate must be >= 0, got {open_rate}")
        if not (snapshot_every_s >= 0.0 and 0.0 < snapshot_range < 1.0 and snapshot_bins >= 1):
            raise ValueError("snapshot_every_s must be >= 0, snapshot_range in (0, 1), snapshot_bins >= 1")
        self.regime_spec = REGIMES[regime] if isinstance(regime, str) and regime in REGIMES else regime
        if not isinstance(self.regime_spec, Regime):
            raise ValueError(f"unknown regime {regime!r} (have {', '.join(REGIMES)})")
        self.rng = rng = np.random.default_rng(seed)
        self.symbols = [s.upper() for s in symbols]
        self.rate = float(rate)
        self.correlation = float(correlation)
        self.cascade_every_s = 0.0        # SyntheticMarket knobs the scenarios module may touch
        self.calm_until = 0.0
        self.regime = 0
        self.cascades: list = []
        self.scripted: list = []
        self.steps = 0
        self.liquidations_generated = 0
        self.cascades_started = 0         # liquidation episodes: a liquidation after _EPISODE_GAP_S without one
        self.refill_alpha = 1.0 - math.exp(-BOOK_EVERY * STEP_S / (refill_s * _REFILL_SHARE))
        self.hold_s = float(hold_s)
        self.liq_delay_s = float(liq_delay_s)
        self.snapshot_every_s = float(snapshot_every_s)
        self.snapshot_range = float(snapshot_range)
        self.snapshot_bins = int(snapshot_bins)
        mmr_of = (lambda s: float(mmr.get(s, mmr.get("*", DEFAULT_MMR)))) if isinstance(mmr, Mapping) \
            else (lambda s: float(mmr))
        rs = self.regime_spec
        self.mix = LeverageMix(rs.leverage or leverage, max(mmr_of(s) for s in self.symbols))
        self.traders = Traders(self.mix, self.hold_s, rng)
        weights = np.array([spec_for(s).weight for s in self.symbols])
        weights = weights / weights.sum()
        self._noise_rate = (rate * 0.4 * weights * rs.noise).tolist()
        base_open = rate * 0.01 * weights if open_rate is None else np.full(len(self.symbols), float(open_rate))
        self._open_rate = (base_open * rs.open_rate).tolist()
        self.states: dict[str, _Sym] = {}
        for s in self.symbols:
            spec = spec_for(s)
            depth_bp = spec.trade_usd * DEPTH_TRADES * depth * rs.depth
            self.states[s] = _Sym(spec, LevelBook(spec, spec.price, depth_bp, rng), Positions(spec.symbol, mmr_of(s)),
                                  depth_bp, spec.trade_usd * position_usd)
        self._seq = 0
        self._sts = [self.states[s] for s in self.symbols]
        self._counts: list = []
        self.truth = Truth({s: st.positions for s, st in self.states.items()},
                           {s: st.pending for s, st in self.states.items()})
        for i, s in enumerate(self.symbols):
            st = self.states[s]
            self.traders.seed(st.positions, st.price, st.position_usd, int(round(self._open_rate[i] * hold_s)),
                              lambda usd, entry, spec=st.spec: self._qty(usd / entry, spec))
        self.cycles = 0                   # regime cycles scheduled (one, or one per ``every_s``)
        self._schedule_cycle(0.0)
        if self.snapshot_every_s > 0.0:
            self._take_snapshots()

    # ---------------------------------------------------------------- queries

    def open_interest(self, symbol: str) -> float:
        """Base quantity of open positions (including triggered ones whose forced order is pending)."""
        return self.states[symbol].oi

    def book_snapshot(self, symbol: str, limit: int) -> tuple[int, list, list]:
        book = self.states[symbol].book
        bids, asks = book.top(limit)
        return book.update_id, bids, asks

    def depth_usd(self, symbol: str, bps: float) -> tuple[float, float]:
        """Resting USD within ``bps`` of the price, (bid, ask)."""
        st = self.states[symbol]
        return st.book.depth_usd(bps, st.price)

    # ---------------------------------------------------------------- control

    def script(self, name: str, symbol: str | None = None, *, at: float | None = None,
               duration: float | None = None, **params) -> Any:
        """Schedule a scenario: a mechanistic one (:data:`MECHANISTIC_SCENARIOS`) or one of scenarios.py."""
        if name in ("oi_explosion", "oi_flush", "cascade"):
            raise ValueError(f"scenario {name} does not apply to the mechanistic market: open interest and "
                             "liquidations follow from its positions (use crowd, shock or depth_collapse)")
        cls = MECHANISTIC_SCENARIOS.get(name)
        if cls is None:
            return super().script(name, symbol, at=at, duration=duration, **params)
        sym = (symbol or self.symbols[0]).upper()
        if sym not in self.states:
            raise ValueError(f"scenario {name}: unknown symbol {sym!r} (have {', '.join(self.symbols)})")
        sc = cls.make(sym, self.t if at is None else at, duration, params)
        self.scripted.append(sc)
        return sc

    def trigger_cascade(self, symbol: str | None = None, *, long_liquidated: bool | None = None,
                        duration_s: float | None = None, all_symbols: bool = False) -> Any:
        """Nothing is drawn as a cascade here: a market order of 150 bp of depth is sent instead (a shock)."""
        side = "sell" if (long_liquidated if long_liquidated is not None else self.rng.random() < 0.6) else "buy"
        targets = self.symbols if all_symbols else [(symbol or self.symbols[0]).upper()]
        return [self.script("shock", s, bps=150.0, side=side) for s in targets]

    def print_trade(self, st: _Sym, usd: float, taker_buy: bool, events: list) -> None:
        """A taker market order of ``usd`` now (whale prints, shocks): it walks the book and may liquidate."""
        self.market_order(st, taker_buy, self._qty(usd / st.price, st.spec), events)

    def scale_book(self, st: _Sym, side: int, factor: float) -> None:
        if not factor > 0.0:
            raise ValueError(f"book scale factor must be positive, got {factor}")
        st.book.scale(side, factor)

    def open_position(self, st: _Sym, long: bool, leverage: float, usd: float, events: list) -> int:
        """Open a position with a market order of ``usd``; its average fill is the entry. Return its id."""
        qty = self._qty(usd / st.price, st.spec)
        fills = self.market_order(st, long, qty, events, settle=False)
        entry = sum(p * q for p, q in fills) / sum(q for _, q in fills)
        pid = st.positions.add(Side.LONG if long else Side.SHORT, entry, qty, leverage, self.t)
        self._trigger(st)    # its own fill may have reached other positions' liquidation prices
        self._execute_due(st, self.t, events)
        return pid

    def _schedule_cycle(self, start: float) -> None:
        """Schedule the regime's actions of the cycle starting at ``start``."""
        self.cycles += 1
        for act in self.regime_spec.cycle(self.cycles - 1):
            if act.symbol < len(self.symbols):
                self.script(act.name, self.symbols[act.symbol], at=start + act.at, duration=act.duration,
                            **act.params)

    # ---------------------------------------------------------------- stepping

    def step(self) -> list:
        """Advance one step of :data:`STEP_S` and return its events in order."""
        self.steps += 1
        t = self.t
        rng = self.rng
        events: list = []
        every = self.regime_spec.every_s
        if every and t >= self.cycles * every:
            self._schedule_cycle(self.cycles * every)
        if self.scripted:
            self._run_scenarios(t, events)
        sts = self._sts
        block = (self.steps - 1) % BOOK_EVERY
        if block == 0:
            self._draw_block(sts)
        counts = self._counts[block]
        for i, st in enumerate(sts):
            if st.pending and st.pending[0][0] <= t:
                self._execute_due(st, t, events)
            n_noise, n_open, n_close = counts[i]
            if n_noise:
                self._noise_orders(st, n_noise, events)
            for _ in range(n_open):
                self._random_open(st, events)
            if n_close and st.positions.n:
                self._random_closes(st, n_close, events)
            top = st.book.book_top(st.spec.symbol, t)
            if top is not None:
                events.append(top)
        if self.steps % BOOK_EVERY == 0:
            for sym in self.symbols:
                st = self.states[sym]
                st.book.refill(self.refill_alpha, _REFILL_SHARE)
                events.append(st.book.book_diff(sym, t))
        if self.steps % MARK_EVERY == 0:
            events.append(MarkBatch(t, tuple(self._mark_of(self.states[s], drift=True) for s in self.symbols)))
        if self.snapshot_every_s > 0.0 and self.steps % max(1, round(self.snapshot_every_s / STEP_S)) == 0:
            self._take_snapshots()
        return events

    def _draw_block(self, sts: list) -> None:
        """Draw the next BOOK_EVERY steps' order counts at once (numpy's per-call cost dominates otherwise)
        and move the noise-flow sentiment one block on."""
        rng = self.rng
        dt = BOOK_EVERY * STEP_S
        means = [(self._noise_rate[i] * st.volume_mult * STEP_S, self._open_rate[i] * STEP_S,
                  st.positions.n / self.hold_s * STEP_S) for i, st in enumerate(sts)]
        self._counts = rng.poisson(means, size=(BOOK_EVERY, len(sts), 3)).tolist()
        shocks = rng.standard_normal(len(sts) + 1).tolist()
        keep = math.exp(-dt / _SENTIMENT_TAU_S)
        kick = _SENTIMENT_SD * math.sqrt(1.0 - keep * keep)
        for i, st in enumerate(sts):
            load = self.correlation if st.loading is None else st.loading
            own = math.sqrt(1.0 - load * load) * shocks[i + 1]
            st.sentiment = st.sentiment * keep + kick * (load * shocks[0] + own)

    # ---------------------------------------------------------------- orders

    def market_order(self, st: _Sym, buy: bool, qty: float, events: list, *,
                     settle: bool = True) -> list[tuple[float, float]]:
        """Walk the book with a taker order of ``qty`` base and emit its trades; then (``settle``) hand the
        positions whose liquidation price it reached to the liquidation engine. Return the fills."""
        fills = st.book.sweep(buy, qty)
        sym, t = st.spec.symbol, self.t
        for price, q in fills:
            st.trade_id += 1
            events.append(Trade(sym, t, st.trade_id, price, q, buy))
        if fills:
            st.price = fills[-1][0]
        if settle:
            self._trigger(st)
            self._execute_due(st, t, events)
        return fills

    def _trigger(self, st: _Sym) -> None:
        """Queue every position whose liquidation price the last trade reached, after the engine's delay."""
        idx = st.positions.crossed(st.price)
        if not len(idx):
            return
        t = self.t
        for row in st.positions.remove(idx):
            delay = float(self.rng.exponential(self.liq_delay_s)) if self.liq_delay_s > 0.0 else 0.0
            self._seq += 1
            heapq.heappush(st.pending, (t + delay, self._seq, row, t, st.price))
            st.pending_qty += float(row["qty"])

    def _execute_due(self, st: _Sym, t: float, events: list) -> None:
        """Send the forced orders due by ``t``; what they trigger joins the queue (and runs now if due)."""
        while st.pending and st.pending[0][0] <= t:
            _, _, row, trig_t, trig_price = heapq.heappop(st.pending)
            qty = float(row["qty"])
            st.pending_qty -= qty
            long = int(row["side"]) == Side.LONG
            fills = self.market_order(st, not long, qty, events, settle=False)
            filled = sum(q for _, q in fills)
            avg = sum(p * q for p, q in fills) / filled
            events.append(Liquidation(st.spec.symbol, t, long, fills[-1][0], self._snap(avg, st.spec), qty))
            self.truth.record_liquidation((t, st.spec.symbol, int(row["side"]), avg, qty, avg * qty,
                                           float(row["leverage"]), float(row["liq_price"]), trig_t, trig_price,
                                           float(row["entry"]), int(row["id"])))
            self.liquidations_generated += 1
            if t - st.last_liq_t > _EPISODE_GAP_S:
                self.cascades_started += 1
            st.last_liq_t = t
            self._trigger(st)
        if not st.pending:
            st.pending_qty = 0.0       # no float drift once the queue is empty

    def _noise_orders(self, st: _Sym, n: int, events: list) -> None:
        rng = self.rng
        usd = rng.lognormal(math.log(st.spec.trade_usd), 1.3, n).tolist()
        sides = rng.random(n).tolist()
        value = -_VALUE_PULL * math.tanh(math.log(st.price / st.value_price) / _VALUE_SCALE)
        buy_below = 0.5 + max(-0.45, min(0.45, st.flow_bias + st.sentiment + value))
        for u, s in zip(usd, sides):
            self.market_order(st, s < buy_below, self._qty(u / st.price, st.spec), events)

    def _random_open(self, st: _Sym, events: list) -> None:
        funding = _FUNDING_BASIS_GAIN * st.basis
        long, leverage, usd = self.traders.new_position(self.traders.long_share(st.price, st.ema_price, funding),
                                                        st.position_usd)
        self.open_position(st, long, leverage, usd, events)

    def _random_closes(self, st: _Sym, n: int, events: list) -> None:
        for row in self.traders.close(st.positions, n):
            self.market_order(st, int(row["side"]) != Side.LONG, float(row["qty"]), events)

    # ---------------------------------------------------------------- marks and truth

    def _mark_of(self, st: _Sym, drift: bool = False) -> MarkUpdate:
        if drift:   # basis mean-reverts to the scenario target plus the crowd's lean
            target = st.basis_target + _BASIS_IMBALANCE_GAIN * st.positions.imbalance()
            st.basis = 0.9 * st.basis + 0.1 * target + float(self.rng.normal(0.0, 0.00005))
            st.ema_price += (st.price - st.ema_price) * (MARK_EVERY * STEP_S / _RETURN_EMA_S)
            st.value_price += (st.price - st.value_price) * (MARK_EVERY * STEP_S / _VALUE_EMA_S)
        mark = st.price * (1.0 + st.basis)
        funding = max(-0.0075, min(0.0075, _FUNDING_BASE + _FUNDING_BASIS_GAIN * st.basis))
        return MarkUpdate(st.spec.symbol, mark, st.price, funding)

    def _take_snapshots(self) -> None:
        for sym, st in self.states.items():
            r = self.snapshot_range
            edges = np.exp(np.linspace(math.log(st.price * (1.0 - r)), math.log(st.price * (1.0 + r)),
                                       self.snapshot_bins + 1))
            self.truth.snapshot(self.t, sym, edges)
