"""Alert text: escaping and the 4096 split (property-tested against the fake Bot API's HTML parser), formats."""
from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.alerts import formats as F
from engine.alerts.cascade_live import CascadeTracker
from engine.signals import Cascade, Heartbeat, Liquidation, SignalBase, Volatility
from tests.fakes.botapi import html_visible_text

pytestmark = pytest.mark.unit

text = st.text(st.characters(blacklist_categories=("Cs",)), max_size=300)


@pytest.mark.property
@given(text)
def test_escaped_text_always_parses_back_to_itself(s):
    assert html_visible_text(F.esc(s)) == s
    assert F.html_to_plain(F.esc(s)) == s


line = st.one_of(text.map(F.esc), text.map(lambda s: f"<b>{F.esc(s)}</b>"),
                 st.tuples(text, text).map(lambda t: f"<i>{F.esc(t[0])}</i> {F.esc(t[1])} <code>x</code>"),
                 st.integers(4000, 9000).map(lambda n: "<b>" + "é" * n + "</b>"),
                 st.integers(1000, 3000).map(lambda n: "😀" * n))


@pytest.mark.property
@settings(max_examples=150, deadline=None)
@given(st.lists(line, min_size=1, max_size=30), st.sampled_from([F.MAX_MESSAGE, 100, 7]))
def test_split_parts_are_valid_short_and_lose_nothing(lines, limit):
    html = "\n".join(lines)
    parts = F.split_html(html, limit)
    for p in parts:
        visible = html_visible_text(p)        # raises if a part is not well-formed HTML
        assert F.utf16_len(visible) <= limit
        assert visible.strip()
    joined = "".join(html_visible_text(p) for p in parts)
    whole = html_visible_text(html)
    assert joined.replace("\n", "") == "".join(whole.split("\n")) or \
        "".join(joined.split()) == "".join(whole.split())   # blank-only parts are dropped


def test_short_message_is_one_part_unchanged():
    assert F.split_html("<b>a</b>\nb") == ["<b>a</b>\nb"]


def liq(**kw):
    d = dict(asset="BTC", venue="binance", symbol="BTCUSDT", side="long", price=50_000.0, qty=2.5,
             notional_usd=125_000.0, size_class="large", ts_exchange=1_700_000_000_000_000_000)
    d.update(kw)
    return Liquidation(**d)


def test_single_liquidation_has_origin_content():
    t = html_visible_text(F.render_liquidation(liq()))
    for piece in ("BTCUSDT LIQUIDATION", "LONG position liquidated", "Value: $125,000", "Size: 2.5000 @ $50,000.00",
                  "Time: 22:13:20 UTC"):
        assert piece in t, (piece, t)


def test_hostile_fields_are_escaped():
    t = F.render_liquidation(liq(symbol="<script>&", venue="a<b"))
    assert "<script>" not in t and "&lt;script&gt;&amp;" in t
    html_visible_text(t)


def test_cascade_live_message_professional_alert_and_origin_cascade_lines():
    tr = CascadeTracker()
    t0 = 1_700_000_000_000_000_000
    for i, (side, venue) in enumerate([("long", "binance"), ("long", "bybit"), ("short", "okx")]):
        tr.on_liquidation(liq(side=side, venue=venue, ts_exchange=t0 + i * 10**9, price=50_000 - i * 100))
    [act] = tr.on_cascade(Cascade(asset="BTC", level="WARNING", score=6.2, count=7, notional_usd=1.2e6,
                                  long_usd=1e6, short_usd=2e5, price=49_700.0, ts_exchange=t0 + 3 * 10**9,
                                  factors={"velocity": 2.5, "acceleration": 1.5, "volume": 0.0}), now=0)
    t = html_visible_text(F.render_cascade_live(act.state))
    for piece in ("BTC LIQUIDATION CASCADE — WARNING (score 6.2/10", "7 liquidations in 30 seconds",
                  "Breakdown: 2 longs", "1 shorts", "Venues (3)", "Peak minute", "Factors: velocity 2.5, acceleration 1.5",
                  "Price: $50,000.00 → $49,700.00 (-0.60%)", "Potential price impact expected"):
        assert piece in t, (piece, t)
    assert "volume 0.0" not in t


class OddSignal(SignalBase, frozen=True, kw_only=True, tag="oi_explosion"):
    change_pct: float = 0.0
    venues_confirming: int = 0
    note: str = ""


@pytest.mark.parametrize("sig", [liq(), Volatility(asset="ETH", regime="high", previous_regime="normal",
                                                   realized={"1m": 0.9}, price=3000.0),
                                 Cascade(asset="SOL", level="CRITICAL", score=8.0, count=9),
                                 OddSignal(asset="BTC", change_pct=18.5, venues_confirming=2, note="<x>"),
                                 Heartbeat(asset="compute:0")])
def test_every_kind_renders_valid_html(sig):
    html = F.render_signal(sig)
    assert html_visible_text(html).strip()
    if isinstance(sig, OddSignal):
        assert "OI EXPLOSION" in html and "change pct: 18.5" in html and "&lt;x&gt;" in html


def test_funding_alert_names_its_momentum_basis():
    from engine.signals import FundingPressure
    base = dict(asset="BTC", direction="positive", rate=0.0005, interval_h=8.0, annualised_pct=54.75,
                value=0.0002, threshold=0.0001, window_s=300.0)
    change = F.render_signal(FundingPressure(event="momentum", basis="change", **base))
    spread = F.render_signal(FundingPressure(event="momentum", basis="predicted_vs_current", **base))
    old = F.render_signal(FundingPressure(event="momentum", **base))
    extreme = F.render_signal(FundingPressure(event="extreme", **{**base, "direction": "negative", "rate": -0.001}))
    assert "momentum (change over 5 min), longs pay" in change
    assert "momentum (spread), longs pay" in spread
    assert "momentum, longs pay" in old                     # a message from before the field
    assert "extreme, shorts pay" in extreme and "-0.1000% per 8 h" in extreme
    assert "+0.0500% per 8 h (+54.75% annually)" in change and "vs threshold 0.0100%" in change
