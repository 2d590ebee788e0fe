"""`undertow demo` with TELEGRAM_BOT_TOKEN set and api_base_url at the local Bot API: start-up notice and live cascades."""
from __future__ import annotations

import subprocess

import pytest

from tests.fakes.botapi import FakeBotAPI
from tests.harness.cli import ROOT, cli_env
from tests.harness.demo import demo_argv, write_demo_config
from tests.harness.toml import toml_table

# about 35 s (engine start-up + a 25 s demo): over the default run's per-file budget, so on demand (-m soak)
pytestmark = [pytest.mark.process, pytest.mark.soak]
TOKEN = "31337:demo-SECRET-token"
CHAT = 4242


def test_demo_sends_startup_notice_and_live_edited_cascades_to_telegram(tmp_path, namespace):
    with FakeBotAPI(token=TOKEN) as api:
        cfg = write_demo_config(tmp_path, namespace, toml_table(
            "simulator", seed=7, first_cascade_after_s=3.0, cascade_every_s=8.0) + toml_table(
            "alerts.telegram", api_base_url=api.base_url, chat_ids=[CHAT], per_chat_per_s=20.0, edit_interval_s=0.5),
            heartbeat_interval_s=None)
        demo = subprocess.run(demo_argv(cfg, 25), cwd=ROOT, capture_output=True, text=True,
                              env=cli_env(TELEGRAM_BOT_TOKEN=TOKEN), timeout=90)
        assert demo.returncode == 0, demo.stderr[-2000:]
        sent = api.sent(CHAT)
        assert sent and "Undertow started" in sent[0].text, [m.text[:80] for m in sent]
        live = [m for m in sent if "LIQUIDATION CASCADE" in m.text or "cascade over" in m.text]
        assert live, [m.text[:80] for m in sent]
        assert any(m.edits for m in live), "the cascade message was never edited in place"
        assert api.unauthorized == 0 and api.early_sends == 0
        assert TOKEN not in demo.stdout + demo.stderr and TOKEN.split(":")[1] not in demo.stdout + demo.stderr
        assert (tmp_path / "state" / "alerts-outbox.sqlite3").exists()
