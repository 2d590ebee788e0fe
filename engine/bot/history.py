"""The bot's own history of the market, built from the engine's rings and bus.

* candles per (asset, market class) from TRADE records (:mod:`.candles`);
* the last liquidations (every venue, with the venue's sampling flag);
* open-interest samples per instrument, taken from the state table once a
  minute, so OI changes over 15 min and 24 h need no REST call;
* next funding time per instrument from MARK records;
* the last signals seen on the bus (for ``/alerts recent`` and ``undertow top``).
"""
from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass

import numpy as np

from engine.instruments import Market
from engine.record import VENUE_NAMES, Flag, Kind

from .candles import CandleStore

__all__ = ["History", "LiquidationEvent", "market_class"]


def market_class(market: int) -> str:
    """"spot" for spot instruments, "perp" for every derivative (linear, inverse, dated)."""
    return "spot" if market == Market.SPOT else "perp"


@dataclass(frozen=True)
class LiquidationEvent:
    ts_ns: int
    venue: str
    symbol: str
    asset: str
    side: str            # "long" | "short": the liquidated position
    price: float
    qty: float
    usd: float
    capped: bool         # from a sampled stream: totals are lower bounds


class History:
    """Everything the bot answers from besides the live state table."""

    def __init__(self, candle_minutes: int = 5760, max_liquidations: int = 5000, oi_samples: int = 1500,
                 max_signals: int = 100):
        self.candles = CandleStore(candle_minutes)
        self.liquidations: deque[LiquidationEvent] = deque(maxlen=max_liquidations)
        self.oi: dict[tuple[str, str], deque] = {}        # (venue, symbol) -> (ts_ns, oi, oi_usd)
        self._oi_samples = oi_samples
        self.next_funding_ms: dict[tuple[str, str], int] = {}
        self.signals: deque = deque(maxlen=max_signals)
        self.started_ns = time.time_ns()
        self.unknown_instruments = 0
        self._inst: list[tuple] = []                      # instrument id -> (venue, symbol, asset, class)
        self._ivol: dict[int, np.ndarray] = {}            # instrument id -> 1440 x [minute, base, usd]

    # -- ring records --------------------------------------------------------
    def _refresh_instruments(self, registry) -> None:
        for iid in range(len(self._inst), len(registry)):
            ins = registry.get(iid)
            self._inst.append((VENUE_NAMES.get(ins.venue, str(ins.venue)), ins.symbol, ins.asset,
                               market_class(ins.market)))

    def ingest(self, recs: np.ndarray, registry) -> None:
        """Fold one polled ring batch into the history."""
        if not len(recs):
            return
        if int(recs["instrument"].max()) >= len(self._inst):
            self._refresh_instruments(registry)
        known = recs["instrument"] < len(self._inst)
        if not known.all():
            self.unknown_instruments += int((~known).sum())
            recs = recs[known]
        kind = recs["kind"]
        trades = recs[kind == Kind.TRADE]
        if len(trades):
            self._ingest_trades(trades)
        for r in recs[kind == Kind.LIQUIDATION]:
            venue, symbol, asset, _ = self._inst[int(r["instrument"])]
            self.liquidations.append(LiquidationEvent(
                int(r["ts_exchange"]), venue, symbol, asset, "long" if r["side"] > 0 else "short",
                float(r["price"]), float(r["qty"]), float(r["notional"]), bool(r["flags"] & Flag.CAPPED)))
        for r in recs[kind == Kind.MARK]:
            if r["aux2"] > 0:
                venue, symbol, _, _ = self._inst[int(r["instrument"])]
                self.next_funding_ms[(venue, symbol)] = int(r["aux2"])

    def _ingest_trades(self, trades: np.ndarray) -> None:
        minute = trades["ts_exchange"] // 60_000_000_000
        for iid in np.unique(trades["instrument"]).tolist():
            sel = trades["instrument"] == iid
            buf = self._ivol.get(iid)
            if buf is None:
                buf = self._ivol[iid] = np.full((1440, 3), -1.0)
            for m, q, u in zip(minute[sel].tolist(), trades["qty"][sel].tolist(), trades["notional"][sel].tolist()):
                row = buf[m % 1440]
                if row[0] != m:
                    row[:] = (m, 0.0, 0.0)
                row[1] += q
                row[2] += u
        keys = np.array([hash(self._inst[i][2:]) for i in trades["instrument"].tolist()])
        for k in np.unique(keys):
            sel = trades[keys == k]
            _, _, asset, cls = self._inst[int(sel["instrument"][0])]
            self.candles.add_trades((asset, cls), sel["ts_exchange"], sel["price"], sel["qty"],
                                    sel["side"].astype(np.int64), sel["notional"])

    def volume_24h(self, iid: int, now_ns: int | None = None) -> tuple[float, float]:
        """(base, USD) traded on instrument ``iid`` over the last 24 h of the trade stream."""
        buf = self._ivol.get(iid)
        if buf is None:
            return 0.0, 0.0
        now_m = (now_ns or time.time_ns()) // 60_000_000_000
        live = buf[:, 0] > now_m - 1440
        return float(buf[live, 1].sum()), float(buf[live, 2].sum())

    # -- OI samples ----------------------------------------------------------
    def sample_oi(self, instruments, now_ns: int | None = None) -> None:
        """Record the current OI of every instrument (``MarketView.instruments()``) that reports one."""
        now_ns = now_ns or time.time_ns()
        for ins in instruments:
            if ins.row["oi"] > 0:
                q = self.oi.setdefault((ins.venue, ins.symbol), deque(maxlen=self._oi_samples))
                q.append((now_ns, ins.row["oi"], ins.row["oi_usd"]))

    def oi_ago(self, venue: str, symbol: str, seconds: float, now_ns: int | None = None,
               slack: float = 0.25) -> tuple[float, float] | None:
        """(oi, oi_usd) about ``seconds`` ago, or None without a sample within ``slack`` of that age."""
        q = self.oi.get((venue, symbol))
        if not q:
            return None
        now_ns = now_ns or time.time_ns()
        target = now_ns - seconds * 1e9
        best = min(q, key=lambda s: abs(s[0] - target))
        if abs(best[0] - target) > seconds * slack * 1e9:
            return None
        return best[1], best[2]

    # -- bus -----------------------------------------------------------------
    def add_signal(self, sig) -> None:
        self.signals.append(sig)

    def recent_liquidations(self, asset: str | None = None, since_ns: int = 0) -> list[LiquidationEvent]:
        return [e for e in self.liquidations if e.ts_ns >= since_ns and (asset is None or e.asset == asset)]
