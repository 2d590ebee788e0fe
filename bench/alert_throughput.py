"""Alert-actor throughput in a cascade: liquidations a second that the router + SQLite outbox sustain.

A cascade burst (``--n`` liquidations over ``--assets`` assets, all in a
running WARNING cascade that the engine re-publishes every "second" of
exchange time, ``--per-s`` liquidations a second) is published on a ZeroMQ
bus ahead of the consumer, so the bus always holds more than the actor has
routed: a saturated actor. The consumer runs the alert actor's loop
(``actors.alerts.AlertsActor.run``): one blocking receive, then, where the
tree has it, :func:`actors.alerts.drain` and ``router.handle_burst`` (one
transaction per burst), else ``router.handle`` per signal (one transaction
per signal), then ``router.tick()``. Telegram is on (one chat) and the
outbox file is real, so every liquidation changes the stored cascade state.

Prints signals/s over the whole burst and the per-signal cost (each
iteration's time shared by the signals it routed) p50/p99 in µs, and the
iteration time p50/p99 (what a signal waits at most behind its burst).

``--baseline REV`` runs this same script against git revision ``REV``'s tree
(extracted to a temporary directory, same interpreter) in alternating rounds
with the working tree, and prints both. ``--per-message`` makes the working
tree route one signal per iteration (``handle``) as before the burst loop.

    python bench/alert_throughput.py --n 20000 --assets 4 --baseline HEAD --rounds 3
"""
from __future__ import annotations

import argparse
import io
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

T0 = 1_700_000_000_000_000_000
ASSETS = ("BTC", "ETH", "SOL", "XRP", "DOGE", "BNB", "AVAX", "LINK")
VENUES = ("binance", "bybit", "okx", "gate", "bitget", "hyperliquid")


def script(n: int, assets: int, per_s: int) -> list:
    """The cascade starts, then ``n`` liquidations round-robin over the assets with each cascade re-published
    every ``per_s`` liquidations (a second of exchange time), then the ends."""
    from engine.signals import Cascade, Liquidation
    names = ASSETS[:assets]
    step = 1_000_000_000 // per_s

    def casc(asset, level, t, prev="WARNING"):
        return Cascade(asset=asset, level=level, score=6.0 if level != "NONE" else 1.0, count=50, notional_usd=5e6,
                       long_usd=4e6, short_usd=1e6, price=100.0, ts_exchange=t, previous_level=prev,
                       factors={"velocity": 3.0})
    out = [casc(a, "WARNING", T0, prev="NONE") for a in names]
    for i in range(n):
        t = T0 + (i + 1) * step
        if i and i % per_s == 0:
            out += [casc(a, "WARNING", t) for a in names]
        a = names[i % assets]
        usd = (500.0, 2_000.0, 8_000.0, 40_000.0)[i % 4] * (1 + (i % 7) / 10)
        out.append(Liquidation(asset=a, venue=VENUES[i % len(VENUES)], symbol=f"{a}USDT",
                               side="long" if i % 5 else "short", price=100.0 - i * 1e-4, qty=usd / 100.0,
                               notional_usd=usd, size_class="retail" if usd < 10_000 else "large",
                               ts_exchange=t))
    t = T0 + (n + 1) * step
    return out + [casc(a, "NONE", t) for a in names]


def run_once(args) -> dict:
    """Route the script through this tree's router and loop; per-iteration (seconds, signals) and totals."""
    import msgspec

    from engine.alerts.outbox import Outbox
    from engine.alerts.router import AlertRouter
    from engine.bus import Publisher, Subscriber
    from engine.config import Config
    try:
        from actors.alerts import drain
    except ImportError:
        drain = None
    burst = drain is not None and not args.per_message

    sigs = script(args.n, args.assets, args.per_s)
    tmp = Path(tempfile.mkdtemp(prefix="alert-tp-"))
    endpoint = f"ipc://{tmp}/bus.sock"
    ob = Outbox(tmp / "alerts-outbox.sqlite3")
    router = AlertRouter(msgspec.structs.replace(Config().alerts, kinds=["cascade", "liquidation"]), ob, [1],
                         console_out=io.StringIO())
    pub = Publisher(endpoint, "bench", sndhwm=len(sigs) + 1000)
    sub = Subscriber(endpoint, ["cascade.", "liquidation.", "heartbeat."], rcvhwm=len(sigs) + 1000)
    while sub.recv(timeout_ms=50) is None:       # slow joiner: until the subscription is in place
        pub.heartbeat()
    while sub.recv(timeout_ms=50) is not None:
        pass
    for s in sigs:
        pub.publish(s)
    time.sleep(0.5 + len(sigs) * 20e-6)    # ZeroMQ's I/O thread moves them into the SUB queue: the bus is full
    iters: list[tuple[float, int]] = []
    got = 0
    t_start = time.perf_counter()
    while got < len(sigs):
        msg = sub.recv(timeout_ms=1000)
        if msg is None:
            raise SystemExit(f"bus went quiet after {got} of {len(sigs)} signals")
        t0 = time.perf_counter()
        if burst:
            batch = drain(sub, msg.signal)
            router.handle_burst(batch)
        else:
            batch = [msg.signal]
            router.handle(msg.signal)
        router.tick()
        iters.append((time.perf_counter() - t0, len(batch)))
        got += len(batch)
    wall = time.perf_counter() - t_start
    pub.close()
    sub.close()
    ob.close()
    return {"signals": got, "wall_s": wall, "iters": iters, "burst": burst, "gaps": sub.gaps}


def summarize(runs: list[dict]) -> dict:
    per_sig = np.concatenate([np.repeat([t / n * 1e6 for t, n in r["iters"]], [n for _, n in r["iters"]])
                              for r in runs])     # µs: each iteration's time shared by the signals it routed
    it = np.array([t for r in runs for t, _ in r["iters"]])
    sizes = np.array([n for r in runs for _, n in r["iters"]])
    rates = [r["signals"] / r["wall_s"] for r in runs]
    return {"signals_per_s": round(float(np.median(rates)), 0), "signals_per_s_runs": [round(x) for x in rates],
            "per_signal_p50_us": round(float(np.percentile(per_sig, 50)), 1),
            "per_signal_p99_us": round(float(np.percentile(per_sig, 99)), 1),
            "iteration_p50_ms": round(float(np.percentile(it, 50)) * 1e3, 3),
            "iteration_p99_ms": round(float(np.percentile(it, 99)) * 1e3, 3),
            "mean_burst": round(float(sizes.mean()), 1), "burst_loop": runs[0]["burst"],
            "bus_gaps": sum(r["gaps"] for r in runs)}


def show(label: str, s: dict) -> None:
    print(f"{label:>22}: {s['signals_per_s']:9.0f} signals/s   per signal p50 {s['per_signal_p50_us']:7.1f} µs  "
          f"p99 {s['per_signal_p99_us']:7.1f} µs   iteration p50 {s['iteration_p50_ms']:.3f} ms  "
          f"p99 {s['iteration_p99_ms']:.3f} ms   mean burst {s['mean_burst']}   bus gaps {s['bus_gaps']}")


def _child(root: Path, args, per_message: bool = False) -> dict:
    cmd = [sys.executable, str(root / "bench" / "alert_throughput.py"), "--n", str(args.n), "--assets",
           str(args.assets), "--per-s", str(args.per_s), "--raw"] + (["--per-message"] if per_message else [])
    out = subprocess.run(cmd, cwd=root, check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def against_baseline(args) -> dict:
    """Alternate rounds on ``args.baseline``'s tree, the working tree, and the working tree per message."""
    with tempfile.TemporaryDirectory(prefix="ut-base-") as tmp:
        tree = Path(tmp)
        archive = subprocess.run(["git", "-C", str(ROOT), "archive", args.baseline], check=True,
                                 capture_output=True).stdout
        subprocess.run(["tar", "-x", "-C", str(tree)], input=archive, check=True)
        (tree / "bench" / "alert_throughput.py").write_bytes(Path(__file__).read_bytes())   # same measurement
        runs: dict[str, list[dict]] = {"base": [], "work": [], "work_per_message": []}
        for _ in range(max(1, args.rounds)):
            runs["base"].append(_child(tree, args))
            runs["work"].append(_child(ROOT, args))
            runs["work_per_message"].append(_child(ROOT, args, per_message=True))
    return {k: summarize(v) for k, v in runs.items()}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=20_000, help="liquidations in the burst")
    ap.add_argument("--assets", type=int, default=4, choices=range(1, len(ASSETS) + 1))
    ap.add_argument("--per-s", type=int, default=2_000, help="liquidations per second of exchange time")
    ap.add_argument("--per-message", action="store_true", help="route one signal per loop iteration (handle)")
    ap.add_argument("--baseline", metavar="REV", help="also measure git revision REV, alternating")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--raw", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.raw:
        r = run_once(args)
        print(json.dumps(r))
        return 0
    if args.baseline:
        res = against_baseline(args)
        show(f"{args.baseline[:10]} (old)", res["base"])
        show("working tree", res["work"])
        show("working, per message", res["work_per_message"])
        print(json.dumps(res))
        return 0
    s = summarize([run_once(args) for _ in range(max(1, args.rounds))])
    show("per message" if args.per_message else "working tree", s)
    print(json.dumps(s))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
