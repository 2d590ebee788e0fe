"""Cost of each plug-in detector's ``run`` on one batch, per batch size, hot and after the process slept.

Runs a real :class:`~actors.compute.ComputeActor` in-process (as ``bench/compute_batch.py``): for each
``--sizes`` batch of trades (one liquidation in the middle), the liquidation path first, then every
enabled detector timed on its own, back to back ("hot") and after sleeping ``--idle-ms`` ("cold").
Prints p50/p99 in µs per detector and size, then one JSON line. A 10-record batch shows the fixed
cost of a call; the compute loop runs the detectors over queued batches of up to
``engine.detector_queue_records``, so the larger size shows what one queue run costs.

    python bench/detector_cost.py --sizes 10,256 --iterations 400
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from compute_batch import trade_batch  # noqa: E402
from engine.warmup import compute_harness  # noqa: E402


def measure(sizes: list[int], idle_s: float, iterations: int) -> dict:
    out: dict = {}
    with compute_harness() as (actor, ring, ids):
        reader = actor.readers[0]
        t = time.time_ns()
        price = 60000.0
        for size in sizes:
            times = {f"{d.name}_{m}": [] for d in actor.detectors for m in ("hot", "cold")}
            for it in range(iterations * 2):
                mode = "cold" if it % 2 else "hot"
                recs, t, price = trade_batch(ids, size, t, price, it)
                if mode == "cold":
                    time.sleep(idle_s)
                ring.write_many(recs)
                got, _ = reader.poll()
                actor.process_critical(got)
                for d in actor.detectors:
                    t0 = time.perf_counter_ns()
                    d.run(got)
                    times[f"{d.name}_{mode}"].append((time.perf_counter_ns() - t0) / 1e3)
            out[size] = {}
            for key, vals in times.items():
                v = np.array(vals[len(vals) // 10:])
                p50, p99 = np.percentile(v, [50, 99])
                out[size][key] = {"p50_us": round(float(p50), 1), "p99_us": round(float(p99), 1)}
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", default="10,256", help="batch sizes (records, one a liquidation)")
    ap.add_argument("--idle-ms", type=float, default=2.0, help="sleep before each cold batch")
    ap.add_argument("--iterations", type=int, default=400, help="batches per size and mode")
    args = ap.parse_args(argv)
    res = measure([int(s) for s in args.sizes.split(",")], args.idle_ms / 1e3, args.iterations)
    for size, rows in res.items():
        names = sorted({k.rsplit("_", 1)[0] for k in rows}, key=lambda n: -rows[f"{n}_hot"]["p50_us"])
        total = {m: sum(rows[f"{n}_{m}"]["p50_us"] for n in names) for m in ("hot", "cold")}
        print(f"batch {size}: sum of p50 hot {total['hot']:.1f} µs, cold {total['cold']:.1f} µs")
        for n in names:
            h, c = rows[f"{n}_hot"], rows[f"{n}_cold"]
            print(f"  {n:>14}: hot p50 {h['p50_us']:7.1f} p99 {h['p99_us']:7.1f}   "
                  f"cold p50 {c['p50_us']:7.1f} p99 {c['p99_us']:7.1f} µs")
    print(json.dumps({str(k): v for k, v in res.items()}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
