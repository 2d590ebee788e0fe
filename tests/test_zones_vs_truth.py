"""The zone model's map against the mechanistic simulator's true liquidation map (issue 6).

A short seeded mechanistic scenario is rendered by the real venue simulator modules, parsed by the real
parsers (:class:`engine.backtest.offline.VenueStream`) and fed to a :class:`~engine.kernels.zones.ZoneModel`
with the detector's defaults from config; every minute of stream time the model's map is compared with
``m.truth.true_map`` on the model's own bins. What a correct reconstruction must show and a broken one
would not: long USD only below the price and short USD only above it; bins the price crossed emptied; a
USD-weighted distance to price of the same order as the truth's; a shape closer to the truth than the
same USD put at any single leverage; with ``seed_open_interest`` the modelled USD near the true USD.

Measured (grind seed 7, thin_book_cascade seed 3 with seeding, 600 s, Binance + Bybit, BTC; run with -s to
print them): total-variation distance 0.81-0.95 per snapshot, 0.98-1.0 for the same USD at the best single
leverage, but 0.67-0.78 for a flat map over the model's own band: the model does NOT beat a flat map with
the default leverage mix. That mix (calibrated on Hyperliquid snapshots) puts 72 % of new USD at 2.2x, about
45 % from price, while the simulator's traders use 2x-100x, half at 5x-20x: the model's mean distance
to price is 1.1-2.4x the truth's. Given the simulator's own mix the same model scores 0.40-0.74 and beats
the flat map from 120-180 s on, once the positions opened before the start (which an unseeded model cannot
see) weigh less: the gap is the leverage prior, not the mechanics
(test_with_the_traders_leverage_mix_the_shape_beats_a_flat_map).
"""
from __future__ import annotations

import functools
import math
import uuid
from dataclasses import dataclass

import msgspec
import numpy as np
import pytest

from engine import shm
from engine.backtest.metrics import bin_edges, map_error
from engine.backtest.offline import VenueStream, asset_of, make_source
from engine.config import Config
from engine.instruments import Registry, registry_segment
from engine.kernels.zones import A_PRICE, ZoneModel, liquidation_price
from engine.record import VENUE_NAMES, Kind
from engine.simulator.population import DEFAULT_LEVERAGE

pytestmark = pytest.mark.unit

SYMBOL = "BTCUSDT"
VENUES = ("binance", "bybit")
SECONDS = 600.0
EVERY_S = 60.0
RUNS = (("grind", 7), ("thin_book_cascade", 3))   # scenario, seed
SINGLE_LEVERAGES = (2.0, 5.0, 10.0, 25.0, 100.0)


@dataclass(frozen=True)
class Snapshot:
    """The model's and the true map of one asset at one moment, on the model's bins."""

    t: float
    price: float
    edges: np.ndarray
    model_long: np.ndarray
    model_short: np.ndarray
    true_long: np.ndarray
    true_short: np.ndarray

    @property
    def centres(self) -> np.ndarray:
        return np.sqrt(self.edges[1:] * self.edges[:-1])

    @property
    def price_bin(self) -> int:
        return int(np.searchsorted(self.edges, self.price, side="right")) - 1


@dataclass
class Crossings:
    """Per 1 s chunk, USD in the bins its price path crossed (see :func:`crossed_bins`), summed over the run:
    the model's before the chunk, the model's and the truth's after it (the largest of any chunk)."""

    model_before: float = 0.0
    model_after_max: float = 0.0
    true_after_max: float = 0.0
    chunks: int = 0          # chunks whose crossed bins held model USD before


@dataclass
class Run:
    """What one driven scenario gives the tests."""

    snapshots: list
    crossings: Crossings


def crossed_bins(edges: np.ndarray, low: float, high: float, entry_low: float, entry_high: float,
                 max_leverage: float, mm: float) -> tuple[np.ndarray, np.ndarray]:
    """Long bins wholly above ``low`` and short bins wholly below ``high`` that no position opened meanwhile can
    have reached (a new long liquidates at most at ``entry_high x (1 - 1/max_leverage + mm)``; shorts mirrored)."""
    long_floor = max(low, liquidation_price(entry_high, max_leverage, mm, True))
    short_ceiling = min(high, liquidation_price(entry_low, max_leverage, mm, False))
    return edges[:-1] > long_floor, edges[1:] < short_ceiling


def _side_usd(maps: np.ndarray, sel: np.ndarray, longs: np.ndarray, shorts: np.ndarray) -> float:
    m = maps[sel].sum(axis=0)
    return float(m[0][longs].sum() + m[1][shorts].sum())


def drive(scenario: str, seed: int, seconds: float = SECONDS, model_cls=ZoneModel, **zone_changes) -> Run:
    """Run ``scenario`` through the venue modules and parsers into a zone model: a snapshot every EVERY_S and
    the crossed-bin figures of every chunk."""
    cfg = Config()
    zc = msgspec.structs.replace(cfg.detectors.zones, **zone_changes)
    model_lmax = max(p[0] for p in zc.leverage["*"])
    model_mm = zc.maintenance["*"]
    ns = "zt" + uuid.uuid4().hex[:10]
    reg = Registry.open(registry_segment(ns), 16, 4)
    try:
        src = make_source(scenario, (SYMBOL,), seed, seconds)
        true_lmax, true_mm = float(src.market.mix.leverage.max()), src.market.states[SYMBOL].positions.mmr
        streams = [VenueStream(v, (SYMBOL,), src.market, reg) for v in VENUES]
        insts = [reg.get(i) for i in range(len(reg))]
        model = model_cls(zc, funding_cfg=cfg.detectors.funding)
        model.resize([(VENUE_NAMES[i.venue], i.asset, i.asset_id) for i in insts], max(i.asset_id for i in insts) + 1)
        (aid,) = {i.asset_id for i in insts}
        assert reg.asset_name(aid) == asset_of(SYMBOL)
        sel = model.inst_asset == aid
        snaps: list[Snapshot] = []
        cross = Crossings()
        prev_low, prev_high = math.inf, -math.inf
        t, next_snap = 0.0, EVERY_S
        while t < seconds - 1e-9:
            events = src.run(1.0)
            t += 1.0
            recs = np.concatenate([vs.records(events, 0.01) for vs in streams])
            recs = recs[np.argsort(recs["ts_recv"], kind="stable")]
            px = recs["price"][(recs["kind"] == Kind.TRADE) & (recs["price"] > 0)]
            low, high = (float(px.min()), float(px.max())) if len(px) else (math.inf, -math.inf)
            edges = bin_edges(model.bin_prices(aid)) if model.ast[aid, A_PRICE] > 0 else None
            if edges is not None and len(px):
                span = (low, high, min(low, prev_low), max(high, prev_high))
                longs, shorts = crossed_bins(edges, *span, model_lmax, model_mm)
                before = _side_usd(model.maps, sel, longs, shorts)
            model.run(recs)
            if edges is not None and len(px):
                cross.model_before += before
                cross.chunks += before > 0
                cross.model_after_max = max(cross.model_after_max, _side_usd(model.maps, sel, longs, shorts))
                tl, ts = src.true_map(asset_of(SYMBOL), edges)
                tlong, tshort = crossed_bins(edges, *span, true_lmax, true_mm)
                cross.true_after_max = max(cross.true_after_max, float(tl[tlong].sum() + ts[tshort].sum()))
            prev_low, prev_high = low, high
            if t >= next_snap - 1e-9:
                next_snap += EVERY_S
                m = model.asset_map(aid)
                edges = bin_edges(m["price"])
                tl, ts = src.true_map(asset_of(SYMBOL), edges)
                snaps.append(Snapshot(t, float(model.ast[aid, A_PRICE]), edges, m["long_usd"].copy(),
                                      m["short_usd"].copy(), np.asarray(tl, float), np.asarray(ts, float)))
        for vs in streams:   # the records came through the parsers, none refused
            assert vs.outcomes["emitted"] > 0 and vs.outcomes["malformed"] == 0 and vs.outcomes["unknown"] == 0, \
                (vs.name, dict(vs.outcomes))
        return Run(snaps, cross)
    finally:
        reg.close()
        shm.sweep(ns)


# -- figures ---------------------------------------------------------------------------------
def wrong_side_usd(z: Snapshot, long: np.ndarray, short: np.ndarray) -> tuple[float, float]:
    """USD of longs liquidating more than one bin above the price, and of shorts more than one bin below."""
    i = np.arange(len(long))
    return float(long[i > z.price_bin + 1].sum()), float(short[i < z.price_bin - 1].sum())


def mean_distance(z: Snapshot, usd: np.ndarray) -> float:
    """USD-weighted mean |log(bin centre / price)| (NaN for an empty side)."""
    total = float(usd.sum())
    return float((np.abs(np.log(z.centres / z.price)) * usd).sum() / total) if total > 0 else math.nan


def tv_distance(model: tuple[np.ndarray, np.ndarray], true: tuple[np.ndarray, np.ndarray]) -> float:
    """Total-variation distance of the normalised (long, short) maps, the sides kept apart (the backtest's map
    error sums them, which would not see longs and shorts swapped)."""
    return map_error(np.concatenate(model), np.concatenate(true))["tv_distance"]


def single_leverage_map(z: Snapshot, long_usd: float, short_usd: float, leverage: float,
                        mm: float) -> tuple[np.ndarray, np.ndarray]:
    """``long_usd`` / ``short_usd`` all opened at the current price at one leverage."""
    out = np.zeros((2, len(z.edges) - 1))
    for side, usd, long in ((0, long_usd, True), (1, short_usd, False)):
        out[side, int(np.searchsorted(z.edges, liquidation_price(z.price, leverage, mm, long), side="right")) - 1] = usd
    return out[0], out[1]


def flat_map(z: Snapshot, band: float) -> tuple[np.ndarray, np.ndarray]:
    """One USD per long bin below the price and per short bin above it, within ``band`` (log) of the price."""
    d = np.log(z.centres / z.price)
    return ((d <= 0) & (d >= -band)).astype(np.float64), ((d >= 0) & (d <= band)).astype(np.float64)


def model_band(z: Snapshot) -> float:
    """The log distance from price of the model's farthest non-empty bin: the band a flat map spreads over."""
    held = (z.model_long + z.model_short) > 0
    return float(np.abs(np.log(z.centres[held] / z.price)).max())


def figures(z: Snapshot, mm: float) -> dict:
    """Every compared figure of one snapshot (printed by the tests, with -s)."""
    model, true = (z.model_long, z.model_short), (z.true_long, z.true_short)
    single = {L: tv_distance(single_leverage_map(z, float(z.model_long.sum()), float(z.model_short.sum()), L, mm),
                             true) for L in SINGLE_LEVERAGES}
    return {"t": z.t, "price": z.price,
            "wrong_side_model": wrong_side_usd(z, z.model_long, z.model_short),
            "wrong_side_true": wrong_side_usd(z, z.true_long, z.true_short),
            "distance_ratio_long": mean_distance(z, z.model_long) / mean_distance(z, z.true_long),
            "distance_ratio_short": mean_distance(z, z.model_short) / mean_distance(z, z.true_short),
            "tv": tv_distance(model, true), "tv_single_best": min(single.values()),
            "tv_flat": tv_distance(flat_map(z, model_band(z)), true),
            "usd_ratio": float(sum(m.sum() for m in model) / sum(t.sum() for t in true))}


def report(name: str, run: Run, mm: float) -> list[dict]:
    """Print the figures of every snapshot of ``run`` (seen with -s); return them."""
    rows = [figures(z, mm) for z in run.snapshots]
    print(f"\n{name}: {run.crossings}")
    for f in rows:
        print("  t={t:.0f} price={price:.0f} distance model/true long {distance_ratio_long:.2f} short "
              "{distance_ratio_short:.2f}; TV {tv:.3f}, best single leverage {tv_single_best:.3f}, flat {tv_flat:.3f}; "
              "USD model/true {usd_ratio:.3f}".format(**f))
    return rows


MM = Config().detectors.zones.maintenance["*"]
TRUE_MIX = {"*": [[float(lev), w] for lev, w in DEFAULT_LEVERAGE]}


@functools.lru_cache(maxsize=None)
def run_of(scenario: str, seed: int, seed_open_interest: bool = False, true_mix: bool = False,
           seconds: float = SECONDS) -> Run:
    """One run per set-up, shared by the tests."""
    extra = {"leverage": TRUE_MIX} if true_mix else {}
    return drive(scenario, seed, seconds, seed_open_interest=seed_open_interest, **extra)


# -- what a correct reconstruction shows ----------------------------------------------------
def assert_sides(name: str, run: Run) -> None:
    """Long USD only below the price and short USD only above it, up to one bin, in the model as in the truth."""
    for f, z in zip(report(name, run, MM), run.snapshots):
        assert z.model_long.sum() > 0 and z.model_short.sum() > 0, f["t"]
        assert f["wrong_side_true"] == (0.0, 0.0), f["t"]          # the truth's own invariant
        assert f["wrong_side_model"] == (0.0, 0.0), f


def assert_crossed_bins_emptied(run: Run) -> None:
    """What the model held where the price went is gone after it, as the truth's positions there are."""
    c = run.crossings
    assert c.chunks >= 3 and c.model_before > 10_000.0, c      # price did cross bins the model held
    assert c.true_after_max == 0.0, c
    assert c.model_after_max == 0.0, c


def assert_distance_within(run: Run, factor: float) -> None:
    """The USD-weighted mean distance to price of each side within ``factor`` of the truth's."""
    for f in (figures(z, MM) for z in run.snapshots):
        for side in ("long", "short"):
            assert 1 / factor < f[f"distance_ratio_{side}"] < factor, f


def assert_beats_single_leverage(run: Run) -> None:
    """The map's shape (sides apart) is closer to the truth than the same USD at any one leverage."""
    for f in (figures(z, MM) for z in run.snapshots):
        assert f["tv"] < f["tv_single_best"], f


def assert_usd_tracks(run: Run, low: float, high: float) -> None:
    for f in (figures(z, MM) for z in run.snapshots):
        assert low < f["usd_ratio"] < high, f


# -- tests -----------------------------------------------------------------------------------
DETECTOR_RUNS = [pytest.param("grind", 7, False, id="grind-7"),
                 pytest.param("thin_book_cascade", 3, True, id="thin_book_cascade-3-seeded")]


@pytest.mark.parametrize("scenario,seed,seeded", DETECTOR_RUNS)
def test_longs_liquidate_below_and_shorts_above_the_price_as_in_the_truth(scenario, seed, seeded):
    assert_sides(f"{scenario} seed {seed}", run_of(scenario, seed, seeded))


@pytest.mark.parametrize("scenario,seed,seeded", DETECTOR_RUNS)
def test_bins_the_price_crossed_are_emptied_like_the_positions_there(scenario, seed, seeded):
    assert_crossed_bins_emptied(run_of(scenario, seed, seeded))


@pytest.mark.parametrize("scenario,seed,seeded", DETECTOR_RUNS)
def test_distance_to_price_per_side_is_within_a_factor_of_three_of_the_truth(scenario, seed, seeded):
    # measured 1.1-2.4 (the default mix sits farther out than the simulator's traders, see the module doc)
    assert_distance_within(run_of(scenario, seed, seeded), 3.0)


@pytest.mark.parametrize("scenario,seed,seeded", DETECTOR_RUNS)
def test_shape_beats_the_same_usd_at_any_single_leverage(scenario, seed, seeded):
    # measured TV 0.81-0.95 against 0.98-1.0 for the best of 2x, 5x, 10x, 25x, 100x
    assert_beats_single_leverage(run_of(scenario, seed, seeded))


def test_seeded_usd_tracks_the_true_usd():
    # measured 0.86-1.0 (thin_book_cascade seed 3: the crash liquidates positions at the truth's leverages,
    # not the model's); without seeding the model sees only OI opened after it started: 0.02-0.26 in 600 s
    assert_usd_tracks(run_of("thin_book_cascade", 3, True), 0.8, 1.25)


@pytest.mark.parametrize("scenario,seed", [("grind", 7), ("thin_book_cascade", 3)])
def test_with_the_traders_leverage_mix_the_shape_beats_a_flat_map(scenario, seed):
    """The default mix loses to a flat map (module doc); given the simulator's own mix the same mechanics win
    once the positions opened before the start (which an unseeded model cannot see) are a smaller share."""
    run = run_of(scenario, seed, False, True, 420.0)
    for f in report(f"{scenario} seed {seed}, the simulator's leverage mix", run, MM):
        assert 0.5 < f["distance_ratio_long"] < 2 and 0.5 < f["distance_ratio_short"] < 2, f
        if f["t"] >= 180:
            assert f["tv"] < f["tv_flat"], f


@pytest.mark.soak
@pytest.mark.parametrize("scenario,seed,seeded", [("grind", 11, True), ("thin_book_cascade", 5, False),
                                                  ("news_shock", 7, False), ("news_shock", 13, True)])
def test_other_seeds_and_scenarios_over_15_minutes(scenario, seed, seeded):
    """The same properties on seeds and a scenario the margins were not measured on, 900 s each."""
    run = drive(scenario, seed, 900.0, seed_open_interest=seeded)
    assert_sides(f"{scenario} seed {seed}{' seeded' if seeded else ''}, 900 s", run)
    assert_crossed_bins_emptied(run)
    assert_distance_within(run, 3.0)
    assert_beats_single_leverage(run)
    if seeded:
        assert_usd_tracks(run, 0.8, 1.25)
