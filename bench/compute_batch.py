"""Cost of one compute-actor batch (poll + kernels + signals), hot and after the process slept.

A liquidation's latency through the compute actor is mostly the cost of the
batch that carries it, and on a small VM that cost is dominated by caches
gone cold while the process waited on its doorbell. This runs real
:class:`~actors.compute.ComputeActor`\\ s in-process on private namespaces and
times, for batches of ``--batch`` records (one of them a liquidation), back
to back ("hot") and after sleeping ``--idle-ms`` ("cold"):

* ``critical``: ``poll + process_critical`` (the liquidation/cascade path);
* ``detectors``: then the plug-in detectors over the same batch, the way the
  poll loop runs them (``queue_detectors``: queued, run together on a
  cadence) and, on a second actor fed the same stream in alternation, run on
  every batch (``run_detectors``, as before the queue). p50/p99/p99.9 and the
  mean in µs per mode: with the queue, the mean is the CPU a batch costs and
  the p99 a queue run.

``--baseline REV`` also runs this same script against the source tree of git
revision ``REV`` (extracted to a temporary directory, same interpreter, its
own numba cache) in alternating rounds with the working tree, and prints
both and the ratios (working tree / REV), so a change is measured against
its parent under the same machine load.

    python bench/compute_batch.py --batch 10 --idle-ms 2 --iterations 1000 --baseline HEAD
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from engine.record import Kind, Side, Venue  # noqa: E402
from engine.warmup import compute_harness  # noqa: E402

PERCENTILES = (50, 99, 99.9)


def trade_batch(ids: list[int], batch: int, t: int, price: float, seq: int) -> tuple[list[tuple], int, float]:
    """``batch`` trades 1 ms apart on the instruments in turn, the middle one a liquidation; (records, t, price)."""
    recs = []
    for k in range(batch):
        t += 1_000_000
        iid = ids[k % 3]
        if k == batch // 2:
            recs.append((Kind.LIQUIDATION, Venue.BINANCE, Side.LONG, 0, iid, t, t, price, 0.5, price * 0.5, 0.0, 0.0))
        else:
            price *= 1.0 + 1e-5 * ((k % 3) - 1)
            recs.append((Kind.TRADE, Venue.BINANCE, Side.BUY, 0, iid, t, t, price, 0.01, price * 0.01,
                         float(seq * batch + k + 1), 0.0))
    return recs, t, price


def _timed(fn, *args) -> float:
    t0 = time.perf_counter_ns()
    fn(*args)
    return (time.perf_counter_ns() - t0) / 1e3


def measure(batch: int, idle_s: float, iterations: int) -> dict[str, list[float]]:
    """Timings in µs per mode (``critical_hot`` ... ``per_batch_cold``) over ``iterations`` batches per mode."""
    out: dict[str, list[float]] = {}
    with compute_harness() as (actor, ring, ids), compute_harness() as (per_batch, ring2, ids2):
        queued = getattr(actor, "queue_detectors", None)    # absent in trees from before the queue
        t = time.time_ns()
        price = 60000.0
        for it in range(iterations * 2):
            mode = "cold" if it % 2 else "hot"
            recs, t, price = trade_batch(ids, batch, t, price, it)
            for a, r, step, name in ((actor, ring, queued, "detectors"),
                                     (per_batch, ring2, per_batch.run_detectors, "per_batch")):
                if step is None:
                    continue
                if mode == "cold":
                    time.sleep(idle_s)
                r.write_many(recs)
                t0 = time.perf_counter_ns()
                got, _ = a.readers[0].poll()
                a.process_critical(got)
                if a is per_batch:        # the same work on both actors; this one exists in every tree
                    out.setdefault(f"critical_{mode}", []).append((time.perf_counter_ns() - t0) / 1e3)
                out.setdefault(f"{name}_{mode}", []).append(_timed(step, got))
    return out


def summarize(res: dict[str, list[float]]) -> dict[str, dict[str, float]]:
    summary = {}
    for mode, vals in res.items():
        v = np.array(vals[len(vals) // 10:])       # drop the first 10 %: warm-up
        p = np.percentile(v, PERCENTILES)
        summary[mode] = {"p50_us": round(float(p[0]), 1), "p99_us": round(float(p[1]), 1),
                         "p999_us": round(float(p[2]), 1), "mean_us": round(float(v.mean()), 1)}
    return summary


def print_summary(summary: dict, batch: int, label: str = "") -> None:
    for mode, s in summary.items():
        print(f"{label}{mode:>16}: p50 {s['p50_us']:7.1f} µs  p99 {s['p99_us']:7.1f} µs  "
              f"p99.9 {s['p999_us']:7.1f} µs  mean {s['mean_us']:7.1f} µs  (batch {batch})")


def against_baseline(rev: str, args) -> dict:
    """Alternate rounds of this script on the working tree and on ``rev``'s tree; merged summaries and ratios."""
    with tempfile.TemporaryDirectory(prefix="ut-base-") as tmp:     # the tree goes; its numba cache stays
        return _against_tree(rev, Path(tmp), args)


def _against_tree(rev: str, tree: Path, args) -> dict:
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", rev], check=True, capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(tree)], input=archive, check=True)
    (tree / "bench" / "compute_batch.py").write_bytes(Path(__file__).read_bytes())   # same measurement
    for root in (tree, ROOT):     # compile (or load) both trees' kernels before anything is timed
        subprocess.run([sys.executable, "-m", "engine.warmup"], cwd=root, check=True, capture_output=True)
    rounds = max(1, args.rounds)
    per_round = max(50, args.iterations // rounds)
    raw: dict[str, dict[str, list[float]]] = {"base": {}, "work": {}}
    for _ in range(rounds):
        for label, root in (("base", tree), ("work", ROOT)):
            cmd = [sys.executable, str(root / "bench" / "compute_batch.py"), "--batch", str(args.batch),
                   "--idle-ms", str(args.idle_ms), "--iterations", str(per_round), "--raw"]
            got = json.loads(subprocess.run(cmd, cwd=root, check=True, capture_output=True, text=True)
                             .stdout.strip().splitlines()[-1])
            for mode, vals in got.items():
                raw[label].setdefault(mode, []).extend(vals[len(vals) // 10:])
    base, work = summarize(raw["base"]), summarize(raw["work"])
    ratios = {m: {k: round(work[m][k] / base[m][k], 3) if base[m][k] else None for k in work[m]}
              for m in work if m in base}
    # the baseline's per-batch detector run is what the loop did before the queue existed
    if "detectors_hot" in work and "detectors_hot" not in base:
        for mode in ("hot", "cold"):
            ratios[f"detectors_{mode}_vs_base_per_batch"] = {
                k: round(work[f"detectors_{mode}"][k] / base[f"per_batch_{mode}"][k], 3) for k in work[f"detectors_{mode}"]}
    return {"baseline": rev, "rounds": rounds, "base": base, "work": work, "ratio": ratios}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--batch", type=int, default=10, help="records per batch (one is a liquidation)")
    ap.add_argument("--idle-ms", type=float, default=2.0, help="sleep before each cold batch")
    ap.add_argument("--iterations", type=int, default=1000, help="batches per mode")
    ap.add_argument("--baseline", metavar="REV", help="also measure git revision REV, alternating, and print ratios")
    ap.add_argument("--rounds", type=int, default=4, help="alternating rounds with --baseline")
    ap.add_argument("--raw", action="store_true", help=argparse.SUPPRESS)   # one JSON line of raw timings
    args = ap.parse_args(argv)
    if args.baseline:
        res = against_baseline(args.baseline, args)
        print_summary(res["base"], args.batch, f"{args.baseline[:10]:>10} ")
        print_summary(res["work"], args.batch, f"{'work tree':>10} ")
        for mode, r in res["ratio"].items():
            print(f"ratio {mode}: {r}")
        print(json.dumps({"batch": args.batch, "idle_ms": args.idle_ms, **res}))
        return 0
    res = measure(args.batch, args.idle_ms / 1e3, args.iterations)
    if args.raw:
        print(json.dumps(res))
        return 0
    summary = summarize(res)
    print_summary(summary, args.batch)
    print(json.dumps({"batch": args.batch, "idle_ms": args.idle_ms, **summary}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
