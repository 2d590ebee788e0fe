"""Positioning detector costs (kernel + the detector's Python around it): per event and per batch of 1,000.

Run: ``.venv/bin/pytest bench/test_bench_positioning.py -m bench --benchmark-enable -q``.
Three streams per detector: its own kind only (worst case), a realistic mix where its kind is a
few % of the records, and a batch with none of its kind (the cheap early exit every batch pays).
Divide a 1,000-record time by 1,000 for the per-event cost.
"""
from __future__ import annotations

import numpy as np
import pytest

from engine.detectors.book import BookDetector
from engine.detectors.correlation import CorrelationDetector
from engine.detectors.funding import FundingDetector
from engine.detectors.open_interest import OpenInterestDetector
from engine.record import Kind, empty_records
from tests.reference_positioning import FakeRegistry, make_ctx

pytestmark = pytest.mark.bench

T0 = 1_700_000_000_000_000_000
VENUES, ASSETS = (1, 2, 3, 4, 5, 6), ("BTC", "ETH", "SOL", "XRP", "DOGE")
DETECTORS = {"open_interest": (OpenInterestDetector, Kind.OPEN_INTEREST), "funding": (FundingDetector, Kind.MARK),
             "book": (BookDetector, Kind.BOOK_DEPTH), "correlation": (CorrelationDetector, Kind.MARK)}


def _registry() -> FakeRegistry:
    reg = FakeRegistry()
    for v in VENUES:
        for a in ASSETS:
            reg.add(v, a + "USDT", a)
    return reg


def stream(n: int, kind: int, share: float, seed: int = 1, t0: int = T0) -> np.ndarray:
    """``n`` records over ~``n`` ms: ``share`` of them ``kind``, the rest trades."""
    rng = np.random.default_rng(seed)
    recs = empty_records(n)
    recs["kind"] = np.where(rng.random(n) < share, kind, Kind.TRADE)
    recs["instrument"] = rng.integers(0, len(VENUES) * len(ASSETS), n)
    recs["venue"] = 1 + recs["instrument"] // len(ASSETS)
    recs["ts_exchange"] = t0 + np.cumsum(rng.integers(0, 2_000_000, n))
    recs["ts_recv"] = recs["ts_exchange"]
    recs["price"] = 100.0 * np.exp(np.cumsum(rng.normal(0, 1e-4, n)))
    recs["qty"] = np.where(recs["kind"] == Kind.BOOK_DEPTH, 0.005, recs["price"] * (1 + rng.normal(0, 1e-4, n)))
    recs["notional"] = 1e8 * (1 + rng.normal(0, 1e-3, n))
    recs["aux"] = np.where(recs["kind"] == Kind.MARK, rng.normal(1e-4, 3e-5, n), rng.uniform(1e5, 2e5, n))
    recs["aux2"] = rng.uniform(1e5, 2e5, n)
    return recs


def _runner(name: str, batch: int, share: float):
    cls, kind = DETECTORS[name]
    det = cls(make_ctx(_registry()))
    warm = stream(20_000, kind, share, seed=2)
    for k in range(0, len(warm), 1000):   # compile and fill history
        det.run(warm[k:k + 1000])
    recs = stream(200 * batch, kind, share, seed=3, t0=int(warm["ts_exchange"][-1]) + 1)
    state = {"i": 0}

    def one() -> None:
        i = state["i"]
        if i + batch > len(recs):   # wrap: shift time forward so the stream keeps advancing
            recs["ts_exchange"] += recs["ts_exchange"][-1] - recs["ts_exchange"][0] + 1
            recs["ts_recv"] = recs["ts_exchange"]
            i = 0
        det.run(recs[i:i + batch])
        state["i"] = i + batch
    return one


@pytest.mark.parametrize("name", list(DETECTORS))
@pytest.mark.parametrize("batch,share", [(1, 1.0), (1000, 1.0), (1000, 0.05), (1000, 0.0)],
                         ids=["event", "batch1000-own-kind", "batch1000-5pct", "batch1000-none"])
def test_positioning_cost(benchmark, name, batch, share):
    benchmark(_runner(name, batch, share))
