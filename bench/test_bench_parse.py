"""pytest-benchmark: msgspec parse + normalize versus stdlib json on real frames, and every venue's parser on
the simulator's frames."""
from __future__ import annotations

import pytest

from bench.bench_parse import SHARED, SIM_SYMBOLS, load_frames, sim_frames, sim_parser, stdlib_parse
from engine import venues
from engine.venues import binance

pytestmark = pytest.mark.bench
needs_data = pytest.mark.skipif(not SHARED.is_dir(), reason=f"shared capture data not found at {SHARED}")
SIM_VENUES = ["binance", "bybit", "okx", "gate", "bitget", "hyperliquid"]


@pytest.fixture(scope="module")
def frames():
    groups = load_frames(5000)
    return [f for fs in groups.values() for f in fs]


def _run(fn, frames):
    out: list = []
    for f in frames:
        fn(f, 1, out)
        out.clear()


@needs_data
def test_msgspec_parse(benchmark, frames):
    parser = binance.Parser({"BTCUSDT": 0}.get)
    benchmark(_run, parser.parse, frames)


@needs_data
def test_stdlib_parse(benchmark, frames):
    ids = {"BTCUSDT": 0}
    benchmark(_run, lambda f, ts, out: stdlib_parse(f, ts, ids, out), frames)


@pytest.mark.parametrize("venue", SIM_VENUES)
def test_sim_parse(benchmark, venue):
    """One pass over 300 simulator steps of ``venue``'s frames that give records, a fresh parser each round."""
    groups, sim = sim_frames(venue, 300)
    frames = [f for fs in groups.values() for f in fs]
    symbols = sim.endpoints("127.0.0.1", 1).get("symbols") or SIM_SYMBOLS
    module = venues.load(venue)
    benchmark.pedantic(lambda parse: _run(parse, frames), setup=lambda: ((sim_parser(module, sim, symbols).parse,), {}),
                       rounds=10)
