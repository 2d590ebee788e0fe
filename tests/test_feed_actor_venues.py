"""The feed actor of every contract-quoting venue against its simulator: sizes from the instrument list reach the
parser (OKX ctVal, Gate quanto_multiplier, Bitget), so trades, liquidations, books, marks and OI land in the ring."""
from __future__ import annotations

import multiprocessing
import shutil
import tempfile
from collections import Counter

import pytest

from engine.instruments import Registry, registry_segment
from engine.record import Kind, venue_id
from engine.ring import Ring, RingReader, ring_segment
from engine.simulator.runner import start_in_thread
from tests.conftest import wait_until

pytestmark = pytest.mark.process

CONFIG = """
[engine]
namespace = "{ns}"
run_dir = "{run}"
ring_capacity = 65536
max_instruments = 64
max_assets = 32
[venues.binance]
enabled = false
[venues.{venue}]
ws_urls = {{ {urls} }}
rest_url = "{rest}"
symbols = {symbols}
fallback_symbols = {symbols}
stale_after_s = 60.0
"""


def _run_feed(text: str, venue: str) -> None:
    from actors.feed import FeedActor
    from engine.config import loads
    raise SystemExit(FeedActor(loads(text), venue).start())


@pytest.mark.timeout(90)
@pytest.mark.parametrize("venue", ["okx", "gate", "bitget"])
def test_contract_venue_feed_reaches_the_ring(namespace, venue):
    run = tempfile.mkdtemp(prefix=f"ut-{venue}-feed-", dir="/tmp")
    with start_in_thread(rate=400.0, venues=[venue], seed=5, first_cascade_after_s=1e9,
                         liquidation_share=0.3) as sim:
        ep = sim.endpoints(venue)
        urls = ", ".join(f'{k} = "{u}"' for k, u in ep["ws_urls"].items())
        symbols = "[" + ", ".join(f'"{s}"' for s in ep["symbols"][:2]) + "]"
        ring = Ring.open(ring_segment(namespace, venue), 65536)
        reg = Registry.open(registry_segment(namespace), 64, 32)
        text = CONFIG.format(ns=namespace, run=run, venue=venue, urls=urls, rest=ep["rest_url"], symbols=symbols)
        proc = multiprocessing.get_context("spawn").Process(target=_run_feed, args=(text, venue), daemon=True)
        proc.start()
        try:
            reader = RingReader(ring, "test", start="earliest")
            seen: Counter = Counter()

            def drain():
                recs, _ = reader.poll()
                for r in recs:
                    seen[int(r["kind"])] += 1
                    if r["kind"] in (Kind.TRADE, Kind.LIQUIDATION):
                        assert r["venue"] == venue_id(venue) and r["price"] > 0 and r["qty"] > 0
                        assert r["notional"] == pytest.approx(r["price"] * r["qty"], rel=1e-6)
                        assert r["notional"] < 1e8     # base units, not contracts times a wrong size
                return {Kind.TRADE, Kind.LIQUIDATION, Kind.BOOK_TOP, Kind.MARK} <= set(seen)

            wait_until(drain, 40, message=f"trades, liquidations, books and marks from {venue}")
        finally:
            proc.terminate()
            proc.join(15)
            for obj in (ring, reg):
                obj.close()
            shutil.rmtree(run, ignore_errors=True)
        assert proc.exitcode == 0
