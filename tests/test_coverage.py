"""Coverage signals from feed counters: connected share, honest (lower-bound) liquidation totals, missed estimate."""
from __future__ import annotations

import pytest

from engine.coverage import coverage_signals, uncapped_rate
from engine.signals import decode, encode

pytestmark = pytest.mark.unit


def row(venue, **counters):
    return {"name": f"feed:{venue}", "counters": counters}


def test_capped_venue_gets_a_missed_estimate_from_the_uncapped_rate():
    rows = [
        row("bybit", events_liquidation=300.0, liq_slots=100.0, frames=5000.0, connected_share=1.0),
        row("binance", events_liquidation=80.0, liq_slots=80.0, capped_liquidations=80.0, capped_slots=80.0,
            saturated_slots=20.0, saturation_share=0.25, frames=9000.0, connected_share=0.95, reconnects=1.0,
            book_resyncs=2.0, malformed=3.0),
        row("hyperliquid", frames=100.0, connected_share=1.0),
        {"name": "compute:0", "counters": {"records": 1.0}},
    ]
    assert uncapped_rate({r["name"][5:]: r["counters"] for r in rows[:3]}) == pytest.approx(3.0)
    sigs = {s.venue: s for s in coverage_signals(rows, no_liquidations=["hyperliquid"])}
    assert set(sigs) == {"binance", "bybit", "hyperliquid"}
    b = sigs["binance"]
    assert b.capped and b.liquidations == 80 and b.saturated_slots == 20
    assert (b.missed_low, b.missed_high) == (0.0, 40.0)       # 20 saturated slots x (3 per busy slot - 1 shown)
    assert (b.connected_share, b.reconnects, b.book_resyncs, b.malformed) == (0.95, 1, 2, 3)
    y = sigs["bybit"]
    assert not y.capped and y.missed_high == 0.0 and y.liquidations == 300
    h = sigs["hyperliquid"]
    assert not h.liquidations_available and h.liquidations == 0
    assert decode(encode(b)) == b and b.asset == "*"


def test_no_uncapped_venue_means_no_estimate():
    rows = [row("binance", events_liquidation=5.0, liq_slots=5.0, capped_liquidations=5.0, saturated_slots=2.0)]
    (b,) = coverage_signals(rows)
    assert b.capped and b.saturated_slots == 2 and b.missed_high == 0.0


def test_coverage_reaches_the_state_tables_venue_rows(namespace):
    """The figures of each venue's signal land in its venue row; a venue without an id is named, not written."""
    from engine.coverage import coverage_rows
    from engine.record import Venue
    from engine.state import StateTable
    rows = [row("binance", events_liquidation=80.0, events_trade=20.0, liq_slots=80.0, capped_liquidations=80.0,
                saturated_slots=20.0, saturation_share=0.25, connected_share=0.95, frames=9000.0),
            row("bybit", events_liquidation=300.0, liq_slots=100.0, connected_share=1.0),
            row("nowhere", frames=1.0)]
    ids, vrows, unknown = coverage_rows(coverage_signals(rows, no_liquidations=["bybit"]))
    assert sorted(ids.tolist()) == [Venue.BINANCE, Venue.BYBIT] and unknown == ["nowhere"]
    table = StateTable.open(namespace, 8, 4)
    try:
        assert table.coverage() == {}
        table.write("v", ids, vrows)
        cov = table.coverage()
        assert set(cov) == {"binance", "bybit"} and table.read_venue(Venue.OKX) is None
        b = cov["binance"]
        assert (b["connected_share"], b["liquidations"], b["events"], b["frames"]) == (0.95, 80.0, 100.0, 9000.0)
        assert b["capped"] and b["saturated_slots"] == 20.0 and b["missed_high"] == 40.0 and b["ts"] > 0
        assert not cov["bybit"]["liquidations_available"] and not cov["bybit"]["capped"]
        from engine.bot.status_cmds import _coverage_line
        assert _coverage_line(b) == (" | connected 95%, ≥ 80 liquidations (capped stream: 25% of slots saturated, "
                                     "≤ 40 missed)")
        assert _coverage_line(cov["bybit"]) == " | connected 100%, no liquidation stream"
    finally:
        table.close()
