"""Backtest labelling and metrics on hand-built cases with known answers."""
from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
import pytest

from engine.backtest import metrics as M
from engine.backtest.labels import CascadeLabel, LabelParams, label_cascades, minute_usd

MIN = 60 * 10**9
P = LabelParams(multiple=5.0, z=3.0, trailing_min=60, min_samples=5, merge_gap_min=1)


def _series(spec: dict[int, float], n: int, background: float = 100.0) -> tuple[np.ndarray, np.ndarray]:
    s = np.full(n, background)
    for i, v in spec.items():
        s[i] = v
    return np.arange(n, dtype=np.int64) * MIN, s


def test_minute_usd_bins_events_by_minute_and_drops_outside():
    t = np.array([30, 70, 80, 200, -5, 400], dtype=np.int64) * 10**9
    minutes, usd = minute_usd(t, [1.0, 2.0, 3.0, 4.0, 100.0, 100.0], 0, 240 * 10**9)
    assert minutes.tolist() == [0, MIN, 2 * MIN, 3 * MIN]
    assert usd.tolist() == [1.0, 5.0, 0.0, 4.0]


def test_labels_exact_start_peak_end_with_merged_gap():
    minutes, s = _series({30: 1000.0, 31: 0.0, 32: 3000.0, 33: 800.0, 40: 0.0, 41: 0.0, 42: 600.0}, 50)
    labels = label_cascades("BTC", minutes, s, P)
    assert labels == [
        CascadeLabel("BTC", 30 * MIN, 32 * MIN, 34 * MIN, 3000.0, 4800.0, 3),
        CascadeLabel("BTC", 42 * MIN, 42 * MIN, 43 * MIN, 600.0, 600.0, 1),
    ]


def test_labels_without_gap_merging_split_the_burst():
    minutes, s = _series({30: 1000.0, 31: 0.0, 32: 3000.0, 33: 800.0}, 40)
    labels = label_cascades("ETH", minutes, s, LabelParams(multiple=5.0, z=3.0, trailing_min=60, min_samples=5,
                                                           merge_gap_min=0))
    assert [(c.start_ns // MIN, c.peak_ns // MIN, c.end_ns // MIN) for c in labels] == [(30, 30, 31), (32, 32, 34)]


def test_labels_use_the_whole_series_before_the_trailing_window_has_enough_minutes():
    minutes, s = _series({0: 5000.0, 1: 400.0}, 21)   # minute 0 has no trailing minutes at all
    labels = label_cascades("SOL", minutes, s, P)
    assert [(c.start_ns, c.end_ns) for c in labels] == [(0, MIN)]   # 400 < 5 x 100: not hot


def test_labels_scale_with_the_assets_own_normal_minute():
    minutes, s = _series({30: 3000.0}, 40, background=1000.0)   # 3x its normal minute: no cascade
    assert label_cascades("BTC", minutes, s, P) == []
    assert label_cascades("BTC", minutes, np.zeros(40), P) == []


def test_label_params_are_checked():
    with pytest.raises(ValueError):
        LabelParams(multiple=0.5)


def test_wilson_lower_known_values():
    assert M.wilson_lower(8, 10) == pytest.approx(0.49016, abs=1e-4)         # textbook 8/10 -> (0.490, 0.943)
    z2 = M.Z95 ** 2
    assert M.wilson_lower(10, 10) == pytest.approx(10 / (10 + z2))          # k = n: n / (n + z^2)
    assert M.wilson_lower(0, 10) == 0.0
    assert M.wilson_lower(0, 0) is None
    with pytest.raises(ValueError):
        M.wilson_lower(3, 2)


def _cascade(asset, level, prev, t_s):
    return SimpleNamespace(asset=asset, level=level, previous_level=prev, ts_recv=int(t_s * 1e9))


def test_onsets_count_level_rises_only():
    sigs = [_cascade("BTC", "WARNING", "NONE", 10), _cascade("BTC", "WARNING", "WARNING", 20),
            _cascade("BTC", "CRITICAL", "WARNING", 30), _cascade("BTC", "NONE", "CRITICAL", 40)]
    assert [(o.level, o.t_ns // 10**9) for o in M.onsets(sigs)] == [(1, 10), (2, 10), (3, 30)]


def test_recall_precision_lead_and_false_alarms_on_a_known_case():
    labels = [CascadeLabel("BTC", 1000 * 10**9, 1120 * 10**9, 1200 * 10**9, 1.0, 1.0, 2),
              CascadeLabel("ETH", 5000 * 10**9, 5060 * 10**9, 5120 * 10**9, 1.0, 1.0, 1)]
    alarms = M.onsets([
        _cascade("BTC", "WARNING", "NONE", 1030),      # detects BTC (lead 90 s)
        _cascade("BTC", "CRITICAL", "WARNING", 1150),  # detects BTC at CRITICAL (lead -30 s)
        _cascade("ETH", "WARNING", "NONE", 1100),      # another asset's cascade: false
        _cascade("BTC", "WARNING", "NONE", 1250),      # within the grace after BTC's end: matched, not a detection
        _cascade("ETH", "WARNING", "NONE", 4000),      # more than max_lead before ETH's start: false
    ])
    figs = M.cascade_figures(labels, alarms, asset_days=2.0, max_lead_s=300, grace_s=120)
    w, c = figs["WARNING"], figs["CRITICAL"]
    assert (w["detected"], w["labelled"], w["alarms"], w["matched"], w["false_alarms"]) == (1, 2, 4, 2, 2)
    assert w["recall"] == 0.5 and w["precision"] == 0.5 and w["false_per_asset_day"] == 1.0
    assert (c["detected"], c["alarms"], c["matched"], c["false_alarms"]) == (1, 1, 1, 0)
    assert M.lead_times(labels, alarms, max_lead_s=300) == [90.0, None]
    assert M.lead_times(labels, alarms, max_lead_s=300, min_level=3) == [-30.0, None]
    d = M.distribution([90.0, None, -30.0, 10.0])
    assert (d["n"], d["median"], d["min"], d["max"]) == (3, 10.0, -30.0, 90.0)


def test_zone_precision_against_the_random_baseline_on_a_constructed_map():
    k = np.arange(100)
    centres = 100.0 * np.exp((k - 50) * 0.01)
    usd = np.where((k >= 40) & (k < 50), k.astype(float), 0.0)     # the model's top 10 % are bins 40..49
    realized = centres[[41, 45, 45, 80]] * 1.001                   # inside bins 41, 45 (twice) and 80
    t = M.zone_tally(centres, usd, price=100.0, realized=realized, band=1.0, top_share=0.1)
    assert (t.top_bins, t.top_hits, t.bins, t.hits) == (10, 2, 100, 3)
    f = t.figures()
    assert f["precision"] == pytest.approx(0.2) and f["random_baseline"] == pytest.approx(0.03)
    assert f["lift"] == pytest.approx(0.2 / 0.03)
    assert f["precision_wilson_low"] == pytest.approx(M.wilson_lower(2, 10))
    empty = M.zone_tally(centres, np.zeros(100), 100.0, realized, 1.0, 0.1)
    assert (empty.empty, empty.top_bins) == (1, 0)
    narrow = M.zone_tally(centres, usd, 100.0, realized, band=0.05, top_share=0.1)   # bins 45..54 only
    assert (narrow.bins, narrow.top_bins, narrow.top_hits) == (10, 1, 0)
    reached = M.zone_tally(centres, usd, 100.0, realized, 1.0, 0.1, reached=(centres[44], centres[46]))
    assert (reached.bins, reached.hits, reached.top_bins, reached.top_hits) == (3, 1, 1, 0)   # top: bin 46


def test_bin_edges_bracket_their_centres():
    centres = 100.0 * np.exp(np.arange(5) * 0.02)
    e = M.bin_edges(centres)
    assert len(e) == 6 and np.all(e[:-1] < centres) and np.all(centres < e[1:])
    assert e[1] == pytest.approx(100.0 * math.exp(0.01))


def test_map_error_shape_and_size():
    true = np.array([0.0, 1.0, 3.0, 0.0])
    same = M.map_error(2 * true, true)
    assert same["tv_distance"] == pytest.approx(0.0) and same["usd_ratio"] == pytest.approx(2.0)
    assert M.map_error(np.array([1.0, 0, 0, 0]), true)["tv_distance"] == pytest.approx(1.0)
    assert M.map_error(np.zeros(4), true)["tv_distance"] is None


def test_zone_ties_at_the_cut_score_their_mean_hit_rate():
    k = np.arange(20)
    centres = 100.0 * np.exp((k - 10) * 0.01)
    realized = centres[[0, 1, 2, 3, 4]] * 1.001            # 5 of 20 bins hit, the lowest-priced ones
    flat = M.zone_tally(centres, np.ones(20), 100.0, realized, band=1.0, top_share=0.1)
    # a ranking that cannot tell the bins apart scores the baseline, not the sort order's first two (both hits)
    assert flat.top_bins == 2 and flat.top_hits == pytest.approx(2 * 5 / 20)
    assert flat.figures()["lift"] == pytest.approx(1.0)
    score = np.zeros(20)
    score[7] = 5.0                                           # one clear top bin (a miss), the rest tied at 0
    t = M.zone_tally(centres, score, 100.0, realized, 1.0, 0.1, usd=np.ones(20))
    assert t.top_hits == pytest.approx(5 / 19)
    best = M.zone_tally(centres, -k.astype(float), 100.0, realized, 1.0, 0.1, usd=np.ones(20))
    assert best.top_hits == 2.0 and best.figures()["lift"] == pytest.approx(4.0)
    # no modelled USD among the candidates: not scored, whatever the ranking
    assert M.zone_tally(centres, np.ones(20), 100.0, realized, 1.0, 0.1, usd=np.zeros(20)).empty == 1


def test_zone_wilson_bound_counts_overlapping_snapshots_once_per_horizon():
    t = M.ZoneTally(snapshots=50, top_bins=100, top_hits=40.0, bins=1000, hits=100)
    raw, shared = t.figures(), t.figures(overlap=5.0)
    assert raw["precision"] == shared["precision"] == pytest.approx(0.4)
    assert raw["precision_wilson_low"] == pytest.approx(M.wilson_lower(40, 100))
    assert shared["precision_wilson_low"] == pytest.approx(M.wilson_lower(8, 20))
    assert shared["precision_wilson_low"] < raw["precision_wilson_low"] < 0.4


def test_zone_usd_capture_against_a_random_pick():
    k = np.arange(20)
    centres = 100.0 * np.exp((k - 10) * 0.01)
    realized = centres[[3, 3, 8, 15]] * 1.001
    realized_usd = np.array([100.0, 50.0, 30.0, 20.0])                   # 200 in all, 150 of it in bin 3
    score = np.zeros(20)
    score[[3, 15]] = [2.0, 1.0]                                              # top 2 of 20: bins 3 and 15
    t = M.zone_tally(centres, score, 100.0, realized, 1.0, 0.1, realized_usd=realized_usd)
    f = t.figures()
    assert (t.top_usd, t.usd, t.random_usd) == pytest.approx((170.0, 200.0, 20.0))
    assert f["usd_capture"] == pytest.approx(0.85) and f["usd_capture_lift"] == pytest.approx(8.5)
    flat = M.zone_tally(centres, np.ones(20), 100.0, realized, 1.0, 0.1, realized_usd=realized_usd)
    assert flat.figures()["usd_capture_lift"] == pytest.approx(1.0)        # ties: the random pick's share
    assert M.zone_tally(centres, score, 100.0, realized, 1.0, 0.1).figures()["usd_capture"] is None
