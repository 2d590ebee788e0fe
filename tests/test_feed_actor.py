"""The feed actor in its own process against the simulator: symbols, registry, ring, counters, stop."""
from __future__ import annotations

import shutil
import socket
import tempfile
import time
from collections import Counter

import pytest

from engine.actor_table import STOPPED, ActorTable, actor_table_segment
from engine.record import Kind, Venue
from engine.ring import RingReader
from engine.simulator.runner import start_in_thread
from tests.conftest import wait_until
from tests.harness.feeds import MARGIN_OI_OFF, feed_config, open_registry, open_ring, spawn_feed
from tests.harness.toml import toml_table

pytestmark = pytest.mark.process

SIM_SYMBOLS = ["BTCUSDT", "ETHUSDT", "SOLUSDT", "DOGEUSDT"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def sim():
    with start_in_thread(symbols=SIM_SYMBOLS, rate=400.0, venues=["binance"], seed=3,
                         first_cascade_after_s=1e9) as handle:
        yield handle


@pytest.fixture
def feed(namespace, sim):
    """Start a feed actor process; yield a starter returning (proc, ring reader, registry, actor table)."""
    run = tempfile.mkdtemp(prefix="ut-feed-", dir="/tmp")
    procs, closing = [], []

    def start(symbols=("BTCUSDT", "ETHUSDT"), rest=None, resolve=3600.0):
        ep = sim.endpoints("binance")
        ws = ep["ws_urls"]["market"].rsplit("/", 1)[0]
        text = feed_config(namespace, run, "binance", {"public": f"{ws}/public", "market": f"{ws}/market"},
                           rest or ep["rest_url"], toml_table("supervisor", heartbeat_timeout_ms=3000) + MARGIN_OI_OFF,
                           symbols=symbols, fallback_symbols=["BTCUSDT"], oi_poll_interval_s=0.5,
                           oi_tail_interval_s=1.0, oi_hot_symbols=1, resolve_interval_s=resolve, stale_after_s=60.0)
        ring, reg = open_ring(namespace, "binance"), open_registry(namespace)
        table = ActorTable.open(actor_table_segment(namespace))
        closing.extend([ring, reg, table])
        procs.append(proc := spawn_feed(text, "binance"))
        reader = RingReader(ring, "test", start="earliest")
        return proc, reader, reg, table

    yield start
    for p in procs:
        if p.is_alive():
            p.terminate()
        p.join(10)
    for obj in closing:
        obj.close()
    shutil.rmtree(run, ignore_errors=True)


class Drain:
    """Accumulate ring records by (kind, instrument)."""

    def __init__(self, reader: RingReader):
        self.reader = reader
        self.seen: Counter = Counter()
        self.oi_usd: list[float] = []

    def poll(self) -> Counter:
        recs, _ = self.reader.poll()
        for r in recs:
            self.seen[int(r["kind"]), int(r["instrument"])] += 1
            if r["kind"] == Kind.OPEN_INTEREST:
                self.oi_usd.append(float(r["notional"]))
        return self.seen

    def kinds_of(self, iid: int) -> set[int]:
        return {k for k, i in self.seen if i == iid}


def counters(table: ActorTable) -> dict:
    rows = [r for r in table.snapshot() if r["name"] == "feed:binance"]
    return rows[0]["counters"] if rows else {}


def stop_cleanly(proc, table) -> None:
    proc.terminate()   # SIGTERM: the actor's stop path
    proc.join(15)
    assert proc.exitcode == 0
    row = next(r for r in table.snapshot(counters=False) if r["name"] == "feed:binance")
    assert row["state"] == STOPPED


def test_explicit_symbols_with_exchange_info_reach_the_ring_and_stop_cleanly(feed):
    proc, reader, reg, table = feed()
    wait_until(lambda: reg.lookup(Venue.BINANCE, "ETHUSDT") is not None, 30, message="registration")
    btc = reg.get(reg.lookup(Venue.BINANCE, "BTCUSDT"))
    assert (btc.asset, btc.quote, btc.tick_size) == ("BTC", "USDT", 0.1)   # tick from exchangeInfo
    assert reg.lookup(Venue.BINANCE, "SOLUSDT") is None                     # not configured
    drain = Drain(reader)
    wanted = {Kind.TRADE, Kind.BOOK_TOP, Kind.MARK, Kind.OPEN_INTEREST}
    wait_until(lambda: drain.poll() and wanted <= drain.kinds_of(btc.id), 30, message="every kind for BTC")
    # polls before the first trade/mark have no price yet (0 USD); later ones are valued at the last price
    wait_until(lambda: drain.poll() is not None and any(usd > 0 for usd in drain.oi_usd), 15, message="OI in USD")
    c = wait_until(lambda: (c := counters(table)).get("frames", 0) > 0 and c.get("rest_requests", 0) >= 3 and c,
                   15, message="published counters")
    assert c["symbols"] == 2 and c["connections"] >= 2 and c["malformed"] == 0
    assert c["rest_rate_limited"] == 0 and c["rest_weight_used"] >= c["rest_requests"]
    assert (c["oi_hot_interval_s"], c["oi_tail_interval_s"]) == (0.5, 1.0)
    stop_cleanly(proc, table)


def test_registration_without_exchange_info_falls_back_to_the_symbol(feed):
    dead = f"http://127.0.0.1:{free_port()}"     # nothing listens: every REST call is refused
    proc, reader, reg, table = feed(rest=dead)
    wait_until(lambda: reg.lookup(Venue.BINANCE, "ETHUSDT") is not None, 40, message="registration")
    eth = reg.get(reg.lookup(Venue.BINANCE, "ETHUSDT"))
    assert (eth.asset, eth.quote, eth.tick_size) == ("ETH", "USDT", 0.0)   # no metadata, base from the symbol
    drain = Drain(reader)
    wait_until(lambda: drain.poll() and Kind.TRADE in drain.kinds_of(eth.id), 30, message="ETH trades")
    wait_until(lambda: counters(table).get("rest_errors", 0) >= 3, 15, message="rest errors counted")
    stop_cleanly(proc, table)


def test_top_n_on_the_simulator_picks_by_volume(feed):
    proc, reader, reg, table = feed(symbols="top:3")
    wait_until(lambda: len(reg) == 3, 30, message="top:3 registered")
    time.sleep(0.5)
    # by 24 h volume; the quarterly, USDC and settling listings have more and are filtered out
    assert {reg.get(i).symbol for i in range(len(reg))} == {"BTCUSDT", "ETHUSDT", "SOLUSDT"}
    c = wait_until(lambda: (c := counters(table)).get("symbols") == 3 and c, 15, message="counters")
    assert c["rest_weight_used"] >= 1 + 40      # exchangeInfo + all-symbol tickers, one budget
    assert c["oi_hot_interval_s"] == 0.5         # the hot tier (top 1) keeps its configured period
    stop_cleanly(proc, table)


def test_all_adds_new_listings_at_run_time(feed, sim):
    listings = {"n": 0}
    real = sim.sim.server.rest_override

    def override(venue, path):
        if venue.name != "binance" or not path.startswith("/fapi/v1/exchangeInfo"):
            return None
        listings["n"] += 1
        status, body = venue.rest(path)
        if listings["n"] <= 1:
            body = {**body, "symbols": [s for s in body["symbols"] if s["symbol"] != "DOGEUSDT"]}
        return status, body

    sim.call(setattr, sim.sim.server, "rest_override", override)
    try:
        proc, reader, reg, table = feed(symbols="all", resolve=1.0)
        wait_until(lambda: reg.lookup(Venue.BINANCE, "SOLUSDT") is not None, 30, message="all registered")
        assert reg.lookup(Venue.BINANCE, "DOGEUSDT") is None
        doge = wait_until(lambda: reg.lookup(Venue.BINANCE, "DOGEUSDT"), 20, message="the new listing")
        drain = Drain(reader)
        wait_until(lambda: drain.poll() and Kind.TRADE in drain.kinds_of(doge), 30, message="trades of the new listing")
        c = wait_until(lambda: (c := counters(table)).get("symbols") == 4 and c, 10, message="counters see 4 symbols")
        assert c["connections"] >= 4        # the new listing runs on sockets of its own
        assert {reg.get(i).symbol for i in range(len(reg))} == set(SIM_SYMBOLS)
        stop_cleanly(proc, table)
    finally:
        sim.call(setattr, sim.sim.server, "rest_override", real)
