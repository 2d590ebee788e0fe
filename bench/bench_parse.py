"""Parse + normalize throughput: msgspec Parser versus stdlib json, on real hftbacktest frames.

Run: ``.venv/bin/python bench/bench_parse.py [--frames N] [--repeat R] [--baseline OLD_binance.py]``;
prints a table per stream type and overall, then one JSON line. ``--baseline`` times an older copy of
engine/venues/binance.py (``git show REV:engine/venues/binance.py > /tmp/old.py``) as "before"; the
contenders take turns, one pass each per round (best kept), so the ratios come from one run. Passes
are timed by the thread's CPU time (``CLOCK``), which leaves out the time other processes hold the core.

``--sim VENUE`` times any venue's parser on the frames the simulator sends for it (cascades included,
so liquidation frames too), grouped by the kind of the first record each frame gives; ``--baseline``
is then an older copy of that venue's module. No stdlib contender there.
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import math
import os
import sys
import time
from collections import defaultdict
from pathlib import Path

from engine.captures import iter_capture
from engine.record import Kind, Side, Venue
from engine.venues import binance

# this thread's CPU time: a pass that the shared machine's other processes preempt is not charged for their turn
CLOCK = time.thread_time
SHARED = Path(os.environ.get("UNDERTOW_SHARED") or Path(__file__).resolve().parents[2] / "shared") / "data"
CAPTURES = ["binance_usdm/hftbacktest/btcusdt_20230404.dat.gz", "binance_usdm/hftbacktest/btcusdt_20240808.gz"]


def load_frames(limit: int) -> dict[str, list[bytes]]:
    """Real received frames grouped by stream type (trade, bookTicker, depth, markPrice)."""
    groups: dict[str, list[bytes]] = defaultdict(list)
    for rel in CAPTURES:
        for fr in iter_capture(SHARED / rel):
            if fr.direction != "recv":
                continue
            t = fr.payload[fr.payload.index(b"@") + 1: fr.payload.index(b'"', 12)].decode()
            t = "depth" if t.startswith("depth") else t.split("@")[0]
            if len(groups[t]) < limit:
                groups[t].append(fr.payload)
    return dict(groups)


def stdlib_parse(payload: bytes, ts: int, ids: dict, out: list) -> None:
    """The same normalization written with json.loads (the baseline)."""
    d = json.loads(payload)["data"]
    e = d["e"]
    if e == "trade" or e == "aggTrade":
        p, q = float(d["p"]), float(d["q"])
        if math.isfinite(p) and math.isfinite(q) and p > 0 and q > 0:
            out.append((Kind.TRADE, Venue.BINANCE, Side.SELL if d["m"] else Side.BUY, 0, ids[d["s"]],
                        d["T"] * 1_000_000, ts, p, q, p * q, float(d.get("t", d.get("a", 0))), 1.0))
    elif e == "bookTicker":
        b, bq, a, aq = float(d["b"]), float(d["B"]), float(d["a"]), float(d["A"])
        out.append((Kind.BOOK_TOP, Venue.BINANCE, 0, 0, ids[d["s"]], d["T"] * 1_000_000, ts,
                    b, bq, b * bq + a * aq, a, aq))
    elif e == "markPriceUpdate":
        out.append((Kind.MARK, Venue.BINANCE, 0, 0, ids[d["s"]], d["E"] * 1_000_000, ts, float(d["p"]),
                    float(d["i"]), 0.0, float(d["r"] or 0), float(d["T"])))
    # depthUpdate: decoded and counted only, as in the msgspec parser


def load_module(path: str):
    """An older copy of a venue module, importable beside the current one."""
    spec = importlib.util.spec_from_file_location("baseline_venue", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module   # msgspec resolves the Structs' annotations through sys.modules
    spec.loader.exec_module(module)
    return module


def one_pass(fn, frames: list[bytes]) -> float:
    """Seconds per frame of one pass of ``fn(frame, ts, out)`` (``fn`` a :class:`Fresh`: made anew, untimed)."""
    if isinstance(fn, Fresh):
        fn = fn.make()
    out: list = []
    t0 = CLOCK()
    for f in frames:
        fn(f, 1, out)
        out.clear()
    return (CLOCK() - t0) / len(frames)


class Fresh:
    """A parse function made anew for each pass: parsers that keep state (duplicate trades, the last open
    interest) would otherwise see every later pass as repeats."""

    def __init__(self, make):
        self.make = make


def time_turns(fns: dict, frames: list[bytes], repeat: int) -> dict[str, float]:
    """Best-of-``repeat`` seconds per frame of each of ``fns``, taking turns pass by pass."""
    best = dict.fromkeys(fns, math.inf)
    for _ in range(repeat):
        for name, fn in fns.items():
            best[name] = min(best[name], one_pass(fn, frames))
    return best


SIM_SYMBOLS = ["BTCUSDT", "ETHUSDT"]


def sim_frames(venue: str, steps: int) -> tuple[dict[str, list[bytes]], object]:
    """What the simulator sends a combined-stream client of ``venue`` (every stream of the default plan,
    cascades every 2 s), keeping the frames the parser turns into records, by the first record's kind; and
    the simulator (its REST listing gives the contract sizes)."""
    from engine.simulator.runner import render_session
    module = importlib.import_module(f"engine.venues.{venue}")
    sim, symbols, rendered = render_session(venue, steps, SIM_SYMBOLS)
    parser = sim_parser(module, sim, symbols)
    groups: dict[str, list[bytes]] = defaultdict(list)
    for stream, raw in rendered:
        frame = sim.envelope(stream, raw)
        out: list = []
        parser.parse(frame, 1, out)
        if out:
            groups[Kind.NAMES[out[0][0]]].append(frame)
    return dict(groups), sim


def sim_parser(module, sim, symbols: list[str]):
    """``module``'s Parser over ``symbols``, with the contract sizes of the simulator's instrument listing
    where the Parser takes them (OKX and Gate sizes are contracts; unsized instruments are IGNORED)."""
    import inspect
    from urllib.parse import urlencode, urlsplit
    ids = {s: i for i, s in enumerate(symbols)}
    if "contract_sizes" not in inspect.signature(module.Parser).parameters or hasattr(module, "REST_METHOD"):
        # no sizes needed, or a POST listing (Hyperliquid sizes are coins already)
        return module.Parser(ids.get)
    path, params, _ = module.EXCHANGE_INFO_REQUEST
    base = urlsplit(sim.endpoints("127.0.0.1", 1).get("rest_url", "")).path.rstrip("/")   # Gate's /api/v4
    _, body = sim.rest(f"{base}{path}?{urlencode(params)}")
    infos = module.parse_exchange_info(json.dumps(body).encode()) or []
    return module.Parser(ids.get, contract_sizes={i.symbol: i.contract_size for i in infos if i.contract_size > 0})


def sim_main(args) -> dict:
    """``--sim``: the current module against ``--baseline``, per record kind (ns per frame)."""
    groups, sim = sim_frames(args.sim, args.steps)
    symbols = sim.endpoints("127.0.0.1", 1).get("symbols") or SIM_SYMBOLS
    modules = {"now": importlib.import_module(f"engine.venues.{args.sim}")}
    if args.baseline:
        modules["before"] = load_module(args.baseline)
    fns = {k: Fresh(lambda m=m: sim_parser(m, sim, symbols).parse) for k, m in modules.items()}
    results = {}
    for name, frames in sorted(groups.items()):
        best = time_turns(fns, frames, args.repeat)
        results[name] = {"frames": len(frames), **{f"{k}_ns": round(v * 1e9, 1) for k, v in best.items()}}
        if "before" in best:
            results[name]["vs_before"] = round(best["before"] / best["now"], 2)
        print(f"{args.sim}.{name:<14}" + "  ".join(f"{k} {v}" for k, v in results[name].items()))
    print(json.dumps({"bench": "parse_sim", "venue": args.sim, "results": results}))
    return results


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--frames", type=int, default=20000, help="frames per stream type")
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--baseline", help="an older copy of the venue module, timed as 'before'")
    ap.add_argument("--sim", metavar="VENUE", help="time VENUE's parser on the simulator's frames")
    ap.add_argument("--steps", type=int, default=300, help="--sim: market steps rendered")
    args = ap.parse_args(argv)
    if args.sim:
        return sim_main(args)
    groups = load_frames(args.frames)
    ids = {"BTCUSDT": 0}
    fns = {"msgspec": binance.Parser(ids.get).parse, "stdlib": lambda f, ts, out: stdlib_parse(f, ts, ids, out)}
    if args.baseline:
        fns["before"] = load_module(args.baseline).Parser(ids.get).parse
    results = {}
    everything = [f for fs in groups.values() for f in fs]
    for name, frames in [*sorted(groups.items()), ("overall", everything)]:
        best = time_turns(fns, frames, args.repeat)
        ms, sj = best["msgspec"], best["stdlib"]
        results[name] = {"frames": len(frames), "msgspec_ns": round(ms * 1e9, 1), "stdlib_ns": round(sj * 1e9, 1),
                         "msgspec_msgs_s": round(1 / ms), "stdlib_msgs_s": round(1 / sj), "speedup": round(sj / ms, 2)}
        if "before" in best:
            results[name].update(before_ns=round(best["before"] * 1e9, 1), vs_before=round(best["before"] / ms, 2))
    before = "before" in fns
    print(f"{'stream':<12}{'frames':>8}{'msgspec ns':>12}{'msgs/s':>11}{'stdlib ns':>11}{'msgs/s':>10}{'x':>7}"
          + (f"{'before ns':>11}{'x before':>10}" if before else ""))
    for name, r in results.items():
        print(f"{name:<12}{r['frames']:>8}{r['msgspec_ns']:>12}{r['msgspec_msgs_s']:>11}"
              f"{r['stdlib_ns']:>11}{r['stdlib_msgs_s']:>10}{r['speedup']:>7}"
              + (f"{r['before_ns']:>11}{r['vs_before']:>10}" if before else ""))
    print(json.dumps({"bench": "parse", "results": results}))
    return results


if __name__ == "__main__":
    main()
