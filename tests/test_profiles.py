"""Asset profiles: sessions, tiers, thresholds from the asset's own sizes or the configured fallbacks,
the kernel hand-off, the snapshot and `undertow thresholds`."""
from __future__ import annotations

import datetime as dt
import json

import numpy as np
import pytest

from engine.config import Config, loads
from engine.instruments import Registry, registry_segment
from engine.kernels import BatchRunner
from engine.profiles import (ProfileService, build_profile, derive, read_snapshots, session_at, size_class,
                             snapshot_path, thresholds_report, tier_of)
from engine.record import Kind, empty_records

NS = 1_000_000_000


def utc(*args) -> int:
    return int(dt.datetime(*args, tzinfo=dt.timezone.utc).timestamp() * NS)


@pytest.mark.unit
def test_sessions_and_weekend_wins():
    starts = Config().profiles.session_starts_utc   # 7, 13, 22
    assert session_at(utc(2026, 11, 19, 3), starts) == "asian"        # Thursday
    assert session_at(utc(2026, 11, 19, 7), starts) == "european"
    assert session_at(utc(2026, 11, 19, 13), starts) == "us"
    assert session_at(utc(2026, 11, 19, 23), starts) == "asian"
    assert session_at(utc(2026, 11, 21, 14), starts) == "weekend"     # Saturday, US hours
    assert session_at(utc(2026, 11, 22, 3), starts) == "weekend"      # Sunday, Asian hours


@pytest.mark.unit
def test_tiers():
    bounds = Config().profiles.tier_bounds_usd
    assert [tier_of(v, bounds) for v in (0, 1e6, 1e8, 1e9, 2e10)] == ["unknown", "small", "mid", "large", "major"]


@pytest.mark.unit
def test_fallbacks_are_the_existing_bots_numbers():
    cfg = Config()
    now = utc(2026, 11, 19, 14)
    for asset, single in (("BTC", 100_000), ("ETH", 50_000), ("SOL", 25_000), ("DOGE", 10_000)):
        prof = build_profile(asset, cfg, now)
        th = derive(prof, cfg)
        assert th.single_usd == single and th.single_source == "config"
        assert th.whale_usd == 5 * single and th.institutional_usd == 20 * single
        assert any(f.startswith("single liquidation") for f in prof.fallbacks)
    th = {a: derive(build_profile(a, cfg, now), cfg) for a in ("BTC", "ETH", "SOL", "XRP")}
    assert [th[a].oi_change_pct for a in th] == [15.0, 18.0, 25.0, 30.0]
    assert th["BTC"].cascade_min_count == 5 and th["BTC"].cascade_window_s == 30.0
    assert th["BTC"].oi_min_venues == 2 and th["BTC"].oi_window_s == 900.0
    assert th["BTC"].volume_spike_pct == {"EXTREME": 500.0, "HIGH": 300.0, "MODERATE": 150.0, "LOW": 50.0}


@pytest.mark.unit
def test_own_distribution_session_and_volatility():
    cfg = Config()
    rng = np.random.default_rng(3)
    liqs = rng.lognormal(np.log(20_000), 1.0, 1000)
    q = float(np.quantile(liqs, 0.99))
    us = build_profile("BTC", cfg, utc(2026, 11, 19, 14), liq_sizes=liqs, realized_vol=0.5)
    th = derive(us, cfg)
    assert th.single_source == "profile" and th.single_usd == pytest.approx(max(25_000, q * 1.2))
    weekend_hot = build_profile("BTC", cfg, utc(2026, 11, 21, 14), liq_sizes=liqs, realized_vol=5.0)
    assert weekend_hot.vol_multiplier == 2.0 and weekend_hot.session_multiplier == 0.6
    assert derive(weekend_hot, cfg).single_usd == pytest.approx(max(25_000, q * 0.6 * 2.0))
    tiny = build_profile("BTC", cfg, utc(2026, 11, 19, 3), liq_sizes=np.full(500, 100.0))
    assert derive(tiny, cfg).single_usd == 25_000        # the floor
    trades = rng.lognormal(np.log(5_000), 1.5, 5000)
    t = derive(build_profile("ETH", cfg, utc(2026, 11, 19, 3), trade_sizes=trades), cfg)
    assert t.whale_trade_source == "profile" and t.whale_trade_usd == pytest.approx(np.quantile(trades, 0.999))


@pytest.mark.unit
def test_size_class_against_thresholds():
    cfg = Config()
    th = derive(build_profile("ETH", cfg, utc(2026, 11, 19, 3)), cfg)
    assert [size_class(v, th) for v in (20_000, 60_000, 300_000, 1_200_000)] == \
        ["retail", "large", "whale", "institutional"]


@pytest.fixture
def runner(namespace):
    reg = Registry.open(registry_segment(namespace), 64, 16)
    reg.add(1, "BTCUSDT", "BTC")
    reg.add(1, "ETHUSDT", "ETH")
    r = BatchRunner(Config().detectors, reg)
    yield r
    reg.close()


@pytest.mark.unit
def test_service_learns_from_the_kernel_and_installs_thresholds(runner, tmp_path):
    cfg = loads(f'[engine]\nrun_dir = "{tmp_path}"\n')
    clock = [utc(2026, 11, 19, 14)]
    svc = ProfileService(cfg, runner, clock=lambda: clock[0])
    svc.bootstrap({"BTC": 2e10})
    assert svc.refresh() == ["BTC", "ETH"]
    assert svc.profiles["BTC"].tier == "major" and svc.profiles["BTC"].adv_source == "rest"
    assert runner.single_usd[0] == 100_000 and runner.whale_usd[0] == 500_000
    recs = empty_records(400)
    recs["kind"] = Kind.LIQUIDATION
    recs["instrument"] = 0
    recs["notional"] = np.linspace(1_000, 400_000, 400)
    recs["ts_exchange"] = utc(2026, 11, 19, 14) + np.arange(400) * 60 * NS
    runner.run(recs)
    clock[0] += 700 * NS
    svc.refresh()
    th = svc.get("BTC")
    assert th.single_source == "profile" and runner.single_usd[0] == pytest.approx(th.single_usd)
    assert th.single_usd == pytest.approx(np.quantile(recs["notional"], 0.99) * 1.2)
    assert svc.profiles["ETH"].liq_samples == 0 and svc.get("ETH").single_source == "config"
    path = svc.snapshot(snapshot_path(cfg, 0))
    snap = read_snapshots(cfg)
    assert path.exists() and snap["BTC"]["thresholds"]["single_usd"] == pytest.approx(th.single_usd)
    report = thresholds_report(cfg, "btc", engine_running=True, now_ns=clock[0])
    assert report["source"].startswith("running engine") and report["profile"]["liq_samples"] == 400
    offline = thresholds_report(cfg, "btc", engine_running=False)
    assert offline["source"].startswith("configuration") and offline["thresholds"]["single_usd"] == 100_000


@pytest.mark.unit
def test_cli_thresholds_without_engine(tmp_path, capsys):
    from engine.cli import main
    conf = tmp_path / "c.toml"
    conf.write_text(f'[engine]\nnamespace = "nothr{tmp_path.name[-6:].replace("-", "")}"\nrun_dir = "{tmp_path}"\n')
    assert main(["thresholds", "SOL", "--config", str(conf), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["source"].startswith("configuration (no engine running)")
    assert doc["thresholds"]["single_usd"] == 25_000 and doc["thresholds"]["oi_change_pct"] == 25.0
