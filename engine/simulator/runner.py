"""Entry points: the :class:`Simulator` object, blocking :func:`run`, and :func:`start_in_thread`."""
from __future__ import annotations

import asyncio
import contextlib
import importlib
import json
import logging
import os
import signal
import tempfile
import threading
import time
from typing import Any

import msgspec

from engine.config import SimulatorConfig

from .market import STEP_S, SyntheticMarket
from .replay import CaptureReplay
from .scenarios import parse_script
from .server import SimServer

__all__ = ["Simulator", "run", "start_in_thread", "SimulatorHandle"]

log = logging.getLogger("undertow.simulator")

_MAX_BACKLOG_S = 0.5     # further behind than this, the synthetic clock skips ahead instead of bursting

# Venue protocols the simulator speaks: name -> "module:class". Adding a venue is one line here.
# A venue class takes ``(symbols, *, market, throttle)`` (``throttle``: apply the venue's real push
# caps) and implements the interface :class:`~engine.simulator.server.SimServer` documents.
SIM_VENUES: dict[str, str] = {
    "binance": "engine.simulator.binance:BinanceVenue",
    "bybit": "engine.simulator.bybit:BybitVenue",
    "okx": "engine.simulator.okx:OkxVenue",
    "gate": "engine.simulator.gate:GateVenue",
    "bitget": "engine.simulator.bitget:BitgetVenue",
    "hyperliquid": "engine.simulator.hyperliquid:HyperliquidVenue",
    "binance_spot": "engine.simulator.binance_spot:BinanceSpotVenue",
    "bybit_spot": "engine.simulator.bybit_spot:BybitSpotVenue",
    "okx_spot": "engine.simulator.okx_spot:OkxSpotVenue",
}


def venue_class(name: str) -> type:
    """Return the simulator class of venue ``name``; raise KeyError if the simulator does not speak it."""
    module, _, cls = SIM_VENUES[name].partition(":")
    return getattr(importlib.import_module(module), cls)


def render_session(venue: str, steps: int, symbols: list[str] | tuple[str, ...] = ("BTCUSDT", "ETHUSDT"),
                   clock_ms=None) -> tuple[Any, list[str], list[tuple[str, bytes]]]:
    """What venue ``venue``'s simulator sends a client subscribed to every stream of the default plan, over
    ``steps`` market steps (seed 3, cascades every 2 s): (the venue simulator, its native symbols,
    [(stream, raw frame)]). ``clock_ms()`` stamps the frames; by default market time from 1_700_000_000_000."""
    from engine.config import VenuesConfig
    from engine.venues import load
    market = SyntheticMarket(list(symbols), seed=3, rate=1000, cascade_every_s=2.0, first_cascade_after_s=0.5)
    sim = venue_class(venue)(list(symbols), market=market, throttle=False)
    ep = sim.endpoints("127.0.0.1", 1)
    native = ep.get("symbols") or list(symbols)
    vcfg = msgspec.structs.replace(getattr(VenuesConfig(), venue), symbols=native)
    subs = {s: {object()} for p in load(venue).plan(vcfg, ep["ws_urls"]) for s in p.streams}
    frames = []
    for _ in range(steps):
        events = market.step()
        now_ms = clock_ms() if clock_ms is not None else 1_700_000_000_000 + int(market.t * 1000)
        for stream, raw in sim.render(events, market.t, subs, now_ms):
            frames.append((stream, raw if isinstance(raw, bytes) else raw.encode()))
    return sim, native, frames


class Simulator:
    """A local exchange: synthetic market or capture replay served over the venues' wire protocols."""

    def __init__(self, cfg: SimulatorConfig | None = None, *, liquidation_share: float = 0.0,
                 throttle: bool = True, max_messages_per_s: int = 10, market: str = "synthetic",
                 regime: str = "calm", start_at: float = 0.0) -> None:
        self.cfg = cfg = cfg or SimulatorConfig()
        self.market = None
        self.replay = None
        if not 0.0 <= start_at < float("inf"):
            raise ValueError(f"start_at must be >= 0 seconds, got {start_at}")
        if cfg.mode == "synthetic":
            self.market = _make_market(cfg, market, regime, liquidation_share)
            for line in cfg.scenarios:
                self.script(line)
            for _ in range(round(start_at / STEP_S)):   # the market's first start_at seconds run unserved
                self.market.step()
        else:
            if start_at:
                raise ValueError("start_at applies to a simulated market, not to a replay")
            if not cfg.replay_files:
                raise ValueError("simulator mode 'replay' needs replay_files")
            self.replay = CaptureReplay(cfg.replay_files, speed=cfg.speed)
        names = cfg.venues or list(SIM_VENUES)
        unknown = [n for n in names if n not in SIM_VENUES]
        if unknown:
            raise ValueError(f"simulator.venues: no simulator for {', '.join(unknown)} (have {', '.join(SIM_VENUES)})")
        self.venues = [venue_class(n)(cfg.symbols, market=self.market, throttle=throttle) for n in names]
        self.server = SimServer(self.venues, host=cfg.host, port=cfg.port,
                                ping_interval_s=cfg.ping_interval_s, pong_timeout_s=cfg.pong_timeout_s,
                                max_connection_age_s=cfg.max_connection_age_s,
                                max_messages_per_s=max_messages_per_s, seed=cfg.seed)
        self.server.extra_counters.append(self._counters)
        self.server.control_cascade = self._control_cascade
        self.server.control_scenario = self._control_scenario
        if self.replay is not None:
            self.server.rest_override = self.replay.rest_answer
        self._pump: asyncio.Task | None = None

    @property
    def port(self) -> int:
        return self.server.port

    async def start(self) -> None:
        """Listen and start the market (or replay) pump."""
        await self.server.start()
        source = self._run_market() if self.market is not None else self.replay.run(self.server)
        self._pump = asyncio.get_running_loop().create_task(source)

    async def stop(self) -> None:
        """Stop the pump and close every connection."""
        if self._pump is not None:
            self._pump.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._pump
            self._pump = None
        await self.server.stop()

    def endpoints(self, venue: str = "binance") -> dict:
        """Return ``{"ws_urls": {...}, "rest_url": ...}`` for ``venue`` on this server."""
        return self.server.endpoints(venue)

    # fault API (thin wrappers so callers need only the Simulator)
    async def disconnect(self, venue: str | None = None, *, abrupt: bool = False) -> int:
        """Close all connections (of ``venue``): clean close, or TCP reset when ``abrupt``."""
        return await self.server.disconnect(venue, abrupt=abrupt)

    def pause(self) -> None:
        """Stall every stream until :meth:`resume`."""
        self.server.pause()

    def resume(self) -> None:
        self.server.resume()

    def counters(self) -> dict:
        """Return connections, frames sent per stream, liquidations generated and more."""
        return self.server.counters()

    def trigger_cascade(self, symbol: str | None = None, **kw: Any) -> None:
        """Start a synthetic cascade now (synthetic mode only)."""
        if self.market is None:
            raise RuntimeError("cascades exist only in synthetic mode")
        self.market.trigger_cascade(symbol, **kw)

    def _control_cascade(self, query: dict) -> dict:
        self.trigger_cascade(query.get("symbol"), all_symbols=query.get("all") == "1")
        return {"cascade": True}

    def script(self, line: str) -> Any:
        """Schedule a scenario from a script line ``NAME[:SYMBOL][@SECONDS][,key=value...]`` (synthetic mode only)."""
        if self.market is None:
            raise RuntimeError("scenarios exist only in synthetic mode")
        name, symbol, at, params = parse_script(line)
        return self.market.script(name, symbol, at=at, **params)

    def _control_scenario(self, query: dict) -> dict:
        """``/_sim/scenario?name=..&symbol=..[&at=..][&duration=..][&<param>=..]``."""
        q = dict(query)
        line = q.pop("name", "") + (":" + q.pop("symbol") if "symbol" in q else "") + \
            ("@" + q.pop("at") if "at" in q else "") + "".join(f",{k}={v}" for k, v in q.items())
        try:
            sc = self.script(line)
        except (ValueError, RuntimeError) as exc:
            return {"scenario": False, "error": str(exc)}
        return {"scenario": sc.name, "symbol": sc.symbol, "start": sc.start, "end": sc.end}

    def venue(self, name: str) -> Any:
        """The simulator object of venue ``name``."""
        return self.server.venues[name]

    def _counters(self) -> dict:
        out: dict = {}
        for v in self.venues:   # venue counters at top level (Binance's first, as before), and per venue
            extra = v.counters() if hasattr(v, "counters") else {}
            out.setdefault("venues", {})[v.name] = extra
            for k, val in extra.items():
                out.setdefault(k, val)
        if self.market is not None:
            out.update(liquidations_generated=self.market.liquidations_generated,
                       cascades_started=self.market.cascades_started, market_time_s=self.market.t)
        if self.replay is not None:
            out.update(self.replay.counters())
        return out

    async def _run_market(self) -> None:
        """Step the market at ``cfg.speed`` market seconds per wall second (1 = real time; 0 counts as 1)
        and publish each batch of events; above 1 each wake-up (every STEP_S of wall time) runs ``speed`` steps."""
        loop = asyncio.get_running_loop()
        market, venues, server = self.market, self.venues, self.server
        speed = self.cfg.speed or 1.0
        origin = loop.time() - market.t / speed
        while True:
            if not server.running.is_set():
                await server.running.wait()
                origin = loop.time() - market.t / speed   # market time stands still while stalled
            now = loop.time()
            due = int((now - origin) * speed / STEP_S)
            if due - market.steps > _MAX_BACKLOG_S * speed / STEP_S:   # behind: fall back, never burst
                server.stats["clock_skips"] += 1
                origin = now - market.t / speed
                due = market.steps + 1
            events: list = []
            while market.steps < due:
                events.extend(market.step())
            now_ms = time.time_ns() // 1_000_000
            for venue in venues:
                server.publish(venue.name, venue.render(events, market.t, server.subs[venue.name], now_ms))
            await asyncio.sleep(max(0.0, origin + (market.steps + max(1.0, speed)) * STEP_S / speed - loop.time()))


def _make_market(cfg: SimulatorConfig, kind: str, regime: str, liquidation_share: float) -> Any:
    """The synthetic market (drawn cascades) or the mechanistic one (cascades from leveraged positions)."""
    if kind == "mechanistic":
        from .mechanics import MechanisticMarket
        if liquidation_share:
            raise ValueError("liquidation_share applies to the synthetic market only")
        return MechanisticMarket(cfg.symbols, seed=cfg.seed, rate=cfg.rate, correlation=cfg.correlation, regime=regime)
    if kind != "synthetic":
        raise ValueError(f"unknown market {kind!r} (have synthetic, mechanistic)")
    return SyntheticMarket(cfg.symbols, seed=cfg.seed, rate=cfg.rate, cascade_every_s=cfg.cascade_every_s,
                           first_cascade_after_s=cfg.first_cascade_after_s, liquidation_share=liquidation_share,
                           correlation=cfg.correlation)


def _split_overrides(cfg: SimulatorConfig, overrides: dict) -> tuple[SimulatorConfig, dict]:
    fields = {k: v for k, v in overrides.items() if k in SimulatorConfig.__struct_fields__}
    extra = {k: v for k, v in overrides.items() if k not in fields}
    return (msgspec.structs.replace(cfg, **fields) if fields else cfg), extra


def _ready_line(sim: Simulator) -> str:
    return json.dumps({"port": sim.port, "endpoints": {name: sim.endpoints(name) for name in sim.server.venues}})


def _write_atomically(path: str, text: str) -> None:
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".ready-")
    with os.fdopen(fd, "w") as f:
        f.write(text + "\n")
    os.replace(tmp, path)


def _new_loop() -> asyncio.AbstractEventLoop:
    try:
        import uvloop
        return uvloop.new_event_loop()
    except ImportError:  # pragma: no cover - uvloop is a dependency on Linux
        return asyncio.new_event_loop()


def run(sim_cfg: SimulatorConfig | None = None, ready_file: str | None = None, duration: float | None = None,
        **overrides: Any) -> None:
    """Run the simulator until SIGTERM/SIGINT or ``duration`` seconds; announce the endpoints when listening.

    ``overrides`` replace SimulatorConfig fields (``port=0``) or go to :class:`Simulator`
    (``liquidation_share=0.5``, ``throttle=False``).
    """
    cfg, extra = _split_overrides(sim_cfg or SimulatorConfig(), overrides)

    async def main() -> None:
        sim = Simulator(cfg, **extra)
        await sim.start()
        line = _ready_line(sim)
        if ready_file:
            _write_atomically(ready_file, line)
        print(line, flush=True)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        try:
            await asyncio.wait_for(stop.wait(), duration) if duration else await stop.wait()
        except asyncio.TimeoutError:
            pass
        finally:
            await sim.stop()

    loop = _new_loop()
    try:
        loop.run_until_complete(main())
    finally:
        loop.close()


class SimulatorHandle:
    """A simulator running on its own thread and event loop (tests, benchmarks)."""

    def __init__(self, sim: Simulator, loop: asyncio.AbstractEventLoop, thread: threading.Thread) -> None:
        self.sim, self.loop, self.thread = sim, loop, thread

    @property
    def port(self) -> int:
        return self.sim.port

    def endpoints(self, venue: str = "binance") -> dict:
        return self.sim.endpoints(venue)

    def call(self, fn: Any, *args: Any, **kw: Any) -> Any:
        """Run ``fn(*args, **kw)`` (sync or async) on the simulator's loop and return its result."""
        async def invoke() -> Any:
            result = fn(*args, **kw)
            return await result if asyncio.iscoroutine(result) else result
        return asyncio.run_coroutine_threadsafe(invoke(), self.loop).result(timeout=10)

    def counters(self) -> dict:
        return self.call(self.sim.counters)

    def stop(self) -> None:
        """Stop the simulator and join its thread."""
        if self.thread.is_alive():
            asyncio.run_coroutine_threadsafe(self.sim.stop(), self.loop).result(timeout=10)
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(timeout=10)

    def __enter__(self) -> SimulatorHandle:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()


def start_in_thread(sim_cfg: SimulatorConfig | None = None, **overrides: Any) -> SimulatorHandle:
    """Start a simulator on a background thread (uvloop) and return once it is listening."""
    cfg, extra = _split_overrides(sim_cfg or SimulatorConfig(), overrides)
    loop = _new_loop()
    started = threading.Event()
    box: dict = {}

    def target() -> None:
        asyncio.set_event_loop(loop)

        async def boot() -> None:
            box["sim"] = Simulator(cfg, **extra)
            await box["sim"].start()

        try:
            loop.run_until_complete(boot())
        except BaseException as exc:  # report start failures to the caller
            box["error"] = exc
            started.set()
            loop.close()
            return
        started.set()
        loop.run_forever()
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.close()

    thread = threading.Thread(target=target, name="undertow-simulator", daemon=True)
    thread.start()
    started.wait(timeout=30)
    if "error" in box:
        raise box["error"]
    return SimulatorHandle(box["sim"], loop, thread)
