"""Alert policy: cooldowns, escalation, cascade end, liquidation size filter; console text."""
from __future__ import annotations

import pytest

from engine.alerting import Dedup, format_console
from engine.signals import Cascade, Liquidation

pytestmark = pytest.mark.unit


def casc(level, score=5.0, asset="BTC"):
    return Cascade(asset=asset, level=level, score=score, count=7, notional_usd=1.2e6, long_usd=1e6, short_usd=2e5)


def liq(usd, cls="large", side="long"):
    return Liquidation(asset="BTC", symbol="BTCUSDT", venue="binance", side=side, price=50_000.0, qty=usd / 5e4,
                       notional_usd=usd, size_class=cls)


def test_cascade_alerts_on_start_rise_and_end_only():
    d = Dedup(cooldown_s=60)
    seq = [("WATCH", 0), ("WATCH", 1), ("WARNING", 2), ("WATCH", 3), ("CRITICAL", 4), ("CRITICAL", 5), ("NONE", 6)]
    out = [(lvl, d.decide(casc(lvl), now=t)) for lvl, t in seq]
    assert [lvl for lvl, dec in out if dec.send] == ["WATCH", "WARNING", "CRITICAL", "NONE"]
    assert out[-1][1].reason == "cascade ended"


def test_cascade_same_level_realerts_after_cooldown_with_suppressed_count():
    d = Dedup(cooldown_s=10)
    assert d.decide(casc("WARNING"), now=0).send
    assert not d.decide(casc("WARNING"), now=5).send
    again = d.decide(casc("WARNING"), now=11)
    assert again.send and again.reason == "still elevated after cooldown" and again.suppressed_before == 1


def test_cascade_none_without_prior_alert_is_silent():
    assert not Dedup().decide(casc("NONE"), now=0).send


def test_liquidations_below_alert_size_are_not_alerts():
    assert not Dedup().decide(liq(5_000, "retail"), now=0).send


def test_liquidation_cooldown_is_broken_by_a_bigger_one():
    d = Dedup(cooldown_s=60, extend_factor=1.5)
    assert d.decide(liq(200_000), now=0).send
    assert not d.decide(liq(250_000), now=1).send
    assert d.decide(liq(400_000), now=2).reason == "bigger than last alert"
    assert d.decide(liq(200_000, side="short"), now=3).send  # other side, own key


def test_console_text_keeps_the_existing_bots_content():
    text = format_console(liq(125_000))
    for piece in ("BTCUSDT LIQUIDATION", "LONG position liquidated", "$125,000", "2.5000 @ $50,000.00", "Time:"):
        assert piece in text
    c = format_console(casc("WARNING"))
    for piece in ("BTC LIQUIDATION CASCADE", "WARNING", "7 liquidations in 30 seconds", "$1,200,000"):
        assert piece in c
