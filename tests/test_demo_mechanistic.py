"""End to end on the mechanistic market: `undertow demo --market mechanistic --regime NAME` (simulator -> feeds ->
compute -> bus -> alerts) watched by `undertow tail --json` on its bus.

thin_book_cascade crowds high-leverage longs into BTC from 30 s and collapses its book at 150 s (market time); the
longs' liquidations then feed on each other (seed 7: they peak 160-175 s). The default tests open the market at
130 s (``--start-at``: the crowd is in, the collapse 20 s away) and run it in real time; the soak variants run it
from 0. calm, for the same duration and start, must raise no CRITICAL while the pipeline is seen working.

Not ``[simulator] speed`` > 1 instead: compressed time multiplies every rate the detectors see, and calm at
speed 5 (50 s, the first 250 s of the market) reached WARNING in one run and CRITICAL in another.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Callable

import pytest

from engine import shm

pytestmark = pytest.mark.process
ROOT = Path(__file__).resolve().parents[1]
LIQUIDATION_VENUES = {"binance", "bybit", "okx", "gate", "bitget"}    # Hyperliquid and spot publish none
SHORT = {"start_at": 130.0, "duration_s": 50.0}     # market 130-180 s at most
FROM_THE_START = {"start_at": 0.0, "duration_s": 240.0}


def _write_config(tmp_path: Path, namespace: str) -> Path:
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
""")
    return cfg


def _run_demo(tmp_path: Path, namespace: str, regime: str, start_at: float, duration_s: float,
              enough: Callable[[list], bool] | None = None) -> tuple[subprocess.Popen, str, str, list]:
    """Run the demo and `undertow tail --json` beside it; stop the demo early once ``enough(signals)`` holds.
    Return the finished demo process, its stdout and stderr, and the decoded signals tail printed."""
    cfg = _write_config(tmp_path, namespace)
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    cli = [sys.executable, "-m", "engine.cli"]
    demo = subprocess.Popen([*cli, "demo", "--config", str(cfg), "--duration", str(duration_s),
                             "--market", "mechanistic", "--regime", regime, "--start-at", str(start_at)],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    # tail finds the demo's bus through the run directory of the same config
    tail = subprocess.Popen([*cli, "tail", "--json", "--config", str(cfg), "--duration", str(duration_s + 15)],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env)
    signals: list = []

    def read() -> None:
        for line in tail.stdout:
            if line.strip():
                signals.append(json.loads(line))

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        deadline = time.monotonic() + duration_s + 60
        while demo.poll() is None and time.monotonic() < deadline:
            if enough is not None and enough(list(signals)):
                demo.send_signal(signal.SIGINT)     # Ctrl-C: the supervisor stops and the demo stops its simulator
                break
            time.sleep(0.5)
        d_out, d_err = demo.communicate(timeout=60)
    finally:
        for p in (tail, demo):
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
                p.wait(20)
        reader.join(10)
        tail.stdout.close()
    return demo, d_out, d_err, signals


def _liquidation_venues(signals: list) -> set:
    return {x["venue"] for x in signals if x["kind"] == "liquidation"}


def _long_cascade(signals: list) -> list:
    """BTC cascade signals at WARNING or above driven by over 1 M USD of liquidated longs: the crowd the collapse
    runs into (seed 7 liquidates ~25 M USD of BTC longs in it; the crowd's arrival liquidates some 0.1 M before)."""
    return [x for x in signals if x["kind"] == "cascade" and x["asset"] == "BTC"
            and x["level"] in ("WARNING", "CRITICAL") and x["long_usd"] > max(x["short_usd"], 1e6)]


def _check_thin_book_cascade(tmp_path, namespace, start_at: float, duration_s: float) -> None:
    demo, out, err, signals = _run_demo(
        tmp_path, namespace, "thin_book_cascade", start_at, duration_s,
        enough=lambda s: LIQUIDATION_VENUES <= _liquidation_venues(s) and bool(_long_cascade(s)))
    assert demo.returncode == 0, err[-2000:]
    kinds = {x["kind"] for x in signals}
    assert {"liquidation", "cascade", "heartbeat"} <= kinds, (kinds, err[-1000:])
    assert LIQUIDATION_VENUES <= _liquidation_venues(signals), _liquidation_venues(signals)
    longs = [x for x in signals if x["kind"] == "liquidation" and x["asset"] == "BTC" and x["side"] == "long"]
    assert longs and all(x["notional_usd"] > 0 for x in longs)
    cascades = _long_cascade(signals)
    assert cascades, sorted({(x["asset"], x["level"], round(x["long_usd"])) for x in signals
                             if x["kind"] == "cascade"})
    assert "LIQUIDATION CASCADE" in out, out[-3000:] + err[-2000:]
    assert shm.list_segments(namespace) == [], "the demo left shared memory behind"


def _check_calm(tmp_path, namespace, start_at: float, duration_s: float) -> None:
    demo, out, err, signals = _run_demo(tmp_path, namespace, "calm", start_at, duration_s)
    assert demo.returncode == 0, err[-2000:]
    # the pipeline ran: every venue covered and connected, the compute actor counting records
    cov = {x["venue"] for x in signals if x["kind"] == "coverage" and x["connected_share"] > 0.5}
    assert LIQUIDATION_VENUES <= cov, cov
    beats = [x for x in signals if x["kind"] == "heartbeat" and x["asset"].startswith("compute")]
    assert beats and max(x["info"]["records"] for x in beats) > 10_000
    critical = [(x["kind"], x["asset"]) for x in signals if x.get("level") == "CRITICAL"]
    assert not critical, critical
    assert "CRITICAL" not in out, out[-3000:]
    assert shm.list_segments(namespace) == [], "the demo left shared memory behind"


def test_thin_book_cascade_reaches_the_bus_from_every_venue_with_a_cascade_level(tmp_path, namespace):
    _check_thin_book_cascade(tmp_path, namespace, **SHORT)


@pytest.mark.soak   # ~60 s; the default run checks calm data for false CRITICALs in test_calm_replays
def test_calm_raises_no_critical_in_the_same_time(tmp_path, namespace):
    _check_calm(tmp_path, namespace, **SHORT)


@pytest.mark.soak
def test_thin_book_cascade_from_the_start(tmp_path, namespace):
    _check_thin_book_cascade(tmp_path, namespace, **FROM_THE_START)


@pytest.mark.soak
def test_calm_from_the_start(tmp_path, namespace):
    _check_calm(tmp_path, namespace, **FROM_THE_START)
