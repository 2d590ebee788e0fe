"""Scripted scenarios for the synthetic market: named, seeded market episodes on one symbol.

A scenario is started with :meth:`SyntheticMarket.script` (``market.script("oi_explosion",
"BTCUSDT", at=60.0)``) or from a script line ``NAME[:SYMBOL][@SECONDS][,key=value...]``
(:func:`parse_script`, used by ``undertow simulate --scenario`` and ``/_sim/scenario``).
It only changes the market's neutral state (sizes, rates, open interest, basis, book, return
loadings) so every venue module renders it in its own protocol. Randomness comes from the
market's generator, so a seeded market with the same script replays the same events.

Scenarios (parameters with their defaults):

* ``whale_print``: ``count`` (1) taker trades of ``usd`` (1,000x the symbol's median trade),
  ``side`` buy|sell (buy);
* ``volume_burst``: trade rate x ``factor`` (8) for ``duration`` (60 s), taker ``side`` skew
  buy|sell|none (none);
* ``oi_explosion`` / ``oi_flush``: open interest +``pct`` % (40) / -``pct`` % (35) over
  ``duration`` (300 s), compounding per step;
* ``funding_squeeze``: basis pulled towards the level giving an 8 h funding rate of ``rate``
  (0.003; negative for a short squeeze) for ``duration`` (300 s);
* ``book_imbalance``: resting size on ``side`` (bid) x ``factor`` (6) for ``duration`` (120 s);
* ``depth_collapse``: resting size on both sides x ``factor`` (0.08) for ``duration`` (60 s);
* ``correlation_break``: the symbol's returns load ``loading`` (-0.7) on the market factor
  instead of the market's correlation, for ``duration`` (600 s); on the factor symbol (the
  first) every other symbol is decoupled instead;
* ``cascade``: :meth:`SyntheticMarket.trigger_cascade` on the symbol for ``duration`` (40 s);
* ``calm``: no random cascades and no high-volatility regime for ``duration`` (3600 s).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:  # pragma: no cover
    from .market import SyntheticMarket, _State

__all__ = ["Scenario", "SCENARIOS", "make_scenario", "parse_script"]


@dataclass
class Scenario:
    """One scripted episode: ``symbol`` from ``start`` for ``duration`` simulated seconds."""

    name: ClassVar[str] = ""
    symbol: str
    start: float
    duration: float = 0.0
    params: dict[str, Any] = field(default_factory=dict)
    started: bool = False
    finished: bool = False

    @property
    def end(self) -> float:
        return self.start + self.duration

    def param(self, key: str, default: Any) -> Any:
        return type(default)(self.params.get(key, default)) if default is not None else self.params.get(key)

    def begin(self, m: SyntheticMarket, st: _State, events: list) -> None:
        """Called once at ``start``."""

    def tick(self, m: SyntheticMarket, st: _State, t: float, events: list) -> None:
        """Called every step while active (after :meth:`begin`)."""

    def finish(self, m: SyntheticMarket, st: _State, events: list) -> None:
        """Called once at ``end``: undo what :meth:`begin` changed."""


class WhalePrint(Scenario):
    name = "whale_print"

    def begin(self, m, st, events):
        usd = self.param("usd", 1000.0 * st.spec.trade_usd)
        buy = self.param("side", "buy") != "sell"
        for _ in range(self.param("count", 1)):
            m.print_trade(st, usd, buy, events)


class VolumeBurst(Scenario):
    name = "volume_burst"

    def begin(self, m, st, events):
        st.volume_mult *= self.param("factor", 8.0)
        side = self.param("side", "none")
        st.flow_bias += 0.3 if side == "buy" else -0.3 if side == "sell" else 0.0

    def finish(self, m, st, events):
        st.volume_mult /= self.param("factor", 8.0)
        side = self.param("side", "none")
        st.flow_bias -= 0.3 if side == "buy" else -0.3 if side == "sell" else 0.0


class OpenInterestMove(Scenario):
    """Open interest compounds to ``(1 + sign * pct/100)`` of its start over the duration."""

    name = "oi_explosion"
    sign: ClassVar[float] = 1.0
    default_pct: ClassVar[float] = 40.0

    def begin(self, m, st, events):
        pct = self.param("pct", self.default_pct)
        total = 1.0 + self.sign * pct / 100.0
        if total <= 0.0:
            raise ValueError(f"{self.name}: pct {pct} would make open interest non-positive")
        from .market import STEP_S
        self._per_step = math.exp(math.log(total) * STEP_S / max(self.duration, STEP_S))

    def tick(self, m, st, t, events):
        st.oi *= self._per_step


class OpenInterestFlush(OpenInterestMove):
    name = "oi_flush"
    sign = -1.0
    default_pct = 35.0


class FundingSqueeze(Scenario):
    name = "funding_squeeze"

    def begin(self, m, st, events):
        st.basis_target = m.basis_for_funding(self.param("rate", 0.003))

    def finish(self, m, st, events):
        st.basis_target = 0.0


class BookScale(Scenario):
    """Resting size on the book's sides multiplied by ``factor`` while active."""

    name = "book_imbalance"
    default_factor: ClassVar[float] = 6.0

    def _sides(self) -> tuple[int, ...]:
        side = self.param("side", "bid")
        if side not in ("bid", "ask"):
            raise ValueError(f"{self.name}: side must be bid or ask, got {side!r}")
        return (0,) if side == "bid" else (1,)

    def begin(self, m, st, events):
        for s in self._sides():
            m.scale_book(st, s, self.param("factor", self.default_factor))

    def finish(self, m, st, events):
        for s in self._sides():
            m.scale_book(st, s, 1.0 / self.param("factor", self.default_factor))


class DepthCollapse(BookScale):
    name = "depth_collapse"
    default_factor = 0.08

    def _sides(self) -> tuple[int, ...]:
        return (0, 1)


class CorrelationBreak(Scenario):
    name = "correlation_break"

    def _targets(self, m) -> list:
        if self.symbol == m.symbols[0]:
            return [m.states[s] for s in m.symbols[1:]]
        return [m.states[self.symbol]]

    def begin(self, m, st, events):
        for target in self._targets(m):
            target.loading = self.param("loading", -0.7)

    def finish(self, m, st, events):
        for target in self._targets(m):
            target.loading = None


class CascadeScenario(Scenario):
    name = "cascade"

    def begin(self, m, st, events):
        m.trigger_cascade(self.symbol, duration_s=self.duration)


class Calm(Scenario):
    name = "calm"

    def begin(self, m, st, events):
        m.calm_until = max(m.calm_until, self.end)
        m.regime = min(m.regime, 1)


SCENARIOS: dict[str, type[Scenario]] = {c.name: c for c in (
    WhalePrint, VolumeBurst, OpenInterestMove, OpenInterestFlush, FundingSqueeze, BookScale, DepthCollapse,
    CorrelationBreak, CascadeScenario, Calm)}

_DURATIONS = {"whale_print": 0.0, "volume_burst": 60.0, "oi_explosion": 300.0, "oi_flush": 300.0,
              "funding_squeeze": 300.0, "book_imbalance": 120.0, "depth_collapse": 60.0,
              "correlation_break": 600.0, "cascade": 40.0, "calm": 3600.0}


def make_scenario(name: str, symbol: str, start: float, duration: float | None = None, **params: Any) -> Scenario:
    """Build scenario ``name``; raise ValueError naming the known ones if it is unknown."""
    cls = SCENARIOS.get(name)
    if cls is None:
        raise ValueError(f"unknown scenario {name!r} (have {', '.join(SCENARIOS)})")
    dur = _DURATIONS[name] if duration is None else float(duration)
    if dur < 0 or not math.isfinite(dur):
        raise ValueError(f"scenario {name}: duration must be a finite non-negative number, got {duration}")
    return cls(symbol=symbol.upper(), start=float(start), duration=dur, params=params)


def parse_script(line: str) -> tuple[str, str | None, float | None, dict[str, Any]]:
    """Parse ``NAME[:SYMBOL][@SECONDS][,key=value...]`` into (name, symbol, at, params).

    Values that read as numbers become floats (``duration`` included).
    """
    head, *pairs = [p.strip() for p in line.split(",")]
    at = None
    if "@" in head:
        head, _, when = head.partition("@")
        try:
            at = float(when)
        except ValueError:
            raise ValueError(f"scenario {line!r}: time after @ must be seconds, got {when!r}") from None
    name, _, symbol = head.partition(":")
    params: dict[str, Any] = {}
    for pair in pairs:
        key, eq, value = pair.partition("=")
        if not eq or not key:
            raise ValueError(f"scenario {line!r}: expected key=value, got {pair!r}")
        try:
            params[key] = float(value)
        except ValueError:
            params[key] = value
    if name not in SCENARIOS:
        raise ValueError(f"unknown scenario {name!r} (have {', '.join(SCENARIOS)})")
    return name, (symbol.upper() or None), at, params
