"""Fault 8: process faults under `undertow run` -- SIGKILL of each actor at random moments, and a hung loop.

The daemon runs with Binance pointed at a simulator (every other venue off):
``feed:binance``, ``compute:0`` and ``alerts``. A seeded schedule orders the
victims and picks the moment (a uniform wait after the previous repair). What must
hold after each kill (10 in all by default, 50 of each actor behind ``fault_heavy``):

* the victim runs again (new pid, beating) within its restart back-off plus
  ``START_ALLOWANCE_S``, and no other actor was disturbed;
* a restarted feed bumped the ring's generation by exactly one, and the compute
  actor's reader noticed (its ``producer_restarts`` counter grows);
* readers re-attach: the compute process's reader slot on the ring moves past
  the write cursor of the moment, in the same slot (no slot leaks), and its
  ``records`` counter grows.

A stopped actor (SIGSTOP: a hung event loop) is killed after the heartbeat
timeout and restarted. After SIGTERM the supervisor exits 0, no actor is left
and no shared-memory segment of the namespace remains.

Figure: restart time (kill -> new pid beating) p50/p99 per actor kind, and the
hang detection time (stop -> replacement beating).
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from engine import shm
from engine.actor_table import RUNNING, ActorTable, actor_table_segment
from engine.config import SimulatorConfig, VenuesConfig
from engine.ring import Ring, ring_segment
from engine.simulator import start_in_thread
from tests.conftest import wait_until

from .harness import figure, percentile, replay_hint, rng, scaled

ROOT = Path(__file__).resolve().parents[2]
ACTORS = ("feed:binance", "compute:0", "alerts")
HEARTBEAT_TIMEOUT_S = 1.0
BACKOFF_MAX_S = 0.4
START_ALLOWANCE_S = 3.0    # process start, imports and the first beat on a loaded 2-core machine
CHECK_S = 0.25             # the supervisor's watch period and the actor table's beat age resolution


def _config(tmp: Path, namespace: str, sim) -> Path:
    ep = sim.endpoints("binance")
    text = f"""
[engine]
namespace = "{namespace}"
run_dir = "{tmp}"
ring_capacity = 65536

[supervisor]
heartbeat_timeout_ms = {int(HEARTBEAT_TIMEOUT_S * 1000)}
startup_grace_ms = 20000
restart_backoff_initial_ms = 100
restart_backoff_max_ms = {int(BACKOFF_MAX_S * 1000)}
stop_timeout_ms = 3000
health_port = 0

[bus]
endpoint = "ipc://{tmp}/bus.sock"
heartbeat_interval_s = 0.2

[venues.binance]
ws_urls = {{ public = "{ep['ws_urls']['public']}", market = "{ep['ws_urls']['market']}" }}
rest_url = "{ep['rest_url']}"
symbols = ["BTCUSDT", "ETHUSDT"]
streams = ["trades", "liquidations", "mark"]
reconnect_initial_s = 0.1
reconnect_max_s = 1.0
"""
    text += "".join(f"\n[venues.{v}]\nenabled = false\n" for v in VenuesConfig.__struct_fields__ if v != "binance")
    path = tmp / "config.toml"
    path.write_text(text)
    return path


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    except FileNotFoundError:
        return False


class Daemon:
    """`undertow run` and views of its actor table and the Binance ring."""

    def __init__(self, config: Path, namespace: str):
        self.ns = namespace
        level = os.environ.get("UNDERTOW_FAULT_LOG_LEVEL", "CRITICAL")   # e.g. INFO to see the supervisor's view
        self.proc = subprocess.Popen([sys.executable, "-m", "engine.cli", "--log-level", level, "run",
                                      "--config", str(config)], cwd=ROOT)
        self.table: ActorTable | None = None
        self.ring: Ring | None = None

    def rows(self) -> dict[str, dict]:
        if self.table is None:
            if actor_table_segment(self.ns) not in shm.list_segments(self.ns):
                return {}
            self.table = ActorTable.open(actor_table_segment(self.ns))
        return {r["name"]: r for r in self.table.snapshot()}

    def running(self) -> dict[str, dict] | None:
        rows = self.rows()
        ok = all(n in rows and rows[n]["state"] == RUNNING and rows[n]["heartbeat_age_s"] < CHECK_S * 2
                 for n in ACTORS)
        return rows if ok else None

    def generation(self) -> int:
        if self.ring is None:
            self.ring = Ring.attach(ring_segment(self.ns, "binance"))
        return self.ring.generation

    def detach(self) -> None:
        for res in (self.table, self.ring):
            if res is not None:
                res.close()
        self.table = self.ring = None

    def stop(self) -> int:
        self.detach()
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                return self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        return self.proc.wait()


def _compute(rows: dict) -> dict:
    return rows["compute:0"]["counters"]


def _replaced(daemon: Daemon, victim: str, old_pid: int, timeout: float, name: str) -> tuple[float, dict]:
    def back():
        rows = daemon.running()
        return rows if rows and rows[victim]["pid"] != old_pid else None
    rows = wait_until(back, timeout, 0.005, f"{victim} replaced ({replay_hint(name)})")
    return time.monotonic(), rows


def _reader_advances(daemon: Daemon, compute_pid: int, name: str, after: str) -> None:
    """Wait until the compute process's reader slot on the Binance ring passes the write cursor of now."""
    past = daemon.ring.write_cursor

    def read() -> bool:
        mine = [s for s in daemon.ring.readers() if s["pid"] == compute_pid]
        return bool(mine) and mine[0]["cursor"] > past
    wait_until(read, 15, 0.005, f"compute (pid {compute_pid}) reading the ring after {after} ({replay_hint(name)})")


def _records_grow(daemon: Daemon, name: str, after: str) -> dict:
    """Wait until the compute actor's records counter grows (it reads the ring again)."""
    start = _compute(daemon.rows()).get("records", 0.0)
    return wait_until(lambda: (r := daemon.running()) and _compute(r).get("records", 0.0) > start and r, 15, 0.05,
                      f"compute reading records again after {after} ({replay_hint(name)})")


def _process_faults(tmp_path: Path, namespace: str, name: str, kills: int) -> dict:
    r = rng(name)
    with start_in_thread(SimulatorConfig(rate=300, seed=r.randrange(1 << 30), venues=["binance"],
                                         first_cascade_after_s=1e9)) as sim:
        daemon = Daemon(_config(tmp_path, namespace, sim), namespace)
        try:
            rows = wait_until(daemon.running, 90, 0.05, "every actor running")
            pids = {n: rows[n]["pid"] for n in ACTORS}
            seen_pids = set(pids.values())
            rows = _records_grow(daemon, name, "start-up")
            daemon.generation()
            readers = len(daemon.ring.readers())
            restart: dict[str, list[float]] = {n: [] for n in ACTORS}
            victims = [ACTORS[i % len(ACTORS)] for i in range(kills)]   # every actor about kills/3 times
            r.shuffle(victims)
            for k, victim in enumerate(victims):
                time.sleep(r.uniform(0.05, 0.5))     # a random moment in the actor's life
                rows = daemon.running() or wait_until(daemon.running, 15, 0.01, "all running before a kill")
                gen, restarts = daemon.generation(), _compute(rows).get("producer_restarts", 0.0)
                old = rows[victim]["pid"]
                os.kill(old, signal.SIGKILL)
                t0 = time.monotonic()
                t1, rows = _replaced(daemon, victim, old, BACKOFF_MAX_S + START_ALLOWANCE_S + 5, name)
                took = t1 - t0
                restart[victim].append(took)
                assert took <= BACKOFF_MAX_S + START_ALLOWANCE_S, \
                    f"kill {k}: {victim} back after {took:.2f}s ({replay_hint(name)})"
                for other in ACTORS:
                    if other != victim:
                        assert rows[other]["pid"] == pids[other], f"kill {k} of {victim} disturbed {other}"
                pids[victim] = rows[victim]["pid"]
                seen_pids.add(pids[victim])
                if victim == "feed:binance":
                    assert daemon.generation() == gen + 1, (gen, daemon.generation(), replay_hint(name))
                    wait_until(lambda: _compute(daemon.rows()).get("producer_restarts", 0.0) > restarts, 10, 0.05,
                               f"compute noticing the new feed generation ({replay_hint(name)})")
                else:
                    assert daemon.generation() == gen, f"{victim}'s restart bumped the feed's ring generation"
                _reader_advances(daemon, pids["compute:0"], name, f"kill {k} of {victim}")
                slots = len(daemon.ring.readers())
                assert slots == readers, f"reader slots {readers} -> {slots} after kill {k}: a slot leaked"
            hang: dict[str, float] = {}
            for victim in ACTORS:       # a hung event loop: alive, not beating
                rows = wait_until(daemon.running, 15, 0.01, "all running before a hang")
                old = rows[victim]["pid"]
                os.kill(old, signal.SIGSTOP)
                t0 = time.monotonic()
                t1, rows = _replaced(daemon, victim, old, HEARTBEAT_TIMEOUT_S + BACKOFF_MAX_S + START_ALLOWANCE_S + 5,
                                     name)
                took = hang[victim] = t1 - t0
                assert not _alive(old), f"hung {victim} (pid {old}) was not killed"
                assert HEARTBEAT_TIMEOUT_S - CHECK_S <= took <= \
                    HEARTBEAT_TIMEOUT_S + CHECK_S + BACKOFF_MAX_S + START_ALLOWANCE_S, (victim, took)
                seen_pids.add(rows[victim]["pid"])
            _records_grow(daemon, name, "the kills and hangs")
        finally:
            code = daemon.stop()
        assert code == 0, f"supervisor exited {code} on SIGTERM"
        wait_until(lambda: not any(_alive(p) for p in seen_pids), 10, 0.05, "every actor process gone")
        assert shm.list_segments(namespace) == [], shm.list_segments(namespace)
    values = {}
    for actor, xs in restart.items():
        kind = actor.split(":")[0]
        if xs:
            values.update({f"{kind}_kills": len(xs), f"{kind}_restart_p50_ms": round(percentile(xs, 50) * 1e3),
                           f"{kind}_restart_p99_ms": round(percentile(xs, 99) * 1e3)})
    values.update({f"{a.split(':')[0]}_hang_replaced_ms": round(t * 1e3) for a, t in hang.items()})
    return figure("process_restart", name, kills=kills, heartbeat_timeout_s=HEARTBEAT_TIMEOUT_S, **values)


@pytest.mark.fault
@pytest.mark.process
@pytest.mark.timeout(150)
def test_sigkill_and_hang_of_each_actor_are_repaired_without_leaks(tmp_path, namespace):
    _process_faults(tmp_path, namespace, "process/default", scaled(10, 50 * len(ACTORS), False))


@pytest.mark.fault_heavy
@pytest.mark.process
@pytest.mark.timeout(600)
def test_process_faults_heavy(tmp_path, namespace):
    _process_faults(tmp_path, namespace, "process/heavy", scaled(10, 50 * len(ACTORS), True))
