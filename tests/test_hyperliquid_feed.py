"""The feed actor with the Hyperliquid venue, in its own process, against the simulator: records reach the ring."""
from __future__ import annotations

import shutil
import tempfile

import pytest

from engine.actor_table import ActorTable, actor_table_segment
from engine.record import Kind
from engine.ring import RingReader
from engine.simulator.runner import start_in_thread
from tests.conftest import wait_until
from tests.harness.feeds import feed_config, open_registry, open_ring, spawn_feed

pytestmark = pytest.mark.process


def test_feed_actor_streams_hyperliquid_into_the_ring(namespace):
    run = tempfile.mkdtemp(prefix="ut-hl-feed-", dir="/tmp")
    want = {Kind.TRADE, Kind.BOOK_TOP, Kind.MARK, Kind.OPEN_INTEREST}
    with start_in_thread(venues=["hyperliquid"], rate=400.0, liquidation_share=0.3, seed=5) as sim:
        ep = sim.endpoints("hyperliquid")
        text = feed_config(namespace, run, "hyperliquid", {"ws": ep["ws_urls"]["ws"]}, ep["rest_url"],
                           symbols=["BTC", "ETH", "SOL"], streams=["trades", "book", "mark", "oi"])
        ring, reg = open_ring(namespace, "hyperliquid"), open_registry(namespace)
        table = ActorTable.open(actor_table_segment(namespace))
        proc = spawn_feed(text, "hyperliquid")
        try:
            reader = RingReader(ring, "test", start="earliest")
            seen: dict[int, set[int]] = {}

            def every_coin_has_everything() -> bool:
                recs, _ = reader.poll()
                for r in recs:
                    seen.setdefault(int(r["instrument"]), set()).add(int(r["kind"]))
                return len(seen) == 3 and all(want <= kinds for kinds in seen.values())

            wait_until(every_coin_has_everything, 15, 0.05, "trades, books, marks and OI of BTC, ETH and SOL")
            assert all(Kind.LIQUIDATION not in kinds for kinds in seen.values())
            rows = {bytes(r[4]).decode(): r for r in reg.rows[:3]}
            assert set(rows) == {"BTC", "ETH", "SOL"}

            def published():
                rows = [r for r in table.snapshot() if r["name"] == "feed:hyperliquid"]
                c = rows[0]["counters"] if rows else {}
                # a first publish may be read half-named: wait for every counter this test reads
                return c if c.get("frames") and {"malformed", "unknown", "events_liquidation"} <= set(c) else None

            c = wait_until(published, 5, message="feed counters")
            assert c["malformed"] == 0 and c["unknown"] == 0 and c["events_liquidation"] == 0
            proc.terminate()
            proc.join(15)
            assert proc.exitcode == 0
        finally:
            if proc.is_alive():
                proc.kill()
                proc.join(5)
            for obj in (ring, reg, table):
                obj.close()
            shutil.rmtree(run, ignore_errors=True)
