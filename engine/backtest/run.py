"""``undertow backtest``: scenarios and real series through the live compute path, scored against labels.

Each dataset (a simulated scenario, or the real liquidation series) is fed through an
:class:`~engine.backtest.pipeline.OfflinePipeline`; its signals, zone-map snapshots and per-venue
coverage are kept in a :class:`Dataset`, which :func:`score` turns into figures. :func:`backtest`
runs the lot, writes the report and the summary JSON (also into the state directory, where the bot's
``/accuracy`` reads it) and returns the summary.
"""
from __future__ import annotations

import json
import logging
import os
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..config import Config
from ..coverage import coverage_signals
from ..hidden_liquidations import HiddenLiquidations
from ..record import RECORD_DTYPE, Flag, Kind
from ..replay import Progress
from . import metrics as M
from .labels import LabelParams, label_cascades, minute_usd
from .offline import SIM_EPOCH_NS, TRUTH_DTYPE, VenueStream, load_okx_series, make_source, okx_parser, real_chunks

__all__ = ["BacktestParams", "Dataset", "simulate", "replay_real", "score", "backtest", "summary_path",
           "default_real_path", "SUMMARY_NAME", "dataset_labels", "zone_figures",
           "ZoneSnapshot", "ZONE_RANKINGS", "zone_overlap", "parse_scenario", "scored_from"]

SUMMARY_NAME = "backtest-summary.json"
REAL_SERIES = Path("liquidations/okx_hyperliquid_finm33150/liquidations.csv")


@dataclass(frozen=True)
class BacktestParams:
    """What a backtest runs and how it scores."""

    labels: LabelParams = LabelParams()
    venues: tuple[str, ...] = ("binance", "bybit")   # Binance's stream is capped, Bybit's is not
    symbols: tuple[str, ...] = ("BTCUSDT", "ETHUSDT")
    seed: int = 7
    seconds: float | None = None      # override every scenario's length
    chunk_s: float = 1.0              # simulated seconds per market chunk
    max_lead_s: float = 300.0         # an alarm this long before a cascade's start still counts for it
    grace_s: float = 120.0            # an alarm this long after its end still matches it (not a false alarm)
    zone_every_s: float = 60.0        # zone-map snapshot cadence (the first one after this much warm-up)
    zone_horizon_s: float = 300.0     # realized liquidations this long after a snapshot score it
    warmup_s: float = 600.0           # an asset's first minutes (the engine learning its profile) are not scored
    zone_band: float = 0.05           # candidate bins: centre within this share of price
    zone_top: float = 0.10            # the top share of candidate bins by modelled USD


@dataclass
class Dataset:
    """One run's raw material: ground truth, the engine's signals, zone snapshots, coverage."""

    name: str
    kind: str                          # synthetic | mechanistic | real
    calm: bool
    t0_ns: int
    t1_ns: int
    truth: np.ndarray                  # TRUTH_DTYPE
    asset_spans: dict[str, tuple[int, int]]   # asset -> (first, end) ns of its data
    signals: list
    signal_counts: dict
    snapshots: list = field(default_factory=list)   # ZoneSnapshot rows
    coverage: dict = field(default_factory=dict)
    records: int = 0
    lost: int = 0
    parse: dict = field(default_factory=dict)
    skipped: dict = field(default_factory=dict)
    wall_s: float = 0.0
    price_range: dict = field(default_factory=dict)  # asset -> rows (t_ns, low, high) of traded prices per chunk


def default_real_path() -> Path:
    """The real liquidation series under the shared data directory (``UNDERTOW_SHARED`` overrides ../shared)."""
    base = os.environ.get("UNDERTOW_SHARED")
    root = Path(base) if base else Path(__file__).resolve().parents[3] / "shared"
    return root / "data" / REAL_SERIES


def summary_path(cfg: Config) -> Path:
    """Where the latest backtest summary lives: the state directory (alerts.state_dir or <run_dir>/state)."""
    from actors.alerts import state_dir
    return state_dir(cfg) / SUMMARY_NAME


# -- coverage -------------------------------------------------------------------------------
class _LiqTally:
    """Liquidation records per venue, for honest totals: counts, USD, capped share, saturated slots."""

    def __init__(self):
        self.parts: dict[str, list[np.ndarray]] = {}

    def add(self, venue: str, recs: np.ndarray) -> None:
        liq = recs[recs["kind"] == Kind.LIQUIDATION]
        if len(liq):
            self.parts.setdefault(venue, []).append(liq.copy())

    def records(self, venue: str) -> np.ndarray:
        parts = self.parts.get(venue)
        return np.concatenate(parts) if parts else np.zeros(0, dtype=RECORD_DTYPE)

    def hidden(self, venues: list[str], registry) -> dict:
        """The compute path's estimate of what capped streams hid, over every venue's records in time order."""
        parts = [self.records(v) for v in venues]
        recs = np.concatenate(parts) if parts else np.zeros(0, dtype=RECORD_DTYPE)
        if not len(recs):
            return {}
        recs = recs[np.argsort(recs["ts_exchange"], kind="stable")]
        asset, venue = registry.asset_of(), registry.venue_of()
        est = HiddenLiquidations()
        est.add(recs, asset, venue)
        est.advance(int(recs["ts_exchange"][-1]) + est.settle_ns, asset, venue)
        return est.counters()

    def coverage(self, venues: list[str], truth_usd: float | None, registry=None) -> dict:
        rows = [{"name": "compute:0", "counters": self.hidden(venues, registry)}] if registry is not None else []
        for v in venues:
            r = self.records(v)
            c = {"events_liquidation": float(len(r))}
            if len(r):
                order = np.lexsort((r["ts_recv"], r["instrument"]))
                inst, slot = r["instrument"][order].astype(np.int64), r["ts_recv"][order] // 10**9
                new = np.ones(len(r), dtype=bool)
                new[1:] = (inst[1:] != inst[:-1]) | (slot[1:] != slot[:-1])
                ui, us = inst[new], slot[new]
                capped = (r["flags"][order] & Flag.CAPPED) != 0
                follows = np.zeros(len(ui), dtype=bool)
                follows[1:] = (ui[1:] == ui[:-1]) & (us[1:] == us[:-1] + 1)
                c.update(liq_slots=float(len(ui)), capped_liquidations=float(capped.sum()),
                         capped_slots=float(len(ui)) if capped.any() else 0.0,
                         saturated_slots=float(follows.sum()) if capped.any() else 0.0)
            rows.append({"name": f"feed:{v}", "counters": c})
        out = {}
        for sig in coverage_signals(rows):
            r = self.records(sig.venue)
            usd = float(r["notional"].sum()) if len(r) else 0.0
            out[sig.venue] = {"liquidations": sig.liquidations, "usd": usd, "capped": sig.capped,
                              "saturated_slots": sig.saturated_slots, "missed_high": sig.missed_high,
                              "missed_usd": sig.missed_usd,
                              "share_of_truth_usd": usd / truth_usd if truth_usd else None}
        return out


class _PriceRange:
    """Per asset, the low and high traded price of each fed chunk (where price went, for the reached-bins score)."""

    DTYPE = np.dtype([("t_ns", np.int64), ("low", np.float64), ("high", np.float64)])

    def __init__(self):
        self._rows: dict[str, list[tuple]] = {}
        self._asset: dict[int, str] = {}

    def add(self, recs: np.ndarray, registry) -> None:
        trades = recs[(recs["kind"] == Kind.TRADE) & (recs["price"] > 0)]
        for iid in np.unique(trades["instrument"]).tolist():
            if iid not in self._asset:
                self._asset[iid] = registry.get(int(iid)).asset
            asset = self._asset[iid]
            px = trades["price"][trades["instrument"] == iid]
            self._rows.setdefault(asset, []).append((int(trades["ts_recv"][-1]), float(px.min()), float(px.max())))

    def rows(self) -> dict[str, np.ndarray]:
        return {a: np.array(r, dtype=self.DTYPE) for a, r in self._rows.items()}


# -- running datasets ------------------------------------------------------------------------
def _bar(progress: bool, label: str) -> Progress | None:
    if not progress:
        return None
    sys.stderr.write(f"{label}\n")
    return Progress(0)


@dataclass(frozen=True)
class ZoneSnapshot:
    """The zone model of one asset at one moment: bin centres, modelled USD, the model's ranking score
    (``expected_usd``), the reach probability of each bin and, on simulated data, the true map."""

    t_ns: int
    asset: str
    price: float
    centres: np.ndarray
    model: np.ndarray
    expected: np.ndarray
    reach: np.ndarray
    true: np.ndarray | None


def _snapshot(pipe, asset: str, source=None) -> ZoneSnapshot | None:
    got = pipe.zone_map(asset)
    if got is None:
        return None
    price, m = got
    model = m["long_usd"] + m["short_usd"]
    true = None
    if source is not None:
        tm = source.true_map(asset, M.bin_edges(m["price"]))
        if tm is not None:
            true = np.asarray(tm[0], dtype=np.float64) + np.asarray(tm[1], dtype=np.float64)
    return ZoneSnapshot(pipe.stream_ns, asset, price, m["price"].copy(), model.copy(), m["expected_usd"].copy(),
                        m["reach"].copy(), true)


def simulate(cfg: Config, name: str, p: BacktestParams = BacktestParams(), progress: bool = False,
             seconds: float | None = None) -> Dataset:
    """Scenario ``name`` (``seconds`` long, else ``p.seconds``, else its own length) rendered by every venue in
    ``p.venues``, parsed, and run through the compute path."""
    from .offline import asset_of
    from .pipeline import OfflinePipeline
    source = make_source(name, p.symbols, p.seed, seconds if seconds is not None else p.seconds)
    seconds = source.spec.seconds
    assets = sorted({asset_of(s) for s in p.symbols})
    tally = _LiqTally()
    t_wall = time.monotonic()
    bar = _bar(progress, f"backtest {name} ({source.kind} market, {seconds:.0f} s simulated)")
    snaps = []
    ranges = _PriceRange()
    with OfflinePipeline(cfg, list(p.venues)) as pipe:
        streams = [VenueStream(v, p.symbols, source.market, pipe.registry) for v in pipe.venues]
        next_snap = p.zone_every_s
        t = 0.0
        while t < seconds - 1e-9:
            step = min(p.chunk_s, seconds - t)
            events = source.run(step)
            t += step
            for vs in streams:
                recs = vs.records(events, 0.01)
                if len(recs):
                    recs = recs[np.argsort(recs["ts_recv"], kind="stable")]
                    tally.add(vs.name, recs)
                    ranges.add(recs, pipe.registry)
                    pipe.feed(vs.name, recs)
            pipe.advance(SIM_EPOCH_NS + int(round(t * 1e9)))
            if t >= next_snap - 1e-9:
                next_snap += p.zone_every_s
                if t + p.zone_horizon_s <= seconds + 1e-9:   # a snapshot needs its whole horizon
                    snaps += [s for s in (_snapshot(pipe, a, source) for a in assets) if s is not None]
            if bar:   # records still to come, estimated from the rate so far in simulated time
                bar.total = max(pipe.records, int(pipe.records * seconds / t))
                bar.update(pipe.records)
        if bar:
            bar.total = pipe.records
            bar.update(pipe.records, force=True)
            sys.stderr.write("\n")
        truth = source.truth()
        parse = {vs.name: dict(vs.outcomes, frames=vs.frames) for vs in streams}
        t1 = SIM_EPOCH_NS + int(seconds * 1e9)
        return Dataset(name, source.kind, source.spec.calm, SIM_EPOCH_NS, t1, truth,
                       {a: (SIM_EPOCH_NS, t1) for a in assets}, list(pipe.signals), dict(pipe.collector.counts), snaps,
                       tally.coverage(pipe.venues, float(truth["usd"].sum()) if len(truth) else None, pipe.registry),
                       pipe.records, pipe.lost, parse, {}, time.monotonic() - t_wall, ranges.rows())


def replay_real(cfg: Config, path: str | Path, p: BacktestParams = BacktestParams(), progress: bool = False,
                name: str = "real_okx") -> Dataset:
    """The real event-level series through the OKX parser and the compute path; its own events are the truth."""
    from .pipeline import OfflinePipeline
    series = load_okx_series(path)
    if not series.frames:
        raise ValueError(f"{path}: no usable OKX liquidation events ({dict(series.skipped)})")
    t_wall = time.monotonic()
    bar = _bar(progress, f"backtest {name} ({len(series.frames):,} OKX liquidation events from {path})")
    if bar:
        bar.total = len(series.frames)
    tally = _LiqTally()
    outcomes: Counter = Counter()
    with OfflinePipeline(cfg, ["okx"]) as pipe:
        parser = okx_parser(pipe.registry, series.assets)
        done = 0
        for edge, recs, oc in real_chunks(series, parser):
            outcomes.update(oc)
            done += sum(oc.values())
            if len(recs):
                tally.add("okx", recs)
                pipe.feed("okx", recs)
            pipe.advance(edge)
            if bar:
                bar.update(done)
        if bar:
            bar.update(done, force=True)
            sys.stderr.write("\n")
        liq = tally.records("okx")
        truth = np.zeros(len(liq), dtype=TRUTH_DTYPE)
        if len(liq):
            names = {iid: pipe.registry.get(int(iid)).asset for iid in np.unique(liq["instrument"]).tolist()}
            truth["t_ns"], truth["side"] = liq["ts_recv"], liq["side"]
            truth["price"], truth["usd"] = liq["price"], liq["notional"]
            truth["asset"] = [names[int(i)] for i in liq["instrument"]]
        spans = {}
        for a in np.unique(truth["asset"]).tolist():
            ts = truth["t_ns"][truth["asset"] == a]
            spans[a] = (int(ts.min()), int(ts.max()) + 60 * 10**9)
        return Dataset(name, "real", False, int(truth["t_ns"].min()), int(truth["t_ns"].max()) + 1, truth, spans,
                       list(pipe.signals), dict(pipe.collector.counts), [],
                       tally.coverage(["okx"], None), pipe.records, pipe.lost,
                       {"okx": dict(outcomes, frames=len(series.frames))},
                       dict(series.skipped, events_in_file=series.events), time.monotonic() - t_wall)


# -- scoring ---------------------------------------------------------------------------------
def dataset_labels(d: Dataset, p: BacktestParams) -> list:
    """The labelled cascades of every asset of ``d``."""
    out = []
    for a in sorted(d.asset_spans):
        sel = d.truth[d.truth["asset"] == a]
        minutes, series = minute_usd(sel["t_ns"], sel["usd"], d.t0_ns, d.t1_ns)
        out += label_cascades(a, minutes, series, p.labels)
    return out


def scored_from(d: Dataset, p: BacktestParams) -> dict[str, int]:
    """Per asset, the stream time scoring starts at: its first data plus the warm-up."""
    return {a: t0 + int(p.warmup_s * 1e9) for a, (t0, _) in d.asset_spans.items()}


ZONE_RANKINGS = {   # name -> (what ranks the bins, its description); "zones" is the model's own ranking
    "zones": ("expected", "the model's expected liquidation USD within the horizon (USD x reach probability)"),
    "zones_by_usd": ("model", "modelled USD alone (the ranking before reach weighting)"),
    "zones_by_distance": ("reach", "reach probability alone: nearest bins first, no model (a stronger baseline)"),
}


def zone_figures(d: Dataset, p: BacktestParams) -> tuple[dict[str, M.ZoneTally], M.ZoneTally, list[dict]]:
    """Zone precision tallies over the snapshots after the warm-up, one per ranking of :data:`ZONE_RANKINGS`
    (candidates: the bins within the price band), the model's ranking again with candidates limited to the
    bins price reached within the horizon, and the map errors where the true map is known."""
    tallies, reached, errors = {k: M.ZoneTally() for k in ZONE_RANKINGS}, M.ZoneTally(), []
    horizon = int(p.zone_horizon_s * 1e9)
    start = scored_from(d, p)
    for z in d.snapshots:
        if z.t_ns < start[z.asset]:
            continue
        sel = (d.truth["asset"] == z.asset) & (d.truth["t_ns"] >= z.t_ns) & (d.truth["t_ns"] < z.t_ns + horizon)
        realized, realized_usd = d.truth["price"][sel], d.truth["usd"][sel]
        for name, (field_, _) in ZONE_RANKINGS.items():
            tallies[name].add(M.zone_tally(z.centres, getattr(z, field_), z.price, realized, p.zone_band,
                                           p.zone_top, usd=z.model, realized_usd=realized_usd))
        rows = d.price_range.get(z.asset)
        if rows is not None:
            r = rows[(rows["t_ns"] >= z.t_ns) & (rows["t_ns"] < z.t_ns + horizon)]
            if len(r):
                reached.add(M.zone_tally(z.centres, z.expected, z.price, realized, p.zone_band, p.zone_top,
                                         (float(r["low"].min()), float(r["high"].max())), usd=z.model))
        if z.true is not None:
            errors.append(M.map_error(z.model, z.true))
    return tallies, reached, errors


def zone_overlap(p: BacktestParams) -> float:
    """How many zone snapshots share one scoring horizon (the Wilson bound's trials are divided by it)."""
    return max(1.0, p.zone_horizon_s / p.zone_every_s)


def score(d: Dataset, p: BacktestParams = BacktestParams()) -> dict:
    """Every figure of one dataset (JSON-able)."""
    start = scored_from(d, p)
    labels = [c for c in dataset_labels(d, p) if c.start_ns >= start[c.asset]]
    alarms = [a for a in M.onsets(s for s in d.signals if type(s).__struct_config__.tag == "cascade")
              if a.t_ns >= start.get(a.asset, 0)]
    asset_days = sum(max(0, t1 - start[a]) for a, (_, t1) in d.asset_spans.items()) / 86400e9
    leads = M.lead_times(labels, alarms, p.max_lead_s)
    tallies, reached, errors = zone_figures(d, p)
    ov = zone_overlap(p)
    tv = [e["tv_distance"] for e in errors if e["tv_distance"] is not None]
    ratio = [e["usd_ratio"] for e in errors if e["usd_ratio"] is not None]
    return {
        "kind": d.kind, "calm": d.calm, "assets": sorted(d.asset_spans), "asset_days": asset_days,
        "span_s": (d.t1_ns - d.t0_ns) / 1e9, "records": d.records, "records_lost": d.lost,
        "truth_liquidations": int(len(d.truth)), "truth_usd": float(d.truth["usd"].sum()),
        "cascades": len(labels),
        "labels": [{"asset": c.asset, "start_ns": c.start_ns, "peak_ns": c.peak_ns, "end_ns": c.end_ns,
                    "peak_usd": c.peak_usd, "usd": c.usd} for c in labels],
        "levels": M.cascade_figures(labels, alarms, asset_days, p.max_lead_s, p.grace_s),
        "lead_s": {**M.distribution(leads), "values": [x for x in leads if x is not None]},
        **{k: t.figures(ov) for k, t in tallies.items()}, "zones_reached": reached.figures(ov),
        "zone_map_error": {"snapshots": len(errors), **M.distribution(tv),
                           "usd_ratio_median": float(np.median(ratio)) if ratio else None} if errors else None,
        "coverage": d.coverage, "signals": d.signal_counts, "parse": d.parse, "skipped": d.skipped,
        "wall_s": round(d.wall_s, 1),
    }


def _pooled(figs: dict[str, dict], p: BacktestParams) -> dict:
    """Headline figures pooled over datasets, next to the goals."""
    def level_sum(level: str, key: str, which) -> int:
        return sum(f["levels"][level][key] for f in figs.values() if which(f))
    scored = lambda f: not f["calm"]   # noqa: E731
    det, lab = level_sum("WARNING", "detected", scored), level_sum("WARNING", "labelled", scored)
    mat, ala = level_sum("WARNING", "matched", scored), level_sum("WARNING", "alarms", scored)
    calm = [f for f in figs.values() if f["calm"]]
    calm_days = sum(f["asset_days"] for f in calm)
    false_crit = sum(f["levels"]["CRITICAL"]["false_alarms"] for f in calm)
    def pooled_zones(key: str) -> dict:
        zt = M.ZoneTally()
        for f in figs.values():
            z = f[key]
            zt.add(M.ZoneTally(z["snapshots"], z["empty_snapshots"], z["top_bins"], z["top_hits"],
                               z["candidate_bins"], z["candidate_hits"], z.get("top_usd", 0.0), z.get("usd", 0.0),
                               z.get("random_usd", 0.0)))
        return zt.figures(zone_overlap(p))
    leads = [v for f in figs.values() for v in f["lead_s"]["values"]]
    zf, zr = pooled_zones("zones"), pooled_zones("zones_reached")
    return {
        "recall_warning": det / lab if lab else None, "recall_warning_wilson_low": M.wilson_lower(det, lab),
        "cascades": lab, "precision_warning": mat / ala if ala else None,
        "lead_median_s": M.distribution(leads)["median"], "leads": len(leads),
        "false_critical_per_asset_day_calm": false_crit / calm_days if calm_days else None,
        "calm_asset_days": calm_days,
        "zone_precision": zf["precision"], "zone_precision_wilson_low": zf["precision_wilson_low"],
        "zone_random_baseline": zf["random_baseline"], "zone_lift": zf["lift"],
        "zone_reached_precision": zr["precision"], "zone_reached_random_baseline": zr["random_baseline"],
        "zone_reached_lift": zr["lift"],
        **{f"{k}_lift": pooled_zones(k)["lift"] for k in ZONE_RANKINGS if k != "zones"},
        **{f"{k}_usd_capture_lift": pooled_zones(k)["usd_capture_lift"] for k in ZONE_RANKINGS},
        "goals": {"recall_warning": 0.90, "lead_median_s": 60.0, "false_critical_per_asset_day_calm": 1.0,
                  "zone_lift": 3.0},
    }


def _run_one(cfg: Config, what: tuple, p: BacktestParams, progress: bool) -> Dataset:
    if what[0] == "scenario":
        return simulate(cfg, what[1], p, progress, what[2])
    return replay_real(cfg, what[1], p, progress)


def parse_scenario(text: str) -> tuple[str, float | None]:
    """``NAME`` or ``NAME:SECONDS`` -> (name, seconds or None); ValueError names what is wrong."""
    name, _, secs = text.partition(":")
    try:
        seconds = float(secs) if secs else None
    except ValueError:
        raise ValueError(f"scenario {text!r}: the length after ':' must be seconds") from None
    if seconds is not None and not seconds > 0:
        raise ValueError(f"scenario {text!r}: the length must be positive")
    return name, seconds


def backtest(cfg: Config, scenarios: list[str], real: str | Path | None, out_dir: str | Path | None,
             p: BacktestParams = BacktestParams(), progress: bool = True, save_state: bool = True,
             jobs: int = 1) -> dict:
    """Run and score every dataset (``jobs`` at a time, each in its own process when more than one); write the
    report into ``out_dir`` and the summary into the state directory."""
    todo = [("scenario", *parse_scenario(s)) for s in scenarios] + ([("real", str(real))] if real is not None else [])
    if jobs <= 1 or len(todo) <= 1:
        datasets = [_run_one(cfg, w, p, progress) for w in todo]
    else:   # one progress bar per process would interleave: a line per finished dataset instead
        from concurrent.futures import ProcessPoolExecutor
        with ProcessPoolExecutor(max_workers=jobs) as pool:
            futures = [pool.submit(_run_one, cfg, w, p, False) for w in todo]
            datasets = []
            for i, fut in enumerate(futures):
                datasets.append(fut.result())
                if progress:
                    d = datasets[-1]
                    sys.stderr.write(f"backtest {d.name}: {d.records:,} records in {d.wall_s:.0f} s "
                                     f"({i + 1}/{len(todo)})\n")
    figs = {d.name: score(d, p) for d in datasets}
    summary = {"generated_ns": time.time_ns(), "params": _params(p), "headline": _pooled(figs, p),
               "datasets": figs}
    if out_dir is not None:
        from .report import write_report
        summary["report"] = str(write_report(Path(out_dir), summary, datasets, p))
    if save_state:
        path = summary_path(cfg)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(summary))
        tmp.replace(path)
        summary["saved"] = str(path)
    return summary


def _params(p: BacktestParams) -> dict:
    from dataclasses import asdict
    return asdict(p)



def command(args, cfg: Config) -> int:
    """``undertow backtest`` (engine/cli.py parses the arguments): run, report, print the summary."""
    from .offline import SCENARIOS
    scenarios = list(SCENARIOS) if not args.scenario else args.scenario
    try:
        unknown = [s for s in scenarios if parse_scenario(s)[0] not in SCENARIOS]
    except ValueError as exc:
        print(f"undertow backtest: {exc}", file=sys.stderr)
        return 2
    if unknown:
        print(f"undertow backtest: unknown scenario {unknown}; known: {', '.join(SCENARIOS)}", file=sys.stderr)
        return 2
    real = None if args.no_real else Path(args.real) if args.real else default_real_path()
    if real is not None and not real.exists():
        if args.real:
            print(f"undertow backtest: {real}: no such file", file=sys.stderr)
            return 2
        print(f"undertow backtest: the real series is not here ({real}); simulated scenarios only",
              file=sys.stderr)
        real = None
    p = BacktestParams(venues=tuple(args.venues.split(",")), seed=args.seed, seconds=args.seconds,
                       warmup_s=args.warmup)
    logging.getLogger("undertow").setLevel(logging.WARNING)   # profile refreshes at stream speed would flood INFO
    try:
        summary = backtest(cfg, scenarios, real, args.out, p, progress=not args.quiet, jobs=args.jobs)
    except (ValueError, KeyError) as exc:
        print(f"undertow backtest: {exc}", file=sys.stderr)
        return 2
    h = summary["headline"]
    print(f"recall@WARNING {h['recall_warning']}, lead median {h['lead_median_s']} s, false CRITICAL/asset/day "
          f"(calm) {h['false_critical_per_asset_day_calm']}, zone lift {h['zone_lift']}"
          + (f"; report {summary['report']}" if "report" in summary else ""), file=sys.stderr)
    if args.json:
        print(json.dumps(summary))
    return 0
