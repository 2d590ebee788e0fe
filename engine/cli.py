"""The ``undertow`` command line."""
from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import msgspec

from .config import Config, ConfigError, default_path, load, to_toml_dict

__all__ = ["main"]

log = logging.getLogger("undertow")


def _load(path: str | None) -> Config:
    try:
        return load(path)
    except ConfigError as exc:
        print(f"undertow: invalid configuration: {exc}", file=sys.stderr)
        raise SystemExit(2) from None


# -- check-config ----------------------------------------------------------
def cmd_check_config(args) -> int:
    cfg = _load(args.path)
    print(json.dumps(to_toml_dict(cfg), indent=2))
    print(f"{args.path or default_path()}: OK", file=sys.stderr)
    return 0


# -- actor -----------------------------------------------------------------
def cmd_actor(args) -> int:
    cfg = _load(args.config)
    if args.standby:
        return _standby(args, cfg)
    if args.name == "feed":
        from actors.feed import FeedActor
        actor = FeedActor(cfg, args.venue)
    elif args.name == "compute":
        from actors.compute import ComputeActor
        actor = ComputeActor(cfg, args.worker)
    elif args.name == "alerts":
        from actors.alerts import AlertsActor
        actor = AlertsActor(cfg)
    elif args.name == "recorder":
        from actors.recorder import RecorderActor
        actor = RecorderActor(cfg)
    elif args.name == "bot":
        from actors.bot import BotActor
        actor = BotActor(cfg)
    else:  # argparse restricts the choices
        raise SystemExit(f"unknown actor {args.name}")
    return actor.start()


def _standby(args, cfg) -> int:
    """Import the actor's code now, then wait for the supervisor's "go" line on stdin and run it.

    A warm standby turns a restart into an attach: the imports (numba alone takes ~0.6 s) are paid
    before the actor it replaces dies. EOF on stdin (the supervisor closed it) ends the standby.
    """
    from . import osutil
    osutil.die_with_supervisor()
    if args.name == "compute":
        import actors.compute  # noqa: F401 - the point is to pay the import now
        from .kernels import pipeline  # noqa: F401
    line = sys.stdin.readline()
    if line.strip() != "go":
        return 0
    args.standby = False
    return cmd_actor(args)


# -- run -------------------------------------------------------------------
def cmd_run(args) -> int:
    from .supervisor import Supervisor
    cfg = _load(args.config)
    return Supervisor(cfg, log_level=args.log_level).run(args.duration)


# -- simulate --------------------------------------------------------------
def cmd_simulate(args) -> int:
    from .simulator.runner import run
    cfg = _load(args.config)
    sim = cfg.simulator
    changes = {k: v for k, v in (("port", args.port), ("rate", args.rate), ("seed", args.seed),
                                 ("speed", args.speed)) if v is not None}
    if args.replay:
        changes.update(mode="replay", replay_files=args.replay)
    if args.scenario:
        from .simulator.scenarios import parse_script
        for line in args.scenario:
            try:
                parse_script(line)
            except ValueError as exc:
                raise SystemExit(f"undertow simulate: --scenario {exc}") from None
        changes.update(scenarios=[*sim.scenarios, *args.scenario])
    if changes:
        sim = msgspec.structs.replace(sim, **changes)
    market = _market_choice(args, "simulate")
    run(sim, ready_file=args.ready_file, duration=args.duration, liquidation_share=args.liquidation_share,
        throttle=not args.no_throttle, start_at=args.start_at or 0.0, **market)
    return 0


def _market_choice(args, command: str) -> dict:
    """``--market``/``--regime`` as Simulator keyword arguments (none for the default synthetic market)."""
    if args.start_at is not None and not 0.0 <= args.start_at < float("inf"):
        raise SystemExit(f"undertow {command}: --start-at must be a number of seconds >= 0, got {args.start_at}")
    if args.market != "mechanistic":
        if args.regime is not None:
            raise SystemExit(f"undertow {command}: --regime needs --market mechanistic")
        return {}
    from .simulator.regimes import REGIMES
    regime = args.regime or "calm"
    if regime not in REGIMES:
        raise SystemExit(f"undertow {command}: unknown --regime {regime!r} (have {', '.join(REGIMES)})")
    return {"market": "mechanistic", "regime": regime}


# -- demo ------------------------------------------------------------------
def wait_ready_file(path: Path, proc: subprocess.Popen, timeout: float) -> dict:
    """Wait for the JSON ``path`` that a starting ``proc`` writes when ready; exit if it dies first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"undertow: the simulator exited with {proc.returncode} before it was ready")
        if path.exists():
            try:
                return json.loads(path.read_text())
            except json.JSONDecodeError:
                pass
        time.sleep(0.05)
    raise SystemExit(f"undertow: the simulator was not ready within {timeout:.0f}s")


def point_at_simulator(cfg: Config, endpoints: dict) -> Config:
    """Return ``cfg`` with every venue aimed at the simulator (venues it does not serve are disabled)."""
    from .config import VenuesConfig
    venues = {}
    for name in VenuesConfig.__struct_fields__:
        v = getattr(cfg.venues, name)
        ep = endpoints.get(name)
        if v.enabled and ep is None:
            log.warning("the simulator does not serve %s yet; disabling it for the demo", name)
            v = msgspec.structs.replace(v, enabled=False)
        elif ep is not None:
            served = list(ep.get("symbols") or cfg.simulator.symbols)
            # a selector ("all", "top:N") is resolved against the simulator's own listing and tickers
            picked = {"symbols": v.symbols, "fallback_symbols": served} if isinstance(v.symbols, str) else {"symbols": served}
            v = msgspec.structs.replace(v, ws_urls=ep["ws_urls"], rest_url=ep["rest_url"], **picked)
        venues[name] = v
    return msgspec.structs.replace(cfg, venues=msgspec.structs.replace(cfg.venues, **venues))


def cmd_demo(args) -> int:
    from .demo_script import demo_config, demo_script
    from .supervisor import Supervisor
    cfg = _load(args.config)
    if not args.script_scale > 0:
        raise SystemExit("undertow demo: --script-scale must be positive")
    script = [] if args.no_script or args.market != "synthetic" else demo_script(args.script_scale)
    if args.seed is not None or args.rate is not None:
        sim_changes = {k: v for k, v in (("seed", args.seed), ("rate", args.rate)) if v is not None}
        cfg = msgspec.structs.replace(cfg, simulator=msgspec.structs.replace(cfg.simulator, **sim_changes))
    run_dir = Path(cfg.engine.run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    ready = run_dir / "simulator-ready.json"
    ready.unlink(missing_ok=True)
    sim_argv = [sys.executable, "-m", "engine.cli", "--log-level", args.log_level, "simulate",
                "--ready-file", str(ready)]
    if args.config:
        sim_argv += ["--config", args.config]
    for flag, val in (("--seed", args.seed), ("--rate", args.rate), ("--start-at", args.start_at),
                      *(("--" + k, v) for k, v in _market_choice(args, "demo").items())):
        if val is not None:
            sim_argv += [flag, str(val)]
    for line in script:
        sim_argv += ["--scenario", line]
    if script:
        cfg = demo_config(cfg, args.script_scale)
    sim = subprocess.Popen(sim_argv, env={**os.environ, "UNDERTOW_PARENT_PID": str(os.getpid())},
                           stdout=subprocess.DEVNULL)
    try:
        info = wait_ready_file(ready, sim, 30.0)
        cfg = point_at_simulator(cfg, info["endpoints"])
        token = "set" if os.environ.get("TELEGRAM_BOT_TOKEN") else "not set"
        print(f"Undertow demo: simulator on port {info['port']}, signals on {cfg.bus.endpoint} "
              f"(run `undertow tail` in another terminal); Telegram token {token}. Ctrl-C stops.",
              flush=True)
        return Supervisor(cfg, log_level=args.log_level).run(args.duration)
    finally:
        if sim.poll() is None:
            sim.send_signal(signal.SIGTERM)
            try:
                sim.wait(5)
            except subprocess.TimeoutExpired:
                sim.kill()
        ready.unlink(missing_ok=True)


# -- replay / heatmap ------------------------------------------------------
def cmd_replay(args) -> int:
    from .replay import run_replay
    cfg = _load(args.config)
    if args.endpoint:
        cfg = msgspec.structs.replace(cfg, bus=msgspec.structs.replace(cfg.bus, endpoint=args.endpoint))
    try:
        stats = run_replay(cfg, args.path, speed=0.0 if args.max else args.speed, venue=args.venue,
                           with_alerts=not args.quiet, log_level=args.log_level)
    except (FileNotFoundError, ValueError, KeyError) as exc:
        print(f"undertow replay: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(stats))
    return 0


def cmd_backtest(args) -> int:
    from .backtest.run import command
    return command(args, _load(args.config))


def cmd_heatmap(args) -> int:
    from .history import parse_span
    from .images import heatmap_from_history
    cfg = _load(args.config)
    root = args.history or cfg.recorder.root
    try:
        png = heatmap_from_history(root, args.asset.upper(), cfg.detectors.zones, parse_span(args.span),
                                   chart=args.chart, funding_cfg=cfg.detectors.funding)
    except (FileNotFoundError, ValueError) as exc:
        print(f"undertow heatmap: {exc}", file=sys.stderr)
        return 2
    Path(args.out).write_bytes(png)
    print(f"wrote {args.out} ({len(png):,} bytes)", file=sys.stderr)
    return 0


# -- capture-stats ---------------------------------------------------------
def cmd_capture_stats(args) -> int:
    from .capture_stats import main as capture_stats
    return capture_stats(args.venue, args.files)


# -- tail ------------------------------------------------------------------
def resolve_bus_endpoint(explicit: str | None, config: str | None) -> str:
    """--endpoint, else $UNDERTOW_BUS, else a running daemon's bus file, else the config's endpoint."""
    if explicit:
        return explicit
    if os.environ.get("UNDERTOW_BUS"):
        return os.environ["UNDERTOW_BUS"]
    cfg = _load(config)
    from .supervisor import bus_endpoint_file
    f = bus_endpoint_file(cfg.engine.run_dir)
    if f.exists():
        try:
            return json.loads(f.read_text())["endpoint"]
        except (json.JSONDecodeError, KeyError):
            pass
    return cfg.bus.endpoint


def signal_json(msg) -> bytes:
    """One JSON object for a received signal: its fields, ``kind``, ``topic`` and ``ts_received``."""
    d = msgspec.to_builtins(msg.signal)
    d["topic"] = msg.topic
    d["ts_received"] = msg.ts_received
    return msgspec.json.encode(d)


def cmd_tail(args) -> int:
    from .alerting import format_console
    from .bus import Subscriber
    endpoint = resolve_bus_endpoint(args.endpoint, args.config)
    sub = Subscriber(endpoint, [args.topic or ""])
    if not args.json:
        print(f"tailing {endpoint} topic {args.topic or '*'!r}", file=sys.stderr, flush=True)
    n = 0
    deadline = None if args.duration is None else time.monotonic() + args.duration
    out = sys.stdout.buffer
    try:
        while args.count is None or n < args.count:
            if deadline is not None and time.monotonic() >= deadline:
                break
            msg = sub.recv(timeout_ms=200)
            if msg is None:
                continue
            n += 1
            if args.json:
                out.write(signal_json(msg) + b"\n")
                out.flush()
            else:
                s = msg.signal
                lat = (msg.ts_received - s.ts_recv) / 1e3 if s.ts_recv else float("nan")
                print(f"[{msg.topic} #{s.seq}] frame→here {lat:.0f} µs\n{format_console(s)}", flush=True)
    except (KeyboardInterrupt, BrokenPipeError):
        pass
    finally:
        sub.close()
    return 0


# -- status ----------------------------------------------------------------
def cmd_thresholds(args) -> int:
    from . import shm
    from .actor_table import actor_table_segment
    from .profiles import thresholds_report
    cfg = _load(args.config)
    running = actor_table_segment(cfg.engine.namespace) in shm.list_segments(cfg.engine.namespace)
    report = thresholds_report(cfg, args.asset, running)
    if args.json:
        print(json.dumps(report, indent=2, default=str))
        return 0
    print(f"{report['asset']} - source: {report['source']}")
    for title, part in (("profile", report["profile"]), ("thresholds", report["thresholds"])):
        print(f"{title}:")
        for k, v in part.items():
            print(f"  {k:<22} {v:,.6g}" if isinstance(v, float) else f"  {k:<22} {v}")
    for name, values in report["detectors"].items():
        print(f"detector {name}:")
        for k, v in values.items():
            print(f"  {k:<22} {v:,.6g}")
    return 0


def cmd_status(args) -> int:
    from . import shm
    from .actor_table import ActorTable, actor_table_segment
    from .ring import Ring, RingError, ring_segment
    cfg = _load(args.config)
    ns = cfg.engine.namespace
    if actor_table_segment(ns) not in shm.list_segments(ns):
        print(f"undertow: no engine running in namespace {ns!r}", file=sys.stderr)
        return 1
    table = ActorTable.open(actor_table_segment(ns))
    doc = {"namespace": ns, "actors": table.snapshot(), "rings": []}
    from .supervisor import enabled_venues
    for v in enabled_venues(cfg):
        try:
            r = Ring.attach(ring_segment(ns, v))
        except RingError:
            continue
        doc["rings"].append({"ring": v, "written": r.write_cursor, "generation": r.generation,
                             "readers": r.readers()})
        r.close()
    print(json.dumps(doc, indent=2))
    return 0


# -- top -------------------------------------------------------------------
def cmd_top(args) -> int:
    from .dashboard import run_top
    return run_top(_load(args.config), args.refresh, args.duration)


def _market_arguments(s: argparse.ArgumentParser) -> None:
    s.add_argument("--market", choices=("synthetic", "mechanistic"), default="synthetic",
                   help="synthetic: drawn cascades; mechanistic: cascades emerge from leveraged positions "
                        "meeting the book (engine/simulator/mechanics.py)")
    s.add_argument("--regime", help="mechanistic market regime: calm, grind, news_shock, thin_book_cascade "
                                    "(default calm; engine/simulator/regimes.py)")
    s.add_argument("--start-at", type=float, metavar="S",
                   help="run the simulated market's first S seconds unserved, so it opens S seconds into its "
                        "regime or scenarios (default 0)")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="undertow", description="Liquidation-cascade radar for crypto perpetuals.")
    p.add_argument("--log-level", default=os.environ.get("UNDERTOW_LOG_LEVEL", "INFO"),
                   help="DEBUG, INFO, WARNING or ERROR (default INFO; demo WARNING)")
    sub = p.add_subparsers(dest="cmd", required=True)

    s = sub.add_parser("run", help="run the daemon (supervisor + actors)")
    s.add_argument("--config")
    s.add_argument("--duration", type=float, help="stop after S seconds")
    s.set_defaults(func=cmd_run)

    s = sub.add_parser("demo", help="simulator + engine + console alerts in one command")
    s.add_argument("--config")
    s.add_argument("--duration", type=float, help="stop after S seconds (default: until Ctrl-C)")
    s.add_argument("--seed", type=int)
    s.add_argument("--rate", type=float, help="synthetic frames per second")
    s.add_argument("--script-scale", type=float, default=1.0,
                   help="run the synthetic market's 10-minute demo script (engine/demo_script.py) at this time "
                        "scale: 0.1 = one minute (default 1)")
    s.add_argument("--no-script", action="store_true",
                   help="no demo script (only [simulator] scenarios and the market's random cascades)")
    _market_arguments(s)
    s.set_defaults(func=cmd_demo, demo=True)

    s = sub.add_parser("simulate", help="run the local exchange simulator")
    s.add_argument("--config")
    s.add_argument("--port", type=int)
    s.add_argument("--rate", type=float)
    s.add_argument("--seed", type=int)
    s.add_argument("--speed", type=float, help="replay speed factor (0 = as fast as possible)")
    s.add_argument("--replay", nargs="+", metavar="FILE", help="replay recorded captures instead of synthesizing")
    s.add_argument("--scenario", action="append", metavar="NAME[:SYMBOL][@S][,k=v]",
                   help="script a market episode (repeatable), e.g. oi_explosion:BTCUSDT@60,pct=40; "
                        "names in engine/simulator/scenarios.py")
    s.add_argument("--duration", type=float)
    s.add_argument("--ready-file", help="write the listening port and endpoints here (JSON) once ready")
    s.add_argument("--liquidation-share", type=float, default=0.0,
                   help="fraction of synthetic frames that are liquidations (latency benchmarks)")
    s.add_argument("--no-throttle", action="store_true",
                   help="send every liquidation (Binance itself sends at most one per symbol per second)")
    _market_arguments(s)
    s.set_defaults(func=cmd_simulate)

    s = sub.add_parser("tail", help="print signals from the bus")
    s.add_argument("--topic", help="topic prefix, e.g. cascade. or cascade.BTC")
    s.add_argument("--json", action="store_true", help="one JSON object per line")
    s.add_argument("--endpoint")
    s.add_argument("--config")
    s.add_argument("--count", type=int, help="exit after N signals")
    s.add_argument("--duration", type=float, help="exit after S seconds")
    s.set_defaults(func=cmd_tail)

    s = sub.add_parser("check-config", help="validate a config file and print the effective config")
    s.add_argument("path", nargs="?")
    s.set_defaults(func=cmd_check_config)

    s = sub.add_parser("capture-stats", help="run a venue's parser over capture files; one JSON line of counts per file")
    s.add_argument("--venue", required=True)
    s.add_argument("files", nargs="+", metavar="FILE")
    s.set_defaults(func=cmd_capture_stats)

    s = sub.add_parser("replay", help="feed recorded segments (or a venue capture) through the pipeline")
    s.add_argument("path", help="a history root written by the recorder, or a capture file (with --venue)")
    s.add_argument("--speed", type=float, default=1.0, help="1 = real time (default), 10 = ten times faster")
    s.add_argument("--max", action="store_true", help="as fast as the compute workers take it")
    s.add_argument("--venue", help="venue of a capture file")
    s.add_argument("--endpoint", help="bus endpoint for the replayed signals (default: the config's)")
    s.add_argument("--quiet", action="store_true", help="no console alerts")
    s.add_argument("--config")
    s.set_defaults(func=cmd_replay)

    s = sub.add_parser("backtest", help="score the cascade warnings and zones on simulated scenarios and real series")
    s.add_argument("--scenario", action="append", metavar="NAME[:SECONDS]",
                   help="calm, grind, news_shock, thin_book_cascade (default: all), optionally with its length")
    s.add_argument("--seconds", type=float, help="simulated seconds per scenario (default: each scenario's own)")
    s.add_argument("--seed", type=int, default=7)
    s.add_argument("--venues", default="binance,bybit", help="venues that render the simulated market")
    s.add_argument("--real", help="event-level liquidation CSV (default: the shared data's OKX series)")
    s.add_argument("--no-real", action="store_true", help="simulated scenarios only")
    s.add_argument("--out", metavar="DIR", help="write report.md, summary.json and PNG plots here")
    s.add_argument("--json", action="store_true", help="print the summary as one JSON object (last line)")
    s.add_argument("--warmup", type=float, default=600.0, help="seconds of each asset's start left unscored")
    s.add_argument("--jobs", type=int, default=1, help="datasets run at once, one process each")
    s.add_argument("--quiet", action="store_true", help="no progress bar")
    s.add_argument("--config")
    s.set_defaults(func=cmd_backtest)

    s = sub.add_parser("heatmap", help="liquidation heatmap PNG of an asset from the recorded history")
    s.add_argument("asset")
    s.add_argument("--out", required=True, metavar="FILE.png")
    s.add_argument("--span", default="24h", help="history to draw, e.g. 6h, 24h, 7d")
    s.add_argument("--history", help="history root (default: [recorder] root)")
    s.add_argument("--chart", choices=["heatmap", "cvd"], default="heatmap",
                   help="heatmap (default) or the CVD / liquidations chart")
    s.add_argument("--config")
    s.set_defaults(func=cmd_heatmap)

    s = sub.add_parser("thresholds", help="an asset's profile and every threshold derived from it")
    s.add_argument("asset")
    s.add_argument("--config")
    s.add_argument("--json", action="store_true", help="one JSON document")
    s.set_defaults(func=cmd_thresholds)

    s = sub.add_parser("status", help="actors and rings of a running engine")
    s.add_argument("--config")
    s.set_defaults(func=cmd_status)

    s = sub.add_parser("top", help="live terminal dashboard of a running engine (venues, assets, latest alerts)")
    s.add_argument("--config")
    s.add_argument("--refresh", type=float, default=1.0, help="seconds between redraws")
    s.add_argument("--duration", type=float, help="exit after this many seconds")
    s.set_defaults(func=cmd_top)

    s = sub.add_parser("actor", help="run one actor in this process (used by the supervisor and systemd units)")
    s.add_argument("name", choices=["feed", "compute", "alerts", "recorder", "bot"])
    s.add_argument("--config")
    s.add_argument("--venue", default="binance")
    s.add_argument("--worker", type=int, default=0)
    s.add_argument("--standby", action="store_true",
                   help="import, then wait for 'go' on stdin before starting (the supervisor's warm spare)")
    s.set_defaults(func=cmd_actor)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    level = args.log_level
    if getattr(args, "demo", False) and "--log-level" not in (argv or sys.argv):
        level = args.log_level = "WARNING"
    logging.basicConfig(level=getattr(logging, level.upper(), logging.INFO), stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    return args.func(args) or 0


if __name__ == "__main__":
    sys.exit(main())
