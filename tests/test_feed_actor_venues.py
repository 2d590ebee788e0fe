"""The feed actor of every contract-quoting venue against its simulator: sizes from the instrument list reach the
parser (OKX ctVal, Gate quanto_multiplier, Bitget), so trades, liquidations, books, marks and OI land in the ring."""
from __future__ import annotations

import tempfile
from collections import Counter

import pytest

from engine.record import Kind, venue_id
from engine.ring import RingReader
from engine.simulator.runner import start_in_thread
from tests.conftest import wait_until
from tests.harness.feeds import BINANCE_OFF, feed_config, open_registry, open_ring, spawn_feed, stop_feed

pytestmark = pytest.mark.process


@pytest.mark.timeout(90)
@pytest.mark.parametrize("venue", ["okx", "gate", "bitget"])
def test_contract_venue_feed_reaches_the_ring(namespace, venue):
    run = tempfile.mkdtemp(prefix=f"ut-{venue}-feed-", dir="/tmp")
    with start_in_thread(rate=400.0, venues=[venue], seed=5, first_cascade_after_s=1e9,
                         liquidation_share=0.3) as sim:
        ep = sim.endpoints(venue)
        symbols = ep["symbols"][:2]
        ring, reg = open_ring(namespace, venue), open_registry(namespace)
        text = feed_config(namespace, run, venue, ep["ws_urls"], ep["rest_url"], BINANCE_OFF, symbols=symbols,
                           fallback_symbols=symbols, stale_after_s=60.0)
        proc = spawn_feed(text, venue)
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
            stop_feed(proc, ring, reg, run=run)
        assert proc.exitcode == 0
