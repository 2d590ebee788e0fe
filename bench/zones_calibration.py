"""Calibrate the zone model's leverage mix on the real Hyperliquid position snapshots and score it.

    python bench/zones_calibration.py [--data ../shared/data] [--mm 0.005]

1. Effective leverage of every position with a liquidation price:
   ``L = 1 / (|liq - entry| / entry + mm)`` (what our liquidation-price formula
   would need to put it where Hyperliquid says it is), notional-weighted into
   buckets -> the ``[[leverage, weight], ...]`` mix to use as default.
2. Score per coin and snapshot: the *measured* map (each position's notional at
   its own liquidation price) against the *reconstructed* map (each position's
   notional at its entry price spread over a mix with our formula), bins of 1 %
   of mark within +-30 %: histogram overlap (sum of min of the normalised maps,
   1 = identical) and the share of measured USD inside the reconstructed top
   10 % bins, for the calibrated mix and a naive single 10x mix.
Only figures this script prints are reported; nothing here is asserted.
"""
from __future__ import annotations

import argparse
import csv
import gzip
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from engine.kernels.zones import liquidation_price  # noqa: E402

COINS = ("BTC", "ETH", "SOL")
EDGES = [1.0, 4.0, 8.0, 15.0, 30.0, 60.0, 1e9]


def load(path: Path):
    rows = []
    with gzip.open(path, "rt") as f:
        for r in csv.DictReader(f):
            if r["coin"] in COINS and r["liquidation_px"]:
                rows.append((r["snapshot_utc"], r["coin"], r["side"] == "long", float(r["entry_px"]),
                             float(r["liquidation_px"]), float(r["position_value_usd"]), float(r["mark_px_implied"])))
    return rows


def calibrate(rows, mm: float):
    lev, w = [], []
    for _, _, long, entry, liq, usd, _ in rows:
        d = (entry - liq) / entry if long else (liq - entry) / entry
        if d > 0:
            lev.append(1.0 / (d + mm))
            w.append(usd)
    lev, w = np.array(lev), np.array(w)
    mix = []
    for lo, hi in zip(EDGES[:-1], EDGES[1:]):
        sel = (lev >= lo) & (lev < hi)
        if w[sel].sum() > 0:
            order = np.argsort(lev[sel])
            cw = np.cumsum(w[sel][order])
            median = lev[sel][order][np.searchsorted(cw, cw[-1] / 2)]
            mix.append([round(float(max(median, 1.5)), 1), round(float(w[sel].sum() / w.sum()), 3)])
    return mix, len(lev)


def score(rows, mix, mm):
    by = defaultdict(list)
    for r in rows:
        by[(r[0], r[1])].append(r)
    out = defaultdict(list)
    total = sum(x[1] for x in mix)
    for (snap, coin), rs in by.items():
        mark = float(np.median([r[6] for r in rs]))
        edges = mark * np.linspace(0.7, 1.3, 61)
        meas = np.zeros(60)
        rec = np.zeros(60)
        for _, _, long, entry, liq, usd, _ in rs:
            i = np.searchsorted(edges, liq) - 1
            if 0 <= i < 60:
                meas[i] += usd
            for L, wt in mix:
                j = np.searchsorted(edges, liquidation_price(entry, L, mm, long)) - 1
                if 0 <= j < 60:
                    rec[j] += usd * wt / total
        if meas.sum() <= 0 or rec.sum() <= 0:
            continue
        overlap = np.minimum(meas / meas.sum(), rec / rec.sum()).sum()
        top = np.argsort(rec)[-6:]
        out[coin].append((overlap, meas[top].sum() / meas.sum()))
    return {c: (float(np.mean([v[0] for v in vals])), float(np.mean([v[1] for v in vals])), len(vals))
            for c, vals in out.items()}


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default=str(Path(__file__).resolve().parents[2] / "shared" / "data"))
    ap.add_argument("--mm", type=float, default=0.005)
    args = ap.parse_args()
    files = sorted((Path(args.data) / "positions" / "hyperliquid_kittycapital_whales").glob("positions_*.csv.gz"))
    if not files:
        print(f"no position snapshots under {args.data}/positions", file=sys.stderr)
        return 1
    rows = load(files[0])
    mix, n = calibrate(rows, args.mm)
    print(f"positions with a liquidation price (BTC/ETH/SOL): {n}")
    print(f"calibrated leverage mix (mm={args.mm}): {mix}")
    for name, m in (("calibrated", mix), ("naive 10x", [[10.0, 1.0]])):
        for coin, (ov, top, n_maps) in sorted(score(rows, m, args.mm).items()):
            print(f"{name:>10} {coin}: {n_maps} maps, overlap {ov:.3f}, measured USD in reconstructed top-10% bins {top:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
