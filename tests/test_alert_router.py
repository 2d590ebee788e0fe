"""Signal routing: one live message per cascade, the market report, tiers/budgets/quiet hours, no token in logs."""
from __future__ import annotations

import io
import logging
import time

import msgspec
import pytest

from engine.alerts.delivery import Delivery, DeliverySettings
from engine.alerts.outbox import Outbox
from engine.alerts.policy import ChatGate, QuietHours, tier_for
from engine.alerts.router import AlertRouter
from engine.alerts.sinks import TelegramSender
from engine.config import Config
from engine.signals import Cascade, Liquidation, Volatility
from tests.fakes.botapi import FakeBotAPI, Fault

TOKEN = "555:router-SECRET-part"
T0 = 1_700_000_000_000_000_000
S = 1_000_000_000


def alerts_cfg(**kw):
    a = Config().alerts
    return msgspec.structs.replace(a, **kw) if kw else a


def liq(asset="BTC", side="long", usd=50_000.0, t=0, venue="binance", cls="retail", price=50_000.0):
    return Liquidation(asset=asset, venue=venue, symbol=f"{asset}USDT", side=side, price=price, qty=usd / price,
                       notional_usd=usd, size_class=cls, ts_exchange=T0 + t * S)


def casc(level, score, t, asset="BTC", count=8, price=50_000.0, prev="NONE"):
    return Cascade(asset=asset, level=level, score=score, count=count, notional_usd=1e6, long_usd=8e5, short_usd=2e5,
                   price=price, ts_exchange=T0 + t * S, previous_level=prev, factors={"velocity": score / 2})


@pytest.fixture
def ob(tmp_path):
    o = Outbox(tmp_path / "o.sqlite3")
    yield o
    o.close()


def router(ob, chats=(1,), **kw):
    return AlertRouter(alerts_cfg(**kw), ob, list(chats), console_out=io.StringIO())


def telegram_rows(ob, op=None):
    return [r for r in ob.rows() if r["sink"] == "telegram" and (op is None or r["op"] == op)]


def test_a_cascade_is_one_message_plus_edits_not_a_stream(ob):
    r = router(ob)
    for t in range(60):   # a minute-long cascade: liquidations every second, a cascade signal every second
        r.handle(liq(t=t, usd=40_000 + t * 1000, price=50_000 - 20 * t), now=t)
        level = "WATCH" if t < 20 else "WARNING" if t < 40 else "CRITICAL"
        r.handle(casc(level, 4 + t / 10, t, price=50_000 - 20 * t), now=t)
        r.tick(now=t + 0.5)
    r.handle(casc("NONE", 1.0, 61, prev="CRITICAL"), now=61)
    sends, edits = telegram_rows(ob, "send"), telegram_rows(ob, "edit")
    live = [s for s in sends if s["live_key"]]
    assert len(live) == 1, "one live message per cascade"
    escalations = [s for s in sends if not s["live_key"]]
    assert len(escalations) == 2 and "WARNING" in escalations[0]["body"] and "CRITICAL" in escalations[1]["body"]
    assert 15 <= len(edits) <= 25, len(edits)            # edit_interval_s = 3 s over a minute, plus level changes
    assert all(e["live_key"] == live[0]["live_key"] for e in edits)
    final = edits[-1]["body"]
    assert "cascade over" in final and "peak CRITICAL" in final and "60 longs" in final
    # the single liquidations were folded into the live message, not sent one by one
    assert r.stats.folded_into_cascade == 0 and not any("LIQUIDATION</b> [" in s["body"] for s in sends)


def test_cascade_restart_within_rearm_reopens_the_same_message(ob):
    r = router(ob, rearm_s=120.0)
    r.handle(casc("WATCH", 4, 0), now=0)
    r.handle(casc("NONE", 1, 10, prev="WATCH"), now=10)
    r.handle(casc("WATCH", 4, 30), now=30)
    assert len([s for s in telegram_rows(ob, "send") if s["live_key"]]) == 1
    r.handle(casc("NONE", 1, 40, prev="WATCH"), now=40)
    r.handle(casc("WATCH", 4, 400), now=400)   # long after: a new cascade, a new message
    assert len([s for s in telegram_rows(ob, "send") if s["live_key"]]) == 2


def test_several_assets_at_once_give_one_market_report(ob):
    r = router(ob, market_wide_assets=3)
    assets = ["BTC", "ETH", "SOL", "XRP", "DOGE"]
    for i, a in enumerate(assets):
        r.handle(casc("WARNING", 6, i, asset=a), now=i)
    sends = telegram_rows(ob, "send")
    live = [s for s in sends if s["live_key"]]
    # BTC and ETH got their own message before the market turned; then one report for all
    assert [s["live_key"].split(":")[0] for s in live] == ["cascade", "cascade", "market"]
    for t in range(5, 30):
        for a in assets:
            r.handle(casc("WARNING", 6.5, t, asset=a), now=t)
        r.tick(now=t)
    for i, a in enumerate(assets):
        r.handle(casc("NONE", 1, 40 + i, asset=a, prev="WARNING"), now=40 + i)
    report_edits = [e for e in telegram_rows(ob, "edit") if e["live_key"].startswith("market")]
    assert report_edits and "Market-wide cascade over" in report_edits[-1]["body"]
    for a in assets:
        assert f"<b>{a}</b>" in report_edits[-1]["body"]
    assert len([s for s in telegram_rows(ob, "send") if s["live_key"]]) == 3


def test_liquidation_dedup_realerts_only_when_bigger_or_further(ob):
    r = router(ob, extend_factor=1.5, extend_price_pct=1.0)
    big = dict(usd=200_000.0, cls="large")
    r.handle(liq(**big), now=0)
    r.handle(liq(**big, price=49_900), now=1)              # same size, 0.2 % further: suppressed
    r.handle(liq(usd=320_000.0, cls="large"), now=2)       # 1.6x bigger: alert
    r.handle(liq(**big, price=49_000), now=3)              # 2 % further down for a long: alert
    r.handle(liq(**big, side="long", price=51_000), now=4)  # higher price for a long: not further
    assert len(telegram_rows(ob)) == 3


def test_budget_overflow_goes_to_one_digest_and_urgent_always_passes(ob):
    r = router(ob, max_per_hour=2, digest_interval_s=60.0, kinds=["cascade", "liquidation", "volatility"])
    for i in range(6):
        r.handle(Volatility(asset=f"A{i}", regime="high", previous_regime="normal", ts_exchange=T0), now=i)
    for i in range(4):
        r.handle(liq(asset=f"B{i}", usd=10e6, cls="whale"), now=10 + i)
    r.handle(liq(asset="C", usd=50e6, cls="institutional"), now=20)
    bodies = [x["body"] for x in telegram_rows(ob)]
    assert len(bodies) == 3 and "CUSDT LIQUIDATION" in bodies[-1]     # 2 normal within budget + 1 urgent
    r.tick(now=100)
    digest = telegram_rows(ob)[-1]["body"]
    assert "Digest</b>: 8 alerts" in digest and digest.count("volatility") == 6


def test_quiet_hours_hold_all_but_urgent():
    q = QuietHours("22:00", "06:00")
    gate = ChatGate(max_per_hour=100, quiet=q, digest_interval_s=0)
    night = time.mktime((2026, 1, 1, 23, 30, 0, 0, 0, 0)) - time.timezone
    day = night + 10 * 3600
    assert q.contains(night) and not q.contains(day)
    assert not gate.admit(1, "normal", night) and gate.admit(1, "urgent", night) and gate.admit(1, "normal", day)
    assert not gate.admit(1, "digest", day)
    gate.hold(1, "x", night)
    assert gate.due_digests(night) == [] and gate.due_digests(day)[0][1] == ["x"]
    with pytest.raises(ValueError):
        gate.admit(1, "loud", day)


def test_tier_lookup():
    tiers = Config().alerts.tiers
    assert tier_for(tiers, "cascade", "CRITICAL") == "urgent" and tier_for(tiers, "cascade", "WATCH") == "normal"
    assert tier_for(tiers, "volatility") == "digest" and tier_for(tiers, "brand_new_kind") == "normal"


def test_webhook_rows_carry_the_signal_as_json(ob):
    r = AlertRouter(alerts_cfg(), ob, [], webhook_url="http://127.0.0.1:9/hook", console_out=io.StringIO())
    r.handle(liq(usd=200_000.0, cls="large"), now=0)
    [row] = ob.rows()
    doc = msgspec.json.decode(row["body"])
    assert row["sink"] == "webhook" and doc["kind"] == "liquidation" and doc["notional_usd"] == 200_000.0


def test_console_output_keeps_the_demo_look(ob):
    out = io.StringIO()
    r = AlertRouter(alerts_cfg(), ob, [1], console_out=out)
    r.handle(casc("WARNING", 6, 0), now=0)
    assert "BTC LIQUIDATION CASCADE — WARNING" in out.getvalue()


def test_startup_notice_once_per_gap(ob):
    r = router(ob, chats=(1, 2))
    assert r.startup_notice(["binance", "bybit"], gap_s=600, now=1000)
    assert not router(ob, chats=(1, 2)).startup_notice(["binance"], gap_s=600, now=1300)   # actor restart
    assert router(ob, chats=(1, 2)).startup_notice(["binance"], gap_s=600, now=2000)
    assert [x["target"] for x in telegram_rows(ob)] == ["1", "2", "1", "2"]


def test_no_token_in_captured_logs_through_the_real_client(ob, caplog):
    caplog.set_level(logging.DEBUG)
    with FakeBotAPI(token=TOKEN) as api:
        api.inject(Fault.flood(1), chat_id=1)
        api.inject(Fault.server_error(502), chat_id=2)
        api.block_chat(3)
        for chat in (1, 2, 3, 4):
            ob.enqueue("telegram", chat, f"hello {chat}")
        d = Delivery(ob.path, {"telegram": TelegramSender(TOKEN, api.base_url)},
                     DeliverySettings(retry_initial_s=0.05, retry_max_s=0.1)).start()
        try:
            assert api.wait_for(lambda: len(api.sent()) == 3, 8)
        finally:
            d.stop()
        logging.getLogger("undertow.test").info("request to %s", f"{api.base_url}{TOKEN}/sendMessage")
        logging.getLogger("httpx").warning("HTTP Request: POST %s/bot%s/getMe", api.base_url, TOKEN)
    text = "\n".join(f"{r.name} {r.getMessage()} {r.exc_text or ''}" for r in caplog.records)
    assert "flood control" in text and "permanent failure" in text      # the logs did say something
    assert TOKEN not in text and TOKEN.split(":")[1] not in text
    assert "<redacted-token>" in text


def test_chat_preferences_written_by_the_bot_are_honoured(ob, tmp_path):
    from engine.bot.prefs import Prefs, PrefsView
    path = tmp_path / "bot-prefs.json"
    view = PrefsView(path, default_alerts=True)
    r = AlertRouter(alerts_cfg(), ob, [1, 2, 3], console_out=io.StringIO(), allows=view)
    whale = liq(usd=5e6, cls="whale")
    r.handle(whale, now=0)
    assert {int(row["target"]) for row in telegram_rows(ob)} == {1, 2, 3}
    prefs = Prefs(path)                         # the bot process: chat 1 mutes BTC, chat 2 stops alerts
    prefs.update(1, mutes={"BTC": time.time() + 3600})
    prefs.update(2, alerts=False)
    before = len(telegram_rows(ob))
    r.handle(liq(asset="BTC", usd=9e6, cls="whale", t=100, price=40_000.0), now=100)
    r.handle(liq(asset="ETH", usd=9e6, cls="whale", t=101), now=101)
    new = [int(row["target"]) for row in telegram_rows(ob)[before:]]
    assert sorted(new) == [1, 3, 3]             # BTC -> chat 3 only; ETH -> chats 1 and 3
    assert r.stats.muted == 3
