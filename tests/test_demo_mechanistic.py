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

from pathlib import Path
from typing import Callable

import pytest

from engine import shm
from tests.harness.demo import DemoRun, run_demo_with_tail, write_demo_config
from tests.harness.toml import toml_table

pytestmark = pytest.mark.process
LIQUIDATION_VENUES = {"binance", "bybit", "okx", "gate", "bitget"}    # Hyperliquid and spot publish none
SHORT = {"start_at": 130.0, "duration_s": 50.0}     # market 130-180 s at most
FROM_THE_START = {"start_at": 0.0, "duration_s": 240.0}


def _run_demo(tmp_path: Path, namespace: str, regime: str, start_at: float, duration_s: float,
              enough: Callable[[list], bool] | None = None) -> DemoRun:
    """The mechanistic market's ``regime`` from ``start_at`` with `undertow tail --json` beside it; stop early once
    ``enough(signals)`` holds."""
    cfg = write_demo_config(tmp_path, namespace, toml_table("simulator", seed=7))
    return run_demo_with_tail(cfg, duration_s, duration_s + 15, "--market", "mechanistic", "--regime", regime,
                              "--start-at", str(start_at), enough=enough)


def _liquidation_venues(signals: list) -> set:
    return {x["venue"] for x in signals if x["kind"] == "liquidation"}


def _long_cascade(signals: list) -> list:
    """BTC cascade signals at WARNING or above driven by over 1 M USD of liquidated longs: the crowd the collapse
    runs into (seed 7 liquidates ~25 M USD of BTC longs in it; the crowd's arrival liquidates some 0.1 M before)."""
    return [x for x in signals if x["kind"] == "cascade" and x["asset"] == "BTC"
            and x["level"] in ("WARNING", "CRITICAL") and x["long_usd"] > max(x["short_usd"], 1e6)]


def _check_thin_book_cascade(tmp_path, namespace, start_at: float, duration_s: float) -> None:
    run = _run_demo(tmp_path, namespace, "thin_book_cascade", start_at, duration_s,
                    enough=lambda s: LIQUIDATION_VENUES <= _liquidation_venues(s) and bool(_long_cascade(s)))
    out, err, signals = run.out, run.err, run.signals
    assert run.returncode == 0, err[-2000:]
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
    run = _run_demo(tmp_path, namespace, "calm", start_at, duration_s)
    out, err, signals = run.out, run.err, run.signals
    assert run.returncode == 0, err[-2000:]
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
