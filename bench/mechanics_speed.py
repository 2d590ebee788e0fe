"""How fast the mechanistic market runs: simulated seconds per wall second and per CPU second, per regime.

Steps :class:`engine.simulator.mechanics.MechanisticMarket` (no venue rendering, no sockets) for ``--seconds``
of market time in each regime and times it with the wall clock and this process's CPU clock; building the
market (the population open at the start) is timed apart. CPU time is the figure to compare on a shared
machine: wall time also counts the time other processes held the cores (the load average is printed).

Prints a table, then one JSON object as the last line. ``python bench/mechanics_speed.py --seconds 600``
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from engine.simulator.mechanics import REGIMES, MechanisticMarket  # noqa: E402


def measure(regime: str, seconds: float, seed: int, symbols: list[str], rate: float) -> dict:
    """Build and run one market; return its timings and what it produced."""
    w0, c0 = time.perf_counter(), time.process_time()
    m = MechanisticMarket(symbols, seed=seed, regime=regime, rate=rate)
    w1, c1 = time.perf_counter(), time.process_time()
    events = 0
    while m.t < seconds - 1e-9:
        events += len(m.step())
    w2, c2 = time.perf_counter(), time.process_time()
    wall, cpu = w2 - w1, c2 - c1
    return {"regime": regime, "sim_s": round(m.t, 2), "build_wall_s": round(w1 - w0, 3),
            "build_cpu_s": round(c1 - c0, 3), "wall_s": round(wall, 3), "cpu_s": round(cpu, 3),
            "sim_per_wall_s": round(m.t / wall, 1), "sim_per_cpu_s": round(m.t / cpu, 1),
            "events": events, "events_per_cpu_s": round(events / cpu), "liquidations": m.liquidations_generated,
            "liquidated_usd": round(float(m.truth.liquidations()["usd"].sum()))}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seconds", type=float, default=600.0, help="simulated seconds per regime (default 600)")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--symbols", default="BTCUSDT,ETHUSDT,SOLUSDT")
    ap.add_argument("--rate", type=float, default=200.0, help="the market's rate (default 200, the simulator's)")
    ap.add_argument("--regimes", default=",".join(REGIMES), help="comma-separated (default every regime)")
    args = ap.parse_args(argv)
    regimes = [r for r in args.regimes.split(",") if r]
    unknown = [r for r in regimes if r not in REGIMES]
    if unknown or not args.seconds > 0:
        ap.error(f"unknown regimes {unknown} (have {', '.join(REGIMES)})" if unknown else "--seconds must be > 0")
    symbols = [s for s in args.symbols.split(",") if s]
    MechanisticMarket(symbols, seed=args.seed, rate=args.rate).run(1.0)   # one-time costs stay out of the first row
    rows = [measure(r, args.seconds, args.seed, symbols, args.rate) for r in regimes]
    load = os.getloadavg()[0]
    print(f"mechanistic market, {len(symbols)} symbols, rate {args.rate:g}, seed {args.seed}, "
          f"{args.seconds:g} simulated s per regime; load average {load:.2f} on {os.cpu_count()} cores")
    head = f"{'regime':<18} {'sim/wall s':>10} {'sim/CPU s':>10} {'CPU s':>7} {'build CPU s':>11} " \
           f"{'events':>8} {'events/CPU s':>12} {'liqs':>6} {'liq M USD':>9}"
    print(head)
    print("-" * len(head))
    for r in rows:
        print(f"{r['regime']:<18} {r['sim_per_wall_s']:>10.1f} {r['sim_per_cpu_s']:>10.1f} {r['cpu_s']:>7.2f} "
              f"{r['build_cpu_s']:>11.3f} {r['events']:>8} {r['events_per_cpu_s']:>12} {r['liquidations']:>6} "
              f"{r['liquidated_usd'] / 1e6:>9.1f}")
    print(json.dumps({"bench": "mechanics_speed", "seconds": args.seconds, "seed": args.seed, "symbols": symbols,
                      "rate": args.rate, "load_average": round(load, 2), "cpu_count": os.cpu_count(),
                      "regimes": rows}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
