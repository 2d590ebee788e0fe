"""What the engine would receive: market scenarios and the real liquidation series as parsed venue records.

Simulated scenarios: a market (:class:`engine.simulator.mechanics.MechanisticMarket` when it knows the
scenario's regime, else :class:`engine.simulator.market.SyntheticMarket` with a matching cascade schedule)
runs in chunks; every venue simulator module renders its events as that venue's frames, stamped with the
event's stream time, and the venue's own parser turns them into records, so units, contract sizes, sides
and stream caps (Binance's 1/symbol/s ``forceOrder``) go through the live code. The market's liquidations
(every one, before any venue cap) are the ground truth, kept apart from the records.

Real series (``liquidations/okx_hyperliquid_finm33150/liquidations.csv``): each OKX event becomes an OKX
``liquidation-orders`` push parsed by the OKX parser. PROVENANCE quirks: ``size_usd`` there is contracts x
bankruptcy price, so contracts = size_usd / price and the contract value comes from the instrument list;
``side`` sell = long liquidated. Events that cannot be placed (Hyperliquid rows, whose side code ``S`` is
unexplained; coins without a known contract value) are counted by reason, never silently dropped.
"""
from __future__ import annotations

import csv
import inspect
import json
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Iterator
from urllib.parse import urlencode

import msgspec
import numpy as np

from .. import venues as venue_modules
from ..config import VenuesConfig
from ..instruments import Registry
from ..record import RECORD_DTYPE, Side
from ..symbols import register
from ..venues import OUTCOME_NAMES, InstrumentInfo

__all__ = ["SIM_EPOCH_NS", "TRUTH_DTYPE", "ScenarioSpec", "SCENARIOS", "MarketSource", "make_source",
           "VenueStream", "RealSeries", "load_okx_series", "okx_parser", "real_chunks", "OKX_CONTRACT_VALUES",
           "asset_of"]

SIM_EPOCH_NS = 1_767_225_600 * 10**9     # 2026-01-01 00:00 UTC: stream time 0 of a simulated scenario
TRUTH_DTYPE = np.dtype([("t_ns", np.int64), ("asset", "U16"), ("side", np.int8), ("price", np.float64),
                        ("usd", np.float64)])
OKX_CONTRACT_VALUES = {"BTC": 0.01, "ETH": 0.1, "SOL": 1.0, "DOGE": 1000.0}   # ctVal, PROVENANCE section 14


def asset_of(symbol: str) -> str:
    """BTCUSDT -> BTC (the simulator's symbols are USDT/USDC perps)."""
    return symbol[:-4] if symbol.endswith(("USDT", "USDC")) else symbol


@dataclass(frozen=True)
class ScenarioSpec:
    """A simulated scenario: a mechanistic regime, and the synthetic market's stand-in for it."""

    name: str
    seconds: float
    regime: str                       # MechanisticMarket regime
    cascade_every_s: float            # SyntheticMarket stand-in: mean seconds between random cascades
    first_cascade_after_s: float
    calm: bool = False                # scored for false alarms on calm data


SCENARIOS: dict[str, ScenarioSpec] = {s.name: s for s in (
    ScenarioSpec("calm", 3600.0, "calm", 1e12, 1e12, calm=True),
    ScenarioSpec("grind", 1800.0, "grind", 900.0, 600.0),
    ScenarioSpec("news_shock", 1800.0, "news_shock", 1800.0, 900.0),
    ScenarioSpec("thin_book_cascade", 1800.0, "thin_book_cascade", 600.0, 300.0),
)}


def _mechanics() -> tuple[Any, tuple] | None:
    try:
        from ..simulator.mechanics import REGIMES, MechanisticMarket
    except ImportError:
        return None
    return MechanisticMarket, tuple(REGIMES)


class MarketSource:
    """A seeded market plus its ground truth: liquidations as TRUTH_DTYPE rows and, if known, the true map."""

    def __init__(self, spec: ScenarioSpec, symbols: tuple[str, ...], seed: int):
        self.spec, self.symbols = spec, symbols
        mech = _mechanics()
        self.mechanistic = mech is not None and spec.regime in mech[1]
        if self.mechanistic:
            self.market = mech[0](symbols=symbols, seed=seed, regime=spec.regime)
        else:
            from ..simulator.market import SyntheticMarket
            self.market = SyntheticMarket(symbols, seed=seed, cascade_every_s=spec.cascade_every_s,
                                          first_cascade_after_s=spec.first_cascade_after_s)
            if spec.calm:
                for s in symbols:
                    self.market.script("calm", s, at=0.0, params={"duration": spec.seconds + 1.0})
        self._truth: list[tuple] = []

    @property
    def kind(self) -> str:
        return "mechanistic" if self.mechanistic else "synthetic"

    def run(self, seconds: float) -> list:
        """Advance ``seconds``; return the neutral events (the synthetic market's liquidations are noted as truth)."""
        events = self.market.run(seconds)
        if not self.mechanistic:
            from ..simulator.market import Liquidation
            for ev in events:
                if type(ev) is Liquidation:
                    self._truth.append((SIM_EPOCH_NS + int(round(ev.t * 1e9)), asset_of(ev.symbol),
                                        Side.LONG if ev.long_liquidated else Side.SHORT, ev.avg_price,
                                        ev.qty * ev.avg_price))
        return events

    def truth(self) -> np.ndarray:
        """Every liquidation of the market so far (before any venue's cap)."""
        if not self.mechanistic:
            return np.array(self._truth, dtype=TRUTH_DTYPE)
        liq = self.market.truth.liquidations()
        out = np.zeros(len(liq), dtype=TRUTH_DTYPE)
        out["t_ns"] = SIM_EPOCH_NS + np.round(np.asarray(liq["t"], dtype=np.float64) * 1e9).astype(np.int64)
        out["asset"] = [asset_of(str(s)) for s in liq["symbol"]]
        out["side"], out["price"], out["usd"] = liq["side"], liq["price"], liq["usd"]
        return out

    def true_map(self, asset: str, edges: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
        """(long USD, short USD) of the true liquidation map on ``edges`` now; None for the synthetic market."""
        if not self.mechanistic:
            return None
        sym = next(s for s in self.symbols if asset_of(s) == asset)
        return self.market.truth.true_map(sym, edges)


def make_source(name: str, symbols: tuple[str, ...], seed: int, seconds: float | None = None) -> MarketSource:
    """The market of scenario ``name`` (KeyError lists the known ones)."""
    if name not in SCENARIOS:
        raise KeyError(f"unknown scenario {name!r}; known: {', '.join(SCENARIOS)}")
    spec = SCENARIOS[name]
    if seconds is not None:
        spec = ScenarioSpec(spec.name, seconds, spec.regime, spec.cascade_every_s, spec.first_cascade_after_s,
                            spec.calm)
    return MarketSource(spec, symbols, seed)


class VenueStream:
    """One venue's simulator module rendering market events and its parser reading them back as records."""

    def __init__(self, name: str, symbols: tuple[str, ...], market: Any, registry: Registry):
        from ..simulator.runner import venue_class
        self.name = name
        self.module = venue_modules.load(name)
        self.sim = venue_class(name)(list(symbols), market=market, throttle=True)
        ep = self.sim.endpoints("127.0.0.1", 1)
        native = ep.get("symbols") or list(symbols)
        vcfg = msgspec.structs.replace(getattr(VenuesConfig(), name), symbols=native)
        self.subs = {s: {self} for p in self.module.plan(vcfg, ep["ws_urls"]) for s in p.streams}
        infos = {i.symbol: i for i in self._instruments()}
        self.ids = register(registry, self.module, native, infos)
        sizes = {s: i.contract_size for s, i in infos.items() if i.contract_size > 0}
        takes_sizes = "contract_sizes" in inspect.signature(self.module.Parser).parameters
        self.parser = self.module.Parser(self.ids.get, contract_sizes=sizes) if takes_sizes \
            else self.module.Parser(self.ids.get)
        self.outcomes: Counter = Counter()
        self.frames = 0

    def _instruments(self) -> list:
        path, params, _ = getattr(self.module, "EXCHANGE_INFO_REQUEST", (None, None, 0))
        rest = getattr(self.sim, "rest", None)
        if path is None or rest is None:
            return []
        status, body = rest(path + ("?" + urlencode(params) if params else ""))
        return (self.module.parse_exchange_info(json.dumps(body).encode()) or []) if status == 200 else []

    def records(self, events: list, step_s: float) -> np.ndarray:
        """Render ``events`` step by step (stream time = each event's ``t``) and parse every frame."""
        out: list = []
        i, n = 0, len(events)
        while i < n:
            t = events[i].t
            j = i
            while j < n and events[j].t == t:
                j += 1
            now_ns = SIM_EPOCH_NS + int(round(t * 1e9))
            for _, raw in self.sim.render(events[i:j], t + step_s, self.subs, now_ns // 1_000_000):
                self.frames += 1
                self.outcomes[OUTCOME_NAMES[self.parser.parse(raw if isinstance(raw, bytes) else raw.encode(),
                                                              now_ns, out)[0]]] += 1
            i = j
        return np.array(out, dtype=RECORD_DTYPE) if out else np.zeros(0, dtype=RECORD_DTYPE)


@dataclass
class RealSeries:
    """A real liquidation series as OKX frames: (ts_ns, frame) in time order, plus what was left out and why."""

    frames: list[tuple[int, bytes]] = field(default_factory=list)
    skipped: Counter = field(default_factory=Counter)
    events: int = 0
    assets: set = field(default_factory=set)


def _okx_push(coin: str, ts_ms: int, side: str, contracts: float, price: float) -> bytes:
    inst = f"{coin}-USDT-SWAP"
    detail = {"bkLoss": "0", "bkPx": repr(price), "ccy": "", "posSide": "net", "side": side,
              "sz": f"{contracts:.8g}", "ts": str(ts_ms)}
    data = [{"details": [detail], "instFamily": f"{coin}-USDT", "instId": inst, "instType": "SWAP",
             "uly": f"{coin}-USDT"}]
    return ('{"arg":{"channel":"liquidation-orders","instType":"SWAP"},"data":'
            + json.dumps(data, separators=(",", ":")) + "}").encode()


def load_okx_series(path: str | Path) -> RealSeries:
    """The event-level liquidations CSV (``timestamp,venue,coin,side,size_usd,price``) as OKX pushes."""
    out = RealSeries()
    with open(path, newline="") as f:
        for row in csv.DictReader(f):
            out.events += 1
            try:
                venue, coin, side = row["venue"], row["coin"], row["side"]
                price, size_usd = float(row["price"]), float(row["size_usd"])
                ts_ms = int(datetime.fromisoformat(row["timestamp"].replace("Z", "+00:00")).timestamp() * 1000)
            except (KeyError, ValueError, TypeError) as exc:
                out.skipped[f"malformed row ({type(exc).__name__})"] += 1
                continue
            if venue != "okx":
                out.skipped[f"{venue}: side code {side!r} unexplained"] += 1
                continue
            if coin not in OKX_CONTRACT_VALUES:
                out.skipped[f"okx {coin}: contract value unknown"] += 1
                continue
            if side not in ("buy", "sell") or not price > 0 or not size_usd > 0:
                out.skipped["okx: bad side, price or size"] += 1
                continue
            out.frames.append((ts_ms * 1_000_000, _okx_push(coin, ts_ms, side, size_usd / price, price)))
            out.assets.add(coin)
    out.frames.sort(key=lambda x: x[0])
    return out


def okx_parser(registry: Registry, coins: set) -> Any:
    """An OKX parser over ``registry`` knowing the contract values of ``coins`` (linear USDT swaps)."""
    okx = venue_modules.load("okx")
    infos = {f"{c}-USDT-SWAP": InstrumentInfo(f"{c}-USDT-SWAP", c, "USDT", "perpetual", "live", 0.0,
                                              OKX_CONTRACT_VALUES[c])
             for c in coins if c in OKX_CONTRACT_VALUES}
    ids = register(registry, okx, list(infos), infos)
    return okx.Parser(ids.get, contract_sizes={s: i.contract_size for s, i in infos.items()})


def real_chunks(series: RealSeries, parser: Any, chunk_s: float = 60.0) -> Iterator[tuple[int, np.ndarray, Counter]]:
    """(chunk end ns, records, parse outcomes) of the series in ``chunk_s`` slices of stream time."""
    out: list = []
    outcomes: Counter = Counter()
    step = int(chunk_s * 1e9)
    edge = None
    for ts, raw in series.frames:
        if edge is None:
            edge = ts - ts % step + step
        while ts >= edge:
            yield edge, np.array(out, dtype=RECORD_DTYPE) if out else np.zeros(0, dtype=RECORD_DTYPE), outcomes
            out, outcomes, edge = [], Counter(), edge + step
        outcomes[OUTCOME_NAMES[parser.parse(raw, ts, out)[0]]] += 1
    if edge is not None:
        yield edge, np.array(out, dtype=RECORD_DTYPE) if out else np.zeros(0, dtype=RECORD_DTYPE), outcomes
