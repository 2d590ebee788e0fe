"""``undertow backtest`` end to end on a short scenario, the real series' loader, and the bot's /accuracy."""
from __future__ import annotations

import contextlib
import io
import json
from types import SimpleNamespace

import pytest

from engine.backtest.offline import OKX_CONTRACT_VALUES, load_okx_series
from engine.bot.accuracy import cmd_accuracy
from engine.bot.commands import BY_NAME, dispatch, help_card
from engine.cli import main
from engine.config import load as load_config


@pytest.fixture(scope="module")
def backtest_run(tmp_path_factory):
    """One short backtest through the CLI: the real compute path over a 60 s mechanistic cascade, Bybit only."""
    tmp = tmp_path_factory.mktemp("backtest")
    cfg_path = tmp / "config.toml"
    cfg_path.write_text(f'[engine]\nrun_dir = "{tmp / "run"}"\n')
    out = tmp / "report"
    csv = tmp / "liq.csv"
    csv.write_text("timestamp,venue,coin,side,size_usd,price\n"
                   + "".join(f"2026-03-05T07:{m:02d}:{s:02d}.000000Z,okx,BTC,{'sell' if s % 2 else 'buy'},"
                             f"{(200000.0 if m == 5 else 7000.0):.1f},70000.0\n"
                             for m in range(8) for s in range(0, 60, 10))
                   + "2026-03-05T07:03:00.000000Z,hyperliquid,BTC,S,100.0,70000.0\n"
                   + "2026-03-05T07:03:00.000000Z,okx,BTC,sell,not-a-number,70000.0\n")
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        rc = main(["backtest", "--scenario", "thin_book_cascade", "--seconds", "60", "--venues", "bybit",
                   "--real", str(csv), "--warmup", "0", "--out", str(out), "--json", "--quiet",
                   "--config", str(cfg_path)])
    return rc, buf.getvalue(), out, load_config(str(cfg_path))


def test_backtest_prints_one_consistent_json_summary_last(backtest_run):
    rc, stdout, out, _ = backtest_run
    assert rc == 0
    summary = json.loads(stdout.strip().splitlines()[-1])
    assert set(summary["datasets"]) == {"thin_book_cascade", "real_okx"}
    for name, f in summary["datasets"].items():
        assert f["cascades"] == len(f["labels"])
        assert f["records_lost"] == 0
        for lv, x in f["levels"].items():
            assert x["labelled"] == f["cascades"] and 0 <= x["detected"] <= x["labelled"]
            assert 0 <= x["matched"] <= x["alarms"] and x["false_alarms"] == x["alarms"] - x["matched"]
            assert x["alarms"] <= f["signals"].get("cascade", 0)   # one onset per level at most per signal
        assert f["lead_s"]["n"] == len(f["lead_s"]["values"]) <= f["levels"]["WARNING"]["detected"]
        for z in (f["zones"], f["zones_reached"], f["zones_by_usd"], f["zones_by_distance"]):
            assert z["top_hits"] <= z["top_bins"] <= z["candidate_bins"]
            assert z["candidate_hits"] <= z["candidate_bins"]
        assert f["zones_reached"]["candidate_bins"] <= f["zones"]["candidate_bins"]
        for other in ("zones_by_usd", "zones_by_distance"):   # same snapshots and candidates, another ranking
            assert {k: f[other][k] for k in ("snapshots", "candidate_bins", "candidate_hits", "top_bins")} == \
                {k: f["zones"][k] for k in ("snapshots", "candidate_bins", "candidate_hits", "top_bins")}
    sim = summary["datasets"]["thin_book_cascade"]
    assert sim["kind"] in ("mechanistic", "synthetic") and sim["records"] > 1_000 and sim["truth_liquidations"] > 0
    bybit = sim["coverage"]["bybit"]
    assert bybit["capped"] is False and 0 < bybit["liquidations"] <= sim["truth_liquidations"]
    assert sum(sim["parse"]["bybit"].get(k, 0) for k in ("malformed", "unknown")) == 0
    real = summary["datasets"]["real_okx"]
    assert real["truth_liquidations"] == real["records"] == 48          # 8 minutes x 6 events
    assert real["skipped"] == {"hyperliquid: side code 'S' unexplained": 1, "malformed row (ValueError)": 1,
                               "events_in_file": 50}
    assert real["truth_usd"] == pytest.approx(6 * (7 * 7000.0 + 200000.0) * OKX_CONTRACT_VALUES["BTC"])
    assert [(c["start_ns"], c["peak_ns"]) for c in real["labels"]] == [(1772694300 * 10**9, 1772694300 * 10**9)]
    assert real["coverage"]["okx"]["liquidations"] == 48
    for name in ("report.md", "summary.json", "lead_times.png", "zone_precision.png",
                 "timeline_thin_book_cascade.png", "timeline_real_okx.png"):
        assert (out / name).stat().st_size > 0
    assert "## thin_book_cascade" in (out / "report.md").read_text()


def test_accuracy_command_shows_the_saved_summary(backtest_run):
    _, stdout, _, cfg = backtest_run
    summary = json.loads(stdout.strip().splitlines()[-1])
    ctx = SimpleNamespace(cfg=cfg, now=lambda: summary["generated_ns"] / 1e9 + 7200)
    text = dispatch(ctx, "accuracy", []).text
    assert "Undertow accuracy" in text and "2.0 h ago" in text
    assert f"of {summary['headline']['cascades']} (goal ≥ 90 %)" in text
    assert "thin_book_cascade" in text and "real_okx" in text
    assert "capped streams (totals are lower bounds): okx" in text
    assert "nearest bins first (no model): lift" in text and "share of liquidated USD in the top bins" in text


def test_accuracy_without_or_with_a_broken_summary(tmp_path):
    cfg = SimpleNamespace(alerts=SimpleNamespace(state_dir=str(tmp_path)), engine=SimpleNamespace(run_dir="/x"))
    ctx = SimpleNamespace(cfg=cfg, now=lambda: 0.0)
    assert cmd_accuracy(ctx, []).startswith("n/a: no backtest has been run")
    (tmp_path / "backtest-summary.json").write_text("{not json")
    assert "cannot be read" in cmd_accuracy(ctx, [])
    (tmp_path / "backtest-summary.json").write_text('{"headline": 1}')
    assert "not a backtest summary" in cmd_accuracy(ctx, [])


def test_accuracy_is_registered_and_in_the_help():
    assert BY_NAME["accuracy"].handler is cmd_accuracy
    assert "/accuracy - " in help_card()


def test_real_series_units_sides_and_skips(shared_data):
    s = load_okx_series(shared_data / "liquidations/okx_hyperliquid_finm33150/liquidations.csv")
    assert s.events == 8059
    assert s.skipped == {"hyperliquid: side code 'S' unexplained": 2243, "okx HYPE: contract value unknown": 99}
    assert len(s.frames) == 8059 - 2243 - 99 and s.assets == {"BTC", "ETH", "SOL", "DOGE"}
    assert all(a[0] <= b[0] for a, b in zip(s.frames, s.frames[1:]))


def test_score_leaves_each_assets_warm_up_unscored():
    import numpy as np
    from engine.backtest.offline import TRUTH_DTYPE
    from engine.backtest.run import BacktestParams, Dataset, score
    from engine.signals import Cascade
    minute = 60 * 10**9
    t0 = 1_800_000_000 * 10**9 - (1_800_000_000 * 10**9) % minute
    rows = [(t0 + m * minute + 1, "BTC", 1, 100.0, 50_000.0 if m in (5, 15) else 1_000.0) for m in range(20)]
    truth = np.array(rows, dtype=TRUTH_DTYPE)
    sigs = [Cascade(asset="BTC", level="WARNING", previous_level="NONE", score=6.0, ts_recv=t0 + m * minute)
            for m in (5, 15)]
    d = Dataset("hand", "real", False, t0, t0 + 20 * minute, truth, {"BTC": (t0, t0 + 20 * minute)}, sigs,
                {"cascade": 2})
    early = score(d, BacktestParams(warmup_s=0.0))
    assert early["cascades"] == 2 and early["levels"]["WARNING"]["detected"] == 2
    f = score(d, BacktestParams(warmup_s=600.0))
    assert f["cascades"] == 1 and f["labels"][0]["start_ns"] == t0 + 15 * minute
    w = f["levels"]["WARNING"]
    assert (w["detected"], w["alarms"], w["matched"]) == (1, 1, 1)
    assert f["asset_days"] == pytest.approx(10 / 1440)
    assert f["lead_s"]["values"] == [0.0]
