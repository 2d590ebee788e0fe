"""The pre-cascade build-up and the live totals survive a kill of the alert actor.

A cascade takes in the liquidations of the ``buildup_s`` before it starts;
those, and every liquidation counted into a running cascade, are stored in
the transaction of the signal burst that brought them (one signal here,
``handle``). Each test runs one script of signals
twice on a fresh outbox file, once straight through and once with the
router dropped (or its process SIGKILLed) in the middle, and compares what
the chat gets.
"""
from __future__ import annotations

import io
import multiprocessing
import os
import signal
import sqlite3
import subprocess
import time
from pathlib import Path

import msgspec
import pytest

from engine.alerts.outbox import Outbox
from engine.alerts.router import AlertRouter
from engine.bus import Publisher
from engine.config import ConfigError, loads
from tests.fakes.botapi import FakeBotAPI
from tests.conftest import wait_until
from tests.harness.alerts import running_alert_actor, write_alert_config
from tests.harness.toml import toml_table
from tests.test_alert_router import alerts_cfg, casc, liq

CHAT = 7


def router_on(path, now, **cfg):
    """A fresh outbox connection and router on ``path``, as the actor builds them at start."""
    ob = Outbox(path)
    return ob, AlertRouter(alerts_cfg(**cfg), ob, [CHAT], console_out=io.StringIO(), clock=lambda: now)


def buildup(r, t0, t1, asset="BTC"):
    """One liquidation a second before any cascade signal (the build-up)."""
    for t in range(t0, t1):
        r.handle(liq(asset=asset, t=t, usd=10_000.0 + t, side="long" if t % 3 else "short",
                     venue=("binance", "bybit", "okx")[t % 3], price=50_000.0 - t), now=t)


def cascade(r, t0, t1, end=True):
    """A running cascade with a liquidation each second, then its end."""
    for t in range(t0, t1):
        r.handle(casc("WARNING", 6.0, t, price=50_000.0 - 5 * t), now=t)
        r.handle(liq(t=t, usd=20_000.0 + t, venue="gate", price=50_000.0 - 5 * t), now=t + 0.1)
        r.tick(now=t + 0.5)
    if end:
        r.handle(casc("NONE", 1.0, t1, prev="WARNING"), now=t1)


def chat_bodies(ob):
    """(op, body) of every cascade row to the chat, in order."""
    return [(x["op"], x["body"]) for x in ob.rows() if (x["live_key"] or "").startswith("cascade:")]


def totals(r, asset="BTC"):
    st = r.tracker.states[asset]
    return (st.n_long, st.n_short, round(st.long_usd, 2), round(st.short_usd, 2), dict(st.venues),
            dict(st.minutes), st.started_ns, st.first_price)


def straight(path, script):
    ob, r = router_on(path, 0.0)
    for step in script:
        step(r)
    out = chat_bodies(ob), r
    return out, ob


# -- the build-up across a restart -------------------------------------------
def test_a_cascade_right_after_a_restart_counts_the_build_up_as_without_one(tmp_path):
    (want, r0), ob0 = straight(tmp_path / "a.sqlite3", [lambda r: buildup(r, 0, 20),
                                                        lambda r: cascade(r, 20, 30, end=False)])
    want_totals = totals(r0)
    assert want_totals[0] + want_totals[1] > 10, "the build-up was not taken in: the test shows nothing"
    ob0.close()

    path = tmp_path / "b.sqlite3"
    ob, r = router_on(path, 0.0)
    buildup(r, 0, 20)
    ob.close()                                   # killed: no tick, no later signal
    ob, r = router_on(path, 20.0)
    assert len(r.tracker.buildup("BTC")) == 20
    cascade(r, 20, 30, end=False)
    assert totals(r) == want_totals
    assert chat_bodies(ob) == want
    ob.close()


def test_the_end_summary_counts_the_build_up_across_a_restart_after_the_start(tmp_path):
    (want, _), ob0 = straight(tmp_path / "a.sqlite3", [lambda r: buildup(r, 0, 20), lambda r: cascade(r, 20, 30)])
    ob0.close()
    assert any("cascade over" in b for _, b in want)

    path = tmp_path / "b.sqlite3"
    ob, r = router_on(path, 0.0)
    buildup(r, 0, 20)
    cascade(r, 20, 24, end=False)
    assert ob.db.execute("SELECT COUNT(*) FROM live_buildup WHERE asset='BTC'").fetchone()[0] == 0, \
        "the build-up a cascade took in is still stored: a restart would count it twice"
    ob.close()
    ob, r = router_on(path, 24.0)
    cascade(r, 24, 30)
    assert chat_bodies(ob) == want
    ob.close()


def test_the_build_up_is_bounded_by_buildup_s_and_pruned_as_it_ages(tmp_path):
    ob, r = router_on(tmp_path / "a.sqlite3", 0.0, buildup_s=30.0)
    buildup(r, 0, 10, asset="ETH")               # a quiet asset: nothing after t=9
    buildup(r, 0, 200)
    r.tick(now=200.0)
    stored = ob.db.execute("SELECT asset, MIN(ts), COUNT(*) FROM live_buildup GROUP BY asset").fetchall()
    assert [a for a, _, _ in stored] == ["BTC"], "the quiet asset's build-up never aged out"
    [(_, oldest, n)] = stored
    newest = liq(t=199).ts_exchange
    assert newest - oldest <= 30e9 and n == 31
    assert [q.ts_exchange for q in r.tracker.buildup("BTC")] == [liq(t=t).ts_exchange for t in range(169, 200)]
    assert r.tracker.buildup("ETH") == []
    ob.close()
    ob, r = router_on(tmp_path / "a.sqlite3", 200.0, buildup_s=30.0)
    assert len(r.tracker.buildup("BTC")) == 31 and r.tracker.buildup("ETH") == []
    ob.close()


def test_an_unreadable_build_up_row_is_counted_and_dropped(tmp_path):
    ob, r = router_on(tmp_path / "a.sqlite3", 0.0)
    buildup(r, 0, 3)
    ob.db.execute("INSERT INTO live_buildup (asset, ts, body) VALUES ('BTC', ?, x'c1')", (liq(t=3).ts_exchange,))
    ob.close()
    ob, r = router_on(tmp_path / "a.sqlite3", 4.0)
    assert r.live.unreadable == 1 and len(r.tracker.buildup("BTC")) == 3
    ob.close()


def test_buildup_s_is_configurable_and_checked():
    assert loads("[alerts]\nbuildup_s = 15.0\n").alerts.buildup_s == 15.0
    with pytest.raises(ConfigError, match="alerts.buildup_s"):
        loads("[alerts]\nbuildup_s = 0\n")


# -- the live totals across a SIGKILL ----------------------------------------------
def last_liquidations(r):
    """Three liquidations within a second, no tick or other signal between them."""
    for i in range(3):
        r.handle(liq(t=15, usd=11_111.0, side="short", venue="hyperliquid", price=49_900.0), now=15.2 + i / 10)


def _killed_after_a_liquidation(path: str) -> None:
    """Child: build-up, a cascade, one more liquidation, then SIGKILL before any tick or other signal."""
    ob, r = router_on(path, 0.0)
    buildup(r, 0, 10)
    cascade(r, 10, 15, end=False)
    last_liquidations(r)
    os.kill(os.getpid(), signal.SIGKILL)


def test_a_sigkill_between_a_liquidation_and_the_next_flush_loses_none_of_the_totals(tmp_path):
    (want, r0), ob0 = straight(tmp_path / "a.sqlite3", [lambda r: buildup(r, 0, 10),
                                                        lambda r: cascade(r, 10, 15, end=False), last_liquidations,
                                                        lambda r: cascade(r, 16, 20)])
    ob0.close()

    path = tmp_path / "b.sqlite3"
    child = multiprocessing.get_context("fork").Process(target=_killed_after_a_liquidation, args=(str(path),))
    child.start()
    child.join(20)
    assert child.exitcode == -signal.SIGKILL
    ob, r = router_on(path, 16.0)
    st = r.tracker.states["BTC"]
    assert st.venues.get("hyperliquid") == 33_333.0, "a liquidation counted before the kill was lost"
    cascade(r, 16, 20)
    summary = [b for _, b in chat_bodies(ob) if "cascade over" in b]
    assert summary == [b for _, b in want if "cascade over" in b] and len(summary) == 1
    ob.close()


def test_each_counted_liquidation_is_committed_with_the_state_it_changed(tmp_path):
    ob, r = router_on(tmp_path / "a.sqlite3", 0.0)
    r.handle(casc("WATCH", 4.0, 0), now=0.0)
    for i in range(5):
        r.handle(liq(t=0, usd=1_000.0 * (i + 1)), now=0.1)          # no row, no tick
        other = Outbox(tmp_path / "a.sqlite3")                       # what a restarted actor would read
        body = other.db.execute("SELECT body FROM live_cascades WHERE name='asset:BTC'").fetchone()[0]
        other.close()
        assert msgspec.msgpack.decode(body)["long_usd"] == 1_000.0 * (i + 1) * (i + 2) / 2
    assert not ob.db.in_transaction
    ob.close()


# -- the real actor process ----------------------------------------------------------------------------
TOKEN = "8282:buildup-SECRET"


def _stored(db: Path, asset: str) -> int:
    """Build-up rows the actor committed for ``asset`` (0 before it created its tables)."""
    try:
        con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)
        try:
            return con.execute("SELECT COUNT(*) FROM live_buildup WHERE asset=?", (asset,)).fetchone()[0]
        finally:
            con.close()
    except sqlite3.OperationalError:
        return 0


@pytest.mark.process
def test_a_sigkilled_actor_counts_the_build_up_in_the_cascade_that_starts_after_its_restart(tmp_path, namespace):
    db = tmp_path / "state" / "alerts-outbox.sqlite3"
    with FakeBotAPI(token=TOKEN) as api:
        cfg, endpoint = write_alert_config(tmp_path, namespace, toml_table("alerts", kinds=["cascade"]) + toml_table(
            "alerts.telegram", api_base_url=api.base_url, chat_ids=[CHAT], startup_notice=False, per_chat_per_s=50.0))
        pub = Publisher(endpoint, "test", bind=True)

        def settle():
            """Until the actor's subscription is live: ETH liquidations (at t=0, so nothing ages) until one more
            is stored."""
            before, deadline = _stored(db, "ETH"), time.monotonic() + 20
            while _stored(db, "ETH") <= before:
                assert time.monotonic() < deadline, "the actor never stored a liquidation"
                pub.publish(liq(asset="ETH", t=0, usd=1_000.0))
                time.sleep(0.1)

        log = open(tmp_path / "actor.log", "w")
        with running_alert_actor(cfg, TOKEN, "WARNING", stop=signal.SIGKILL, wait_s=10,   # at once: nothing after
                                 stdout=subprocess.DEVNULL, stderr=log) as first:       # the build-up ran
            settle()
            for t in range(1, 11):
                pub.publish(liq(t=t, usd=10_000.0 * t, venue=("binance", "bybit")[t % 2]))
            wait_until(lambda: _stored(db, "BTC") == 10, message="the build-up stored")
        with running_alert_actor(cfg, TOKEN, "WARNING", stdout=subprocess.DEVNULL, stderr=log) as second:
            settle()
            pub.publish(casc("WARNING", 6.0, 11))
            assert api.wait_for(lambda: any("LIQUIDATION CASCADE" in m.raw for m in api.sent(CHAT)), 10)
            [live] = [m for m in api.sent(CHAT) if "LIQUIDATION CASCADE" in m.raw]
        log.close()
        pub.close()
    assert first.returncode == -signal.SIGKILL and second.returncode == 0
    # the ten build-up liquidations (t = 1..10 s, inside the cascade's 30 s window), as without a restart
    assert "whole cascade: 10 seen" in live.text and "10 longs" in live.text, live.text
    assert "Total: $550,000" in live.text and "binance $300.0k, bybit $250.0k" in live.text, live.text

