"""Instrument registry: ids, assets, cross-process visibility, additions while running."""
from __future__ import annotations

import multiprocessing as mp

import pytest

from engine.instruments import Market, Registry, canonical_asset, registry_segment
from engine.record import Venue

pytestmark = pytest.mark.unit


@pytest.fixture
def registry(namespace):
    r = Registry.open(registry_segment(namespace), 64, 32)
    yield r
    r.close()


def test_ids_are_dense_and_add_is_idempotent(registry):
    a = registry.add(Venue.BINANCE, "BTCUSDT", "BTC", tick_size=0.1)
    b = registry.add(Venue.BINANCE, "ETHUSDT", "ETH")
    assert (a, b) == (0, 1)
    assert registry.add(Venue.BINANCE, "BTCUSDT", "BTC") == a
    inst = registry.get(a)
    assert (inst.symbol, inst.asset, inst.venue, inst.tick_size, inst.market) == ("BTCUSDT", "BTC", Venue.BINANCE, 0.1,
                                                                                   Market.PERP_LINEAR)


def test_same_asset_across_venues_shares_an_asset_id(registry):
    a = registry.add(Venue.BINANCE, "BTCUSDT", "BTC")
    b = registry.add(Venue.BYBIT, "BTCUSDT", "BTC")
    c = registry.add(Venue.OKX, "BTC-USD-SWAP", "BTC", market=Market.PERP_INVERSE, contract_size=100.0, quote="USD")
    ids = {registry.get(i).asset_id for i in (a, b, c)}
    assert len(ids) == 1 and registry.n_assets == 1
    assert list(registry.asset_of()) == [0, 0, 0]
    assert registry.lookup(Venue.OKX, "BTC-USD-SWAP") == c and registry.lookup(Venue.OKX, "nope") is None


def test_table_full_is_a_clear_error(namespace):
    r = Registry.open(registry_segment(namespace) + "small", 2, 2)
    r.add(1, "A", "A")
    r.add(1, "B", "B")
    with pytest.raises(RuntimeError, match="full"):
        r.add(1, "C", "A")
    r.close()


def _adder(name: str, venue: int, n: int, q) -> None:
    r = Registry.open(name)
    q.put([r.add(venue, f"S{i}USDT", f"S{i}") for i in range(n)])
    r.close()


@pytest.mark.process
def test_concurrent_adders_in_other_processes_are_visible_here(registry):
    ctx = mp.get_context("spawn")
    q = ctx.Queue()
    procs = [ctx.Process(target=_adder, args=(registry.name, v, 20, q)) for v in (Venue.BINANCE, Venue.BYBIT)]
    for p in procs:
        p.start()
    ids = [q.get(timeout=30) for _ in procs]
    for p in procs:
        p.join(10)
    assert sorted(ids[0] + ids[1]) == list(range(40)), "every id assigned exactly once"
    assert len(registry) == 40 and registry.n_assets == 20
    assert registry.get(registry.lookup(Venue.BYBIT, "S7USDT")).asset == "S7"


@pytest.mark.parametrize("base, expected", [("BTC", ("BTC", 1.0)), ("1000PEPE", ("PEPE", 1000.0)),
                                            ("kPEPE", ("PEPE", 1000.0)), ("1000000MOG", ("MOG", 1e6)),
                                            ("1INCH", ("1INCH", 1.0))])
def test_canonical_asset(base, expected):
    assert canonical_asset(base) == expected
