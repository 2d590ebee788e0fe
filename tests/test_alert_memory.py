"""Budgets, cooldowns, the quiet-hours queue and pending digests survive a restart of the alert actor.

The router objects are dropped and rebuilt on the same outbox file (a restart),
and one test kills the real actor process with SIGKILL.
"""
from __future__ import annotations

import io
import signal
import subprocess
import time
from pathlib import Path

import pytest

from engine.alerts.outbox import Outbox
from engine.alerts.router import AlertRouter
from engine.bus import Publisher
from engine.config import QuietHoursConfig
from tests.fakes.botapi import FakeBotAPI
from tests.harness.alerts import running_alert_actor, write_alert_config
from tests.harness.toml import toml_table
from tests.test_alert_router import alerts_cfg, liq

NOW = 1_700_000_000.0      # 2023-11-14 22:13 UTC
CHAT = 5


def restarted(path, now, **cfg):
    """A fresh outbox connection and router on ``path``, as the actor builds them at start."""
    ob = Outbox(path)
    return ob, AlertRouter(alerts_cfg(**cfg), ob, [CHAT], console_out=io.StringIO(), clock=lambda: now)


def sends(ob):
    return [r["body"] for r in ob.rows() if r["sink"] == "telegram" and r["op"] == "send"]


def test_budget_cooldown_and_digest_queue_survive_a_restart(tmp_path):
    path = tmp_path / "outbox.sqlite3"
    cfg = dict(max_per_hour=2, digest_interval_s=600.0)
    ob, r = restarted(path, NOW, **cfg)
    for i, asset in enumerate(("BTC", "ETH", "SOL")):   # different keys: no dedup; the third is over budget
        r.handle(liq(asset=asset, cls="large", usd=200_000), now=NOW + i)
    assert len(sends(ob)) == 2 and r.gate.held_lines(CHAT) and r.stats.held_for_digest == 1
    ob.close()

    ob, r = restarted(path, NOW + 10, **cfg)                  # the actor was killed and started again
    assert r.gate.sent_last_hour(CHAT, NOW + 10) == 2, "the hourly budget was reset by the restart"
    r.handle(liq(asset="BTC", cls="large", usd=200_000), now=NOW + 10)     # same key within the cooldown
    assert r.dedup.suppressed == 1 and r.stats.held_for_digest == 0, "a cooled-down alert went out again"
    r.handle(liq(asset="XRP", cls="large", usd=200_000), now=NOW + 11)     # new key, budget still spent
    assert r.stats.held_for_digest == 1 and len(sends(ob)) == 2
    r.tick(now=NOW + 300)
    assert len(sends(ob)) == 2, "digest sent before digest_interval_s"
    ob.close()

    ob, r = restarted(path, NOW + 700, **cfg)
    r.tick(now=NOW + 700)                                     # the digest held before both restarts is due
    digest = sends(ob)[2:]
    assert len(digest) == 1 and "SOL" in digest[0] and "XRP" in digest[0], digest
    r.tick(now=NOW + 1400)
    assert len(sends(ob)) == 3, "the digest's lines were kept after it was sent"
    ob.close()

    ob, r = restarted(path, NOW + 1500, **cfg)
    assert r.gate.held_lines(CHAT) == [] and r.gate.sent_last_hour(CHAT, NOW + 1500) == 2
    assert r.gate.sent_last_hour(CHAT, NOW + 3700) == 0       # the budget window still slides
    ob.close()


def test_quiet_hours_queue_is_delivered_after_a_restart(tmp_path):
    path = tmp_path / "outbox.sqlite3"
    quiet = QuietHoursConfig(enabled=True, start="22:00", end="23:00")
    night, morning = NOW, NOW + 3600           # 22:13 and 23:13 UTC
    ob, r = restarted(path, night, quiet_hours=quiet)
    r.handle(liq(asset="ETH", cls="large", usd=300_000), now=night)
    r.handle(liq(asset="ETH", cls="institutional", usd=3e6), now=night + 1)   # urgent: through quiet hours
    assert len(sends(ob)) == 1 and len(r.gate.held_lines(CHAT)) == 1
    ob.close()
    ob, r = restarted(path, morning, quiet_hours=quiet)
    r.tick(now=morning)
    assert len(sends(ob)) == 2 and "digest" in sends(ob)[1].lower() and "ETH" in sends(ob)[1]
    ob.close()


def test_a_failed_signal_leaves_neither_rows_nor_policy_state(tmp_path):
    path = tmp_path / "outbox.sqlite3"
    ob = Outbox(path)

    def broken_sink(alert):
        raise RuntimeError("sink down")
    r = AlertRouter(alerts_cfg(max_per_hour=1), ob, [CHAT], console_out=io.StringIO(), clock=lambda: NOW,
                    on_alert=broken_sink)
    with pytest.raises(RuntimeError):
        r.handle(liq(asset="BTC", cls="large", usd=200_000), now=NOW)
    ob.close()
    ob, r = restarted(path, NOW + 1, max_per_hour=1)
    assert ob.rows() == [] and r.gate.sent_last_hour(CHAT, NOW + 1) == 0
    r.handle(liq(asset="BTC", cls="large", usd=200_000), now=NOW + 1)   # no cooldown was recorded either
    assert len(sends(ob)) == 1
    ob.close()


def _actor(cfg: Path, token: str, log, **stop):
    return running_alert_actor(cfg, token, "WARNING", stdout=subprocess.DEVNULL, stderr=log, **stop)


@pytest.mark.process
def test_killed_actor_process_keeps_budget_cooldown_and_pending_digest(tmp_path, namespace):
    token = "4242:memory-SECRET"
    with FakeBotAPI(token=token) as api:
        sections = (toml_table("alerts", max_per_hour=1, digest_interval_s=4.0)
                    + toml_table("alerts.telegram", api_base_url=api.base_url, chat_ids=[CHAT], startup_notice=False,
                                 per_chat_per_s=50.0))
        cfg, endpoint = write_alert_config(tmp_path, namespace, sections)
        pub = Publisher(endpoint, "test", bind=True)

        def publish_until(sig, pred, what):
            deadline = time.monotonic() + 20
            while not pred():      # the subscription may still be settling: repeat (duplicates are suppressed)
                assert time.monotonic() < deadline, what
                pub.publish(sig)
                time.sleep(0.3)

        with open(tmp_path / "actor.log", "w") as log:
            with _actor(cfg, token, log, stop=signal.SIGKILL, wait_s=10):
                publish_until(liq(asset="BTC", cls="large", usd=200_000), lambda: api.sent(CHAT), "first alert")
                held = tmp_path / "state" / "alerts-outbox.sqlite3"
                ob = Outbox(held)
                publish_until(liq(asset="ETH", cls="large", usd=200_000),
                              lambda: ob.db.execute("SELECT COUNT(*) FROM held").fetchone()[0] == 1, "ETH held")
            t_kill = time.monotonic()
            with _actor(cfg, token, log) as second:
                publish_until(liq(asset="SOL", cls="large", usd=200_000),
                              lambda: ob.db.execute("SELECT COUNT(*) FROM held").fetchone()[0] >= 2, "SOL held")
                pub.publish(liq(asset="BTC", cls="large", usd=200_000))          # under cooldown
                assert api.wait_for(lambda: len(api.sent(CHAT)) >= 2, 15), "the pending digest never came"
                time.sleep(0.5)
        pub.close()
        ob.close()
    texts = [m.text for m in api.sent(CHAT)]
    assert len(texts) == 2, texts                  # BTC once, then one digest: no budget reset, no re-sent BTC
    assert "BTC" in texts[0] and "ETH" in texts[1] and "SOL" in texts[1] and "BTC" not in texts[1], texts
    assert time.monotonic() - t_kill < 30
    assert second.returncode == 0 and token.split(":")[1] not in (tmp_path / "actor.log").read_text()
