"""`undertow top` renders a known state (engine/dashboard.py)."""
from __future__ import annotations

import pytest
from rich.console import Console

from engine.bot.market import MarketView
from engine.dashboard import render
from engine.signals import Cascade, Liquidation
from tests.test_bot_known_market import NOW_NS, KnownMarket


@pytest.fixture
def market(namespace, tmp_path):
    m = KnownMarket(namespace, tmp_path)
    yield m
    m.close()


def test_top_renders_venues_assets_and_alerts(market):
    signals = [Liquidation(asset="BTC", venue="binance", side="long", price=50_000.0, qty=2.5,
                           notional_usd=125_000.0, ts_published=NOW_NS),
               Cascade(asset="BTC", level="WARNING", score=5.5, ts_published=NOW_NS)]
    view = MarketView(market.registry, market.table)
    console = Console(record=True, width=200)
    console.print(render(view, market.actors, signals, now_ns=NOW_NS,
                         oi_then={"BTC": 50_000_000.0}))
    out = console.export_text()
    assert "binance" in out and "up" in out and "bybit" in out and "down" in out
    assert "$50,000.00" in out and "5.50" in out and "WARNING" in out
    assert "+100.01%" in out                   # OI $100.01M now vs $50M then
    assert "cascade.BTC" in out and "liquidation.BTC" in out and "$125.00K" in out
    assert "ETH" in out and "n/a" in out       # no asset row computed for ETH: nothing invented
    # funding: the mean of the venues' rates per common interval (analytics.asset_funding_pct)
    assert "+0.0050%" in out                   # ETH: Binance 0.005 % per 8 h
    assert "+0.0000%" in out                   # BTC: (0.01 - 0.02 + 0.01) / 3
