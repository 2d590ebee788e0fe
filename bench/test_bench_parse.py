"""pytest-benchmark: msgspec parse + normalize versus stdlib json on real frames."""
from __future__ import annotations

import pytest

from bench.bench_parse import SHARED, load_frames, stdlib_parse
from engine.venues import binance

pytestmark = [pytest.mark.bench,
              pytest.mark.skipif(not SHARED.is_dir(), reason=f"shared capture data not found at {SHARED}")]


@pytest.fixture(scope="module")
def frames():
    groups = load_frames(5000)
    return [f for fs in groups.values() for f in fs]


def _run(fn, frames):
    out: list = []
    for f in frames:
        fn(f, 1, out)
        out.clear()


def test_msgspec_parse(benchmark, frames):
    parser = binance.Parser({"BTCUSDT": 0}.get)
    benchmark(_run, parser.parse, frames)


def test_stdlib_parse(benchmark, frames):
    ids = {"BTCUSDT": 0}
    benchmark(_run, lambda f, ts, out: stdlib_parse(f, ts, ids, out), frames)
