"""The alert actor routes what it drains from the bus in bursts, one SQLite transaction per burst.

A burst commits its outbox rows and every state it changed (cascade totals,
build-up, policy) together: routing a script in bursts stores and sends the
same as routing it one signal at a time, a kill inside a burst loses that
burst only and nothing of it was visible to the delivery worker or published
on the ZeroMQ sink, and the actor's drain takes what the bus already holds
without waiting for more.
"""
from __future__ import annotations

import io
import multiprocessing
import os
import signal
import time

import msgspec
import pytest

from actors.alerts import drain
from engine.alerts.outbox import Outbox
from engine.alerts.router import AlertRouter
from engine.bus import Publisher, Subscriber
from tests.test_alert_buildup import CHAT, buildup, cascade, chat_bodies, totals
from tests.test_alert_router import alerts_cfg, casc, liq


class StepClock:
    """A clock that moves 50 ms each time it is read: the same times whether signals come alone or in bursts."""

    def __init__(self, t: float = 0.0):
        self.t = t

    def __call__(self) -> float:
        self.t += 0.05
        return self.t


def script() -> list:
    """Build-up of two assets, a BTC cascade counting liquidations, a large (console) alert, the cascade's end."""
    out = []
    for t in range(10):
        out += [liq(t=t, usd=10_000.0 + t, venue=("binance", "bybit", "okx")[t % 3], side="long" if t % 3 else "short"),
                liq(asset="ETH", t=t, usd=5_000.0 + t)]
    for t in range(10, 16):
        out += [casc("WARNING", 6.0, t, price=50_000.0 - t)] + [liq(t=t, usd=20_000.0 + i, venue="gate")
                                                                for i in range(5)]
    out += [liq(asset="SOL", cls="large", usd=300_000.0, t=16), casc("NONE", 1.0, 17, prev="WARNING")]
    return out


def route(path, sigs, burst: int, published: list | None = None):
    """Route ``sigs`` in bursts of ``burst`` signals on a fresh router; return (outbox, router, commits)."""
    ob = Outbox(path)
    commits = []
    ob.db.set_trace_callback(lambda sql: commits.append(sql) if sql.strip().upper() == "COMMIT" else None)
    r = AlertRouter(alerts_cfg(), ob, [CHAT], console_out=io.StringIO(), clock=StepClock(),
                    on_alert=(published.append if published is not None else None))
    for i in range(0, len(sigs), burst):
        r.handle_burst(sigs[i:i + burst])
    return ob, r, commits


def stored(ob) -> dict:
    """Everything a restarted actor would read back, as plain values."""
    live = {name: msgspec.msgpack.decode(body) for name, body in ob.db.execute("SELECT name, body FROM live_cascades")}
    for st in live.values():
        st.pop("chats", None)   # a set: its msgpack order is arbitrary
    return {"live": live,
            "buildup": ob.db.execute("SELECT asset, ts, body FROM live_buildup ORDER BY id").fetchall(),
            "dedup": ob.db.execute("SELECT * FROM dedup ORDER BY key").fetchall(),
            "rows": [(x["sink"], x["target"], x["op"], x["live_key"], x["body"], x["state"]) for x in ob.rows()]}


@pytest.mark.parametrize("burst", [7, 64, 1000])
def test_bursts_store_and_send_the_same_as_one_signal_at_a_time(tmp_path, burst):
    sigs = script()
    one_pub, many_pub = [], []
    ob1, r1, commits1 = route(tmp_path / "one.sqlite3", sigs, 1, one_pub)
    obn, rn, commitsn = route(tmp_path / "many.sqlite3", sigs, burst, many_pub)
    want = stored(ob1)
    assert any("cascade over" in row[4] for row in want["rows"]) and want["buildup"], "the script shows nothing"
    assert stored(obn) == want
    assert totals(rn) == totals(r1) and rn.stats.received == r1.stats.received == len(sigs)
    assert [(a.action, a.source, a.text) for a in many_pub] == [(a.action, a.source, a.text) for a in one_pub]
    assert len(commits1) == len(sigs)                       # every liquidation wrote something
    assert len(commitsn) == -(-len(sigs) // burst)           # one commit per burst
    assert rn.stats.bursts == len(commitsn) and rn.stats.burst_max == min(burst, len(sigs))
    for ob in (ob1, obn):
        ob.close()


def test_a_burst_of_heartbeats_only_writes_nothing(tmp_path):
    from engine.signals import Heartbeat
    ob, r, commits = route(tmp_path / "a.sqlite3", [Heartbeat(asset="x"), Heartbeat(asset="y")], 10)
    assert commits == [] and r.stats.bursts == 0 and r.stats.received == 0
    ob.close()


class KillOnLine(io.StringIO):
    """Console output that SIGKILLs its process when a line names ``marker`` (mid-burst: before the commit)."""

    def __init__(self, marker: str):
        super().__init__()
        self.marker = marker

    def write(self, s: str) -> int:
        if self.marker in s:
            os.kill(os.getpid(), signal.SIGKILL)
        return super().write(s)


def _killed_in_second_burst(path: str, published: str) -> None:
    """Child: one burst committed, then SIGKILLed while routing the second, after its first signals."""
    ob = Outbox(path)
    out = open(published, "a")

    def publish(alert):
        out.write(f"{alert.action} {alert.source}\n")
        out.flush()
    r = AlertRouter(alerts_cfg(), ob, [CHAT], console_out=KillOnLine("DOGE"), clock=StepClock(), on_alert=publish)
    buildup(r, 0, 10)                       # one transaction each
    cascade(r, 10, 12, end=False)
    r.handle_burst([casc("WARNING", 6.0, 12, asset="ADA"), casc("WARNING", 6.0, 12),
                    liq(t=12, usd=77_777.0, venue="bitget"), liq(asset="ETH", t=12, usd=1_234.0),
                    liq(asset="DOGE", cls="large", usd=400_000.0, t=12), liq(t=12, usd=88_888.0, venue="bitget")])


def test_a_kill_inside_a_burst_loses_that_burst_only_and_nothing_of_it_got_out(tmp_path):
    path, published = tmp_path / "a.sqlite3", tmp_path / "published.txt"
    ob, r, _ = route(tmp_path / "want.sqlite3", [], 1)
    buildup(r, 0, 10)
    cascade(r, 10, 12, end=False)
    want = totals(r), chat_bodies(ob)
    ob.close()

    child = multiprocessing.get_context("fork").Process(target=_killed_in_second_burst,
                                                        args=(str(path), str(published)))
    child.start()
    child.join(20)
    assert child.exitcode == -signal.SIGKILL
    ob = Outbox(path)
    r = AlertRouter(alerts_cfg(), ob, [CHAT], console_out=io.StringIO(), clock=StepClock(12.0))
    assert r.cascades_resumed == 1
    assert (totals(r), chat_bodies(ob)) == want, "the killed burst was partly stored, or an earlier one lost"
    assert "bitget" not in r.tracker.states["BTC"].venues and "ADA" not in r.tracker.states
    assert not any(q.notional_usd == 1_234.0 for q in r.tracker.buildup("ETH"))
    lines = published.read_text().splitlines()
    assert lines and lines[0] == "new cascade", "the committed bursts' alerts were not published"
    assert len(lines) == len([b for _, b in want[1]]), "an alert of the killed burst was published"
    ob.close()


class PeekOnLine(io.StringIO):
    """Console output that, when a line names ``marker``, reads the outbox on a second connection (the delivery
    worker's view) in the middle of the burst."""

    def __init__(self, path, marker: str, published: list):
        super().__init__()
        self.path, self.marker, self.seen, self.published = path, marker, None, published

    def write(self, s: str) -> int:
        if self.marker in s:
            other = Outbox(self.path)
            self.seen = (other.lanes(), other.next_row("telegram", str(CHAT)), other.rows(), len(self.published))
            other.close()
        return super().write(s)


def test_the_delivery_worker_sees_no_row_of_a_burst_before_its_commit(tmp_path):
    path = tmp_path / "a.sqlite3"
    ob = Outbox(path)
    published = []
    peek = PeekOnLine(path, "DOGE", published)
    r = AlertRouter(alerts_cfg(), ob, [CHAT], console_out=peek, clock=StepClock(), on_alert=published.append)
    r.handle_burst([casc("WARNING", 6.0, 0), liq(t=0, usd=5_000.0), liq(asset="DOGE", cls="large", usd=400_000.0)])
    assert peek.seen is not None and peek.seen[:3] == ([], None, []), \
        "rows of an uncommitted burst were visible to another connection"
    assert peek.seen[3] == 0, "the cascade started earlier in the burst was published before the commit"
    assert published and published[0].source == "cascade"
    rows = Outbox(path).rows()
    assert [x["live_key"].split(":")[0] for x in rows if x["live_key"]] == ["cascade"] and len(rows) >= 2
    assert any("DOGE" in x["body"] for x in rows)
    ob.close()


def test_a_sink_that_raises_rolls_the_whole_burst_back(tmp_path):
    path = tmp_path / "a.sqlite3"
    ob = Outbox(path)

    def broken(alert):
        raise RuntimeError("sink down")
    r = AlertRouter(alerts_cfg(), ob, [CHAT], console_out=io.StringIO(), clock=StepClock(), on_alert=broken)
    with pytest.raises(RuntimeError):
        r.handle_burst([liq(t=0, usd=1_000.0), casc("WARNING", 6.0, 0), liq(t=0, usd=2_000.0)])
    assert not ob.db.in_transaction and r._unpublished == []
    other = Outbox(path)
    assert other.rows() == [] and other.db.execute("SELECT COUNT(*) FROM live_cascades").fetchone()[0] == 0
    assert other.db.execute("SELECT COUNT(*) FROM live_buildup").fetchone()[0] == 0
    other.close()
    ob.close()


# -- drain: what the bus already holds ----------------------------------------------------------------------------
@pytest.fixture
def bus(tmp_path):
    endpoint = f"ipc://{tmp_path}/bus.sock"
    pub = Publisher(endpoint, "test")
    sub = Subscriber(endpoint, ["liquidation."])
    while sub.recv(timeout_ms=50) is None:      # slow joiner
        pub.publish(liq(asset="WARM"))
    while sub.recv(timeout_ms=50) is not None:
        pass
    yield pub, sub
    pub.close()
    sub.close()


def _queued(pub, sub, n: int):
    """Publish ``n`` liquidations (usd = 1..n) and return the first as received, the others queued behind it."""
    for i in range(n):
        pub.publish(liq(usd=float(i + 1)))
    first = sub.recv(timeout_ms=2000)
    time.sleep(0.3)                               # the rest reach the SUB queue
    return first.signal


def test_drain_takes_what_is_queued_up_to_max_n_in_order(bus):
    pub, sub = bus
    first = _queued(pub, sub, 300)
    got = drain(sub, first, max_n=256, budget_s=1.0)
    assert [s.notional_usd for s in got] == [float(i + 1) for i in range(256)]
    rest = drain(sub, sub.recv(timeout_ms=100).signal, max_n=256, budget_s=1.0)
    assert [s.notional_usd for s in rest] == [float(i + 1) for i in range(256, 300)]


def test_drain_never_waits_and_stops_at_its_time_budget(bus):
    pub, sub = bus
    first = _queued(pub, sub, 1)
    t0 = time.monotonic()
    assert drain(sub, first, max_n=256, budget_s=1.0) == [first]    # nothing queued: returns at once
    assert time.monotonic() - t0 < 0.5
    first = _queued(pub, sub, 50)
    assert drain(sub, first, max_n=256, budget_s=0.0) == [first]    # budget spent: the rest stays queued
    assert len(drain(sub, sub.recv(timeout_ms=100).signal, max_n=256, budget_s=1.0)) == 49
