"""The estimate of what a capped liquidation stream hid, from the uncapped venues in the same intervals."""
import numpy as np
import pytest

from engine.coverage import coverage_signals
from engine.hidden_liquidations import HiddenLiquidations
from engine.record import RECORD_DTYPE, Flag, Kind, Venue

NS = 1_000_000_000
# instrument ids: 0 = BTC on Binance (capped), 1 = BTC on Bybit, 2 = BTC on Gate, 3 = ETH on Bybit
ASSET = np.array([0, 0, 0, 1])
VENUE = np.array([Venue.BINANCE, Venue.BYBIT, Venue.GATE, Venue.BYBIT])


def liqs(rows) -> np.ndarray:
    """Records from (instrument, venue, ts_ns, usd, capped)."""
    out = np.zeros(len(rows), dtype=RECORD_DTYPE)
    for k, (iid, venue, ts, usd, capped) in enumerate(rows):
        out[k] = (Kind.LIQUIDATION, venue, 1, Flag.CAPPED if capped else 0, iid, ts, ts, 100.0, usd / 100.0,
                  usd, 0.0, 0.0)
    return out


def capped_view(times: np.ndarray, usd: np.ndarray) -> list[tuple]:
    """What a 1/symbol/s stream shows: the latest liquidation of each 1 s window."""
    shown = {}
    for t, u in zip(times.tolist(), usd.tolist()):
        shown[t // NS] = (t, u)
    return sorted(shown.values())


def market(seed: int, n: int, seconds: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    times = np.sort(rng.integers(0, seconds * NS, n))
    return times, rng.uniform(1_000, 50_000, n)


def run(rows, oi=None) -> HiddenLiquidations:
    recs = liqs(rows)
    recs = recs[np.argsort(recs["ts_exchange"], kind="stable")]
    est = HiddenLiquidations()
    for k in range(0, len(recs), 7):               # batches cut anywhere
        est.add(recs[k:k + 7], ASSET, VENUE, oi)
    est.advance(int(recs["ts_exchange"][-1]) + est.settle_ns, ASSET, VENUE, oi)
    return est


def test_one_uncapped_venue_seeing_the_same_market_gives_what_the_cap_hid():
    times, usd = market(1, 600, 60)                # a burst: ~10 liquidations a second
    shown = capped_view(times, usd)
    rows = [(1, Venue.BYBIT, t, u, False) for t, u in zip(times.tolist(), usd.tolist())]
    rows += [(0, Venue.BINANCE, t, u, True) for t, u in shown]
    est = run(rows)
    true_hidden = len(times) - len(shown)
    assert est.shown == {"binance": len(shown)}
    # each shown record stands for (max(T - 1 s, previous shown), T]; window phases differ from the
    # venue's, so the estimate is close, not exact
    assert est.count["binance"] == pytest.approx(true_hidden, rel=0.05)
    assert est.usd["binance"] == pytest.approx(usd.sum() - sum(u for _, u in shown), rel=0.05)
    assert "bybit" not in est.count


def test_two_uncapped_venues_are_averaged_without_open_interest():
    times, usd = market(2, 300, 60)
    shown = capped_view(times, usd)
    rows = [(iid, v, t, u, False) for iid, v in ((1, Venue.BYBIT), (2, Venue.GATE))
            for t, u in zip(times.tolist(), usd.tolist())]
    rows += [(0, Venue.BINANCE, t, u, True) for t, u in shown]
    assert run(rows).count["binance"] == pytest.approx(len(times) - len(shown), rel=0.05)


def test_open_interest_share_scales_the_uncapped_count():
    # Binance holds twice Bybit's OI: a second with 3 Bybit liquidations is taken to hold 6 on Binance
    rows = [(1, Venue.BYBIT, 10 * NS + k, 1_000.0, False) for k in (1, 2, 3)]
    rows += [(0, Venue.BINANCE, 10 * NS + 5, 1_000.0, True)]
    oi = np.array([2e9, 1e9, 0.0, 5e8])            # Gate's BTC OI unknown: not counted; ETH not counted
    est = run(rows, oi)
    assert est.count["binance"] == pytest.approx(2 * 3 - 1)
    assert est.usd["binance"] == pytest.approx(2 * 3_000.0 - 1_000.0)


def test_intervals_are_not_counted_twice_and_other_assets_do_not_count():
    rows = [(1, Venue.BYBIT, 10 * NS + 100, 1.0, False), (1, Venue.BYBIT, 10 * NS + 600_000_000, 1.0, False),
            (3, Venue.BYBIT, 10 * NS + 700_000_000, 1.0, False),            # ETH
            (0, Venue.BINANCE, 10 * NS + 500_000_000, 1.0, True),          # stands for (9.5 s, 10.5 s]
            (0, Venue.BINANCE, 10 * NS + 900_000_000, 1.0, True)]          # (10.5 s, 10.9 s]: one Bybit BTC
    est = run(rows)
    assert est.shown["binance"] == 2
    assert est.count["binance"] == pytest.approx(0.0)    # 1 - 1 shown, twice


def test_no_uncapped_venue_means_no_estimate_and_nothing_settles_early():
    est = run([(0, Venue.BINANCE, 10 * NS, 1.0, True), (0, Venue.BINANCE, 11 * NS, 1.0, True)])
    assert est.count == {} and est.shown == {"binance": 2}
    est = HiddenLiquidations(settle_s=2.0)
    est.add(liqs([(0, Venue.BINANCE, 10 * NS, 1.0, True)]), ASSET, VENUE)
    est.advance(11 * NS, ASSET, VENUE)                 # 1 s later: other venues may still be on the wire
    assert est.shown == {}
    est.advance(12 * NS, ASSET, VENUE)
    assert est.shown == {"binance": 1}


def test_coverage_takes_the_compute_estimate_over_the_saturation_fallback():
    feed = {"name": "feed:binance", "counters": {"events_liquidation": 80.0, "liq_slots": 80.0,
                                                 "capped_liquidations": 80.0, "saturated_slots": 20.0}}
    bybit = {"name": "feed:bybit", "counters": {"events_liquidation": 300.0, "liq_slots": 100.0}}
    fallback = {s.venue: s for s in coverage_signals([feed, bybit])}
    assert fallback["binance"].missed_high == 40.0 and fallback["binance"].missed_usd == 0.0
    compute = [{"name": f"compute:{w}", "counters": {"hidden_liquidations:binance": 100.0 + w,
                                                      "hidden_usd:binance": 1e6}} for w in (0, 1)]
    sigs = {s.venue: s for s in coverage_signals([feed, bybit, *compute])}
    assert sigs["binance"].missed_high == 201.0 and sigs["binance"].missed_usd == 2e6
    assert sigs["bybit"].missed_high == 0.0
