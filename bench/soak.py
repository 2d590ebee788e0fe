"""Soak run: `undertow run` against the simulator's synthetic market, faster than real time, under a seeded
random fault schedule; memory, file descriptors and conservation.

Starts ``undertow simulate`` (all six venue protocols, ``--symbols`` instruments, the market clock running
``--speed`` times faster than the wall clock) and ``undertow run`` with every venue pointed at it and a
webhook sink served by this script (so alerts go through the durable outbox). A schedule drawn from
``--seed`` then injects, every ``--fault-every`` wall seconds on average: forced disconnects (clean /
TCP reset), stalls with and without pings, frame faults (drop / duplicate / reorder / corrupt; on
Binance only its depth stream, so its consecutive trade ids stay checkable), REST 429 and 5xx, webhook
5xx, and ``--compute-kills`` SIGKILLs of ``compute:0``. Every ``--every`` seconds it samples resident
memory and open file descriptors of the supervisor, every process under it and the simulator, and
prints one progress line (safe to run in the background: ``nohup python bench/soak.py ... > soak.log &``).

At the end (market time ``--sim-hours`` reached, or ``--max-wall-s`` spent: both are reported):

* RSS slope after warm-up (the first ``--warmup`` share of the samples), per process and in total,
  in MB per simulated hour and MB per wall hour; FD min/max per process;
* per feed ``sent - received == reported gap`` where trade ids are consecutive (Binance aggTrade), from
  this script's own reader on each ring (every TRADE id and every GAP record); holes no GAP announced
  are listed;
* per ring and reader ``written == read + lost``: the reader is caught up, and the compute reader's
  records + lost since the last kill equal its cursor's advance;
* the alerts outbox: ``enqueued == delivered + pending + failed`` (+ expired / superseded / in flight).

The last line is one JSON object with every figure. ``python bench/soak.py --sim-hours 2 --speed 6``

Run it from a tree nobody edits meanwhile (``git archive HEAD | tar -x -C DIR``): a restarted actor imports
the code as it is then, and a changed state-table layout or numba recompile shows up as restarts.
"""
from __future__ import annotations

import argparse
import http.server
import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import uuid
from pathlib import Path

import msgspec

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.scale_run import proc_sample  # noqa: E402
from engine import shm  # noqa: E402
from engine.actor_table import ActorTable, actor_table_segment  # noqa: E402
from engine.alerts.outbox import outbox_path  # noqa: E402
from engine.cli import point_at_simulator, wait_ready_file  # noqa: E402
from engine.config import Config, dump_json  # noqa: E402
from engine.record import Control, Kind  # noqa: E402
from engine.ring import Ring, RingError, RingReader, ring_segment  # noqa: E402
from engine.supervisor import enabled_venues  # noqa: E402

VENUES = ("binance", "bybit", "okx", "gate", "bitget", "hyperliquid")
FRAME_FAULTS = ("drop", "duplicate", "reorder", "corrupt")
# action -> weight in the random schedule
ACTIONS = {"disconnect": 3, "reset": 2, "stall": 2, "stall_dead": 1, "frame": 4, "rest_429": 1, "rest_5xx": 1,
           "webhook_5xx": 1}
READER = "soak"


# -- processes ------------------------------------------------------------------------------------------

def descendants(root: int) -> list[int]:
    """``root`` and every process below it (from /proc's parent links)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    ppid = int(f.read().rsplit(")", 1)[1].split()[1])
            except (FileNotFoundError, ProcessLookupError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry))
    out, todo = [], [root]
    while todo:
        pid = todo.pop()
        out.append(pid)
        todo.extend(children.get(pid, ()))
    return out


def fd_count(pid: int) -> int | None:
    try:
        return len(os.listdir(f"/proc/{pid}/fd"))
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None


def proc_name(pid: int, names: dict[int, str]) -> str:
    """The actor name of ``pid`` from the actor table, else its command line's last words."""
    if pid in names:
        return names[pid]
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            argv = f.read().decode(errors="replace").split("\0")
    except (FileNotFoundError, ProcessLookupError):
        return f"pid{pid}"
    if "actor" in argv:   # a warm standby: `engine.cli actor compute --standby ...`
        i = argv.index("actor")
        return "standby:" + (argv[i + 1] if i + 1 < len(argv) else "?")
    return " ".join(a for a in argv[1:4] if a)[:40] or f"pid{pid}"


def slope(points: list[tuple[float, float]]) -> float:
    """Least-squares slope of ``(x, y)`` points (0 with fewer than two distinct x)."""
    n = len(points)
    if n < 2:
        return 0.0
    mx = sum(x for x, _ in points) / n
    my = sum(y for _, y in points) / n
    sxx = sum((x - mx) ** 2 for x, _ in points)
    return sum((x - mx) * (y - my) for x, y in points) / sxx if sxx > 0 else 0.0


# -- the webhook sink ---------------------------------------------------------------------------------

class WebhookSink:
    """A local HTTP endpoint for the alerts webhook: 200, or 503 while a fault is pending."""

    def __init__(self) -> None:
        sink = self
        self.received = 0
        self.refused = 0
        self.fail_next = 0

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):   # noqa: N802 - http.server's naming
                self.rfile.read(int(self.headers.get("Content-Length", "0")))
                if sink.fail_next > 0:
                    sink.fail_next -= 1
                    sink.refused += 1
                    self.send_response(503)
                else:
                    sink.received += 1
                    self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()


# -- the simulator's fault API -------------------------------------------------------------------------

class SimControl:
    """``GET /_sim/<action>`` on the simulator."""

    def __init__(self, port: int) -> None:
        self.base = f"http://127.0.0.1:{port}/_sim/"

    def __call__(self, action: str, **query) -> dict:
        q = "&".join(f"{k}={v}" for k, v in query.items())
        with urllib.request.urlopen(self.base + action + ("?" + q if q else ""), timeout=10) as resp:
            return json.loads(resp.read())


def fault_schedule(seed: int, wall_s: float, every_s: float, kills: int, book_streams: dict) -> list[tuple]:
    """``[(at_wall_s, action, venue, params)]``: random faults at exponential spacing, the compute kills spread
    evenly over the middle of the run."""
    r = random.Random(seed)
    names, weights = list(ACTIONS), list(ACTIONS.values())
    out, t = [], 0.0
    while True:
        t += r.expovariate(1.0 / every_s)
        if t > wall_s * 0.9:
            break
        action = r.choices(names, weights)[0]
        venue = r.choice(VENUES)
        params: dict = {}
        if action in ("stall", "stall_dead"):
            params = {"seconds": round(r.uniform(1.0, 6.0), 2)}
        elif action == "frame":
            params = {"kind": r.choice(FRAME_FAULTS), "n": r.randint(1, 3)}
            if venue == "binance":
                params["stream"] = r.choice(book_streams["binance"])
        elif action in ("rest_429", "rest_5xx"):
            params = {"status": 429 if action == "rest_429" else r.choice((500, 502, 503)), "n": r.randint(1, 3)}
        elif action == "webhook_5xx":
            params = {"n": r.randint(1, 4)}
        out.append((round(t, 3), action, venue, params))
    for k in range(kills):
        out.append((round(wall_s * (0.3 + 0.4 * (k + 1) / (kills + 1)), 3), "kill_compute", "", {}))
    return sorted(out, key=lambda f: f[0])


# -- conservation ------------------------------------------------------------------------------------

class TradeLedger:
    """This script's own reader on one ring: every TRADE id per instrument and every GAP record."""

    def __init__(self, ring: Ring) -> None:
        self.ring = ring
        self.reader = RingReader(ring, READER, start="earliest")
        self.first: dict[int, int] = {}
        self.last: dict[int, int] = {}
        self.received = 0
        self.duplicates = 0
        self.reported = 0
        self.pending: dict[int, int] = {}     # iid -> GAP count waiting for the next trade
        self.unannounced: list[tuple[int, int, int]] = []   # (iid, after id, hole)
        self.misreported: list[tuple[int, int, int, int]] = []

    def poll(self) -> None:
        while True:
            recs, _ = self.reader.poll()
            if not len(recs):
                return
            for kind, iid, aux, count in zip(recs["kind"].tolist(), recs["instrument"].tolist(),
                                             recs["aux"].tolist(), recs["aux2"].tolist()):
                if kind == Kind.CONTROL and int(aux) == Control.GAP:
                    self.pending[iid] = self.pending.get(iid, 0) + int(count)
                    self.reported += int(count)
                elif kind == Kind.TRADE and aux > 0:
                    self._trade(iid, int(aux))

    def _trade(self, iid: int, tid: int) -> None:
        last = self.last.get(iid)
        if last is not None and tid <= last:
            self.duplicates += 1
            return
        announced = self.pending.pop(iid, 0)
        if last is None:
            self.first[iid] = tid
        else:
            hole = tid - last - 1
            if hole and not announced:
                self.unannounced.append((iid, last, hole))
            elif hole != announced:
                self.misreported.append((iid, last, hole, announced))
        self.last[iid] = tid
        self.received += 1

    def result(self) -> dict:
        sent = sum(self.last[i] - self.first[i] + 1 for i in self.last)
        return {"sent": sent, "received": self.received, "reported_gap": self.reported,
                "holds": sent - self.received == self.reported and self.reader.lost == 0,
                "reader_lost": self.reader.lost, "duplicates_seen": self.duplicates,
                "unannounced_holes": len(self.unannounced),
                "unannounced_ids": sum(h for _, _, h in self.unannounced),
                "misreported_holes": len(self.misreported)}


def outbox_balance(state_dir: Path) -> dict:
    path = outbox_path(state_dir)
    if not path.exists():
        return {"enqueued": 0, "holds": True, "note": "no outbox (no alert reached a sink)"}
    db = sqlite3.connect(str(path), timeout=10)
    try:
        states = dict(db.execute("SELECT state, COUNT(*) FROM outbox GROUP BY state").fetchall())
        enqueued = db.execute("SELECT COUNT(*) FROM outbox").fetchone()[0]
        unknown = db.execute("SELECT COALESCE(SUM(unknown), 0) FROM outbox").fetchone()[0]
    finally:
        db.close()
    delivered = states.get("sent", 0)
    rest = {k: v for k, v in states.items() if k != "sent"}
    return {"enqueued": enqueued, "delivered": delivered, **{k: rest.get(k, 0) for k in
            ("pending", "inflight", "failed", "expired", "superseded")},
            "ambiguous_sends": unknown, "holds": enqueued == delivered + sum(rest.values())}


# -- the run ------------------------------------------------------------------------------------------

def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sim-hours", type=float, default=24.0, help="market hours to run (default 24)")
    ap.add_argument("--speed", type=float, default=36.0, help="market seconds per wall second (default 36)")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--symbols", nargs="+", default=["BTCUSDT", "ETHUSDT"])
    ap.add_argument("--rate", type=float, default=20.0, help="market events per market second in calm periods")
    ap.add_argument("--every", type=float, default=5.0, help="wall seconds between samples")
    ap.add_argument("--fault-every", type=float, default=20.0, help="mean wall seconds between faults")
    ap.add_argument("--compute-kills", type=int, default=1)
    ap.add_argument("--warmup", type=float, default=0.2, help="share of the samples treated as warm-up")
    ap.add_argument("--max-wall-s", type=float, default=None, help="stop after this many wall seconds even if "
                    "the market has not reached --sim-hours (reported)")
    ap.add_argument("--keep", action="store_true", help="keep the run directory (logs, outbox)")
    args = ap.parse_args(argv)
    planned_wall = args.sim_hours * 3600.0 / args.speed
    max_wall = args.max_wall_s or planned_wall * 1.5 + 120

    ns = "soak" + uuid.uuid4().hex[:6]
    tmp = Path(tempfile.mkdtemp(prefix="undertow-soak-"))
    sink = WebhookSink()
    base = msgspec.convert({
        "engine": {"namespace": ns, "run_dir": str(tmp)},
        "supervisor": {"health_port": 0, "restart_backoff_max_ms": 2000, "startup_grace_ms": 60000},
        "bus": {"endpoint": f"ipc://{tmp}/bus.sock"},
        "simulator": {"rate": args.rate, "symbols": args.symbols, "seed": args.seed, "speed": args.speed,
                      "cascade_every_s": 600.0, "first_cascade_after_s": 120.0,
                      "ping_interval_s": 20.0, "pong_timeout_s": 20.0},
        "alerts": {"state_dir": str(tmp / "state"), "console": {"enabled": False},
                   "webhook": {"enabled": True, "url": sink.url}, "retry_initial_s": 0.5, "retry_max_s": 5.0},
    }, Config)
    ready = tmp / "ready.json"
    log = open(tmp / "processes.log", "wb")
    sim = subprocess.Popen([sys.executable, "-m", "engine.cli", "--log-level", "WARNING", "simulate", "--config",
                            str(dump_json(base, tmp / "sim.json")), "--ready-file", str(ready)], cwd=ROOT,
                           stdout=log, stderr=log)
    eng = None
    ledgers: dict[str, TradeLedger] = {}
    # (wall s, market s, {process name: (RSS MB, open fds, CPU s)})
    samples: list[tuple[float, float, dict[str, tuple[float, int, float]]]] = []
    done_faults: list[str] = []
    restarts: list[dict[str, int]] = []   # per sample: actor -> restarts so far
    kill_cursors: dict[str, int] | None = None
    status = "completed"
    t_start = time.monotonic()
    try:
        info = wait_ready_file(ready, sim, 60)
        ctl = SimControl(info["port"])
        cfg = point_at_simulator(base, info["endpoints"])
        ring_venues = enabled_venues(cfg)   # every feed's ring: the perp venues the faults hit, and any others
        book_streams = {"binance": [f"{s.lower()}@depth@100ms" for s in cfg.venues.binance.symbols]}
        faults = fault_schedule(args.seed, planned_wall, args.fault_every, args.compute_kills, book_streams)
        eng = subprocess.Popen([sys.executable, "-m", "engine.cli", "--log-level", "WARNING", "run", "--config",
                                str(dump_json(cfg, tmp / "engine.json"))], cwd=ROOT, stdout=log, stderr=log)
        table = _wait_table(ns, eng, 120)
        print(f"soak: namespace {ns}, dir {tmp}, {len(faults)} faults planned over {planned_wall:.0f} wall s "
              f"(speed {args.speed:g}, {args.sim_hours:g} market h)", flush=True)
        t0 = time.monotonic()
        next_sample, next_fault, unstall = t0, 0, []
        while True:
            now = time.monotonic()
            wall = now - t0
            for venue in ring_venues:
                if venue not in ledgers:
                    try:
                        ledgers[venue] = TradeLedger(Ring.attach(ring_segment(ns, venue)))
                    except (RingError, FileNotFoundError):
                        pass
            for led in ledgers.values():
                led.poll()
            for item in [u for u in unstall if u[0] <= wall]:
                ctl("unstall", venue=item[1])
                unstall.remove(item)
            while next_fault < len(faults) and faults[next_fault][0] <= wall:
                at, action, venue, params = faults[next_fault]
                next_fault += 1
                rings = {v: led.ring for v, led in ledgers.items()}
                cursors = _inject(ctl, sink, table, rings, action, venue, params, unstall, wall)
                if cursors is not None:
                    kill_cursors = cursors
                done_faults.append(action)
            if now >= next_sample:
                next_sample = now + args.every
                market_s = ctl("counters").get("market_time_s", 0.0)
                rows = table.snapshot()
                names = {r["pid"]: r["name"] for r in rows}
                restarts.append({r["name"]: int(r["restarts"]) for r in rows})
                procs = {proc_name(p, names): p for p in descendants(eng.pid) if p != eng.pid}
                procs.update(supervisor=eng.pid, simulator=sim.pid)
                point = {}
                for name, pid in procs.items():
                    s, fds = proc_sample(pid), fd_count(pid)
                    if s is not None and fds is not None:
                        point[name] = (s[0], fds, s[1])
                samples.append((wall, market_s, point))
                total = sum(v[0] for v in point.values())
                print(f"soak: wall {wall:7.0f} s  market {market_s / 3600:6.3f} h  rss {total:7.1f} MB  "
                      f"fds {sum(v[1] for v in point.values()):5d}  faults {len(done_faults)}/{len(faults)}",
                      flush=True)
                if market_s >= args.sim_hours * 3600.0:
                    break
                if now - t_start > max_wall:
                    status = "stopped at --max-wall-s before the market reached --sim-hours"
                    break
                if eng.poll() is not None or sim.poll() is not None:
                    status = "a process exited early"
                    break
            time.sleep(0.1)
        figures = _finish(ctl, table, ns, ledgers, kill_cursors, sink, tmp, unstall)
        table.close()
    finally:
        if eng is not None and eng.poll() is None:
            eng.send_signal(signal.SIGTERM)
            try:
                eng.wait(60)
            except subprocess.TimeoutExpired:
                eng.kill()
        if sim.poll() is None:
            sim.send_signal(signal.SIGTERM)
            try:
                sim.wait(20)
            except subprocess.TimeoutExpired:
                sim.kill()
        for led in ledgers.values():
            led.reader.release()
            led.ring.close()
        sink.close()
        shm.sweep(ns)
        log.close()
    after_warmup = restarts[int(len(restarts) * args.warmup)] if restarts else {}
    figures.update(_memory(samples, args.warmup), status=status,
                   restarts_after_warmup={n: r - after_warmup.get(n, 0) for n, r in figures["restarts"].items()
                                          if r - after_warmup.get(n, 0)}, seed=args.seed, speed=args.speed,
                   sim_hours_planned=args.sim_hours, faults_injected=dict(_count(done_faults)),
                   engine_exit=eng.returncode if eng is not None else None, run_dir=str(tmp))
    if not args.keep:
        subprocess.run(["rm", "-rf", str(tmp)], check=False)
    _print_table(figures)
    print(json.dumps(figures, sort_keys=True), flush=True)
    return 0 if figures["conservation_holds"] and status == "completed" else 1


def _wait_table(ns: str, eng: subprocess.Popen, timeout: float) -> ActorTable:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if eng.poll() is not None:
            raise SystemExit(f"soak: undertow run exited with {eng.returncode}")
        if actor_table_segment(ns) in shm.list_segments(ns):
            table = ActorTable.open(actor_table_segment(ns))
            rows = {r["name"]: r for r in table.snapshot()}
            if "compute:0" in rows and all(f"feed:{v}" in rows for v in VENUES):
                return table
            table.close()
        time.sleep(0.2)
    raise SystemExit("soak: the engine's actors did not all start")


def _inject(ctl, sink, table, rings, action, venue, params, unstall, wall) -> dict | None:
    """Apply one fault; for a compute kill return the compute reader cursors right after it."""
    if action in ("disconnect", "reset"):
        ctl("disconnect", venue=venue, mode="reset" if action == "reset" else "clean")
    elif action in ("stall", "stall_dead"):
        ctl("stall", venue=venue, pings="1" if action == "stall" else "0")
        unstall.append((wall + params["seconds"], venue))
    elif action == "frame":
        q = {"n": params["n"], "venue": venue}
        if "stream" in params:
            q["stream"] = params["stream"]
        if params["kind"] == "corrupt":
            q["mode"] = "garble"
        ctl(params["kind"], **q)
    elif action in ("rest_429", "rest_5xx"):
        ctl("http_error", status=params["status"], n=params["n"], retry_after=1)
    elif action == "webhook_5xx":
        sink.fail_next += params["n"]
    elif action == "kill_compute":
        rows = {r["name"]: r for r in table.snapshot()}
        pid = rows["compute:0"]["pid"]
        # frozen first, so its cursors (where its replacement resumes) cannot move between reading and killing
        os.kill(pid, signal.SIGSTOP)
        cursors = _reader_cursors(rings, "compute-0")
        os.kill(pid, signal.SIGKILL)
        return cursors
    return None


def _reader_cursors(rings: dict[str, Ring], name: str) -> dict[str, int]:
    """Cursors of reader ``name`` on rings already attached (reading them is a few memory loads)."""
    return {venue: r["cursor"] for venue, ring in rings.items() for r in ring.readers() if r["name"] == name}


def _finish(ctl, table, ns, ledgers, kill_cursors, sink, tmp, unstall) -> dict:
    """Quiesce (every venue stalled, pings answered), let readers and the outbox drain, check conservation."""
    for _, venue in unstall:
        ctl("unstall", venue=venue)
    ctl("stall")
    time.sleep(3.0)
    rings, compute_ok, compute = {}, False, {}
    deadline = time.monotonic() + 30.0
    while time.monotonic() < deadline:
        for led in ledgers.values():
            led.poll()
        rings = {}
        for venue in ledgers:   # every ring of the run (spot venues too)
            try:
                ring = Ring.attach(ring_segment(ns, venue))
            except (RingError, FileNotFoundError):
                continue
            rings[venue] = {"written": ring.write_cursor, "generation": ring.generation,
                            "readers": {r["name"]: {"cursor": r["cursor"], "lost": r["lost"], "lag": r["lag"]}
                                        for r in ring.readers()}}
            ring.close()
        row = {r["name"]: r for r in table.snapshot()}.get("compute:0", {})
        c = row.get("counters", {})
        advanced = sum(rings[v]["readers"].get("compute-0", {}).get("cursor", 0) - kill_cursors.get(v, 0)
                       for v in rings) if kill_cursors is not None else None
        compute = {"records": int(c.get("records", -1)), "lost": int(c.get("lost", -1)),
                   "cursor_advance_since_kill": advanced}
        caught_up = all(rd["lag"] == 0 for r in rings.values() for rd in r["readers"].values())
        compute_ok = advanced is None or compute["records"] + compute["lost"] == advanced
        if caught_up and compute_ok:
            break
        time.sleep(1.0)
    for venue, r in rings.items():   # written == read + lost: a caught-up reader's cursor is the write cursor
        r["holds"] = all(rd["lag"] == 0 for rd in r["readers"].values())
    ctl("unstall")
    time.sleep(2.0)
    outbox_deadline = time.monotonic() + 20.0
    outbox = outbox_balance(tmp / "state")
    while outbox.get("pending", 0) + outbox.get("inflight", 0) and time.monotonic() < outbox_deadline:
        time.sleep(1.0)
        outbox = outbox_balance(tmp / "state")
    feeds = {}
    rows = {r["name"]: r for r in table.snapshot()}
    for venue in ledgers:
        c = rows.get(f"feed:{venue}", {}).get("counters", {})
        feeds[venue] = {k: int(c.get(k, 0)) for k in ("reconnects", "gaps", "stale", "malformed", "book_gaps",
                                                      "book_resyncs", "book_stale", "book_crossed")}
        feeds[venue]["restarts"] = int(rows.get(f"feed:{venue}", {}).get("restarts", 0))
    trades = {"binance": ledgers["binance"].result()} if "binance" in ledgers else {}
    counters = ctl("counters")
    holds = (all(t["holds"] for t in trades.values()) and all(r["holds"] for r in rings.values())
             and compute_ok and outbox["holds"])
    return {"conservation_holds": holds, "trade_ids": trades, "rings": rings, "compute_reader": compute,
            "compute_reader_holds": compute_ok, "outbox": outbox, "feeds": feeds,
            "webhook": {"received": sink.received, "refused": sink.refused},
            "market_time_h": round(counters.get("market_time_s", 0.0) / 3600.0, 3),
            "sim_frames_sent": counters.get("frames_sent", 0), "sim_clock_skips": counters.get("clock_skips", 0),
            "restarts": {n: int(r.get("restarts", 0)) for n, r in rows.items()}}


def _memory(samples: list, warmup: float) -> dict:
    """RSS slopes after warm-up (MB per market hour and per wall hour) and FD min/max, per process and total."""
    if not samples:
        return {"samples": 0}
    steady = samples[int(len(samples) * warmup):] or samples
    names = sorted({n for _, _, p in samples for n in p})
    per = {}
    for name in names:
        pts = [(w, m, p[name]) for w, m, p in steady if name in p]
        fds = [p[name][1] for _, _, p in samples if name in p]
        cpu = [(w, p[name][2]) for w, _, p in samples if name in p]
        busy = sum(max(0.0, b[1] - a[1]) for a, b in zip(cpu, cpu[1:]))   # a restart starts from 0 again
        per[name] = {"cpu_pct": round(100.0 * busy / max(1e-9, cpu[-1][0] - cpu[0][0]), 1),
                     "rss_mb_last": round(pts[-1][2][0], 1) if pts else None,
                     "mb_per_market_h": round(slope([(m / 3600, v[0]) for _, m, v in pts]), 3),
                     "mb_per_wall_h": round(slope([(w / 3600, v[0]) for w, _, v in pts]), 3),
                     "fd_min": min(fds), "fd_max": max(fds)}
    total = [(w, m, sum(v[0] for v in p.values()), sum(v[1] for v in p.values())) for w, m, p in steady]
    return {"samples": len(samples), "warmup_samples": len(samples) - len(steady),
            "wall_s": round(samples[-1][0], 1), "market_h": round(samples[-1][1] / 3600, 3),
            "rss_total_mb_last": round(total[-1][2], 1),
            "rss_slope_mb_per_market_h": round(slope([(m / 3600, r) for _, m, r, _ in total]), 3),
            "rss_slope_mb_per_wall_h": round(slope([(w / 3600, r) for w, _, r, _ in total]), 3),
            "fd_total_min": min(t[3] for t in total), "fd_total_max": max(t[3] for t in total), "processes": per}


def _count(items: list[str]) -> dict[str, int]:
    out: dict[str, int] = {}
    for i in items:
        out[i] = out.get(i, 0) + 1
    return out


def _print_table(f: dict) -> None:
    print(f"\nsoak {f['status']}: {f.get('market_h', 0)} market h in {f.get('wall_s', 0)} wall s "
          f"(speed {f['speed']:g}, seed {f['seed']}), faults {sum(f['faults_injected'].values())}")
    print(f"{'process':<24} {'RSS MB':>8} {'MB/market h':>12} {'MB/wall h':>10} {'FD min':>7} {'FD max':>7} "
          f"{'CPU %':>6}")
    for name, p in f.get("processes", {}).items():
        print(f"{name:<24} {p['rss_mb_last'] or 0:>8.1f} {p['mb_per_market_h']:>12.3f} {p['mb_per_wall_h']:>10.3f} "
              f"{p['fd_min']:>7} {p['fd_max']:>7} {p['cpu_pct']:>6.1f}")
    print(f"total RSS slope {f.get('rss_slope_mb_per_market_h')} MB/market h, {f.get('rss_slope_mb_per_wall_h')} "
          f"MB/wall h; FDs {f.get('fd_total_min')}..{f.get('fd_total_max')}")
    print(f"conservation: {'holds' if f['conservation_holds'] else 'BROKEN'}; trade ids {f['trade_ids']}; "
          f"compute reader {f['compute_reader']}; outbox {f['outbox']}")


if __name__ == "__main__":
    sys.exit(main())
