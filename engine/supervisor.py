"""The supervisor behind ``undertow run``: owns shared memory, spawns and watches actors.

It creates the registry, actor table and one ring per enabled venue, starts
each actor as its own process (``undertow actor ...``), restarts any actor
that dies or stops beating (capped exponential back-off; a restarted actor
re-attaches to the rings by name), speaks sd_notify from its main loop,
serves ``/health`` and ``/metrics`` on loopback, and on SIGTERM/SIGINT stops
every actor and removes every shared-memory segment it owns.
"""
from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import zmq

from . import shm
from .actor_table import RUNNING, ActorTable, actor_table_segment
from .bus import internal_endpoint
from .config import Config, VenuesConfig, dump_json
from .health import HealthServer, render_metrics
from .instruments import Registry, registry_segment
from .ring import Ring, ring_segment
from .sdnotify import Notifier
from .security import curve_server_for, ensure_private_dir, ipc_dir

__all__ = ["Supervisor", "ActorSpec", "actor_specs", "bus_endpoint_file"]

log = logging.getLogger("undertow.supervisor")

STABLE_AFTER_S = 30.0  # an actor up this long has its back-off reset
STARTUP_EXTEND_S = 30.0  # each EXTEND_TIMEOUT_USEC sent to systemd while actors start (every 5 s)


def bus_endpoint_file(run_dir: str) -> Path:
    """File in which a running daemon records its bus endpoint (read by ``undertow tail``)."""
    return Path(run_dir) / "bus.json"


@dataclass
class ActorSpec:
    """How to start one actor process."""

    name: str
    argv: list[str]


@dataclass
class _Child:
    spec: ActorSpec
    proc: subprocess.Popen | None = None
    started: float = 0.0
    restarts: int = 0
    failures: int = 0          # consecutive, for back-off
    next_start: float = 0.0
    last_exit: int | None = None
    hung_kills: int = 0
    history: list = field(default_factory=list)
    standby: subprocess.Popen | None = None   # a warm spare that takes over when this actor dies


def enabled_venues(cfg: Config) -> list[str]:
    return [n for n in VenuesConfig.__struct_fields__ if getattr(cfg.venues, n).enabled]


def actor_specs(cfg: Config, env: dict[str, str] | None = None) -> list[ActorSpec]:
    """The actors ``cfg`` asks for: a feed per enabled venue, the compute workers, alerts, the recorder and the
    Telegram bot (when Telegram and [bot] are enabled and a token is in ``env``: TELEGRAM_BOT_TOKEN or the
    telegram_bot_token credential)."""
    specs = [ActorSpec(f"feed:{v}", ["feed", "--venue", v]) for v in enabled_venues(cfg)]
    specs += [ActorSpec(f"compute:{k}", ["compute", "--worker", str(k)]) for k in range(cfg.engine.compute_workers)]
    if cfg.alerts.enabled:
        specs.append(ActorSpec("alerts", ["alerts"]))
    if cfg.recorder.enabled:
        specs.append(ActorSpec("recorder", ["recorder"]))
    if cfg.bot.enabled and cfg.alerts.telegram.enabled:
        from .bot.app import bot_token
        if bot_token(os.environ if env is None else env):
            specs.append(ActorSpec("bot", ["bot"]))
    return specs


class Supervisor:
    """Run and watch the actors of one namespace."""

    def __init__(self, cfg: Config, specs: list[ActorSpec] | None = None, env: dict[str, str] | None = None,
                 poll_s: float = 0.05, log_level: str = "INFO"):
        self.cfg = cfg
        self.specs = specs if specs is not None else actor_specs(cfg, env)
        self.env = dict(os.environ if env is None else env)
        self.poll_s = poll_s
        self.log_level = log_level
        self.ns = cfg.engine.namespace
        self.run_dir = Path(cfg.engine.run_dir)
        self.children = {s.name: _Child(s) for s in self.specs}
        self.stopping = False
        self.notifier = Notifier(self.env)
        self.health: HealthServer | None = None
        self.table: ActorTable | None = None
        self.rings: dict[str, Ring] = {}
        self.registry: Registry | None = None
        self._proxy: threading.Thread | None = None
        self._zctx: zmq.Context | None = None
        self._auth = None   # ZAP authenticator of a CurveZMQ proxy with allow-listed clients
        self.started = time.monotonic()
        self.config_file = self.run_dir / f"{self.ns}.effective-config.json"

    # -- shared memory ----------------------------------------------------
    def _create_shared(self) -> None:
        stale = shm.sweep(self.ns)
        if stale:
            log.warning("removed %d stale shared-memory segments of namespace %r", len(stale), self.ns)
        e = self.cfg.engine
        self.registry = Registry.open(registry_segment(self.ns), e.max_instruments, e.max_assets)
        self.table = ActorTable.open(actor_table_segment(self.ns))
        for venue in enabled_venues(self.cfg):
            self.rings[venue] = Ring.open(ring_segment(self.ns, venue), e.ring_capacity)

    def _release_shared(self) -> None:
        for r in self.rings.values():
            r.close()
        self.rings.clear()
        if self.registry is not None:
            self.registry.close()
        if self.table is not None:
            self.table.close()
        removed = shm.sweep(self.ns)
        log.info("released %d shared-memory segments", len(removed))

    # -- bus --------------------------------------------------------------
    def _start_proxy(self) -> None:
        """With several compute workers, own the public endpoint and forward from theirs."""
        if self.cfg.engine.compute_workers <= 1:
            return
        self._zctx = zmq.Context()
        xsub = self._zctx.socket(zmq.XSUB)
        xsub.bind(internal_endpoint(str(self.run_dir)))
        xpub = self._zctx.socket(zmq.XPUB)
        xpub.setsockopt(zmq.SNDHWM, self.cfg.bus.sndhwm)
        curve = curve_server_for(self.cfg.bus)
        if curve is not None:
            self._auth = curve.apply(xpub)
        xpub.bind(self.cfg.bus.endpoint)

        def run():
            try:
                zmq.proxy(xsub, xpub)
            except zmq.ContextTerminated:
                pass
            finally:
                xsub.close(0)
                xpub.close(0)

        self._proxy = threading.Thread(target=run, name="bus-proxy", daemon=True)
        self._proxy.start()

    # -- children ---------------------------------------------------------
    def _argv_env(self, child: _Child) -> tuple[list[str], dict[str, str]]:
        argv = [sys.executable, "-m", "engine.cli", "--log-level", self.log_level, "actor", *child.spec.argv,
                "--config", str(self.config_file)]
        env = dict(self.env)
        env["UNDERTOW_PARENT_PID"] = str(os.getpid())
        env.pop("NOTIFY_SOCKET", None)  # only the supervisor talks to systemd
        env.pop("WATCHDOG_USEC", None)
        return argv, env

    def _spawn(self, child: _Child) -> None:
        standby = child.standby
        # a spare is used for every restart (after the back-off, see _check_children): one is started only
        # once its actor is RUNNING, so a crash loop in set-up never churns spares
        if standby is not None and standby.poll() is None:
            try:   # the warm spare has its imports done: it only attaches
                standby.stdin.write(b"go\n")
                standby.stdin.close()
                child.proc, child.standby = standby, None
            except (BrokenPipeError, OSError):
                child.standby = None
        if child.proc is None:
            argv, env = self._argv_env(child)
            child.proc = subprocess.Popen(argv, env=env)
        child.started = time.monotonic()
        if self.table is not None:
            self.table.row(child.spec.name, pid=child.proc.pid, restarts=child.restarts)
        log.info("started %s (pid %d)", child.spec.name, child.proc.pid)

    def _start_standby(self, child: _Child) -> None:
        """Start ``child``'s warm spare if its kind has one. Called once the child is RUNNING: a spare started
        beside a cold start would compile the same numba kernels at the same time on the same cores."""
        if child.spec.argv[0] in self.cfg.supervisor.warm_standby and child.standby is None:
            argv, env = self._argv_env(child)
            child.standby = subprocess.Popen(argv + ["--standby"], env=env, stdin=subprocess.PIPE)

    def _backoff(self, failures: int) -> float:
        s = self.cfg.supervisor
        return min(s.restart_backoff_initial_ms * (2 ** max(0, failures - 1)), s.restart_backoff_max_ms) / 1000.0

    def _hung(self, child: _Child, row: dict, now: float) -> str:
        """Why a live child counts as hung ("" when it does not).

        RUNNING: silent for ``heartbeat_timeout_ms``. Starting: silent for ``startup_grace_ms`` (before the
        first beat: interpreter and imports; after it the actor's start-up beat thread keeps beating), or
        not RUNNING ``startup_timeout_ms`` after its start however it beats (a set-up that never ends).
        """
        sv = self.cfg.supervisor
        age, up_s = row["heartbeat_age_s"], now - child.started
        if row["state"] == RUNNING:
            limit = sv.heartbeat_timeout_ms / 1000.0
        else:
            if up_s > sv.startup_timeout_ms / 1000.0:
                return f"not ready {up_s:.1f}s after its start (supervisor.startup_timeout_ms)"
            limit = sv.startup_grace_ms / 1000.0
        if age > limit and up_s > limit:
            return f"missed heartbeats for {age:.1f}s"
        return ""

    def _check_children(self, now: float) -> None:
        rows = {r["name"]: r for r in self.table.snapshot(counters=False)} if self.table is not None else {}
        for child in self.children.values():
            proc = child.proc
            if proc is None:
                if now >= child.next_start:
                    self._spawn(child)
                continue
            code = proc.poll()
            if code is None:
                row = rows.get(child.spec.name)
                if row is None:
                    continue
                why = self._hung(child, row, now)
                if why:
                    log.error("%s (pid %d) %s: killing it", child.spec.name, proc.pid, why)
                    child.hung_kills += 1
                    proc.kill()
                    proc.wait()
                    code = proc.returncode
                else:
                    if row["state"] == RUNNING:
                        self._start_standby(child)
                    if child.failures and now - child.started > STABLE_AFTER_S:
                        child.failures = 0
                    continue
            child.last_exit = code
            child.proc = None
            child.failures += 1
            child.restarts += 1
            # a warm spare replaces a first failure at once; a crash loop backs off as usual
            delay = 0.0 if child.standby is not None and child.failures <= 1 else self._backoff(child.failures)
            child.next_start = now + delay
            log.error("%s exited with %s; restarting in %.2fs", child.spec.name, code, delay)
            if delay == 0.0:
                self._spawn(child)

    # -- status -----------------------------------------------------------
    def actor_status(self, counters: bool = True) -> list[dict]:
        rows = {r["name"]: r for r in self.table.snapshot(counters)} if self.table is not None else {}
        out = []
        for name, child in self.children.items():
            row = rows.get(name, {"heartbeat_age_s": float("inf"), "counters": {}, "state": 0})
            up = child.proc is not None and child.proc.poll() is None and row["state"] == RUNNING and \
                row["heartbeat_age_s"] < self.cfg.supervisor.heartbeat_timeout_ms / 1000.0
            out.append({"name": name, "pid": child.proc.pid if child.proc else 0, "up": up,
                        "restarts": child.restarts, "last_exit": child.last_exit,
                        "heartbeat_age_s": min(row["heartbeat_age_s"], 1e9), "counters": row["counters"]})
        return out

    def ring_status(self) -> list[dict]:
        return [{"ring": v, "written": r.write_cursor, "generation": r.generation, "readers": r.readers()}
                for v, r in self.rings.items()]

    def health_doc(self) -> dict:
        actors = self.actor_status()
        return {"ok": all(a["up"] for a in actors) and not self.stopping,
                "uptime_s": round(time.monotonic() - self.started, 3), "namespace": self.ns,
                "bus": self.cfg.bus.endpoint, "actors": actors, "rings": self.ring_status()}

    def metrics_text(self) -> str:
        return render_metrics(self.actor_status(), self.ring_status(),
                              {"uptime_seconds": time.monotonic() - self.started,
                               "sd_notify_sent_total": self.notifier.sent})

    def _status_line(self) -> str:
        actors = self.actor_status(counters=False)
        up = sum(a["up"] for a in actors)
        restarts = sum(a["restarts"] for a in actors)
        return f"{up}/{len(actors)} actors up, {restarts} restarts"

    # -- lifecycle --------------------------------------------------------
    def request_stop(self, *_: object) -> None:
        self.stopping = True

    def start(self) -> None:
        """Create shared memory, the bus proxy, the health server and every actor."""
        os.umask(0o077)   # runtime files (bus.json, effective config, ipc sockets) for the service user only
        ensure_private_dir(self.run_dir)
        bus_dir = ipc_dir(self.cfg.bus.endpoint)
        if bus_dir is not None:
            ensure_private_dir(bus_dir)
        self._create_shared()
        dump_json(self.cfg, self.config_file)
        self._start_proxy()
        bus_file = bus_endpoint_file(str(self.run_dir))
        bus_file.write_text(json.dumps({"endpoint": self.cfg.bus.endpoint, "namespace": self.ns,
                                        "pid": os.getpid()}) + "\n")
        if self.cfg.supervisor.health_port:
            try:
                self.health = HealthServer(self.cfg.supervisor.health_host, self.cfg.supervisor.health_port,
                                           self.health_doc, self.metrics_text).start()
            except OSError as exc:
                log.error("cannot serve /health on %s:%d: %s", self.cfg.supervisor.health_host,
                          self.cfg.supervisor.health_port, exc)
        for child in self.children.values():
            self._spawn(child)

    def loop(self, duration: float | None = None) -> None:
        """Watch the actors until stopped (or ``duration`` seconds); ping the watchdog from here."""
        deadline = None if duration is None else time.monotonic() + duration
        ready_sent = False
        last_wd = last_status = 0.0
        wd = self.notifier.watchdog_interval_s
        while not self.stopping:
            now = time.monotonic()
            if deadline is not None and now >= deadline:
                break
            self._check_children(now)
            if not ready_sent and all(a["up"] for a in self.actor_status(counters=False)):
                self.notifier.ready(self._status_line())
                ready_sent = True
                log.info("all actors up")
            if wd and now - last_wd >= wd:
                self.notifier.watchdog()
                last_wd = now
            if now - last_status >= 5.0:
                self.notifier.status(self._status_line())
                if not ready_sent and now - self.started < self.cfg.supervisor.startup_timeout_ms / 1000.0:
                    # actors still starting (numba on a cold cache): supervisor.startup_timeout_ms bounds the
                    # start, not the unit's TimeoutStartSec
                    self.notifier.notify(f"EXTEND_TIMEOUT_USEC={int(STARTUP_EXTEND_S * 1e6)}")
                last_status = now
            time.sleep(self.poll_s)

    def stop(self) -> None:
        """Stop every actor (SIGTERM, then SIGKILL after the timeout) and release shared memory."""
        self.stopping = True
        self.notifier.stopping()
        spares = [c.standby for c in self.children.values() if c.standby is not None]
        for spare in spares:   # a spare exits on EOF (or on the SIGTERM below), within the same deadline
            spare.stdin.close()
        for c in self.children.values():
            c.standby = None
        procs = [c.proc for c in self.children.values() if c.proc is not None and c.proc.poll() is None]
        procs += [p for p in spares if p.poll() is None]
        for p in procs:
            try:
                p.send_signal(signal.SIGTERM)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + self.cfg.supervisor.stop_timeout_ms / 1000.0
        for p in procs:
            try:
                p.wait(max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                log.warning("pid %d ignored SIGTERM; killing it", p.pid)
                p.kill()
                p.wait()
        for c in self.children.values():
            c.proc = None
        if self.health is not None:
            self.health.stop()
        if self._auth is not None:
            self._auth.stop()
        if self._zctx is not None:
            self._zctx.term()
            if self._proxy is not None:
                self._proxy.join(2)
        self._release_shared()
        for f in (bus_endpoint_file(str(self.run_dir)), self.config_file):
            try:
                f.unlink()
            except FileNotFoundError:
                pass
        self.notifier.close()

    def run(self, duration: float | None = None) -> int:
        """Start, watch until SIGTERM/SIGINT (or ``duration``), stop; return the exit code."""
        old = {s: signal.signal(s, self.request_stop) for s in (signal.SIGTERM, signal.SIGINT)}
        try:
            self.start()
            self.loop(duration)
        finally:
            self.stop()
            for s, h in old.items():
                signal.signal(s, h)
        return 0
