"""End-to-end latency: simulator -> WebSocket -> feed -> ring -> compute -> ZeroMQ -> an external subscriber.

Starts the simulator at an aggregate frame rate, the whole engine (`undertow
run`) pointed at it, and subscribes from this process. For every signal it
measures ``received here - ts_recv`` (the moment the feed received the frame
that triggered it), and reports p50/p99/p99.9 in µs, then one JSON line:

    {"p50_us":..,"p99_us":..,"p999_us":..,"rate":..,"count":..,"lost":..}

``lost`` adds bus sequence gaps, records a compute reader lost on a ring, and
frames the simulator sent that the feed never counted.

    python bench/e2e_latency.py --rate 10000 --duration 20
"""
from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import msgspec
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from engine import shm  # noqa: E402
from engine.actor_table import ActorTable, actor_table_segment  # noqa: E402
from engine.bus import Subscriber  # noqa: E402
from engine.cli import point_at_simulator, wait_ready_file  # noqa: E402
from engine.config import Config, VenuesConfig, dump_json  # noqa: E402
from engine.osutil import set_realtime  # noqa: E402


def counters(ns: str) -> dict[str, dict[str, float]]:
    if actor_table_segment(ns) not in shm.list_segments(ns):
        return {}
    t = ActorTable.open(actor_table_segment(ns))
    try:
        return {r["name"]: r["counters"] for r in t.snapshot()}
    finally:
        t.close()


def run_once(rate: float, duration: float, warmup: float, liq_share: float, symbols: list[str],
             idle: str, seed: int, sim_nice: int = 10, park_spin_us: float = 0.0,
             detector_cadence_ms: float = 100.0, realtime: int = 0, subscriber_realtime: int = 0) -> dict:
    ns = "bench" + uuid.uuid4().hex[:6]
    tmp = Path(tempfile.mkdtemp(prefix="undertow-bench-"))
    base = msgspec.convert({
        "engine": {"namespace": ns, "run_dir": str(tmp), "idle": idle, "ring_capacity": 1 << 18,
                   "park_spin_us": park_spin_us, "detector_cadence_ms": detector_cadence_ms,
                   "realtime_priority": realtime},
        "supervisor": {"health_port": 0},
        "bus": {"endpoint": f"ipc://{tmp}/bus.sock", "heartbeat_interval_s": 1.0},
        "simulator": {"rate": rate, "seed": seed, "symbols": symbols, "venues": ["binance"]},
        # one venue: --rate is the frame rate the engine sees, not six venues' renderings of it
        "venues": {v: {"enabled": False} for v in VenuesConfig.__struct_fields__} | {"binance": {"symbols": symbols}},
        "alerts": {"enabled": False},
        "detectors": {"liquidations": {"publish_min_usd": 0.0}},
    }, Config)
    sim_cfg_file = dump_json(base, tmp / "sim.json")
    ready = tmp / "ready.json"
    sim = subprocess.Popen([sys.executable, "-m", "engine.cli", "--log-level", "WARNING", "simulate", "--config",
                            str(sim_cfg_file), "--ready-file", str(ready), "--liquidation-share", str(liq_share), "--no-throttle"],
                           cwd=ROOT, stdout=subprocess.DEVNULL, preexec_fn=(lambda: os.nice(sim_nice)) if sim_nice else None)
    eng = None
    lat: list[int] = []
    stages: list[tuple[int, int, int]] = []
    kinds: list[str] = []
    sub = None
    try:
        info = wait_ready_file(ready, sim, 30)
        cfg = point_at_simulator(base, info["endpoints"])
        eff = dump_json(cfg, tmp / "engine.json")
        sub = Subscriber(cfg.bus.endpoint, ["liquidation.", "cascade.", "volatility."])
        eng = subprocess.Popen([sys.executable, "-m", "engine.cli", "--log-level", "WARNING", "run", "--config",
                                str(eff)], cwd=ROOT)
        if subscriber_realtime and not set_realtime(subscriber_realtime):   # after the fork: the engine keeps its own
            print("  --subscriber-realtime not applied (needs CAP_SYS_NICE or RLIMIT_RTPRIO)", file=sys.stderr)
        t_start = time.monotonic()
        t_measure = t_start + warmup
        t_end = t_measure + duration
        gaps_at_start = None
        while time.monotonic() < t_end:
            msg = sub.recv(timeout_ms=100)
            if msg is None:
                continue
            if time.monotonic() < t_measure:
                continue
            if gaps_at_start is None:
                gaps_at_start = sub.gaps
            sg = msg.signal
            lat.append(msg.ts_received - sg.ts_recv)
            kinds.append(msg.topic.split(".", 1)[0])
            stages.append((sg.ts_computed - sg.ts_recv, sg.ts_published - sg.ts_computed,
                           msg.ts_received - sg.ts_published))
        c = counters(ns)
        run_s = time.monotonic() - t_start
        sim_stats = {}
        try:
            import urllib.request
            sim_stats = json.load(urllib.request.urlopen(f"http://127.0.0.1:{info['port']}/_sim/counters", timeout=2))
        except Exception:
            pass
    finally:
        if eng is not None:
            eng.send_signal(signal.SIGTERM)
            eng.wait(30)
        sim.send_signal(signal.SIGTERM)
        try:
            sim.wait(10)
        except subprocess.TimeoutExpired:
            sim.kill()
        if sub is not None:
            sub.close()
        shm.sweep(ns)
    ring_lost = sum(v for a in c.values() for k, v in a.items() if k.startswith("lost") or k.endswith("_lost"))
    bus_gaps = (sub.gaps - (gaps_at_start or 0)) if sub else 0
    arr = np.array(lat, dtype=np.float64) / 1e3
    st = np.array(stages, dtype=np.float64).reshape(-1, 3) / 1e3
    breakdown = {name: round(float(np.percentile(st[:, k], 50)), 1) if len(st) else None
                 for k, name in enumerate(("recv_to_computed_p50_us", "computed_to_published_p50_us",
                                           "published_to_subscriber_p50_us"))}
    by_kind = {}
    for kind in sorted(set(kinds)):
        sel = arr[np.array(kinds) == kind]
        by_kind[kind] = {"count": int(len(sel)), "p50_us": round(float(np.percentile(sel, 50)), 1),
                         "p99_us": round(float(np.percentile(sel, 99)), 1)}
    res = {
        "p50_us": round(float(np.percentile(arr, 50)), 1) if len(arr) else None,
        "p99_us": round(float(np.percentile(arr, 99)), 1) if len(arr) else None,
        "p999_us": round(float(np.percentile(arr, 99.9)), 1) if len(arr) else None,
        "max_us": round(float(arr.max()), 1) if len(arr) else None,
        "rate": rate,
        # what the feed really took in, over the whole run (warm-up included): a loaded box may not reach --rate
        "achieved_rate": round(c.get("feed:binance", {}).get("frames", 0.0) / run_s) if run_s > 0 else 0,
        "count": int(len(arr)),
        "lost": int(ring_lost + bus_gaps),
        "ring_lost": int(ring_lost),
        "bus_gaps": int(bus_gaps),
        "stages": breakdown,
        "by_kind": by_kind,
        "feed": c.get("feed:binance", {}),
        "compute": c.get("compute:0", {}),
        "simulator": sim_stats,
    }
    return res


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rate", type=float, default=10000, help="aggregate simulator frames per second")
    ap.add_argument("--duration", type=float, default=20.0, help="measured seconds")
    ap.add_argument("--warmup", type=float, default=8.0, help="seconds ignored at start (imports, numba, connect)")
    ap.add_argument("--liquidation-share", type=float, default=0.02,
                    help="fraction of frames that are liquidations (each yields a signal)")
    ap.add_argument("--symbols", default="BTCUSDT,ETHUSDT,SOLUSDT")
    ap.add_argument("--idle", default="park", choices=["spin", "backoff", "sleep", "park"])
    ap.add_argument("--park-spin-us", type=float, default=0.0,
                    help="with --idle park: keep polling this long after work before parking")
    ap.add_argument("--detector-cadence-ms", type=float, default=100.0,
                    help="engine.detector_cadence_ms: plug-in detectors over queued batches (0: after every batch)")
    ap.add_argument("--realtime", type=int, default=0,
                    help="engine.realtime_priority: the compute loop and its ZeroMQ I/O thread run SCHED_FIFO")
    ap.add_argument("--subscriber-realtime", type=int, default=0,
                    help="run this script's subscriber (main and ZeroMQ I/O thread) SCHED_FIFO at this priority, "
                         "as a latency-sensitive consumer of the bus would")
    ap.add_argument("--runs", type=int, default=1)
    ap.add_argument("--sim-nice", type=int, default=10,
                    help="niceness of the simulator, which stands in for the remote exchange and should not "
                         "take CPU from the engine on a small machine (0 = same priority)")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--verbose", action="store_true", help="print the actors' counters")
    args = ap.parse_args(argv)
    results = []
    for i in range(args.runs):
        r = run_once(args.rate, args.duration, args.warmup, args.liquidation_share, args.symbols.split(","),
                     args.idle, args.seed + i, args.sim_nice, args.park_spin_us, args.detector_cadence_ms,
                     args.realtime, args.subscriber_realtime)
        results.append(r)
        print(f"  stages (p50 µs): {r['stages']}", flush=True)
        print(f"  by signal kind: {r['by_kind']}", flush=True)
        print(f"run {i + 1}: rate {r['rate']:.0f}/s (feed took {r['achieved_rate']}/s)  signals {r['count']}  p50 {r['p50_us']} µs  p99 {r['p99_us']} µs"
              f"  p99.9 {r['p999_us']} µs  max {r['max_us']} µs  lost {r['lost']} (ring {r['ring_lost']}, bus {r['bus_gaps']})",
              flush=True)
        if args.verbose:
            print(json.dumps({k: r[k] for k in ("stages", "feed", "compute", "simulator")}, indent=1))
    last = results[-1] if args.runs == 1 else {
        "p50_us": float(np.median([r["p50_us"] for r in results if r["p50_us"] is not None])),
        "p99_us": float(np.median([r["p99_us"] for r in results if r["p99_us"] is not None])),
        "p999_us": float(np.median([r["p999_us"] for r in results if r["p999_us"] is not None])),
        "rate": args.rate, "count": sum(r["count"] for r in results), "lost": sum(r["lost"] for r in results)}
    print(json.dumps({k: last[k] for k in ("p50_us", "p99_us", "p999_us", "rate", "count", "lost")}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
