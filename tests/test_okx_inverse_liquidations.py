"""OKX's ``liquidation-orders`` (instType SWAP) carries the inverse swaps too: the feed actor writes those of the
contracts its margin-OI poller registered (BTC-USD-SWAP: 100 USD contracts, ETH-USD-SWAP: 10), and the poller
keeps polling their open interest (they stay out of the feed's own symbols)."""
from __future__ import annotations

import tempfile

import pytest

from engine.record import Kind, Side, venue_id
from engine.ring import RingReader
from engine.simulator.okx import INVERSE_CT_VAL
from engine.simulator.runner import start_in_thread
from tests.conftest import wait_until
from tests.harness.feeds import BINANCE_OFF, feed_config, open_registry, open_ring, spawn_feed, stop_feed
from tests.harness.toml import toml_table

pytestmark = pytest.mark.process

INVERSE = {"BTC-USD-SWAP": "BTC", "ETH-USD-SWAP": "ETH"}


def _push_inverse_liquidations(venue, every: int, sent: list) -> None:
    """On the simulator's thread: every ``every``-th liquidation goes out as the inverse swap's; note each
    (instrument, contracts, price as pushed, long liquidated)."""
    as_inverse = venue._as_inverse

    def recorded(ev):
        hit = as_inverse(ev)
        if hit is not None:
            swap, sz = hit
            sent.append((swap.inst, int(sz), float(venue.insts[ev.symbol].px(ev.price)), ev.long_liquidated))
        return hit
    venue._as_inverse = recorded
    venue.inverse_liquidation_every = every


@pytest.mark.timeout(90)
def test_inverse_swap_liquidations_reach_the_ring_in_usd_contracts(namespace):
    run = tempfile.mkdtemp(prefix="ut-okx-inverse-", dir="/tmp")
    sent: list = []
    got: dict[str, list] = {s: [] for s in INVERSE}
    oi_polled: set[str] = set()
    usdt_liquidations = 0
    with start_in_thread(rate=400.0, venues=["okx"], seed=5, first_cascade_after_s=1e9,
                         liquidation_share=0.3) as sim:
        sim.call(_push_inverse_liquidations, sim.sim.venue("okx"), 2, sent)
        ep = sim.endpoints("okx")
        symbols = ["BTC-USDT-SWAP", "ETH-USDT-SWAP"]
        ring, reg = open_ring(namespace, "okx"), open_registry(namespace)
        margin = toml_table("margin_oi", assets=["BTC", "ETH"], interval_s=1.0)
        text = feed_config(namespace, run, "okx", ep["ws_urls"], ep["rest_url"], BINANCE_OFF + "\n" + margin,
                           symbols=symbols, fallback_symbols=symbols, stale_after_s=60.0, rest_weight_per_minute=6000)
        proc = spawn_feed(text, "okx")
        try:
            reader = RingReader(ring, "test", start="earliest")

            def drain():
                nonlocal usdt_liquidations
                recs, _ = reader.poll()
                for r in recs:
                    symbol = reg.get(int(r["instrument"])).symbol
                    if r["kind"] == Kind.LIQUIDATION and symbol in got:
                        assert r["venue"] == venue_id("okx")
                        got[symbol].append((reg.get(int(r["instrument"])), int(r["side"]), float(r["price"]),
                                            float(r["qty"]), float(r["notional"])))
                    elif r["kind"] == Kind.LIQUIDATION and symbol in symbols:
                        usdt_liquidations += 1
                    elif r["kind"] == Kind.OPEN_INTEREST and symbol in got:
                        oi_polled.add(symbol)
                return all(len(v) >= 3 for v in got.values()) and oi_polled == set(INVERSE) and usdt_liquidations
            wait_until(drain, 60, message="inverse-swap liquidations and OI of BTC and ETH, and USDT-swap liquidations")
        finally:
            stop_feed(proc, ring, reg, run=run)
        assert proc.exitcode == 0
    sent_by: dict[tuple, set[int]] = {}   # (instrument, price, long) -> contracts pushed so
    for inst, sz, px, long in sent:
        sent_by.setdefault((inst, px, long), set()).add(sz)
    for symbol, recs in got.items():
        asset, ct = INVERSE[symbol], INVERSE_CT_VAL[INVERSE[symbol]]
        assert ct == {"BTC": 100.0, "ETH": 10.0}[asset]
        for ins, side, price, qty, usd in recs:
            assert ins.asset == asset and ins.coin_margined and ins.settle == asset
            long = side == Side.LONG
            assert side in (Side.LONG, Side.SHORT)
            sizes = sent_by[(symbol, price, long)]   # the pushed liquidations with this price and side
            assert usd / ct in sizes, (symbol, usd, sizes)   # whole contracts x ctVal USD
            assert qty == pytest.approx(usd / price, rel=1e-12)
