"""Trade-flow detector costs (volume, cvd, whales): per event (batch of 1) and per batch of 1,000 records.

Run: ``.venv/bin/pytest bench/test_bench_flow.py -m bench --benchmark-enable -q``; a batch time / 1,000
is the cost per event. ``kernel`` calls the numba kernel alone; ``run`` is the detector's whole
``run()`` (early-out, kernel, signals). Streams: 30 instruments over 10 assets, ~55 % trades at ~5k
records/s of stream time, time always moving forward so windows roll as in a live run.
"""
from __future__ import annotations

import numpy as np
import pytest

from engine.detectors.cvd import CvdDetector
from engine.detectors.volume import VolumeDetector
from engine.detectors.whales import WhalesDetector
from engine.instruments import Market
from engine.kernels import flow
from engine.record import Kind
from tests.reference_flow import FakeRegistry, config_with, detector

pytestmark = pytest.mark.bench

N_INST, N_ASSETS = 30, 10
REG = [(1 + i // N_ASSETS, f"A{i % N_ASSETS}", f"A{i % N_ASSETS}", Market.SPOT if i >= 20 else 0)
       for i in range(N_INST)]
DETECTORS = {"volume": VolumeDetector, "cvd": CvdDetector, "whales": WhalesDetector}


def stream(n: int, seed: int = 1) -> np.ndarray:
    from bench.test_bench_kernels import stream as mixed
    recs = mixed(n, liq_share=0.0, seed=seed)
    recs["side"] = np.where(recs["side"] > 0, 1, -1)
    return recs


def advancing(recs):
    from bench.test_bench_kernels import advancing as adv
    return adv(recs)


def warmed(name: str):
    det, _ = detector(DETECTORS[name], config_with(whales=dict(min_trades=500)), FakeRegistry(REG))
    det.run(stream(200_000, seed=3))   # histories and baselines exist, as after a while live
    return det


@pytest.mark.parametrize("n", [1, 1000])
@pytest.mark.parametrize("name", list(DETECTORS))
def test_kernel(benchmark, name, n):
    det = warmed(name)
    base = stream(200_000, seed=3)
    recs = stream(n, seed=4)
    recs["ts_exchange"] += base["ts_exchange"][-1] - recs["ts_exchange"][0] + 1
    nxt = advancing(recs)
    benchmark(lambda: flow.drain(det._call, nxt(), det.events))


@pytest.mark.parametrize("n", [1, 1000])
@pytest.mark.parametrize("name", list(DETECTORS))
def test_run(benchmark, name, n):
    det = warmed(name)
    base = stream(200_000, seed=3)
    recs = stream(n, seed=4)
    recs["ts_exchange"] += base["ts_exchange"][-1] - recs["ts_exchange"][0] + 1
    nxt = advancing(recs)
    benchmark(lambda: det.run(nxt()))


@pytest.mark.parametrize("name", list(DETECTORS))
def test_run_without_trades(benchmark, name):
    """The early-out: a batch of 1,000 book tops."""
    det = warmed(name)
    recs = stream(1000, seed=5)
    recs["kind"] = Kind.BOOK_TOP
    benchmark(lambda: det.run(recs))
