"""End to end: `undertow demo` (simulator + all six venues + engine) and `undertow tail --json` on its bus."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from engine import shm

pytestmark = pytest.mark.process
ROOT = Path(__file__).resolve().parents[1]


def test_demo_prints_a_cascade_alert_and_tail_json_shows_signals(tmp_path, namespace):
    cfg = tmp_path / "demo.toml"
    cfg.write_text(f"""
[engine]
namespace = "{namespace}"
run_dir = "{tmp_path}"
ring_capacity = 16384

[supervisor]
health_port = 0

[bus]
endpoint = "ipc://{tmp_path}/bus.sock"
heartbeat_interval_s = 0.5

[simulator]
seed = 7
first_cascade_after_s = 5.0
""")
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    demo = subprocess.Popen([sys.executable, "-m", "engine.cli", "demo", "--config", str(cfg), "--duration", "45"],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    # tail finds the demo's bus through the run directory of the same config
    tail = subprocess.Popen([sys.executable, "-m", "engine.cli", "tail", "--json", "--config", str(cfg),
                             "--duration", "40"], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=env)
    try:
        t_out, t_err = tail.communicate(timeout=90)
        d_out, d_err = demo.communicate(timeout=90)
    finally:
        for p in (tail, demo):
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
                p.wait(20)
    assert demo.returncode == 0, d_err[-2000:]
    assert "LIQUIDATION CASCADE" in d_out, d_out[-3000:] + d_err[-2000:]
    lines = [json.loads(x) for x in t_out.splitlines() if x.strip()]
    kinds = {x["kind"] for x in lines}
    assert {"liquidation", "cascade", "heartbeat"} <= kinds, (kinds, t_err[-1000:])
    for x in lines:
        for key in ("kind", "asset", "seq", "ts_exchange", "ts_recv", "ts_computed", "ts_published", "v"):
            assert key in x, (key, x)
        assert x["topic"] == f"{x['kind']}.{x['asset']}"
    liqs = [x for x in lines if x["kind"] == "liquidation"]
    for liq in liqs:
        assert liq["side"] in ("long", "short") and liq["notional_usd"] > 0
        assert liq["ts_recv"] <= liq["ts_computed"] <= liq["ts_published"] <= liq["ts_received"]
    # every venue with a public liquidation stream (Hyperliquid has none) is seen on the bus
    venues = {x["venue"] for x in liqs}
    assert {"binance", "bybit", "okx", "gate", "bitget"} <= venues, venues
    # periodic coverage per venue: capped streams (Binance forceOrder) are marked, Hyperliquid and spot have none
    cov = {x["venue"]: x for x in lines if x["kind"] == "coverage"}
    assert set(cov) == {"binance", "bybit", "okx", "gate", "bitget", "hyperliquid", "binance_spot"}, set(cov)
    assert cov["binance"]["capped"] and not cov["bybit"]["capped"]
    assert not cov["hyperliquid"]["liquidations_available"] and cov["bybit"]["liquidations"] > 0
    assert not cov["binance_spot"]["liquidations_available"]     # spot has no liquidations at all
    assert all(c["connected_share"] > 0.5 and c["malformed"] == 0 for c in cov.values()), cov
    assert shm.list_segments(namespace) == [], "the demo left shared memory behind"
