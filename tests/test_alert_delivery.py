"""Outbox delivery through the real python-telegram-bot client and the local Bot API: floods, errors, SIGKILL."""
from __future__ import annotations

import collections
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from engine.alerts.delivery import Delivery, DeliverySettings
from engine.alerts.outbox import Outbox
from engine.alerts.sinks import TelegramSender
from tests.fakes.botapi import FakeBotAPI, Fault

TOKEN = "777:delivery-SECRET"
ROOT = Path(__file__).resolve().parents[1]
FAST = DeliverySettings(per_chat_per_s=1000, group_per_min=100000, global_per_s=100000, retry_initial_s=0.05,
                        retry_max_s=0.2)


@pytest.fixture
def api():
    with FakeBotAPI(token=TOKEN) as a:
        yield a


@pytest.fixture
def outbox(tmp_path):
    ob = Outbox(tmp_path / "outbox.sqlite3")
    yield ob
    ob.close()


def run_delivery(api, outbox, settings=FAST, read_timeout=5.0):
    d = Delivery(outbox.path, {"telegram": TelegramSender(TOKEN, api.base_url, read_timeout=read_timeout)}, settings)
    return d.start()


def drained(outbox):
    c = outbox.counts()
    return c.get("pending", 0) == 0 and c.get("inflight", 0) == 0


@pytest.mark.fault
def test_429_storm_over_500_alerts_loses_none_and_never_sends_early(tmp_path):
    # the server allows 40 messages/s per chat and the client tries 200/s: a storm of 429s, plus explicit ones
    with FakeBotAPI(token=TOKEN, per_chat_per_s=40) as api:
        ob = Outbox(tmp_path / "storm.sqlite3")
        chats = [11, 12, 13, 14, -1005]
        for i in range(500):
            ob.enqueue("telegram", chats[i % 5], f"alert <b>#{i}</b>")
        for chat in chats:
            api.inject(Fault.flood(retry_after=1), chat_id=chat)
        api.inject(Fault.flood(retry_after=1, scope="global"), chat_id=None, times=1)
        d = run_delivery(api, ob, DeliverySettings(per_chat_per_s=200, group_per_min=1e6, global_per_s=1e6))
        try:
            assert api.wait_for(lambda: drained(ob), timeout=18), ob.counts()
        finally:
            d.stop()
        texts = [m.text for m in api.sent()]
        assert sorted(texts) == sorted(f"alert #{i}" for i in range(500))   # none lost, none twice
        assert api.early_sends == 0, "a send went out before retry_after had passed"
        assert d.stats.flood_waits >= 6 and d.stats.sent == 500
        assert ob.counts() == {"sent": 500}
        per_chat = collections.defaultdict(list)
        for m in api.sent():
            per_chat[m.chat_id].append(int(m.text.split("#")[1]))
        assert all(v == sorted(v) for v in per_chat.values()), "per-chat order kept"
        ob.close()


def test_permanent_errors_are_not_retried_and_do_not_block_others(api, outbox):
    api.block_chat(5)
    api.inject(Fault.bad_request("Bad Request: chat not found"), chat_id=6)
    for chat in (5, 6, 7):
        outbox.enqueue("telegram", chat, f"to {chat}")
    d = run_delivery(api, outbox)
    try:
        assert api.wait_for(lambda: drained(outbox), 5)
        time.sleep(0.3)
    finally:
        d.stop()
    assert [m.chat_id for m in api.sent()] == [7]
    assert len(api.calls_to("sendMessage", 5)) == 1 and len(api.calls_to("sendMessage", 6)) == 1
    failed = {r["target"]: r["error"] for r in outbox.rows("failed")}
    assert "blocked" in failed["5"] and "chat not found" in failed["6"].lower()
    assert d.stats.failed == 2


def test_network_errors_and_5xx_retry_with_backoff(api, outbox):
    api.inject(Fault.server_error(502), chat_id=8, times=2)
    api.inject(Fault.server_error(500), chat_id=8, times=1)
    outbox.enqueue("telegram", 8, "eventually")
    d = run_delivery(api, outbox)
    try:
        assert api.wait_for(lambda: api.sent(8), 5)
    finally:
        d.stop()
    calls = api.calls_to("sendMessage", 8)
    assert len(calls) == 4 and [m.text for m in api.sent(8)] == ["eventually"]
    gaps = [b.t - a.t for a, b in zip(calls, calls[1:])]
    assert all(g >= 0.03 for g in gaps), gaps    # back-off between attempts (0.05 s doubling, ±20 %)
    assert d.stats.retries == 3


def test_rejected_markup_falls_back_to_plain_text(api, outbox):
    api.inject(Fault.cant_parse(), chat_id=9)
    outbox.enqueue("telegram", 9, "<b>BTC</b> &lt;3 cascade")
    d = run_delivery(api, outbox)
    try:
        assert api.wait_for(lambda: api.sent(9), 5)
    finally:
        d.stop()
    [m] = api.sent(9)
    assert m.text == "BTC <3 cascade" and m.parse_mode is None and d.stats.plain_fallbacks == 1


def test_chat_migration_moves_pending_rows_and_future_alerts(api, outbox):
    api.migrate_chat(-100, -1001)
    outbox.enqueue("telegram", -100, "first", live_key="k")
    outbox.enqueue("telegram", -100, "second")
    d = run_delivery(api, outbox)
    try:
        assert api.wait_for(lambda: len(api.sent(-1001)) == 2, 5)
        outbox.enqueue("telegram", -100, "after", op="edit", live_key="k")   # resolved to the new id
        d.wake()
        assert api.wait_for(lambda: api.sent(-1001)[0].text == "after", 5)
    finally:
        d.stop()
    assert [m.text for m in api.sent(-1001)] == ["after", "second"]
    assert outbox.resolve("-100") == "-1001" and d.stats.migrated == 1


def test_timeout_after_accept_resends_and_counts_the_possible_duplicate(api, outbox):
    api.inject(Fault.accept_then_timeout(delay=1.0), chat_id=4)
    outbox.enqueue("telegram", 4, "maybe twice")
    d = run_delivery(api, outbox, read_timeout=0.3)
    try:
        assert api.wait_for(lambda: len(api.sent(4)) == 2, 6)
    finally:
        d.stop()
    assert d.stats.unknown_outcomes == 1 and outbox.meta("unknown_outcomes") == 1
    assert [r["unknown"] for r in outbox.rows("sent")] == [1]


def test_live_message_edits_are_coalesced_and_follow_the_send(api, outbox):
    outbox.enqueue("telegram", 3, "v1", live_key="cascade:BTC")
    for v in ("v2", "v3", "v4"):
        outbox.enqueue("telegram", 3, v, op="edit", live_key="cascade:BTC")
    d = run_delivery(api, outbox)
    try:
        assert api.wait_for(lambda: drained(outbox) and api.sent(3) and api.sent(3)[0].text == "v4", 5)
    finally:
        d.stop()
    [m] = api.sent(3)
    assert m.edits == ["v4"] and outbox.counts() == {"sent": 2, "superseded": 2}


def test_edit_of_a_deleted_live_message_posts_a_new_one(api, outbox):
    outbox.enqueue("telegram", 2, "v1", live_key="x")
    d = run_delivery(api, outbox)
    try:
        assert api.wait_for(lambda: api.sent(2), 5)
        api.messages.clear()    # the user deleted it
        outbox.enqueue("telegram", 2, "v2", op="edit", live_key="x")
        d.wake()
        assert api.wait_for(lambda: [m.text for m in api.sent(2)] == ["v2"], 5)
    finally:
        d.stop()


_WORKER = """
import sys, time
from engine.alerts.delivery import Delivery, DeliverySettings
from engine.alerts.sinks import TelegramSender
path, base, token = sys.argv[1:4]
d = Delivery(path, {"telegram": TelegramSender(token, base, read_timeout=20)},
             DeliverySettings(per_chat_per_s=20, retry_initial_s=0.05, retry_max_s=0.2)).start()
print("recovered", d.recovered, flush=True)
while True:
    time.sleep(1)
"""


@pytest.mark.process
@pytest.mark.fault
def test_sigkill_with_pending_rows_delivers_all_after_restart(api, outbox):
    n = 60
    for i in range(n):
        outbox.enqueue("telegram", 21 + i % 2, f"pending #{i}")
    argv = [sys.executable, "-c", _WORKER, str(outbox.path), api.base_url, TOKEN]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    with subprocess.Popen(argv, cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True) as p:
        try:
            assert api.wait_for(lambda: len(api.sent()) >= 10, 10)
            # the next send is accepted but its reply hangs: the worker dies not knowing whether it arrived
            api.inject(Fault.accept_then_timeout(delay=3.0), chat_id=None)
            calls = len(api.calls_to("sendMessage"))
            assert api.wait_for(lambda: len(api.calls_to("sendMessage")) > calls, 5)
            time.sleep(0.1)
        finally:
            p.send_signal(signal.SIGKILL)
            p.wait(5)
    inflight = outbox.counts().get("inflight", 0)
    assert len(api.sent()) < n and inflight >= 1
    with subprocess.Popen(argv, cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True) as p2:
        try:
            assert p2.stdout.readline().split() == ["recovered", str(inflight)]
            assert api.wait_for(lambda: drained(outbox), 15), outbox.counts()
        finally:
            p2.send_signal(signal.SIGKILL)
            p2.wait(5)
    texts = collections.Counter(m.text for m in api.sent())
    assert set(texts) == {f"pending #{i}" for i in range(n)}, "an alert was lost"
    duplicates = sum(c - 1 for c in texts.values())
    assert duplicates == outbox.meta("unknown_outcomes") >= 1   # only the unknown-outcome send, and it is counted
    assert outbox.counts() == {"sent": n}
