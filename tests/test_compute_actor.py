"""The compute actor in its own process: ring in, signals out."""
from __future__ import annotations

import multiprocessing
import shutil
import tempfile

import pytest

from engine.bus import Subscriber
from engine.config import loads
from engine.instruments import Registry, registry_segment
from engine.record import Flag, Kind, Side, Venue
from engine.ring import Ring, ring_segment
from engine.state import StateTable
from tests.conftest import wait_until

pytestmark = pytest.mark.process

T0 = 1_700_000_000_000_000_000
RECV_LAG = 5_000_000
CONFIG = """
[engine]
namespace = "{ns}"
run_dir = "{run}"
ring_capacity = 4096
max_instruments = 64
max_assets = 16
park_timeout_ms = 2.0
[bus]
endpoint = "ipc://{run}/bus.sock"
heartbeat_interval_s = 0.2
[venues.binance]
symbols = ["BTCUSDT", "ETHUSDT"]
[venues.bybit]
enabled = false
[venues.okx]
enabled = false
[venues.gate]
enabled = false
[venues.bitget]
enabled = false
[venues.hyperliquid]
enabled = false
[detectors.liquidations]
enabled = {liq}
[detectors.cascade]
enabled = {cascade}
publish_interval_s = 1000.0
"""


def _run_actor(text: str) -> None:
    from actors.compute import ComputeActor
    from engine.config import loads as load_cfg
    ComputeActor(load_cfg(text), 0).start()


@pytest.fixture
def world(namespace):
    """Start a compute actor; yield (cfg, ring, registry, subscriber, ids)."""
    run = tempfile.mkdtemp(prefix="ut-", dir="/tmp")
    procs, closing = [], []

    def start(liq: bool = True, cascade: bool = True):
        text = CONFIG.format(ns=namespace, run=run, liq=str(liq).lower(), cascade=str(cascade).lower())
        cfg = loads(text)
        reg = Registry.open(registry_segment(namespace), 64, 16)
        ids = {"BTC": reg.add(Venue.BINANCE, "BTCUSDT", "BTC"), "ETH": reg.add(Venue.BINANCE, "ETHUSDT", "ETH")}
        ring = Ring.open(ring_segment(namespace, "binance"), 4096)
        ring.become_producer()
        proc = multiprocessing.get_context("spawn").Process(target=_run_actor, args=(text,), daemon=True)
        proc.start()
        procs.append(proc)
        sub = Subscriber(cfg.bus.endpoint)
        closing.extend([sub, ring, reg])
        wait_until(lambda: sub.recv(timeout_ms=100), timeout=30, message="first heartbeat")  # actor polling
        return cfg, ring, reg, sub, ids

    yield start
    for p in procs:
        p.terminate()
        p.join(10)
    for obj in closing:
        obj.close()
    shutil.rmtree(run, ignore_errors=True)


def liq(ring, iid, t, side, usd, flags=0):
    ring.write_tuple((Kind.LIQUIDATION, Venue.BINANCE, side, flags, iid, t, t + RECV_LAG,
                      100.0, usd / 100.0, usd, 0.0, 0.0))


def trade(ring, iid, t, price=100.0):
    ring.write_tuple((Kind.TRADE, Venue.BINANCE, Side.BUY, 0, iid, t, t + RECV_LAG, price, 1.0, price, 0.0, 0.0))


def collect(sub, until, timeout=20.0):
    """Receive signals until ``until(signals)`` holds."""
    got = []

    def step():
        r = sub.recv(timeout_ms=50)
        if r is not None:
            got.append(r.signal)
        return until(got)

    wait_until(step, timeout=timeout, interval=0, message="signals")
    return got


def of(kind, signals, asset=None):
    return [s for s in signals if s.__struct_config__.tag == kind and (asset is None or s.asset == asset)]


def test_liquidations_cascade_volatility_and_heartbeats(world, namespace):
    cfg, ring, reg, sub, ids = world()
    eth = ids["ETH"]
    sizes = [(20_000, Side.LONG, 0, "retail"), (60_000, Side.SHORT, Flag.CAPPED, "large"),
             (300_000, Side.LONG, 0, "whale"), (1_200_000, Side.SHORT, 0, "institutional")]
    for k, (usd, side, flags, _) in enumerate(sizes):
        liq(ring, eth, T0 + k * 120_000_000_000, side, usd, flags)  # 2 min apart: no ETH cascade
    btc = ids["BTC"]
    for k in range(12):
        liq(ring, btc, T0 + 600_000_000_000 + k * 100_000_000, Side.LONG, 200_000)
    for s in range(2, 50):
        trade(ring, btc, T0 + 600_000_000_000 + s * 1_000_000_000)
    got = collect(sub, lambda g: any(c.level == "NONE" for c in of("cascade", g, "BTC"))
                  and len(of("liquidation", g)) == 16 and of("volatility", g, "BTC")
                  and of("heartbeat", g))

    eth_liqs = of("liquidation", got, "ETH")
    assert [s.size_class for s in eth_liqs] == [c for *_, c in sizes]
    assert [s.side for s in eth_liqs] == ["long", "short", "long", "short"]
    assert [s.capped for s in eth_liqs] == [False, True, False, False]
    for k, s in enumerate(eth_liqs):
        assert (s.ts_exchange, s.ts_recv) == (T0 + k * 120_000_000_000, T0 + k * 120_000_000_000 + RECV_LAG)
        assert s.ts_computed > 0 and s.symbol == "ETHUSDT" and s.venue == "binance"
        assert s.notional_usd == sizes[k][0]

    changes = [c for c in of("cascade", got, "BTC") if c.level != c.previous_level]
    levels = [c.level for c in changes]
    assert levels[:3] == ["WATCH", "WARNING", "CRITICAL"]
    assert levels[-1] == "NONE"
    ranks = ["NONE", "WATCH", "WARNING", "CRITICAL"]
    assert all(ranks.index(x) > ranks.index(y) for x, y in zip(levels[3:], levels[4:])) or len(levels) < 5
    critical = changes[2]
    assert critical.count >= 5 and critical.long_usd == critical.notional_usd > 0
    assert set(critical.velocity_usd_s) == {"1s", "5s", "20s", "60s"}
    assert abs(sum(critical.factors.values()) - critical.score) < 1e-6
    assert all(ranks.index(c.level) >= 1 for c in changes[:3])

    vol = of("volatility", got, "BTC")[0]
    assert vol.previous_regime == "normal" and vol.regime == "dormant"  # a flat price
    assert len(of("heartbeat", got)) >= 1

    table = StateTable.attach(namespace)
    row = wait_until(lambda: (r := table.read_asset(reg.asset_id("BTC")))["liq_1h"]["long_n"] == 12 and r,
                     message="state table row")
    assert row["level"] == "NONE" and row["regime"] == "dormant"
    table.close()


def test_disabled_detectors_publish_nothing(world, namespace):
    cfg, ring, reg, sub, ids = world(liq=False, cascade=False)
    for k in range(12):
        liq(ring, ids["BTC"], T0 + k * 100_000_000, Side.SHORT, 500_000)
    table = StateTable.attach(namespace)
    wait_until(lambda: table.read_asset(reg.asset_id("BTC"))["liq_1h"]["short_n"] == 12, message="processed")
    got = collect(sub, lambda g: len(of("heartbeat", g)) >= 2)
    assert of("liquidation", got) == [] and of("cascade", got) == []
    assert table.read_asset(reg.asset_id("BTC"))["level"] == "NONE"
    table.close()
