"""The feed actor running the Bybit venue in its own process against the Bybit simulator:
"top:N" over the paginated listing and tickers, registration, every record kind in the ring, clean stop."""
from __future__ import annotations

import shutil
import tempfile
from collections import Counter

import pytest

from engine.actor_table import STOPPED, ActorTable, actor_table_segment
from engine.record import Kind, Side, Venue
from engine.ring import RingReader
from engine.simulator.runner import start_in_thread
from tests.conftest import wait_until
from tests.harness.feeds import MARGIN_OI_OFF, feed_config, open_registry, open_ring, spawn_feed

pytestmark = pytest.mark.process


@pytest.mark.timeout(90)
def test_bybit_feed_actor_top_n_reaches_the_ring_and_stops_cleanly(namespace):
    run = tempfile.mkdtemp(prefix="ut-bybit-feed-", dir="/tmp")
    with start_in_thread(rate=400.0, venues=["bybit"], seed=4, first_cascade_after_s=1e9,
                         liquidation_share=0.3) as sim:
        ep = sim.endpoints("bybit")
        ring, reg = open_ring(namespace, "bybit"), open_registry(namespace)
        table = ActorTable.open(actor_table_segment(namespace))
        text = feed_config(namespace, run, "bybit", {"linear": ep["ws_urls"]["linear"]}, ep["rest_url"], MARGIN_OI_OFF,
                           symbols="top:2", fallback_symbols=["BTCUSDT"], oi_poll_interval_s=0.5, stale_after_s=60.0)
        proc = spawn_feed(text, "bybit")
        try:
            reader = RingReader(ring, "test", start="earliest")
            wait_until(lambda: len(reg) == 2, 40, message="top:2 registered")
            # by 24 h turnover (the simulator ranks BTC, ETH, SOL)
            names = {reg.get(i).symbol: reg.get(i) for i in range(len(reg))}
            assert set(names) == {"BTCUSDT", "ETHUSDT"}
            btc = names["BTCUSDT"]
            assert (btc.asset, btc.quote, btc.tick_size) == ("BTC", "USDT", 0.1)   # from instruments-info
            seen: Counter = Counter()
            sides: set = set()

            def drain():
                recs, _ = reader.poll()
                for r in recs:
                    seen[int(r["kind"])] += 1
                    if r["kind"] == Kind.LIQUIDATION:
                        sides.add(int(r["side"]))
                    if r["kind"] in (Kind.TRADE, Kind.LIQUIDATION):
                        assert r["venue"] == Venue.BYBIT and r["price"] > 0 and r["qty"] > 0
                        assert r["notional"] == pytest.approx(r["price"] * r["qty"])
                wanted = {Kind.TRADE, Kind.LIQUIDATION, Kind.BOOK_TOP, Kind.MARK, Kind.OPEN_INTEREST}
                return wanted <= set(seen) and sides == {Side.LONG, Side.SHORT}

            wait_until(drain, 30, message="every kind from the Bybit feed")
            rows = [r for r in table.snapshot() if r["name"] == "feed:bybit"]
            c = rows[0]["counters"] if rows else {}
            assert c.get("malformed", 0) == 0 and c.get("unknown", 0) == 0
        finally:
            proc.terminate()   # SIGTERM: the actor's stop path
            proc.join(15)
            state = next((r["state"] for r in table.snapshot(counters=False) if r["name"] == "feed:bybit"), None)
            for obj in (ring, reg, table):
                obj.close()
            shutil.rmtree(run, ignore_errors=True)
        assert proc.exitcode == 0 and state == STOPPED
