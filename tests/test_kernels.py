"""Kernels against plain-Python references, on random streams and edge cases."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.config import CascadeConfig, Config
from engine.kernels import cascade, velocity, volatility
from engine.kernels import columns as C
from engine.kernels.windows import new_ring, ring_add, ring_sums
from engine.record import Kind, empty_records
from tests.reference_kernels import RefVelocity, ref_heat, ref_levels, ref_realized_vol, ref_regime, ref_score

T0 = 1_700_000_000_000_000_000
N_INST, N_ASSETS = 4, 2
INST_ASSET = np.array([0, 1, 0, 1], dtype=np.int64)   # two venues per asset
OWNED = np.ones(N_ASSETS, dtype=np.bool_)
LAYOUT = velocity.VelocityLayout([1.0, 5.0, 20.0, 60.0], 30.0)
SCRATCH = np.zeros((16, C.DAY_CHANNELS))
WHALE_USD = np.array([300_000.0, 150_000.0])

# gaps: mostly sub-second, sometimes seconds, minutes or hours; small negatives are late events
gaps = st.one_of(st.integers(0, 400_000_000), st.integers(-2_000_000_000, 0), st.integers(1, 90) .map(lambda s: s * 10**9),
                 st.integers(1, 3).map(lambda h: h * 3600 * 10**9))
liq_events = st.lists(st.tuples(gaps, st.integers(0, N_INST - 1), st.sampled_from([-1, 0, 1]),
                                st.floats(0, 5e6, allow_nan=False)), max_size=120)


def records_of(kind, events):
    recs = empty_records(len(events))
    t = T0
    for i, (gap, iid, side, value) in enumerate(events):
        t += gap
        recs[i] = (kind, 1, side, 0, iid, t, t + 1000, value if kind == Kind.TRADE else 100.0, 1.0,
                   value, 0.0, 0.0)
    return recs


def fresh_rows(n):
    rows = np.zeros((n, C.NCOL))
    rows[:, C.REGIME] = volatility.NORMAL
    rows[:, C.REGIME_MULT] = 1.0
    return rows


def run_velocity(recs):
    inst, assets = velocity.VelocityRings(LAYOUT, N_INST), velocity.VelocityRings(LAYOUT, N_ASSETS)
    irows, arows = fresh_rows(N_INST), fresh_rows(N_ASSETS)
    n = velocity.update_batch(recs, INST_ASSET, OWNED, WHALE_USD, inst.as_tuple(), assets.as_tuple(), LAYOUT.widths,
                              LAYOUT.slots, LAYOUT.windows_s, irows, arows, SCRATCH)
    return n, irows, arows


def assert_row(row, expected):
    for col, value in expected.items():
        assert row[col] == pytest.approx(value, rel=1e-9, abs=1e-6), col


# -- windows ---------------------------------------------------------------
@pytest.mark.unit
def test_ring_windows_and_refusal():
    b, h = new_ring(1, 8, 1)
    widths = np.array([1, 4, 8], dtype=np.int64)
    out = np.zeros((3, 1))
    assert ring_add(b, h, 0, 100, 0, 1.0) and ring_add(b, h, 0, 103, 0, 2.0)
    assert not ring_add(b, h, 0, 95, 0, 9.0)   # older than the ring
    assert ring_add(b, h, 0, 96, 0, 4.0)       # late but still held
    ring_sums(b, h, 0, 103, widths, out)
    assert out[:, 0].tolist() == [2.0, 3.0, 7.0]
    ring_sums(b, h, 0, 200, widths, out)       # long after: everything decayed
    assert out[:, 0].tolist() == [0.0, 0.0, 0.0]


# -- velocity --------------------------------------------------------------
@pytest.mark.property
@settings(max_examples=60, deadline=None)
@given(liq_events)
def test_velocity_matches_reference(events):
    recs = records_of(Kind.LIQUIDATION, events)
    n, irows, arows = run_velocity(recs)
    assert n == len(events)
    ref_i = {k: RefVelocity(LAYOUT) for k in range(N_INST)}
    ref_a = {k: RefVelocity(LAYOUT) for k in range(N_ASSETS)}
    clock = {a: 0 for a in range(N_ASSETS)}
    last_now_i, last_now_a = {}, {}
    for r in recs:
        iid, a, ts = int(r["instrument"]), int(INST_ASSET[r["instrument"]]), int(r["ts_exchange"])
        whale = float(r["notional"]) >= WHALE_USD[a]
        ref_i[iid].add(ts, int(r["side"]), float(r["notional"]), whale)
        ref_a[a].add(ts, int(r["side"]), float(r["notional"]), whale)
        clock[a] = max(clock[a], ts)
        last_now_i[iid] = last_now_a[a] = clock[a]
    for iid, now in last_now_i.items():
        assert_row(irows[iid], ref_i[iid].row(now))
    for a, now in last_now_a.items():
        assert_row(arows[a], ref_a[a].row(now))
    assert np.isfinite(irows).all() and np.isfinite(arows).all()


@pytest.mark.unit
def test_velocity_empty_single_and_gap():
    n, irows, arows = run_velocity(empty_records(0))
    assert n == 0 and not irows[:, C.CASCADE_SUMS:C.RV].any() and np.isfinite(arows).all()
    n, irows, arows = run_velocity(records_of(Kind.LIQUIDATION, [(0, 0, 1, 250_000.0)]))
    row = arows[0]
    assert row[C.VEL_USD] == 250_000.0 and row[C.VEL_USD + 3] == 250_000.0 / 60
    assert row[C.CASCADE_SUMS + C.N_LONG] == 1 and row[C.HOUR_SUMS + C.USD_LONG] == 250_000.0
    two_hours = 2 * 3600 * 10**9
    n, irows, arows = run_velocity(records_of(Kind.LIQUIDATION, [(0, 0, -1, 1e5), (two_hours, 0, -1, 2e5)]))
    assert arows[0, C.HOUR_SUMS + C.USD_SHORT] == 2e5 and arows[0, C.CASCADE_SUMS + C.N_SHORT] == 1


# -- volatility ------------------------------------------------------------
trade_events = st.lists(st.tuples(st.one_of(st.integers(0, 700_000_000), st.integers(1, 1200).map(lambda s: s * 10**9)),
                                  st.integers(0, N_INST - 1), st.just(1),
                                  st.floats(50.0, 150.0, allow_nan=False)), max_size=150)


def run_volatility(recs, windows=(60, 300, 900)):
    cfg = Config().detectors.volatility
    state = volatility.VolatilityState(list(windows), N_INST)
    irows, arows = fresh_rows(N_INST), fresh_rows(N_ASSETS)
    asset_inst = np.argsort(INST_ASSET, kind="stable")
    asset_ptr = np.searchsorted(INST_ASSET[asset_inst], np.arange(N_ASSETS + 1))
    changed = np.zeros(len(recs) + 1, dtype=np.int64)
    n = volatility.update_batch(recs, INST_ASSET, OWNED, state.as_tuple(), state.windows, asset_ptr, asset_inst,
                                np.array(cfg.regime_bounds), np.array(cfg.regime_multipliers), irows, arows,
                                SCRATCH, changed)
    return irows, arows, changed[:n], cfg


@pytest.mark.property
@settings(max_examples=60, deadline=None)
@given(trade_events)
def test_volatility_matches_reference(events):
    recs = records_of(Kind.TRADE, events)
    irows, arows, _, cfg = run_volatility(recs)
    windows = [60, 300, 900]
    per_inst = {}
    for iid in range(N_INST):
        trades = [(int(r["ts_exchange"]), float(r["price"])) for r in recs if r["instrument"] == iid]
        per_inst[iid] = ref_realized_vol(trades, windows)
        rv, obs = per_inst[iid]
        if obs:  # the kernel refreshes a row when a second closes
            np.testing.assert_allclose(irows[iid, C.RV:C.RV + 3], rv, rtol=1e-9, atol=1e-12)
            assert irows[iid, C.RV_OBS] == obs
    for a in range(N_ASSETS):
        members = [per_inst[i] for i in range(N_INST) if INST_ASSET[i] == a and per_inst[i][1] > 0]
        if not members:
            assert arows[a, C.REGIME] == volatility.NORMAL
            continue
        mean = [sum(m[0][w] for m in members) / len(members) for w in range(3)]
        np.testing.assert_allclose(arows[a, C.RV:C.RV + 3], mean, rtol=1e-9, atol=1e-12)
        assert arows[a, C.REGIME] == ref_regime(mean[0], max(m[1] for m in members), cfg.regime_bounds)
    assert np.isfinite(irows).all() and np.isfinite(arows).all()


@pytest.mark.unit
def test_volatility_edges():
    irows, arows, changed, _ = run_volatility(empty_records(0))
    assert len(changed) == 0 and np.isfinite(irows).all()
    irows, arows, changed, _ = run_volatility(records_of(Kind.TRADE, [(0, 0, 1, 100.0)]))
    assert irows[0, C.RV] == 0.0 and arows[0, C.REGIME] == volatility.NORMAL
    # bad prices are ignored; a long gap leaves only zero returns in the window
    evs = [(0, 0, 1, 100.0), (10**9, 0, 1, 0.0), (10**9, 0, 1, 101.0)] + [(10**9, 0, 1, 101.0)] * 20 + \
          [(5000 * 10**9, 0, 1, 101.0), (10**9, 0, 1, 101.0)]
    irows, arows, changed, _ = run_volatility(records_of(Kind.TRADE, evs))
    assert irows[0, C.RV] == 0.0 and arows[0, C.REGIME] == 0 and len(changed) >= 1  # ends dormant


# -- cascade ---------------------------------------------------------------
def cascade_row(count, usd_s, accel, heat=0.0, x=(0.0, 0.0, 0.0), regime=volatility.NORMAL):
    row = fresh_rows(1)[0]
    row[C.CASCADE_SUMS + C.N_LONG] = count
    row[C.VEL_USD + 1] = usd_s
    row[C.ACCEL_HEAD] = accel
    row[C.HEAT] = heat
    row[C.X_VOLUME], row[C.X_OI], row[C.X_FUNDING] = x
    row[C.REGIME] = regime
    return row


unit_floats = st.floats(-0.5, 1.5, allow_nan=False)


@pytest.mark.property
@settings(max_examples=300, deadline=None)
@given(st.integers(0, 40), st.floats(0, 2e6), st.floats(-1e6, 1e6), st.floats(0, 1),
       st.tuples(unit_floats, unit_floats, unit_floats), st.integers(0, 4), st.sampled_from([0.6, 0.8, 1.0, 1.3, 1.6]),
       st.sampled_from([10_000.0, 25_000.0, 100_000.0]), st.booleans())
def test_cascade_score_matches_reference(count, usd_s, accel, heat, x, regime, mult, single, vel_on):
    cfg = CascadeConfig()
    p = cascade.cascade_params(cfg, [1, 5, 20, 60], vel_on)
    row = cascade_row(count, usd_s, accel, heat, x, regime)
    score = cascade.score_row(row, single, mult, p)
    ref, contrib = ref_score(count, usd_s, accel, heat, x, regime, mult, single, cfg, vel_on)
    assert score == pytest.approx(ref, abs=1e-9) and 0 <= score <= 10
    got = [row[c] for c in C.FACTOR_COLUMNS.values()] + [row[C.F_BURST], row[C.F_REGIME]]
    np.testing.assert_allclose(got, contrib, atol=1e-9)
    assert sum(got) == pytest.approx(score, abs=1e-9)


@pytest.mark.unit
def test_missing_detectors_cap_the_score_and_burst_boost_needs_a_cascade():
    cfg = CascadeConfig()
    p = cascade.cascade_params(cfg, [1, 5, 20, 60], True)
    saturated = cascade_row(20, 1e9, 1e9, heat=1.0)          # volume / OI / funding detectors absent: x = 0
    assert cascade.score_row(saturated, 100_000.0, 1.0, p) == pytest.approx((2.5 + 2.0 + 0.5) * 1.5)
    few = cascade_row(4, 1e9, 1e9, heat=1.0)                 # < min_count liquidations: no burst boost
    assert cascade.score_row(few, 100_000.0, 1.0, p) == pytest.approx(5.0) and few[C.F_BURST] == 0
    full = cascade_row(20, 1e9, 1e9, heat=1.0, x=(1.0, 1.0, 1.0), regime=4)
    assert cascade.score_row(full, 100_000.0, 1.0, p) == 10.0
    calm = cascade_row(20, 1e9, 1e9, heat=1.0)
    assert cascade.score_row(calm, 100_000.0, 0.6, p) == pytest.approx(7.5 * 0.6)   # calm market scales it down
    assert calm[C.F_REGIME] == pytest.approx(7.5 * 0.6 - 7.5)


@pytest.mark.unit
def test_critical_needs_min_count():
    p = cascade.cascade_params(CascadeConfig(), [1, 5, 20, 60], True)
    row = cascade_row(4, 1e9, 1e9, heat=1.0, x=(1.0, 1.0, 1.0), regime=4)   # score 10 from 4 liquidations
    cascade.evaluate(row, 100_000.0, 1.0, p)
    assert row[C.SCORE] >= 7.5 and row[C.LEVEL] == 2
    row[C.CASCADE_SUMS + C.N_LONG] = 5
    cascade.evaluate(row, 100_000.0, 1.0, p)
    assert row[C.LEVEL] == 3


@pytest.mark.property
@settings(max_examples=200, deadline=None)
@given(st.lists(st.floats(0, 10), max_size=60))
def test_levels_match_reference(scores):
    cfg = CascadeConfig()
    p = cascade.cascade_params(cfg, [1, 5, 20, 60], True)
    level, got = 0, []
    for s in scores:
        level = cascade.next_level(level, s, p)
        got.append(level)
    assert got == ref_levels(scores, cfg.levels, cfg.hysteresis)


@pytest.mark.unit
def test_level_hysteresis():
    p = cascade.cascade_params(CascadeConfig(), [1, 5, 20, 60], True)   # 3, 5, 7.5; hysteresis 1
    assert cascade.next_level(0, 8.0, p) == 3
    assert cascade.next_level(3, 7.0, p) == 3      # within hysteresis of CRITICAL
    assert cascade.next_level(3, 6.4, p) == 2
    assert cascade.next_level(2, 4.1, p) == 2
    assert cascade.next_level(2, 2.5, p) == 1
    assert cascade.next_level(1, 1.9, p) == 0
    assert cascade.next_level(0, 2.9, p) == 0


@pytest.mark.unit
def test_evaluate_batch_reports_changes_only():
    p = cascade.cascade_params(CascadeConfig(), [1, 5, 20, 60], True)
    rows = np.stack([cascade_row(10, 300_000, 50_000, x=(1.0, 1.0, 1.0)), cascade_row(0, 0, 0)])
    changed = np.zeros(2, dtype=np.int64)
    n = cascade.evaluate_batch(np.array([0, 1]), rows, np.array([100_000.0, 100_000.0]), p, changed)
    assert n == 1 and changed[0] == 0 and rows[0, C.LEVEL] == 3 and rows[1, C.LEVEL] == 0
