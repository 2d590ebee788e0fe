"""Fault 9: Telegram faults under `undertow run` -- 429 storms, timeouts after accept, 400/403, SIGKILL mid-send.

The daemon runs against the simulator (Binance only, cascades early and
often) with ``TELEGRAM_BOT_TOKEN`` set and ``[alerts.telegram].api_base_url``
at the local Bot API (tests/fakes/botapi.py), which also enforces a per-chat
rate below the one the alert actor is allowed, so flood control answers 429
on its own. Six chats: four healthy, one that blocked the bot (403), one that
does not exist (400). A seeded schedule (harness.schedule) then injects:

* ``flood``: a 429 with ``retry_after`` for one chat;
* ``flood_global``: a 429 for every chat until it expires;
* ``accept_timeout``: the server stores the message but answers after the
  client's read timeout (an ambiguous send: its resend duplicates it);
* ``server_error``: a 502;
* ``kill``: the target chat gets a 429 (``KILL_PAUSE_S``), then a send is
  held open (accepted, answer delayed) and the alert actor is SIGKILLed
  while waiting for it; the supervisor restarts it.

Then the daemon is stopped and the outbox drained by a delivery worker as a
restarted actor would (alerts pending at shutdown are sent at the next start).
What must hold:

* 0 lost: every outbox row ends ``sent`` (the server holds it), ``superseded``
  (an edit replaced by a newer one) or ``failed``, and ``failed`` only for the
  400/403 chats; nothing ``pending``, ``inflight`` or ``expired``;
* duplicates only from ambiguous sends, exactly counted: the server's received
  messages per (chat, text) minus the outbox's sent rows per (chat, text);
  every extra message belongs to a row flagged ``unknown``, there are no more
  than the ambiguous sends counted, and at least one per accepted-then-timed-out
  send (those certainly arrived);
* no send before a ``retry_after`` had passed (the server counts early sends),
  and across each kill no request to a chat the killed actor had paused (or to
  any chat, for a bot-wide pause) before that pause's end;
* a cascade whose live message was running at a kill is edited after the
  restart, not sent again: up to its end summary, every row for that asset
  (or for the market report) is an edit of the same live message.

Figure: delivered / duplicates / ambiguous / permanently failed counts, 429s
answered, and the delivery delay (outbox write -> delivered) p50/p99 of what
the daemon delivered through the storm (the actor's kill-and-restart outages
included); rows still pending at shutdown are counted as ``sent_after_stop``.
"""
from __future__ import annotations

import collections
import os
import signal
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from engine.actor_table import RUNNING
from engine.alerts.delivery import Delivery, DeliverySettings
from engine.alerts.live_memory import LiveMemory
from engine.alerts.outbox import Outbox, outbox_path
from engine.alerts.sinks import TelegramSender
from engine.config import SimulatorConfig
from engine.simulator import start_in_thread
from tests.conftest import wait_until
from tests.fakes.botapi import FakeBotAPI, Fault

from .harness import figure, percentile, replay_hint, rng, schedule, scaled
from .test_process_faults import Daemon, _config

TOKEN = "9009:telegram-faults-SECRET"
GOOD = [101, 102, 103, -100104]        # the last one is a group (20/min limit on our side)
BLOCKED, MISSING = 105, 106            # 403 bot blocked; 400 chat not found
CHATS = GOOD + [BLOCKED, MISSING]
READ_TIMEOUT_S = 1.0
SERVER_PER_CHAT_PER_S = 6              # the fake's flood control, below our own per-chat rate
ACTIONS = ("flood", "flood_global", "accept_timeout", "server_error", "kill")
KILL_PAUSE_S = 5                       # a kill comes inside a pause of this length (the restart must wait it out)


def _telegram_config(base: Path, api: FakeBotAPI) -> None:
    """Fault 8's daemon config plus Telegram at the local Bot API; heartbeats get 5 s (fault 9 is not about
    hung actors, and a loaded test machine must not make the supervisor kill a feed mid-storm)."""
    base.write_text(base.read_text().replace("heartbeat_timeout_ms = 1000", "heartbeat_timeout_ms = 5000"))
    with base.open("a") as f:
        f.write(f"""
[alerts]
cooldown_s = 0.5
max_per_hour = 0
retry_initial_s = 0.1
retry_max_s = 1.0

[alerts.console]
enabled = false

[alerts.telegram]
api_base_url = "{api.base_url}"
chat_ids = {CHATS}
startup_notice = true
per_chat_per_s = 20.0
group_per_min = 600.0
global_per_s = 60.0
connect_timeout_s = 1.0
read_timeout_s = {READ_TIMEOUT_S}
edit_interval_s = 0.5

[bot]
enabled = false

[detectors.liquidations]      # most simulated liquidations become alerts: a steady load through the storm
single_usd = {{ "*" = 500.0 }}
""")


def _alerts_running(daemon: Daemon, not_pid: int = 0) -> bool:
    row = daemon.rows().get("alerts")
    return bool(row) and row["state"] == RUNNING and row["pid"] != not_pid


@dataclass
class _AtKill:
    """What the outbox held when the alert actor was SIGKILLed."""

    mono: float
    last_row: int
    pauses: list[tuple[str, float]]     # (chat or "*", monotonic end of the pause)
    live: dict[str, str]                # asset or "market" -> key of a live message still running


def _at_kill(path: Path) -> _AtKill:
    wall, mono = time.time(), time.monotonic()
    ob = Outbox(path)
    try:
        pauses = [(t, mono + until - wall) for t, until, _ in ob.db.execute("SELECT target, until, length FROM pauses")
                  if until > wall]
        return _AtKill(mono, ob.db.execute("SELECT COALESCE(MAX(id), 0) FROM outbox").fetchone()[0], pauses,
                       LiveMemory(ob).running())
    finally:
        ob.close()


def _kill_mid_send(api: FakeBotAPI, daemon: Daemon, name: str, chat: int, kills: list[_AtKill], path: Path) -> bool:
    """Pause ``chat`` (a 429), then hold the next send open (accepted, answer after 5 s) and SIGKILL the alert
    actor while it waits; False when no send came within 10 s (nothing killed)."""
    hits = len(api.fault_hits)
    api.inject(Fault.flood(retry_after=KILL_PAUSE_S), method=None, chat_id=chat)
    api.wait_for(lambda: any(c == chat and f.status == 429 for _, c, f in api.fault_hits[hits:]), 5)
    hits = len(api.fault_hits)
    api.inject(Fault.accept_then_timeout(delay=5.0), method="sendMessage", chat_id=None)
    if not api.wait_for(lambda: any(f.accept for _, _, f in api.fault_hits[hits:]), 10):
        return False
    time.sleep(0.05)
    pid = daemon.rows()["alerts"]["pid"]
    os.kill(pid, signal.SIGKILL)
    kills.append(_at_kill(path))          # before the supervisor's restart can write anything
    wait_until(lambda: _alerts_running(daemon, pid), 30, 0.05,
               f"alerts actor restarted after SIGKILL ({replay_hint(name)})")
    return True


def _inject(api: FakeBotAPI, daemon: Daemon, action: str, chat: int, r, name: str, kills: list[_AtKill],
            path: Path) -> str:
    if action == "flood":
        api.inject(Fault.flood(retry_after=r.randint(1, 2)), method=None, chat_id=chat)
    elif action == "flood_global":
        api.inject(Fault.flood(retry_after=1, scope="global"), method=None, chat_id=chat)
    elif action == "accept_timeout":
        api.inject(Fault.accept_then_timeout(delay=READ_TIMEOUT_S + 0.5), method="sendMessage", chat_id=chat)
    elif action == "server_error":
        api.inject(Fault.server_error(502), method=None, chat_id=chat)
    elif action == "kill":
        return "kill" if _kill_mid_send(api, daemon, name, chat, kills, path) else "kill_skipped"
    return action


def _drain_after_restart(path: Path, api: FakeBotAPI, timeout_s: float) -> Delivery:
    """What the next start of the alert actor does with rows left pending at shutdown: deliver them."""
    d = Delivery(path, {"telegram": TelegramSender(TOKEN, api.base_url, read_timeout=READ_TIMEOUT_S)},
                 DeliverySettings(per_chat_per_s=20.0, group_per_min=600.0, global_per_s=60.0,
                                  retry_initial_s=0.1, retry_max_s=1.0)).start()
    ob = Outbox(path)
    try:
        wait_until(lambda: not {"pending", "inflight"} & set(ob.counts()), timeout_s, 0.05, "outbox drained")
    finally:
        d.stop()
        ob.close()
    return d


def _telegram_faults(tmp_path: Path, namespace: str, monkeypatch, name: str, n_faults: int, storm_s: float) -> dict:
    r = rng(name)
    plan = schedule(name, n_faults, ACTIONS, [str(c) for c in GOOD], spacing_s=(0.2, 2 * storm_s / n_faults))
    monkeypatch.setenv("TELEGRAM_BOT_TOKEN", TOKEN)
    applied: collections.Counter = collections.Counter()
    kills: list[_AtKill] = []
    path = outbox_path(tmp_path / "state")
    with FakeBotAPI(token=TOKEN, per_chat_per_s=SERVER_PER_CHAT_PER_S) as api, \
            start_in_thread(SimulatorConfig(rate=400, seed=r.randrange(1 << 30), venues=["binance"],
                                            first_cascade_after_s=2.0, cascade_every_s=6.0)) as sim:
        api.block_chat(BLOCKED)
        api.inject(Fault.bad_request("Bad Request: chat not found"), method=None, chat_id=MISSING, times=10**9)
        config = _config(tmp_path, namespace, sim)
        _telegram_config(config, api)
        daemon = Daemon(config, namespace)
        try:
            wait_until(daemon.running, 90, 0.05, "every actor running")
            wait_until(lambda: all(api.sent(c) for c in GOOD), 30, 0.05, "the start-up notice in every good chat")
            t0 = time.monotonic()
            for fault in plan:
                delay = t0 + fault.at_s - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
                applied[_inject(api, daemon, fault.action, int(fault.target), r, name, kills, path)] += 1
            wait_until(lambda: _alerts_running(daemon), 30, 0.05, "the alert actor running after the last fault")
            storm_s = time.monotonic() - t0
            time.sleep(2.0)    # alerts keep coming while the last faults are worked off
        finally:
            code = daemon.stop()
        stopped_at = time.time()
        assert code == 0, f"supervisor exited {code} on SIGTERM ({replay_hint(name)})"
        drain = _drain_after_restart(path, api, 60)
        with api._lock:
            calls = list(api.calls)
        early, floods = api.early_sends, sum(1 for c in calls if c.status == 429)
        accepted = sum(1 for method, _, f in api.fault_hits if f.accept and method == "sendMessage")

    ob = Outbox(path)
    try:
        rows = ob.rows()
        ambiguous = int(ob.meta("unknown_outcomes"))
    finally:
        ob.close()
    states = collections.Counter(r_["state"] for r_ in rows)
    assert set(states) <= {"sent", "superseded", "failed"}, (states, replay_hint(name))
    bad = [r_ for r_ in rows if r_["state"] == "failed" and int(r_["target"]) not in (BLOCKED, MISSING)]
    assert not bad, ([(b["target"], b["error"]) for b in bad[:5]], replay_hint(name))
    sent = [r_ for r_ in rows if r_["state"] == "sent" and r_["op"] == "send"]
    assert sent and all(int(r_["target"]) in GOOD for r_ in sent)
    assert {int(r_["target"]) for r_ in rows if r_["state"] == "failed"} <= {BLOCKED, MISSING}
    assert any(int(r_["target"]) == BLOCKED for r_ in rows) and any(int(r_["target"]) == MISSING for r_ in rows)

    received = collections.Counter((c.chat_id, c.params.get("text")) for c in calls
                                   if c.method == "sendMessage" and c.status == 200)
    expected = collections.Counter((int(r_["target"]), r_["body"]) for r_ in sent)
    unknown_by_key = collections.Counter()
    for r_ in sent:
        unknown_by_key[(int(r_["target"]), r_["body"])] += r_["unknown"]
    lost = expected - received
    assert not lost, (f"{sum(lost.values())} sent rows never reached the server", list(lost)[:3], replay_hint(name))
    extra = received - expected
    duplicates = sum(extra.values())
    untraced = {k: v for k, v in extra.items() if v > unknown_by_key[k]}
    assert not untraced, ("duplicates not from an ambiguous send", list(untraced)[:3], replay_hint(name))
    # each accepted-then-unanswered send certainly arrived and was sent again; a kill may catch others in flight
    assert accepted <= duplicates <= ambiguous, (accepted, duplicates, ambiguous, applied, replay_hint(name))
    assert early == 0, f"{early} sends before retry_after had passed ({replay_hint(name)})"
    for k in kills:    # the restarted actor waited out every pause the killed one was told about
        early_after_kill = [(c.chat_id, round(end - c.t, 2)) for target, end in k.pauses for c in calls
                            if c.method in ("sendMessage", "editMessageText") and k.mono < c.t < end - 0.05
                            and target in ("*", str(c.chat_id))]
        assert not early_after_kill, (early_after_kill, replay_hint(name))
    live_across_kills = _assert_live_edited_across_kills(rows, kills, name)
    edits = [r_ for r_ in rows if r_["op"] == "edit" and r_["state"] == "sent"]
    delays = [r_["done_at"] - r_["created"] for r_ in rows if r_["state"] == "sent" and r_["done_at"] <= stopped_at]
    return figure("telegram_faults", name, faults=dict(applied), alerts=len(rows), delivered=len(sent),
                  edits=len(edits), superseded=states.get("superseded", 0), failed_permanent=states.get("failed", 0),
                  duplicates=duplicates, ambiguous=ambiguous, accepted_unanswered=accepted, answered_429=floods,
                  live_across_kills=live_across_kills, pauses_across_kills=sum(len(k.pauses) for k in kills),
                  sent_after_stop=drain.stats.sent + drain.stats.edits, storm_s=round(storm_s, 1),
                  delay_p50_ms=round(percentile(delays, 50) * 1e3), delay_p99_ms=round(percentile(delays, 99) * 1e3))


def _assert_live_edited_across_kills(rows: list[dict], kills: list[_AtKill], name: str) -> int:
    """Each live message running at a kill: the rows after the kill for its asset (or the market report), up
    to its final edit, are edits of that message; returns how many such messages had rows after a kill."""
    carried = 0
    for k in kills:
        for owner, key in k.live.items():
            prefix = "market:" if owner == "market" else f"cascade:{owner}:"
            later = [r_ for r_ in rows if r_["id"] > k.last_row and (r_["live_key"] or "").startswith(prefix)]
            for r_ in later:
                assert r_["live_key"] == key and r_["op"] == "edit", (owner, key, r_["live_key"], r_["op"],
                                                                      replay_hint(name))
                if "over</b>" in r_["body"] or "continues in the market-wide report" in r_["body"]:
                    break
            carried += bool(later)
    return carried


@pytest.mark.fault
@pytest.mark.process
@pytest.mark.timeout(150)
def test_telegram_storms_timeouts_errors_and_kills_lose_no_alert(tmp_path, namespace, monkeypatch):
    _telegram_faults(tmp_path, namespace, monkeypatch, "telegram/default", scaled(12, 80, False), 15.0)


@pytest.mark.fault_heavy
@pytest.mark.process
@pytest.mark.timeout(600)
def test_telegram_faults_heavy(tmp_path, namespace, monkeypatch):
    _telegram_faults(tmp_path, namespace, monkeypatch, "telegram/heavy", scaled(12, 80, True), 120.0)
