"""End to end: `undertow demo` (simulator + all six venues + engine) and `undertow tail --json` on its bus."""
from __future__ import annotations

import pytest

from engine import shm
from tests.harness.demo import run_demo_with_tail, write_demo_config
from tests.harness.toml import toml_table

pytestmark = pytest.mark.process


def test_demo_prints_a_cascade_alert_and_tail_json_shows_signals(tmp_path, namespace):
    cfg = write_demo_config(tmp_path, namespace, toml_table("simulator", seed=7, first_cascade_after_s=5.0))
    run = run_demo_with_tail(cfg, 45, 40)
    assert run.returncode == 0, run.err[-2000:]
    assert "LIQUIDATION CASCADE" in run.out, run.out[-3000:] + run.err[-2000:]
    lines = run.signals
    kinds = run.kinds()
    assert {"liquidation", "cascade", "heartbeat"} <= kinds, (kinds, run.tail_err[-1000:])
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
    assert set(cov) == {"binance", "bybit", "okx", "gate", "bitget", "hyperliquid", "binance_spot", "bybit_spot",
                        "okx_spot"}, set(cov)
    assert cov["binance"]["capped"] and not cov["bybit"]["capped"]
    assert not cov["hyperliquid"]["liquidations_available"] and cov["bybit"]["liquidations"] > 0
    assert not cov["binance_spot"]["liquidations_available"]     # spot has no liquidations at all
    assert not cov["bybit_spot"]["liquidations_available"] and not cov["okx_spot"]["liquidations_available"]
    assert all(c["connected_share"] > 0.5 and c["malformed"] == 0 for c in cov.values()), cov
    assert shm.list_segments(namespace) == [], "the demo left shared memory behind"
