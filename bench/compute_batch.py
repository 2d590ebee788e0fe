"""Cost of one compute-actor batch (poll + kernels + signals), hot and after the process slept.

A liquidation's latency through the compute actor is mostly the cost of the
batch that carries it, and on a small VM that cost is dominated by caches
gone cold while the process waited on its doorbell. This runs a real
:class:`~actors.compute.ComputeActor` in-process on a private namespace and
times ``poll + process_critical`` (the liquidation/cascade path) for batches of
``--batch`` records (one of them a liquidation), back to back ("hot") and
after sleeping ``--idle-ms`` ("cold"), and separately the plug-in
detectors' run over the same batch ("detectors"). Prints p50/p99/p99.9 in µs
per mode, then one JSON line.

    python bench/compute_batch.py --batch 10 --idle-ms 2 --iterations 2000
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

from engine.record import Kind, Side, Venue  # noqa: E402
from engine.warmup import compute_harness  # noqa: E402

def measure(batch: int, idle_s: float, iterations: int) -> dict[str, list[float]]:
    out: dict[str, list[float]] = {"hot": [], "cold": [], "detectors": []}
    with compute_harness() as (actor, ring, ids):
        reader = actor.readers[0]
        t = time.time_ns()
        price = 60000.0
        for it in range(iterations * 2):
            cold = it % 2 == 1
            recs = []
            for k in range(batch):
                t += 1_000_000
                iid = ids[k % 3]
                if k == batch // 2:
                    recs.append((Kind.LIQUIDATION, Venue.BINANCE, Side.LONG, 0, iid, t, t, price, 0.5,
                                 price * 0.5, 0.0, 0.0))
                else:
                    price *= 1.0 + 1e-5 * ((k % 3) - 1)
                    recs.append((Kind.TRADE, Venue.BINANCE, Side.BUY, 0, iid, t, t, price, 0.01, price * 0.01,
                                 float(it * batch + k + 1), 0.0))
            if cold:
                time.sleep(idle_s)
            ring.write_many(recs)
            t0 = time.perf_counter_ns()
            got, _ = reader.poll()
            actor.process_critical(got)
            out["cold" if cold else "hot"].append((time.perf_counter_ns() - t0) / 1e3)
            t1 = time.perf_counter_ns()     # then the plug-in detectors, as process() runs them
            actor.run_detectors(got)
            out["detectors"].append((time.perf_counter_ns() - t1) / 1e3)
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--batch", type=int, default=10, help="records per batch (one is a liquidation)")
    ap.add_argument("--idle-ms", type=float, default=2.0, help="sleep before each cold batch")
    ap.add_argument("--iterations", type=int, default=1000, help="batches per mode")
    args = ap.parse_args(argv)
    res = measure(args.batch, args.idle_ms / 1e3, args.iterations)
    summary = {}
    for mode, vals in res.items():
        v = np.array(vals[len(vals) // 10:])       # drop the first 10 %: warm-up
        p = np.percentile(v, [50, 99, 99.9])
        summary[mode] = {"p50_us": round(float(p[0]), 1), "p99_us": round(float(p[1]), 1),
                         "p999_us": round(float(p[2]), 1)}
        print(f"{mode:>4}: p50 {p[0]:7.1f} µs  p99 {p[1]:7.1f} µs  p99.9 {p[2]:7.1f} µs  (batch {args.batch})")
    print(json.dumps({"batch": args.batch, "idle_ms": args.idle_ms, **summary}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
