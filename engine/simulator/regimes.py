"""Scripted regimes of the mechanistic market, and the scenarios only that market understands.

A :class:`Regime` scales the market's baseline (resting depth, noise flow,
position arrivals, optionally the leverage mix) and schedules :class:`Action` s:
scenarios started at a simulated time on the ``symbol``-th symbol (skipped when
the market has fewer symbols). Actions name either a mechanistic scenario
below or one of :mod:`engine.simulator.scenarios` (``depth_collapse``,
``whale_print``, ``volume_burst``, ``funding_squeeze``, ...).

Mechanistic scenarios (parameters and defaults):

* ``shock``: one exogenous taker market order of ``usd`` (default ``bps`` x the
  symbol's resting USD per basis point, ``bps`` = 150), ``side`` sell|buy (sell);
* ``trend``: noise traders' buy probability shifted by ``bias`` (-0.05) for
  ``duration`` (600 s): a slow grind;
* ``crowd``: extra positions on ``side`` long|short (long) at ``rate`` per second
  (1.5) for ``duration`` (120 s), leverage drawn from ``leverage`` (50/75/100;
  a list, or a string "50/75/100" from a script line), size ``usd`` x the
  symbol's median position (1.0): a dense cluster of liquidation prices.

Regimes (times in simulated seconds from the start of each cycle; a regime with a period repeats its
actions every ``every_s``, mirrored every other cycle when ``alternate``: longs become shorts, sells
buys; the primary symbol is the first). Cycle 0 of each:

* ``calm``: deep book (x1.5), quieter noise flow (x0.7), nothing scripted;
* ``grind``: a crowd of high-leverage longs (30-150 s), then sellers lean
  (trend -0.08 from 150 s for 900 s on the primary, -0.04 on the others) and
  walk price into their liquidation prices; every 1500 s;
* ``news_shock``: a sell shock of 200 bp of depth on the primary at 120 s and
  of 120 bp on the others half a second later; every 600 s;
* ``thin_book_cascade``: a crowd of high-leverage longs (30-150 s), then the
  book's depth collapses to 12 % on the primary (150-330 s) while sellers lean
  slightly (trend -0.05): the thin book turns ordinary selling into a cascade; every 600 s.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

from .market import STEP_S
from .scenarios import Scenario

if TYPE_CHECKING:  # pragma: no cover
    from .mechanics import MechanisticMarket, _Sym

__all__ = ["Action", "Regime", "REGIMES", "MECHANISTIC_SCENARIOS", "Shock", "Trend", "Crowd"]


class _Mechanistic(Scenario):
    default_duration: ClassVar[float] = 0.0

    @classmethod
    def make(cls, symbol: str, start: float, duration: float | None, params: dict) -> Scenario:
        dur = cls.default_duration if duration is None else float(duration)
        if not (math.isfinite(dur) and dur >= 0.0):
            raise ValueError(f"scenario {cls.name}: duration must be a finite non-negative number, got {duration}")
        sc = cls(symbol=symbol.upper(), start=float(start), duration=dur, params=dict(params))
        sc.validate()
        return sc

    def validate(self) -> None:
        """Raise ValueError on bad parameters (called when scheduled, not when started)."""

    def _side(self, a: str, b: str, default: str) -> bool:
        side = self.param("side", default)
        if side not in (a, b):
            raise ValueError(f"scenario {self.name}: side must be {a} or {b}, got {side!r}")
        return side == a


class Shock(_Mechanistic):
    """An exogenous taker order (news, a forced unwind elsewhere)."""

    name = "shock"

    def validate(self):
        self._side("buy", "sell", "sell")
        if not self.param("bps", 150.0) > 0.0 or ("usd" in self.params and not float(self.params["usd"]) > 0.0):
            raise ValueError(f"scenario shock: bps and usd must be positive, got {self.params}")

    def begin(self, m: MechanisticMarket, st: _Sym, events: list) -> None:
        usd = float(self.params["usd"]) if "usd" in self.params else self.param("bps", 150.0) * st.depth_bp_usd
        m.print_trade(st, usd, self._side("buy", "sell", "sell"), events)


class Trend(_Mechanistic):
    """Noise traders lean one way for a while."""

    name = "trend"
    default_duration = 600.0

    def validate(self):
        if not -0.45 <= self.param("bias", -0.05) <= 0.45:
            raise ValueError(f"scenario trend: bias must be in [-0.45, 0.45], got {self.params['bias']}")

    def begin(self, m, st, events):
        st.flow_bias += self.param("bias", -0.05)

    def finish(self, m, st, events):
        st.flow_bias -= self.param("bias", -0.05)


class Crowd(_Mechanistic):
    """Traders pile into high-leverage positions on one side."""

    name = "crowd"
    default_duration = 120.0

    def leverages(self) -> list[float]:
        lev = self.params.get("leverage", (50.0, 75.0, 100.0))
        items = lev.split("/") if isinstance(lev, str) else [lev] if isinstance(lev, (int, float)) else lev
        try:
            values = [float(x) for x in items]
        except (TypeError, ValueError):
            values = []
        if not values or any(not (math.isfinite(v) and v >= 1.0) for v in values):
            raise ValueError(f"scenario crowd: leverage must be values >= 1 (\"50/75/100\"), got {lev!r}")
        return values

    def validate(self):
        self._side("long", "short", "long")
        self.leverages()
        if not self.param("rate", 1.5) >= 0.0 or not self.param("usd", 1.0) > 0.0:
            raise ValueError(f"scenario crowd: rate must be >= 0 and usd > 0, got {self.params}")

    def begin(self, m, st, events):
        self._lev = self.leverages()
        bad = [v for v in self._lev if 1.0 / v <= st.positions.mmr]
        if bad:
            raise ValueError(f"scenario crowd: leverage {bad} leaves no margin above the maintenance rate "
                             f"{st.positions.mmr} of {st.spec.symbol}")
        self._long = self._side("long", "short", "long")

    def tick(self, m, st, t, events):
        rng = m.rng
        for _ in range(int(rng.poisson(self.param("rate", 1.5) * STEP_S))):
            lev = self._lev[int(rng.integers(len(self._lev)))]
            usd = st.position_usd * self.param("usd", 1.0) * float(rng.lognormal(0.0, 0.8))
            m.open_position(st, self._long, lev, usd, events)


MECHANISTIC_SCENARIOS: dict[str, type[_Mechanistic]] = {c.name: c for c in (Shock, Trend, Crowd)}


@dataclass(frozen=True)
class Action:
    """Scenario ``name`` on the ``symbol``-th symbol at ``at`` seconds (``duration`` None: its default)."""

    name: str
    at: float
    symbol: int = 0
    duration: float | None = None
    params: dict[str, Any] = field(default_factory=dict)

    def mirrored(self) -> Action:
        """The same action the other way round: sides swapped, trend bias negated."""
        params = dict(self.params)
        if "side" in params:
            params["side"] = _OPPOSITE[params["side"]]
        if "bias" in params:
            params["bias"] = -float(params["bias"])
        return Action(self.name, self.at, self.symbol, self.duration, params)


_OPPOSITE = {"buy": "sell", "sell": "buy", "long": "short", "short": "long", "bid": "ask", "ask": "bid"}


@dataclass(frozen=True)
class Regime:
    """Baseline multipliers of the mechanistic market plus scheduled actions."""

    name: str
    about: str
    depth: float = 1.0            # resting depth
    noise: float = 1.0            # noise-trader order rate
    open_rate: float = 1.0        # position arrivals
    leverage: tuple | None = None  # [(leverage, weight)] instead of the market's mix
    actions: tuple[Action, ...] = ()
    every_s: float | None = None  # the actions repeat with this period (times relative to each cycle's start)
    alternate: bool = False       # every other cycle runs the mirrored actions (Action.mirrored)

    def cycle(self, n: int) -> tuple[Action, ...]:
        """The actions of cycle ``n`` (0 first)."""
        return tuple(a.mirrored() for a in self.actions) if self.alternate and n % 2 else self.actions


_HIGH_LEVERAGE_LONGS = {"side": "long", "leverage": (50.0, 75.0, 100.0)}

REGIMES: dict[str, Regime] = {r.name: r for r in (
    Regime("calm", "a calm day: deep book, quiet flow, nothing scripted", depth=1.5, noise=0.7),
    Regime("grind", "high-leverage longs pile in, then sellers lean and walk price into them", actions=(
        Action("crowd", 30.0, 0, 120.0, {**_HIGH_LEVERAGE_LONGS, "rate": 1.5}),
        Action("trend", 150.0, 0, 900.0, {"bias": -0.08}),
        Action("trend", 150.0, 1, 900.0, {"bias": -0.04}),
        Action("trend", 150.0, 2, 900.0, {"bias": -0.04}),
    ), every_s=1500.0, alternate=True),
    Regime("news_shock", "an exogenous sell order of 200 bp of depth, smaller ones on the other symbols", actions=(
        Action("shock", 120.0, 0, params={"bps": 200.0, "side": "sell"}),
        Action("shock", 120.5, 1, params={"bps": 120.0, "side": "sell"}),
        Action("shock", 120.5, 2, params={"bps": 120.0, "side": "sell"}),
    ), every_s=600.0, alternate=True),
    Regime("thin_book_cascade", "high-leverage longs pile in, then the book's depth collapses and sellers lean",
           actions=(
               Action("crowd", 30.0, 0, 120.0, {**_HIGH_LEVERAGE_LONGS, "rate": 2.0}),
               Action("depth_collapse", 150.0, 0, 180.0, {"factor": 0.12}),
               Action("trend", 150.0, 0, 180.0, {"bias": -0.05}),
           ), every_s=600.0, alternate=True),
)}
