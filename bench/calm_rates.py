"""Calm false-signal rates: every detector's signals per asset per hour on ordinary market data.

Sources, each through the compute path a live engine runs (a real :class:`~actors.compute.ComputeActor`,
in-process, its bus publisher replaced by a list):

* real captures of ordinary hours (../shared/data, PROVENANCE.md): the frames go through the venue's own
  parser exactly as ``undertow replay`` does (:func:`engine.replay.capture_source`);
* calm synthetic hours: the simulator's market (``calm`` scenario: no cascades, no high-volatility
  regime) rendered by its Bybit protocol module and parsed by the Bybit parser, every record kind;
* the Coinalyze hourly series around 2024-08-05 (:func:`coinalyze_hours`): Binance BTCUSDT hourly
  liquidation totals, price and OI, replayed as records through the same actor, to see what fires when.

``python bench/calm_rates.py [--synthetic-hours H] [--quick]`` prints the table and a final JSON line.
Liquidation signals are facts, not judgements, and heartbeats/coverage are periodic: they are not counted.
"""
from __future__ import annotations

import argparse
import contextlib
import csv
import json
import os
import shutil
import sys
import tempfile
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Iterable, Iterator

import msgspec
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from engine import shm  # noqa: E402
from engine.config import Config, VenuesConfig  # noqa: E402
from engine.instruments import Registry, registry_segment  # noqa: E402
from engine.record import RECORD_DTYPE, Kind, Side, Venue  # noqa: E402
from engine.ring import Ring, ring_segment  # noqa: E402

__all__ = ["CAPTURES", "NOT_JUDGEMENTS", "Result", "compute_session", "replay_capture", "synthetic_calm",
           "coinalyze_hours", "shared_data", "kind_of"]

#: signal kinds that are not a detector's judgement (not counted as false signals)
NOT_JUDGEMENTS = frozenset({"liquidation", "heartbeat", "coverage", "liquidation_summary"})

#: (label, venue, files relative to shared/data): ordinary hours, no liquidation stream in most
CAPTURES = (
    ("binance BTC 2023-04-04", "binance", ["binance_usdm/hftbacktest/btcusdt_20230404.dat.gz"]),
    ("binance BTC 2024-07-18/19", "binance", ["binance_usdm/hftbacktest/btcusdt_20240718.gz",
                                              "binance_usdm/hftbacktest/btcusdt_20240719.gz"]),
    ("binance ETH 2024-07-18/19", "binance", ["binance_usdm/hftbacktest/ethusdt_20240718.gz",
                                              "binance_usdm/hftbacktest/ethusdt_20240719.gz"]),
    ("binance BTC 2024-08-08", "binance", ["binance_usdm/hftbacktest/btcusdt_20240808.gz"]),
    ("hyperliquid BTC 2025-01-26", "hyperliquid", ["hyperliquid/hftbacktest/btcusd_20250126.gz"]),
    ("bybit XRP 2024-12-01", "bybit", ["bybit/nautilus_trader/2024-12-01_XRPUSDT_ob500.data"]),
    ("cryptofeed binance futures", "binance", ["cryptofeed/sample_data/BINANCE_FUTURES.ws.1.0"]),
    ("cryptofeed bybit", "bybit", ["cryptofeed/sample_data/BYBIT.ws.25.0", "cryptofeed/sample_data/BYBIT.ws.26.0"]),
    ("cryptofeed okx", "okx", ["cryptofeed/sample_data/OKX.ws.1.0"]),
    ("cryptofeed gate", "gate", ["cryptofeed/sample_data/GATEIO_FUTURES.ws.1.0"]),
    ("cryptofeed bitget", "bitget", ["cryptofeed/sample_data/BITGET.ws.1.0", "cryptofeed/sample_data/BITGET.ws.2.0"]),
)


def shared_data() -> Path:
    """``$UNDERTOW_SHARED/data`` or ../shared/data next to the repository."""
    return Path(os.environ.get("UNDERTOW_SHARED") or ROOT.parent / "shared") / "data"


def kind_of(sig) -> str:
    """A signal's kind (its tag on the bus)."""
    return type(sig).__struct_config__.tag


class _Sink:
    """Stands in for the bus publisher: keeps what the actor publishes."""

    def __init__(self) -> None:
        self.signals: list = []

    def publish(self, sig) -> None:
        self.signals.append(sig)

    def close(self, *a, **k) -> None:
        pass


class Result(msgspec.Struct):
    """Signals of one source: counts per kind, the stream span and the assets seen."""

    label: str
    span_s: float
    assets: list[str]
    records: int
    kinds: dict[int, int]          # records per Kind
    above_fallback: int            # trades at or above the whale fallback size among each asset's first min_trades
    counts: dict[str, int]         # signals per kind
    cascade_levels: dict[str, int]
    signals: list = []

    def judgements(self) -> int:
        return sum(n for k, n in self.counts.items() if k not in NOT_JUDGEMENTS)

    def per_asset_hour(self, kind: str) -> float:
        hours = self.span_s / 3600.0 * max(1, len(self.assets))
        return self.counts.get(kind, 0) / hours if hours > 0 else 0.0


@contextlib.contextmanager
def compute_session(venues: Iterable[str], configure=None) -> Iterator[tuple]:
    """A set-up ComputeActor (worker 0 of 1) with ``venues`` enabled: yields ``(actor, registry, sink)``.

    ``configure``: a function Config -> Config applied before the actor is built.
    """
    from actors.compute import ComputeActor
    ns = "cr" + uuid.uuid4().hex[:8]
    run = tempfile.mkdtemp(prefix="ut-calm-")
    venues = list(venues)
    doc = {"engine": {"namespace": ns, "run_dir": run, "ring_capacity": 4096, "compute_workers": 1},
           "bus": {"endpoint": f"ipc://{run}/bus.sock"},
           "profiles": {"bootstrap_rest": False},
           "venues": {v: {"enabled": v in venues} for v in VenuesConfig.__struct_fields__}}
    cfg = msgspec.convert(doc, Config)
    if configure is not None:
        cfg = configure(cfg)
    reg = Registry.open(registry_segment(ns), cfg.engine.max_instruments, cfg.engine.max_assets)
    rings = [Ring.open(ring_segment(ns, v), cfg.engine.ring_capacity) for v in venues]
    actor = ComputeActor(cfg, 0)
    try:
        actor.setup()
        actor.publisher.close()
        sink = actor.publisher = _Sink()
        yield actor, reg, sink
    finally:
        actor.teardown()
        for r in rings:
            r.close()
        reg.close()
        shm.sweep(ns)
        shutil.rmtree(run, ignore_errors=True)


def _drive(label: str, actor, reg, sink, chunks: Iterable[np.ndarray]) -> Result:
    """Run record chunks through the actor (factors refreshed per chunk, as the live loop does on its timer)."""
    wh = actor.cfg.detectors.whales
    t_first = t_last = 0
    n = 0
    kinds: Counter = Counter()
    seen: Counter = Counter()     # trades per asset, for the whale fallback period
    above = 0
    assets: set[str] = set()
    for recs in chunks:
        if not len(recs):
            continue
        ts = recs["ts_recv"]
        t_first = t_first or int(ts.min())
        t_last = max(t_last, int(ts.max()))
        n += len(recs)
        kinds.update(recs["kind"].tolist())
        for iid in np.unique(recs["instrument"][recs["kind"] != Kind.CONTROL]).tolist():
            assets.add(reg.get(iid).asset)
        for iid, usd in recs[["instrument", "notional"]][recs["kind"] == Kind.TRADE].tolist():
            asset = reg.get(iid).asset
            seen[asset] += 1
            if seen[asset] <= wh.min_trades and usd >= wh.fallback_usd.get(asset, wh.fallback_usd["*"]):
                above += 1
        actor.process(recs)
        actor.refresh_factors()
    counts = Counter(kind_of(s) for s in sink.signals)
    levels = Counter(s.level for s in sink.signals if kind_of(s) == "cascade")
    return Result(label=label, span_s=(t_last - t_first) / 1e9, assets=sorted(assets), records=n,
                  kinds=dict(kinds), above_fallback=above, counts=dict(counts), cascade_levels=dict(levels),
                  signals=list(sink.signals))


def replay_capture(label: str, venue: str, files: list[str]) -> Result:
    """A capture through ``venue``'s parser (engine.replay.capture_source) and the compute actor."""
    from engine.replay import capture_source
    with compute_session([venue]) as (actor, reg, sink):
        _, _, chunks = capture_source(venue, files, reg)
        return _drive(label, actor, reg, sink, (recs for _, recs in chunks))


def synthetic_calm(seconds: float, seed: int = 11) -> Result:
    """A calm synthetic run (no cascades, no high-volatility regime) through the Bybit protocol."""
    return synthetic_run(f"synthetic calm {seconds / 3600:g} h (bybit protocol)", seconds, seed=seed,
                         script=[f"calm@0,duration={seconds + 1.0:g}"], cascade_every_s=0.0)


def synthetic_run(label: str, seconds: float, *, script: Iterable[str] = (), seed: int = 11,
                  cascade_every_s: float = 45.0, configure=None, symbols=("BTCUSDT", "ETHUSDT", "SOLUSDT"),
                  chunk_s: float = 1.0) -> Result:
    """The synthetic market with ``script`` lines (engine/simulator/scenarios.py), rendered by the
    simulator's Bybit module and parsed by the Bybit parser, through the compute actor."""
    from engine.books import attach
    from engine.simulator.bybit import BybitVenue
    from engine.simulator.market import STEP_S, SyntheticMarket
    from engine.symbols import register
    from engine.venues import bybit
    from engine.simulator.scenarios import parse_script
    market = SyntheticMarket(list(symbols), seed=seed, cascade_every_s=cascade_every_s)
    for line in script:
        name, symbol, at, params = parse_script(line)
        market.script(name, symbol, at=at, **params)
    venue = BybitVenue(list(symbols), market=market)
    subs = {f"{topic}.{s}": {object()} for s in symbols
            for topic in ("publicTrade", "allLiquidation", "tickers", "orderbook.1", "orderbook.50")}
    venue.need_snapshot.update(t for t in subs if t.startswith(("tickers.", "orderbook.")))   # as on subscribe
    with compute_session(["bybit"], configure) as (actor, reg, sink):
        mod = __import__("engine.venues.bybit", fromlist=["Parser"])
        parser = bybit.Parser(lambda s: register(reg, mod, [s], {}).get(s))
        attach(parser, bybit, 50, clock=lambda: int(market.t * 1e9))   # depth every simulated second
        t0_ms = 1_700_000_000_000

        def chunks() -> Iterator[np.ndarray]:
            out: list = []
            steps = int(round(chunk_s / STEP_S))
            for k in range(int(round(seconds / chunk_s))):
                for _ in range(steps):
                    events = market.step()
                    now_ms = t0_ms + int(market.t * 1000)
                    for _, raw in venue.render(events, market.t, subs, now_ms):
                        parser.parse(raw, now_ms * 1_000_000, out)
                yield np.array(out, dtype=RECORD_DTYPE)
                out.clear()
        return _drive(label, actor, reg, sink, chunks())


# ----------------------------------------------------------------- Coinalyze hourly series

COINALYZE = ("liquidations/coinalyze_binance/hourly_2024-06-20_2024-08-20/derived_merged_utc/"
             "BTCUSDT_binance_perp_1h_merged_utc.csv")


def _coinalyze_rows(root: Path) -> list[dict]:
    with open(root / COINALYZE, newline="") as f:
        return list(csv.DictReader(f))


def coinalyze_hours(root: Path, start: str = "2024-08-01", end: str = "2024-08-09") -> Result:
    """The hourly series as records: one long and one short LIQUIDATION per hour (its USD total at the close),
    a TRADE at the close and OPEN_INTEREST, through the compute actor; what fired and when.

    Hourly totals are the only resolution this source has, so an hour arrives as two aggregate prints:
    the velocity/cascade kernels see a burst once per hour, which is what the hourly data can say.
    """
    rows = [r for r in _coinalyze_rows(root) if start <= r["utc_open_time"][:10] <= end]
    with compute_session(["binance"]) as (actor, reg, sink):
        iid = reg.add(Venue.BINANCE, "BTCUSDT", "BTC")

        def chunks() -> Iterator[np.ndarray]:
            for r in rows:
                t = int(np.datetime64(r["utc_open_time"].rstrip("Z"), "ns").astype(np.int64)) + 3_599 * 10**9
                px = float(r["close"])
                recs = [(Kind.TRADE, Venue.BINANCE, Side.BUY, 0, iid, t, t, px, 0.001, px * 0.001, 0.0, 1.0)]
                for side, key in ((Side.LONG, "liq_long_usd_est"), (Side.SHORT, "liq_short_usd_est")):
                    usd = float(r.get(key) or 0.0)
                    if usd > 0:
                        recs.append((Kind.LIQUIDATION, Venue.BINANCE, side, 0, iid, t + 1, t + 1, px, usd / px, usd,
                                     px, 0.0))
                oi = float(r["oi_close_base"] or 0.0)
                if oi > 0:
                    recs.append((Kind.OPEN_INTEREST, Venue.BINANCE, 0, 0, iid, t + 2, t + 2, px, oi, oi * px, 0.0, 0.0))
                yield np.array(recs, dtype=RECORD_DTYPE)
        return _drive(f"coinalyze BTC hourly {start}..{end}", actor, reg, sink, chunks())


# ----------------------------------------------------------------- report

def table(results: list[Result]) -> tuple[str, dict]:
    kinds = sorted({k for r in results for k in r.counts} - NOT_JUDGEMENTS)
    lines = [f"{'source':34} {'span':>8} {'assets':>6} " + " ".join(f"{k:>14}" for k in kinds)]
    doc = {}
    for r in results:
        lines.append(f"{r.label:34} {r.span_s:8.0f} {len(r.assets):6d} "
                     + " ".join(f"{r.per_asset_hour(k):14.2f}" for k in kinds))
        doc[r.label] = {"span_s": round(r.span_s, 1), "assets": r.assets, "records": r.records,
                        "per_asset_hour": {k: round(r.per_asset_hour(k), 3) for k in kinds if r.counts.get(k)},
                        "counts": {k: v for k, v in r.counts.items() if k not in NOT_JUDGEMENTS},
                        "cascade_levels": r.cascade_levels}
    lines.append("(signals per asset per hour; liquidation/heartbeat/coverage/summary not counted)")
    return "\n".join(lines), doc


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--synthetic-hours", type=float, default=1.0)
    ap.add_argument("--quick", action="store_true", help="two captures and 10 synthetic minutes")
    args = ap.parse_args(argv)
    root = shared_data()
    results = []
    t0 = time.monotonic()
    captures = CAPTURES[:2] if args.quick else CAPTURES
    if root.is_dir():
        for label, venue, files in captures:
            paths = [str(root / f) for f in files]
            if all(os.path.exists(p) for p in paths):
                results.append(replay_capture(label, venue, paths))
            else:
                print(f"skipped {label}: missing {files}", file=sys.stderr)
    else:
        print(f"no shared data at {root}: real captures skipped", file=sys.stderr)
    results.append(synthetic_calm(600.0 if args.quick else args.synthetic_hours * 3600.0))
    text, doc = table(results)
    print(text)
    if root.is_dir():
        ca = coinalyze_hours(root)
        fired = [(time.strftime("%Y-%m-%d %H:%M", time.gmtime(s.ts_exchange / 1e9)), kind_of(s),
                  getattr(s, "level", "") or getattr(s, "event", "") or getattr(s, "band", ""))
                 for s in ca.signals if kind_of(s) not in NOT_JUDGEMENTS]
        print(f"\nCoinalyze BTC hourly 2024-08-01..08-09 ({len(ca.signals)} signals, {len(fired)} judgements):")
        for when, kind, what in fired:
            print(f"  {when} UTC  {kind:14} {what}")
        doc["coinalyze"] = {"fired": fired, "counts": ca.counts}
    doc["wall_s"] = round(time.monotonic() - t0, 1)
    print(json.dumps(doc))
    return 0


if __name__ == "__main__":
    sys.exit(main())
