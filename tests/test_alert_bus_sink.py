"""The ZeroMQ sink: alerts as delivered (after dedup, cooldowns, live-cascade folding), as `alert` signals."""
from __future__ import annotations

import io
import signal
import subprocess
import time

import msgspec
import pytest
import zmq

from engine import signals
from engine.alerts.bus_sink import Alert, AlertBus, decode_alert
from engine.alerts.outbox import Outbox
from engine.alerts.router import AlertRouter
from engine.bus import Publisher
from engine.config import ConfigError, loads
from tests.harness.alerts import start_alert_actor, write_alert_config
from tests.harness.toml import toml_table
from tests.test_alert_router import alerts_cfg, casc, liq


def test_router_hands_over_what_chats_get_with_tier_and_held_chats(tmp_path):
    got: list[Alert] = []
    ob = Outbox(tmp_path / "o.sqlite3")
    r = AlertRouter(alerts_cfg(max_per_hour=1, telegram=msgspec.structs.replace(alerts_cfg().telegram,
                                                                                edit_interval_s=0.0)),
                    ob, [1, 2], console_out=io.StringIO(), clock=lambda: 0.0, on_alert=got.append)
    r.gate.admit(2, "normal", 0.0)                             # chat 2 has spent its budget
    r.handle(liq(asset="ETH", cls="large", usd=200_000), now=1)
    r.handle(liq(asset="ETH", cls="large", usd=200_000), now=2)   # cooldown: nobody gets it, not published
    r.handle(liq(asset="ETH", cls="retail", usd=2_000), now=3)    # below alert size
    [a] = got
    assert (a.action, a.source, a.tier, a.asset, a.chats, a.held) == ("new", "liquidation", "normal", "ETH", [1], [2])
    assert "ETH" in a.text and "<b>" not in a.text and "<b>" in a.html and a.reason == "new"
    for t, level in enumerate(("WATCH", "WARNING", "NONE"), start=10):
        r.handle(casc(level, 5.0, t, asset="SOL", prev="WATCH" if level != "WATCH" else "NONE"), now=t)
        r.tick(now=t + 0.5)
    live = [(a.action, a.live_key) for a in got[1:] if a.source == "cascade" and a.live_key]
    assert [x[0] for x in live][0] == "new" and live[-1][0] == "end" and {k for _, k in live} == {live[0][1]}
    assert any(a.action == "update" for a in got)
    ob.close()


def test_config_switch_and_non_loopback_endpoint_needs_curve():
    assert loads("").alerts.bus.enabled is False
    assert loads('[alerts.bus]\nenabled = true\nendpoint = "ipc:///tmp/x.sock"').alerts.bus.enabled
    with pytest.raises(ConfigError, match="alerts.bus.endpoint"):
        loads('[alerts.bus]\nenabled = true\nendpoint = "tcp://0.0.0.0:7301"')


def test_alert_bus_publishes_sequenced_alert_topics(tmp_path):
    endpoint = f"ipc://{tmp_path}/alerts.sock"
    sink = AlertBus(endpoint)
    sub = zmq.Context.instance().socket(zmq.SUB)
    sub.connect(endpoint)
    sub.setsockopt(zmq.SUBSCRIBE, b"alert.")
    try:
        deadline = time.monotonic() + 10
        while not sub.poll(50):                  # slow joiner: publish until the subscription is in place
            assert time.monotonic() < deadline
            sink.publish(Alert(asset="WARM", action="new", source="test", text="warm-up"))
        while sub.poll(50):
            sub.recv_multipart()
        for i in range(3):
            sink.publish(Alert(asset="BTC", action="new", source="liquidation", text=f"#{i}", chats=[i]))
        frames = [sub.recv_multipart() for _ in range(3)]
    finally:
        sub.close(0)
        sink.close()
    assert [f[0] for f in frames] == [b"alert.BTC"] * 3
    alerts = [decode_alert(f[1]) for f in frames]
    assert [a.seq for a in alerts] == [1, 2, 3] and [a.text for a in alerts] == ["#0", "#1", "#2"]
    assert all(a.ts_computed > 0 and a.ts_published >= a.ts_computed for a in alerts)
    raw = msgspec.msgpack.decode(frames[0][1])          # a subscriber with no Undertow code
    assert raw["kind"] == "alert" and raw["chats"] == [0] and raw["v"] == 1
    assert signals.decode(frames[1][1]) == alerts[1]     # the bus's own decoder (Subscriber, `undertow tail`) knows it


@pytest.mark.process
def test_actor_process_republishes_its_alerts_to_a_plain_zmq_subscriber(tmp_path, namespace):
    alerts_ep = f"ipc://{tmp_path}/alerts.sock"
    cfg, bus = write_alert_config(tmp_path, namespace, toml_table("alerts.bus", enabled=True, endpoint=alerts_ep)
                                  + toml_table("alerts.telegram", edit_interval_s=0.2))
    pub = Publisher(bus, "test", bind=True)
    sub = zmq.Context.instance().socket(zmq.SUB)        # what a user's own program does: pyzmq + msgpack only
    sub.connect(alerts_ep)
    sub.setsockopt(zmq.SUBSCRIBE, b"alert.")
    received: list[dict] = []

    def drain(timeout_s: float) -> None:
        end = time.monotonic() + timeout_s
        while time.monotonic() < end:
            if sub.poll(20):
                topic, payload = sub.recv_multipart()
                received.append({"topic": topic.decode(), **msgspec.msgpack.decode(payload)})

    with open(tmp_path / "actor.log", "w") as log, \
            start_alert_actor(cfg, stdout=subprocess.DEVNULL, stderr=log) as actor:
        try:
            usd = 200_000.0
            deadline = time.monotonic() + 30
            while not received:               # actor start-up and both subscriptions: bigger each time, never deduped
                assert time.monotonic() < deadline, (tmp_path / "actor.log").read_text()[-2000:]
                pub.publish(liq(asset="WARM", cls="large", usd=usd))
                usd *= 2
                drain(0.3)
            drain(0.5)
            received.clear()
            pub.publish(liq(asset="ETH", cls="large", usd=300_000))
            pub.publish(liq(asset="ETH", cls="large", usd=300_000))     # within the cooldown: not an alert
            pub.publish(liq(asset="ETH", cls="retail", usd=1_000))      # below alert size
            for t, level in enumerate(("WATCH", "WARNING")):
                pub.publish(casc(level, 4.0 + t, t, asset="SOL", prev="NONE" if t == 0 else "WATCH"))
                drain(0.4)
            pub.publish(casc("NONE", 1.0, 3, asset="SOL", prev="WARNING"))
            drain(1.5)
        finally:
            actor.send_signal(signal.SIGTERM)
            actor.wait(20)
            sub.close(0)
            pub.close()
    assert actor.returncode == 0
    eth = [a for a in received if a["asset"] == "ETH"]
    assert len(eth) == 1 and eth[0]["topic"] == "alert.ETH" and eth[0]["source"] == "liquidation", eth
    sol = [(a["action"], a["reason"]) for a in received if a["asset"] == "SOL"]
    assert sol[0] == ("new", "cascade started") and sol[-1][0] == "end", sol
    assert ("new", "level rose") in sol, sol           # escalation WATCH -> WARNING is its own alert
    seqs = [a["seq"] for a in received if a["topic"] == "alert.SOL"]
    assert seqs == list(range(seqs[0], seqs[0] + len(seqs))), "gaps in the alert topic's sequence"
