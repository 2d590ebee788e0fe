"""The alert actor as its own process: bus in, Telegram out (local Bot API), start-up notice, live cascade edits."""
from __future__ import annotations

import signal
import subprocess
import time

import pytest

from engine.bus import Publisher
from engine.signals import Cascade, Liquidation
from tests.fakes.botapi import FakeBotAPI
from tests.harness.alerts import start_alert_actor, write_alert_config
from tests.harness.toml import toml_table

pytestmark = pytest.mark.process
TOKEN = "8080:actor-SECRET-token"
CHAT = 77


def test_actor_process_sends_notice_then_one_live_cascade_message_with_edits(tmp_path, namespace):
    with FakeBotAPI(token=TOKEN) as api:
        cfg, endpoint = write_alert_config(tmp_path, namespace, toml_table(
            "alerts.telegram", api_base_url=api.base_url, chat_ids=[CHAT], per_chat_per_s=50.0, edit_interval_s=0.3))
        pub = Publisher(endpoint, "test", bind=True)
        with start_alert_actor(cfg, TOKEN, "DEBUG", stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True) as actor:
            try:
                assert api.wait_for(lambda: api.sent(CHAT), 20), "no start-up notice"
                time.sleep(0.5)  # the subscription is made before the notice is queued; let it settle
                t0 = time.time_ns()
                for i in range(30):
                    ts = t0 + i * 100_000_000
                    pub.publish(Liquidation(asset="ETH", venue="bybit" if i % 3 else "okx", symbol="ETHUSDT",
                                            side="long", price=3000 - i, qty=10, notional_usd=30_000,
                                            ts_exchange=ts, ts_recv=ts))
                    if i >= 5:
                        level = "WATCH" if i < 15 else "WARNING"
                        pub.publish(Cascade(asset="ETH", level=level, score=3 + i / 10, count=i, price=3000 - i,
                                            ts_exchange=ts, ts_recv=ts))
                    time.sleep(0.1)
                pub.publish(Cascade(asset="ETH", level="NONE", previous_level="WARNING", score=1.0,
                                    ts_exchange=time.time_ns()))
                assert api.wait_for(lambda: any("cascade over" in m.text for m in api.sent(CHAT)), 10), \
                    [m.text[:60] for m in api.sent(CHAT)]
            finally:
                actor.send_signal(signal.SIGTERM)
                out, err = actor.communicate(timeout=20)
        pub.close()
    assert actor.returncode == 0, err[-2000:]
    msgs = api.sent(CHAT)
    assert "Undertow started" in msgs[0].text
    live = [m for m in msgs if "cascade over" in m.text]
    assert len(live) == 1 and len(live[0].edits) >= 2
    assert "Venues (2)" in live[0].text and "30 longs" in live[0].text
    escalations = [m for m in msgs if "escalated" in m.text]
    assert len(msgs) == 3 and len(escalations) == 1, [m.text[:60] for m in msgs]
    assert TOKEN.split(":")[1] not in out + err
