"""The soak run (issue 7): `undertow run` against the simulator faster than real time, under a random fault
schedule, through ``bench/soak.py`` (which documents what it injects, samples and checks).

``test_soak_short`` (marker ``soak``) runs it for a few market minutes and asserts what must hold at any
length: every conservation equation exact (Binance trade ids ``sent - received == reported gap`` with no
unannounced hole, every ring reader caught up, the compute reader's records + lost == its cursor's advance
since the kill, the alerts outbox balanced), the supervisor and every feed alive throughout (only the
killed compute restarted after warm-up), and no process's descriptors growing without bound. The long run and its
memory slope are the script's job: ``python bench/soak.py --sim-hours 24 --speed 36``.

``test_market_speed_factor`` checks the simulator's speed knob the soak depends on.
"""
from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from engine.config import SimulatorConfig
from engine.simulator import start_in_thread

from .harness import BASE_SEED

ROOT = Path(__file__).resolve().parents[2]
FD_CEILING = 64      # per process; the supervisor holds ~21 and a feed ~23 in the measured runs


@pytest.mark.process
def test_market_speed_factor():
    """At speed 5 the market clock runs five times the wall clock (never faster; slower only when the
    machine cannot keep up, counted as clock skips)."""
    sim = start_in_thread(SimulatorConfig(speed=5.0, rate=50, venues=["binance"], symbols=["BTCUSDT"],
                                          first_cascade_after_s=1e9))
    try:
        t0, m0 = time.monotonic(), sim.sim.market.t
        time.sleep(2.0)
        wall, market = time.monotonic() - t0, sim.sim.market.t - m0
        skips = sim.counters().get("clock_skips", 0)
    finally:
        sim.stop()
    assert market <= 5.0 * wall + 0.1, (market, wall)
    assert market >= 5.0 * wall * (0.8 if not skips else 0.3), (market, wall, skips)


@pytest.mark.soak
@pytest.mark.timeout(600)
def test_soak_short(tmp_path):
    proc = subprocess.run([sys.executable, "bench/soak.py", "--sim-hours", "0.05", "--speed", "6", "--seed",
                           str(BASE_SEED), "--fault-every", "3", "--every", "2"], cwd=ROOT, capture_output=True,
                          text=True, timeout=540)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    assert lines, proc.stdout[-2000:] + proc.stderr[-2000:]
    f = json.loads(lines[-1])
    assert f["status"] == "completed", f["status"]
    assert f["engine_exit"] == 0
    trades = f["trade_ids"]["binance"]
    assert trades["sent"] - trades["received"] == trades["reported_gap"], trades
    assert trades["unannounced_holes"] == trades["misreported_holes"] == trades["reader_lost"] == 0, trades
    assert all(r["holds"] for r in f["rings"].values()), f["rings"]
    assert f["compute_reader_holds"], f["compute_reader"]
    assert f["outbox"]["holds"], f["outbox"]
    assert f["conservation_holds"]
    kills = f["faults_injected"].get("kill_compute", 0)
    # start-up on a loaded machine may cost a restart (heartbeat timeout); after warm-up only the kills may
    assert f["restarts_after_warmup"] == ({"compute:0": kills} if kills else {}), f["restarts"]
    assert all(p["fd_max"] <= FD_CEILING for p in f["processes"].values()), f["processes"]
