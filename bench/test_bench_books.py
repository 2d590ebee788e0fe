"""pytest-benchmark: cost of applying one depth delta to a synced book (engine/books.py).

The deltas are synthetic but shaped like Binance ``depth@100ms`` diffs: a
1000-level REST snapshot, then diffs of a few levels each near the top (sizes
changed, levels removed and re-added), chained by ``pu``. Run with
``pytest bench/test_bench_books.py -m bench --benchmark-enable``.
"""
from __future__ import annotations

import random

import pytest

from engine.books import BookSet, pu_chain
from engine.record import Venue

pytestmark = pytest.mark.bench

DELTAS = 2000


def _deltas(n_levels_per_delta: int, seed: int = 1):
    rng = random.Random(seed)
    out, uid = [], 1000
    for _ in range(DELTAS):
        bids = [(round(100.0 - 0.01 * rng.randint(0, 200), 2), rng.choice((0.0, rng.uniform(0.1, 5.0))))
                for _ in range(n_levels_per_delta)]
        asks = [(round(100.01 + 0.01 * rng.randint(0, 200), 2), rng.choice((0.0, rng.uniform(0.1, 5.0))))
                for _ in range(n_levels_per_delta)]
        out.append((uid + 1, uid + 3, uid, bids, asks))
        uid += 3
    return out


def _book(depth_interval_s: float):
    bs = BookSet(Venue.BINANCE, pu_chain, depth_interval_s=depth_interval_s)
    bs.snapshot("BTCUSDT", 0, 1000, [(round(100.0 - 0.01 * i, 2), 1.0) for i in range(1000)],
                [(round(100.01 + 0.01 * i, 2), 1.0) for i in range(1000)], 1, 1, [])
    return bs


def _apply_all(bs, deltas):
    book = bs.book("BTCUSDT")
    book.last_id = 1000   # replay the same chain every round
    out: list = []
    delta = bs.delta
    for first, last, prev, bids, asks in deltas:
        delta("BTCUSDT", 0, first, last, prev, bids, asks, 1, 1, out)
        out.clear()
    assert book.synced


@pytest.mark.parametrize("levels", [2, 10])
def test_apply_delta(benchmark, levels):
    """Per-delta cost = reported time / DELTAS (depth bands at most once a second, as deployed)."""
    bs, deltas = _book(1.0), _deltas(levels)
    benchmark(_apply_all, bs, deltas)


def test_apply_delta_with_depth_bands_every_time(benchmark):
    """Worst case: the four depth bands recomputed over ~1000 levels a side on every delta."""
    bs, deltas = _book(0.0), _deltas(2)
    benchmark(_apply_all, bs, deltas)
