"""Scale run: every venue with N symbols each against the simulator; resident memory, CPU and coverage.

Starts the simulator serving all six venue protocols for ``--symbols`` synthetic
instruments (BTC, ETH, SOL and small caps), runs ``undertow run`` with every
venue pointed at it (N symbols per venue, so about 6N instruments), and samples
each process's resident memory and CPU from /proc every ``--every`` seconds for
``--duration`` seconds. Prints a table per actor and one JSON line:

    {"symbols_per_venue":..,"instruments":..,"rss_mb_total":..,"cpu_pct_total":..,
     "connections":{venue: n},"restarts":..,"malformed":..}

    python bench/scale_run.py --symbols 300 --duration 60
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

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from engine import shm  # noqa: E402
from engine.actor_table import ActorTable, actor_table_segment  # noqa: E402
from engine.cli import point_at_simulator, wait_ready_file  # noqa: E402
from engine.config import Config, dump_json  # noqa: E402

_TICK = os.sysconf("SC_CLK_TCK")


def synthetic_symbols(n: int) -> list[str]:
    majors = ["BTCUSDT", "ETHUSDT", "SOLUSDT"]
    return majors + [f"X{i:03d}USDT" for i in range(max(0, n - len(majors)))]


def proc_sample(pid: int) -> tuple[float, float] | None:
    """(resident MB, CPU seconds) of ``pid`` from /proc, or None when it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        with open(f"/proc/{pid}/status") as f:
            rss_kb = next(int(line.split()[1]) for line in f if line.startswith("VmRSS:"))
    except (FileNotFoundError, ProcessLookupError, StopIteration):
        return None
    return rss_kb / 1024.0, (int(fields[11]) + int(fields[12])) / _TICK


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--symbols", type=int, default=300, help="symbols per venue")
    ap.add_argument("--rate", type=float, default=2000.0, help="synthetic market events per second (all symbols)")
    ap.add_argument("--duration", type=float, default=60.0, help="measured seconds after warm-up")
    ap.add_argument("--warmup", type=float, default=30.0)
    ap.add_argument("--every", type=float, default=5.0)
    args = ap.parse_args(argv)

    ns = "scale" + uuid.uuid4().hex[:6]
    tmp = Path(tempfile.mkdtemp(prefix="undertow-scale-"))
    symbols = synthetic_symbols(args.symbols)
    base = msgspec.convert({
        "engine": {"namespace": ns, "run_dir": str(tmp), "max_instruments": 8192},
        "supervisor": {"health_port": 0, "startup_grace_ms": 120000},
        "bus": {"endpoint": f"ipc://{tmp}/bus.sock"},
        "simulator": {"rate": args.rate, "symbols": symbols, "first_cascade_after_s": 20.0},
        "alerts": {"enabled": False},
    }, Config)
    ready = tmp / "ready.json"
    sim = subprocess.Popen([sys.executable, "-m", "engine.cli", "--log-level", "WARNING", "simulate", "--config",
                            str(dump_json(base, tmp / "sim.json")), "--ready-file", str(ready)], cwd=ROOT,
                           stdout=subprocess.DEVNULL, preexec_fn=lambda: os.nice(10))
    eng = None
    samples: dict[str, list] = {}
    try:
        info = wait_ready_file(ready, sim, 60)
        cfg = point_at_simulator(base, info["endpoints"])
        eng = subprocess.Popen([sys.executable, "-m", "engine.cli", "--log-level", "WARNING", "run", "--config",
                                str(dump_json(cfg, tmp / "engine.json"))], cwd=ROOT)
        time.sleep(args.warmup)
        table = ActorTable.open(actor_table_segment(ns))
        t_end = time.monotonic() + args.duration
        first: dict[str, tuple] = {}
        last: dict[str, tuple] = {}
        while time.monotonic() < t_end:
            rows = table.snapshot()
            procs = {"supervisor": eng.pid, **{r["name"]: r["pid"] for r in rows}}
            now = time.monotonic()
            for name, pid in procs.items():
                s = proc_sample(pid)
                if s is None:
                    continue
                samples.setdefault(name, []).append(s[0])
                first.setdefault(name, (now, s[1]))
                last[name] = (now, s[1])
            time.sleep(args.every)
        rows = {r["name"]: r for r in table.snapshot()}
        table.close()
    finally:
        if eng is not None:
            eng.send_signal(signal.SIGTERM)
            eng.wait(60)
        sim.send_signal(signal.SIGTERM)
        try:
            sim.wait(20)
        except subprocess.TimeoutExpired:
            sim.kill()
        shm.sweep(ns)
    print(f"{'actor':<20} {'RSS MB (max)':>12} {'CPU %':>7} {'symbols':>8} {'sockets':>8} {'frames':>10} {'malformed':>9}")
    total_rss = total_cpu = 0.0
    out_conn, malformed, restarts, instruments = {}, 0, 0, 0
    for name in sorted(samples):
        rss = max(samples[name])
        (t0, c0), (t1, c1) = first[name], last[name]
        cpu = 100.0 * (c1 - c0) / (t1 - t0) if t1 > t0 else 0.0
        total_rss += rss
        total_cpu += cpu
        c = rows.get(name, {}).get("counters", {})
        restarts += int(rows.get(name, {}).get("restarts", 0))
        if name.startswith("feed:"):
            out_conn[name[5:]] = int(c.get("connections", 0))
            malformed += int(c.get("malformed", 0))
            instruments += int(c.get("symbols", 0))
        print(f"{name:<20} {rss:>12.1f} {cpu:>7.1f} {int(c.get('symbols', 0)):>8} {int(c.get('connections', 0)):>8} "
              f"{int(c.get('frames', 0)):>10} {int(c.get('malformed', 0)):>9}")
    print(json.dumps({"symbols_per_venue": args.symbols, "instruments": instruments,
                      "rss_mb_total": round(total_rss, 1), "cpu_pct_total": round(total_cpu, 1),
                      "connections": out_conn, "restarts": restarts, "malformed": malformed}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
