"""Flood pauses and live cascade messages survive a restart of the alert actor.

Router and delivery objects are dropped and rebuilt on the same outbox file
(a restart); the last test SIGKILLs the real actor process against the local
Bot API.
"""
from __future__ import annotations

import io
import signal
import subprocess
import time
from pathlib import Path

import pytest

from engine.alerts.delivery import Delivery, DeliverySettings
from engine.alerts.outbox import Outbox
from engine.alerts.pauses import GLOBAL, FloodPauses
from engine.alerts.router import AlertRouter
from engine.alerts.sinks import TelegramSender
from engine.bus import Publisher
from tests.fakes.botapi import FakeBotAPI, Fault
from tests.harness.alerts import running_alert_actor, write_alert_config
from tests.harness.toml import toml_table
from tests.test_alert_router import casc, liq

TOKEN = "8181:restart-SECRET"
CHAT = 5
FAST = DeliverySettings(per_chat_per_s=1000, group_per_min=100000, global_per_s=100000, retry_initial_s=0.05,
                        retry_max_s=0.2)


def restarted(path, now, chats=(CHAT,), **cfg):
    """A fresh outbox connection and router on ``path``, as the actor builds them at start."""
    from tests.test_alert_router import alerts_cfg
    ob = Outbox(path)
    return ob, AlertRouter(alerts_cfg(**cfg), ob, list(chats), console_out=io.StringIO(), clock=lambda: now)


def live_rows(ob, prefix="cascade:"):
    return [r for r in ob.rows() if r["sink"] == "telegram" and (r["live_key"] or "").startswith(prefix)]


def cascade_minute(r, t0, t1, level="WATCH", asset="BTC"):
    """One liquidation and one cascade signal a second, ticks between."""
    for t in range(t0, t1):
        r.handle(liq(asset=asset, t=t, usd=40_000.0, price=50_000.0 - 10 * t), now=t)
        r.handle(casc(level, 4.0, t, asset=asset, price=50_000.0 - 10 * t), now=t)
        r.tick(now=t + 0.5)


# -- live cascade messages -----------------------------------------------------
def test_a_running_cascade_is_edited_not_sent_again_after_a_restart(tmp_path):
    path = tmp_path / "outbox.sqlite3"
    ob, r = restarted(path, 0.0)
    cascade_minute(r, 0, 10)
    [start] = [x for x in live_rows(ob) if x["op"] == "send"]
    key = start["live_key"]
    ob.close()                                      # killed mid-cascade

    ob, r = restarted(path, 12.0)
    assert r.cascades_resumed == 1 and r.tracker.in_cascade("BTC")
    cascade_minute(r, 12, 20)
    r.handle(casc("NONE", 1.0, 21, prev="WATCH"), now=21)
    rows = live_rows(ob)
    assert [x["live_key"] for x in rows if x["op"] == "send"] == [key], "a new live message after the restart"
    after = [x for x in rows if x["id"] > start["id"]]
    assert after and all(x["op"] == "edit" and x["live_key"] == key for x in after)
    final = [x["body"] for x in rows if "cascade over" in x["body"]]
    # the totals carried over: 10 liquidations before the kill, 8 after
    assert len(final) == 1 and "18 seen" in final[0] and "18 longs" in final[0], final
    assert not any("escalated" in x["body"] for x in ob.rows())
    ob.close()


def test_the_end_summary_is_written_exactly_once_across_restarts(tmp_path):
    path = tmp_path / "outbox.sqlite3"
    ob, r = restarted(path, 0.0)
    cascade_minute(r, 0, 5)
    r.handle(casc("NONE", 1.0, 6, prev="WATCH"), now=6)          # ended before the kill
    ob.close()
    ob, r = restarted(path, 8.0)
    assert r.cascades_resumed == 0
    r.handle(casc("NONE", 1.0, 8, prev="WATCH"), now=8)           # the engine repeats the end: nothing new
    r.tick(now=20.0)
    assert sum("cascade over" in x["body"] for x in live_rows(ob)) == 1
    r.handle(casc("WATCH", 4.0, 30), now=30)                      # within rearm_s: the same message re-opens
    assert len([x for x in live_rows(ob) if x["op"] == "send"]) == 1
    ob.close()
    ob, r = restarted(path, 31.0)
    r.handle(casc("NONE", 1.0, 31, prev="WATCH"), now=31)
    ob.close()
    ob, r = restarted(path, 32.0)
    r.handle(casc("NONE", 1.0, 32, prev="WATCH"), now=32)
    rows = live_rows(ob)
    assert len([x for x in rows if x["op"] == "send"]) == 1
    assert sum("cascade over" in x["body"] for x in rows) == 2    # one per episode of the re-opened message
    ob.close()


def test_a_restored_cascade_whose_end_was_missed_is_closed_once(tmp_path):
    path = tmp_path / "outbox.sqlite3"
    ob, r = restarted(path, 0.0, rearm_s=60.0)
    cascade_minute(r, 0, 5)
    ob.close()
    # down for 10 minutes: the end went out while nobody listened; the restart gives the cascade rearm_s to show up
    ob, r = restarted(path, 600.0, rearm_s=60.0)
    r.tick(now=630.0)
    assert not any("cascade over" in x["body"] for x in live_rows(ob))
    r.tick(now=661.0)
    assert sum("cascade over" in x["body"] for x in live_rows(ob)) == 1
    ob.close()
    ob, r = restarted(path, 700.0, rearm_s=60.0)
    r.tick(now=800.0)
    assert sum("cascade over" in x["body"] for x in live_rows(ob)) == 1 and r.cascades_resumed == 0
    ob.close()


def test_the_market_report_carries_on_after_a_restart(tmp_path):
    path = tmp_path / "outbox.sqlite3"
    ob, r = restarted(path, 0.0, market_wide_assets=2)
    for asset in ("BTC", "ETH"):
        r.handle(casc("WATCH", 4.0, 0, asset=asset), now=0)
    [report] = [x for x in live_rows(ob, "market:") if x["op"] == "send"]
    before = max(x["id"] for x in ob.rows())
    ob.close()
    ob, r = restarted(path, 10.0, market_wide_assets=2)
    assert r.cascades_resumed == 2 and r.tracker.market is not None
    r.handle(liq(asset="ETH", t=10, usd=70_000.0), now=10)
    r.handle(casc("WARNING", 6.0, 10, asset="ETH"), now=10)
    r.handle(casc("WATCH", 4.0, 10, asset="SOL"), now=10)          # a third asset joins the same report
    r.tick(now=20)
    for asset in ("BTC", "ETH", "SOL"):
        r.handle(casc("NONE", 1.0, 30, asset=asset, prev="WATCH"), now=30)
    rows = live_rows(ob, "market:")
    assert [x["live_key"] for x in rows if x["op"] == "send"] == [report["live_key"]]
    assert not [x for x in ob.rows() if x["id"] > before and x["op"] == "send"], "a new message after the restart"
    assert "Market-wide cascade over" in rows[-1]["body"] and "3 assets" in rows[-1]["body"]
    ob.close()


# -- flood pauses ------------------------------------------------------------------
class Clocks:
    def __init__(self, wall=1_000.0, mono=50.0):
        self.w, self.m = wall, mono

    def wall(self):
        return self.w

    def mono(self):
        return self.m

    def run(self, s):       # time passes
        self.w += s
        self.m += s


def test_a_resumed_pause_loses_at_most_a_wall_clock_step_and_never_grows():
    c = Clocks()
    p = FloodPauses(c.wall, c.mono)
    stored = {"7": p.pause("7", 10.0), GLOBAL: p.pause(GLOBAL, 4.0)}
    assert p.pause("7", 3.0) is None and p.left("7") == 10.0      # a shorter 429 keeps the running pause
    c.w += 1000.0                                                 # wall clock stepped while running: no effect
    assert p.left("7") == 10.0 and p.others_paused("8") and not p.others_paused("7")
    rows = [(t, until, length) for t, (until, length) in stored.items()]

    for step, expect in ((0.0, 8.0), (3.0, 5.0), (-500.0, 10.0), (50.0, 0.0)):
        c = Clocks(wall=1_002.0 + step, mono=9.0)                 # restarted 2 s later, after a clock step
        q = FloodPauses(c.wall, c.mono)
        running = q.load(rows)
        assert q.left("7") == pytest.approx(expect), step
        assert running == (expect > 0) + (min(max(4.0 - 2 - step, 0), 4.0) > 0)
        c.run(expect)
        assert q.left("7") == 0.0


def test_the_outbox_stores_a_pause_with_its_row_and_forgets_it_when_over(tmp_path):
    clock = [1_000.0]
    ob = Outbox(tmp_path / "o.sqlite3", clock=lambda: clock[0])
    rid = ob.enqueue("telegram", 7, "hi")
    ob.mark_inflight(rid)
    ob.retry(rid, 1_000.0, "429", pauses={"7": (1_010.0, 10.0), GLOBAL: (1_005.0, 5.0)})
    assert sorted(ob.pauses()) == [("*", 1_005.0, 5.0), ("7", 1_010.0, 10.0)]
    assert ob.rows()[0]["state"] == "pending"
    clock[0] = 1_006.0
    assert ob.pauses() == [("7", 1_010.0, 10.0)]
    ob.close()


def _delivery(api, path):
    return Delivery(path, {"telegram": TelegramSender(TOKEN, api.base_url, read_timeout=5.0)}, FAST).start()


def _first_429(api, chat=None):
    assert api.wait_for(lambda: any(c.status == 429 and chat in (None, c.chat_id) for c in api.calls), 5)
    return min(c.t for c in api.calls if c.status == 429 and chat in (None, c.chat_id))


def test_a_restarted_worker_waits_out_the_pause_of_a_chat(tmp_path):
    """The row that got the 429 is superseded by a newer edit while the actor is down: only the stored
    pause keeps the new edit back."""
    path = tmp_path / "o.sqlite3"
    with FakeBotAPI(token=TOKEN) as api:
        ob = Outbox(path)
        ob.enqueue("telegram", CHAT, "live v0", live_key="k")
        d = _delivery(api, path)
        assert api.wait_for(lambda: api.sent(CHAT), 5)
        api.inject(Fault.flood(retry_after=2), method="editMessageText", chat_id=CHAT)
        ob.enqueue("telegram", CHAT, "live v1", op="edit", live_key="k")
        d.wake()
        t429 = _first_429(api, CHAT)
        d.stop()                                   # the actor goes down within the pause
        ob.enqueue("telegram", CHAT, "live v2", op="edit", live_key="k")   # the restarted router's next edit
        d = _delivery(api, path)
        try:
            assert api.wait_for(lambda: api.sent(CHAT)[0].text == "live v2", 6)
        finally:
            d.stop()
        edits = [c for c in api.calls_to("editMessageText", CHAT) if c.t > t429]
        assert edits and min(c.t for c in edits) >= t429 + 2.0 - 0.05, [c.t - t429 for c in edits]
        assert api.early_sends == 0 and d.stats.pauses_resumed == 1
        assert [c.params["text"] for c in edits] == ["live v2"]    # v1 was superseded, never sent
        ob.close()


def test_a_restarted_worker_waits_out_a_bot_wide_pause(tmp_path):
    path = tmp_path / "o.sqlite3"
    with FakeBotAPI(token=TOKEN) as api:
        api.inject(Fault.flood(retry_after=2, scope="global"), method=None, chat_id=None)
        ob = Outbox(path)
        for chat in (1, 2):
            ob.enqueue("telegram", chat, f"to {chat}")
        d = _delivery(api, path)
        assert api.wait_for(lambda: sum(c.status == 429 for c in api.calls) >= 2, 5)
        t429 = _first_429(api)
        # the worker counts the pause once it has read the 429 the fake API already recorded
        assert api.wait_for(lambda: d.stats.global_pauses >= 1, 5)
        assert d.stats.global_pauses == 1
        d.stop()
        t_stop = time.monotonic()
        ob.enqueue("telegram", 3, "to 3")          # a chat never told about the flood
        d = _delivery(api, path)
        try:
            assert api.wait_for(lambda: len(api.sent()) == 3, 6)
        finally:
            d.stop()
        tried = [c.t - t429 for c in api.calls if c.t > t_stop and c.method == "sendMessage"]
        assert min(tried) >= 2.0 - 0.05, tried     # answered or not: no request inside the pause
        assert d.stats.pauses_resumed == 3                          # chats 1 and 2, and the bot-wide pause
        assert sorted(m.text for m in api.sent()) == ["to 1", "to 2", "to 3"] and api.early_sends == 0
        ob.close()


# -- the real actor process ---------------------------------------------------------
def _actor(cfg: Path, log, **stop):
    return running_alert_actor(cfg, TOKEN, "WARNING", stdout=subprocess.DEVNULL, stderr=log, **stop)


PAUSE_S = 6     # longer than the actor's restart, so the restarted actor starts inside the pause


@pytest.mark.process
def test_sigkilled_actor_waits_out_the_pause_and_edits_the_live_message(tmp_path, namespace):
    with FakeBotAPI(token=TOKEN) as api:
        cfg, endpoint = write_alert_config(tmp_path, namespace, toml_table(
            "alerts.telegram", api_base_url=api.base_url, chat_ids=[CHAT], startup_notice=False, per_chat_per_s=50.0,
            edit_interval_s=0.2))
        pub = Publisher(endpoint, "test", bind=True)
        now = time.time_ns() // 1_000_000_000
        step = [0]

        def cascade_step(level="WATCH"):     # a liquidation and a cascade signal, one second of stream time later
            step[0] += 1
            t = now + step[0] - 1_700_000_000
            pub.publish(liq(t=t, usd=30_000.0 + step[0]))
            pub.publish(casc(level, 4.0, t, count=step[0]))

        def until(pred, what, level="WATCH"):
            deadline = time.monotonic() + 20
            while not pred():                # the subscription may still be settling: keep the cascade going
                assert time.monotonic() < deadline, what
                cascade_step(level)
                time.sleep(0.2)

        def live():
            return [m for m in api.sent(CHAT) if "LIQUIDATION CASCADE" in m.raw]

        with open(tmp_path / "actor.log", "w") as log:
            with _actor(cfg, log, stop=signal.SIGKILL, wait_s=10):
                until(lambda: live() and live()[0].edits, "the live message and an edit")
                api.inject(Fault.flood(retry_after=PAUSE_S), method=None, chat_id=CHAT)
                until(lambda: any(c.status == 429 for c in api.calls), "the 429")
                t429 = max(c.t for c in api.calls if c.status == 429)
            with _actor(cfg, log) as second:
                until(lambda: any(c.t > t429 and c.status == 200 for c in api.calls_to("editMessageText", CHAT)),
                      "an edit after the restart")
                pub.publish(casc("NONE", 1.0, now + step[0] + 1 - 1_700_000_000, prev="WATCH"))
                assert api.wait_for(lambda: "cascade over" in live()[0].text, 10), live()[0].text
                time.sleep(0.5)
        pub.close()
    assert len(live()) == 1, [m.text[:60] for m in live()]          # edited across the kill, never re-sent
    to_chat = [c for c in api.calls if c.chat_id == CHAT and c.t > t429 and c.method != "getMe"]
    assert min(c.t for c in to_chat) >= t429 + PAUSE_S - 0.05, "sent to the chat inside its retry_after"
    assert api.early_sends == 0
    summaries = [e for e in live()[0].edits if "cascade over" in e]
    assert len(summaries) == 1 and second.returncode == 0
