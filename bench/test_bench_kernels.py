"""Kernel costs: per event (batch of 1) and per batch of 1,000 records.

Run: ``.venv/bin/pytest bench/test_bench_kernels.py -m bench --benchmark-enable -q``.
Divide a batch time by 1,000 for ns/event.
"""
from __future__ import annotations

import numpy as np
import pytest
from numba import njit

from engine.config import Config
from engine.instruments import Registry, registry_segment
from engine.kernels import BatchRunner, cascade, hawkes, velocity, volatility
from engine.kernels import columns as C
from engine.record import Kind, Side, empty_records

pytestmark = pytest.mark.bench

T0 = 1_700_000_000_000_000_000
N_INST, N_ASSETS = 30, 10
INST_ASSET = np.arange(N_INST, dtype=np.int64) % N_ASSETS
OWNED = np.ones(N_ASSETS, dtype=np.bool_)
SCRATCH = np.zeros((16, C.DAY_CHANNELS))
WHALE_USD = np.full(N_ASSETS, 500_000.0)


def stream(n: int, liq_share: float = 0.03, seed: int = 1) -> np.ndarray:
    """A mixed stream: trades and book tops, some marks and liquidations, ~10k records/s."""
    rng = np.random.default_rng(seed)
    recs = empty_records(n)
    kinds = rng.choice([Kind.TRADE, Kind.BOOK_TOP, Kind.MARK, Kind.LIQUIDATION], size=n,
                       p=[0.55, 0.40 - liq_share, 0.05, liq_share])
    recs["kind"] = kinds
    recs["venue"] = 1
    recs["instrument"] = rng.integers(0, N_INST, n)
    recs["ts_exchange"] = T0 + np.cumsum(rng.integers(0, 200_000, n))
    recs["ts_recv"] = recs["ts_exchange"] + 1_000_000
    recs["side"] = rng.choice([Side.LONG, Side.SHORT], n)
    recs["price"] = 100.0 * np.exp(np.cumsum(rng.normal(0, 1e-4, n)))
    recs["qty"] = rng.exponential(10.0, n)
    recs["notional"] = recs["price"] * recs["qty"] * np.where(kinds == Kind.LIQUIDATION, 500, 1)
    recs["aux"] = recs["price"] * 1.0001
    return recs


def liquidations(n):
    recs = stream(n, liq_share=0.0)
    recs["kind"] = Kind.LIQUIDATION
    return recs


def trades(n):
    recs = stream(n, liq_share=0.0)
    recs["kind"] = Kind.TRADE
    return recs


def advancing(recs):
    """Return a callable giving ``recs`` shifted forward in time on each call (time never runs backwards)."""
    span = int(recs["ts_exchange"][-1] - recs["ts_exchange"][0]) + 1
    state = {"k": 0}
    work = recs.copy()

    def next_batch():
        state["k"] += 1
        work["ts_exchange"] = recs["ts_exchange"] + state["k"] * span
        work["ts_recv"] = work["ts_exchange"] + 1_000_000
        return work
    return next_batch


def fresh_rows(n):
    rows = np.zeros((n, C.NCOL))
    rows[:, C.REGIME] = 2
    rows[:, C.REGIME_MULT] = 1.0
    return rows


@pytest.mark.parametrize("n", [1, 1000])
def test_velocity_kernel(benchmark, n):
    layout = velocity.VelocityLayout([1, 5, 20, 60], 30)
    inst, assets = velocity.VelocityRings(layout, N_INST), velocity.VelocityRings(layout, N_ASSETS)
    irows, arows = fresh_rows(N_INST), fresh_rows(N_ASSETS)
    nxt = advancing(liquidations(n))
    benchmark(lambda: velocity.update_batch(nxt(), INST_ASSET, OWNED, WHALE_USD, inst.as_tuple(), assets.as_tuple(),
                                            layout.widths, layout.slots, layout.windows_s, irows, arows, SCRATCH))


@pytest.mark.parametrize("n", [1000])
def test_velocity_kernel_dense(benchmark, n):
    """Liquidations ~60 ms apart: every fine bucket of the 60 s ring written, a new bucket every few events."""
    layout = velocity.VelocityLayout([1, 5, 20, 60], 30)
    inst, assets = velocity.VelocityRings(layout, N_INST), velocity.VelocityRings(layout, N_ASSETS)
    irows, arows = fresh_rows(N_INST), fresh_rows(N_ASSETS)
    recs = liquidations(n)
    recs["ts_exchange"] = T0 + np.arange(n) * 60_000_000
    nxt = advancing(recs)
    benchmark(lambda: velocity.update_batch(nxt(), INST_ASSET, OWNED, WHALE_USD, inst.as_tuple(), assets.as_tuple(),
                                            layout.widths, layout.slots, layout.windows_s, irows, arows, SCRATCH))


@pytest.mark.parametrize("n", [1, 1000])
def test_volatility_kernel(benchmark, n):
    cfg = Config().detectors.volatility
    state = volatility.VolatilityState(cfg.windows_s, N_INST)
    irows, arows = fresh_rows(N_INST), fresh_rows(N_ASSETS)
    asset_inst = np.argsort(INST_ASSET, kind="stable")
    asset_ptr = np.searchsorted(INST_ASSET[asset_inst], np.arange(N_ASSETS + 1))
    changed = np.zeros(n + 1, dtype=np.int64)
    recs = trades(n)
    recs["ts_exchange"] = T0 + np.arange(n) * 300_000_000 // max(1, n // 1000)  # seconds keep closing
    nxt = advancing(recs)
    bounds, mults = np.array(cfg.regime_bounds), np.array(cfg.regime_multipliers)
    benchmark(lambda: volatility.update_batch(nxt(), INST_ASSET, OWNED, state.as_tuple(), state.windows,
                                              asset_ptr, asset_inst, bounds, mults, irows, arows, SCRATCH, changed))


@pytest.mark.parametrize("n", [1, 1000])
def test_cascade_kernel(benchmark, n):
    p = cascade.cascade_params(Config().detectors.cascade, [1, 5, 20, 60], True)
    rng = np.random.default_rng(2)
    rows = fresh_rows(n)
    rows[:, C.CASCADE_SUMS] = rng.integers(0, 20, n)
    rows[:, C.VEL_USD + 1] = rng.exponential(1e5, n)
    rows[:, C.ACCEL_HEAD] = rng.normal(0, 3e4, n)
    single = np.full(n, 100_000.0)
    assets = np.arange(n, dtype=np.int64)
    changed = np.zeros(n, dtype=np.int64)
    benchmark(lambda: cascade.evaluate_batch(assets, rows, single, p, changed))


@pytest.mark.parametrize("n", [1, 1000])
def test_heat_kernel(benchmark, n):
    """Hawkes heat: one excitation per liquidation, then the decayed estimate (what the pipeline does)."""
    state = hawkes.new_state(N_ASSETS)
    nxt = advancing(liquidations(n))

    @njit
    def run(recs, state):
        h = 0.0
        for i in range(recs.shape[0]):
            a = recs[i]["instrument"] % state.shape[0]
            hawkes.excite(state, a, recs[i]["ts_exchange"], 10e9)
            h += hawkes.heat_of(hawkes.decayed(state, a, recs[i]["ts_exchange"], 10e9), 10.0, 0.01, 5.0)
        return h

    benchmark(lambda: run(nxt(), state))


@pytest.fixture
def runner():
    ns = "bench" + str(np.random.default_rng().integers(1 << 30))
    reg = Registry.open(registry_segment(ns), 64, 16)
    for i in range(N_INST):
        reg.add(1 + i // N_ASSETS, f"A{i % N_ASSETS}USDT", f"A{i % N_ASSETS}")
    r = BatchRunner(Config().detectors, reg)
    r.warm_up()
    yield r
    from engine import shm
    reg.close()
    shm.sweep(ns)


@pytest.mark.parametrize("n", [1, 1000])
def test_whole_compute_pass(benchmark, runner, n):
    """The fused pass the compute actor runs on each ring poll, on a realistic mix."""
    base = stream(max(n, 1000))
    nxt = advancing(base[:n])
    nxt()
    runner.run(base)  # fill windows so live keys are swept
    benchmark(lambda: runner.run(nxt()))
