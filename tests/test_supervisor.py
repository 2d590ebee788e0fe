"""`undertow run`: restart on SIGKILL and hangs, clean SIGTERM, sd_notify, /health and /metrics."""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from engine import shm
from engine.actor_table import RUNNING, ActorTable, actor_table_segment
from engine.config import VenuesConfig

from .conftest import wait_until

pytestmark = pytest.mark.process
ROOT = Path(__file__).resolve().parents[1]
OTHER_VENUES = [v for v in VenuesConfig.__struct_fields__ if v != "binance"]


def free_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def write_config(tmp_path: Path, namespace: str, health_port: int = 0, **engine) -> Path:
    dead = free_port()  # nothing listens here: the feed keeps reconnecting, and keeps beating
    extra = "".join(f"{k} = {v}\n" for k, v in engine.items())
    text = f"""
[engine]
namespace = "{namespace}"
run_dir = "{tmp_path}"
ring_capacity = 4096
{extra}
[supervisor]
heartbeat_timeout_ms = 1000
startup_grace_ms = 20000
restart_backoff_initial_ms = 100
stop_timeout_ms = 3000
health_port = {health_port}

[bus]
endpoint = "ipc://{tmp_path}/bus.sock"
heartbeat_interval_s = 0.2

[venues.binance]
ws_urls = {{ public = "ws://127.0.0.1:{dead}/public", market = "ws://127.0.0.1:{dead}/market" }}
rest_url = "http://127.0.0.1:{dead}"
symbols = ["BTCUSDT"]
reconnect_initial_s = 0.2
reconnect_max_s = 1.0
"""
    text += "".join(f"\n[venues.{v}]\nenabled = false\n" for v in OTHER_VENUES)
    p = tmp_path / "config.toml"
    p.write_text(text)
    return p


class Engine:
    """An `undertow run` process and a view of its actor table."""

    def __init__(self, config: Path, namespace: str, env: dict | None = None):
        self.ns = namespace
        self.proc = subprocess.Popen([sys.executable, "-m", "engine.cli", "--log-level", "WARNING", "run",
                                      "--config", str(config)], cwd=ROOT, env={**os.environ, **(env or {})})
        self.table = None

    def actors(self) -> dict[str, dict]:
        if self.table is None:
            if actor_table_segment(self.ns) not in shm.list_segments(self.ns):
                return {}
            self.table = ActorTable.open(actor_table_segment(self.ns))
        return {r["name"]: r for r in self.table.snapshot()}

    def all_running(self, names=("feed:binance", "compute:0", "alerts")):
        rows = self.actors()
        ok = all(n in rows and rows[n]["state"] == RUNNING and rows[n]["heartbeat_age_s"] < 0.9 for n in names)
        return rows if ok else None

    def stop(self):
        if self.table is not None:
            self.table.close()
            self.table = None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(20)


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie is dead for our purposes
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    except FileNotFoundError:
        return False


@pytest.fixture
def engine(tmp_path, namespace):
    eng = Engine(write_config(tmp_path, namespace), namespace)
    yield eng
    eng.stop()


def test_sigkill_of_each_actor_is_repaired_within_two_seconds(engine):
    rows = wait_until(engine.all_running, timeout=60, message="all actors running")
    for victim in ("alerts", "compute:0", "feed:binance"):
        before = {n: r["pid"] for n, r in rows.items()}
        os.kill(before[victim], signal.SIGKILL)
        t0 = time.monotonic()
        rows = wait_until(lambda: (r := engine.all_running()) and r[victim]["pid"] != before[victim] and r,
                          timeout=20, message=f"{victim} restarted")
        took = time.monotonic() - t0
        assert took < 2.0, f"{victim} came back after {took:.2f}s"
        for other, pid in before.items():
            if other != victim:
                assert rows[other]["pid"] == pid, f"{other} was disturbed by killing {victim}"
        assert rows[victim]["restarts"] >= 1


def test_hung_actor_is_killed_and_restarted(engine):
    rows = wait_until(engine.all_running, timeout=60, message="all actors running")
    pid = rows["alerts"]["pid"]
    os.kill(pid, signal.SIGSTOP)  # alive but silent
    wait_until(lambda: (r := engine.all_running()) and r["alerts"]["pid"] != pid, timeout=15,
               message="hung alerts actor replaced")
    assert not pid_alive(pid)


def test_sigterm_leaves_no_processes_and_no_shared_memory(engine, namespace):
    rows = wait_until(engine.all_running, timeout=60, message="all actors running")
    pids = [r["pid"] for r in rows.values()]
    assert shm.list_segments(namespace)
    engine.table.close()
    engine.table = None
    engine.proc.send_signal(signal.SIGTERM)
    assert engine.proc.wait(20) == 0
    wait_until(lambda: not any(pid_alive(p) for p in pids), timeout=10, message="actors gone")
    assert shm.list_segments(namespace) == []


def test_supervisor_death_takes_the_actors_with_it(engine):
    rows = wait_until(engine.all_running, timeout=60, message="all actors running")
    pids = [r["pid"] for r in rows.values()]
    engine.proc.kill()
    engine.proc.wait()
    wait_until(lambda: not any(pid_alive(p) for p in pids), timeout=10, message="orphans to exit")


def test_sd_notify_and_health_endpoints(tmp_path, namespace):
    sock_path = str(tmp_path / "notify.sock")
    fake = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    fake.bind(sock_path)
    fake.setblocking(False)
    port = free_port()
    eng = Engine(write_config(tmp_path, namespace, health_port=port), namespace,
                 env={"NOTIFY_SOCKET": sock_path, "WATCHDOG_USEC": "400000"})
    try:
        got: list[bytes] = []

        def saw(prefix: bytes) -> bool:
            try:
                while True:  # drain what has arrived; watchdog pings never stop coming
                    got.append(fake.recv(512))
            except BlockingIOError:
                pass
            return any(m.startswith(prefix) for m in got)

        wait_until(lambda: saw(b"READY=1"), timeout=60, message="READY=1")
        ready = next(m for m in got if m.startswith(b"READY=1"))
        assert b"STATUS=3/3 actors up" in ready
        n_wd = sum(m == b"WATCHDOG=1" for m in got)
        wait_until(lambda: saw(b"") and sum(m == b"WATCHDOG=1" for m in got) >= n_wd + 3, timeout=5,
                   message="watchdog pings at WATCHDOG_USEC/2")
        health = json.load(urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=5))
        assert health["ok"] is True and {a["name"] for a in health["actors"]} == {"feed:binance", "compute:0", "alerts"}
        metrics = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
        assert 'undertow_actor_up{actor="compute:0"} 1' in metrics
        assert "undertow_ring_written_total" in metrics
        eng.stop()
        saw(b"")
        assert b"STOPPING=1" in got
    finally:
        eng.stop()
        fake.close()


def test_a_counter_beyond_the_row_is_dropped_not_fatal(namespace):
    from engine.actor_table import MAX_COUNTERS
    table = ActorTable.open(actor_table_segment(namespace))
    try:
        row = table.row("feed:x", pid=os.getpid())
        row.update({f"c{i}": float(i) for i in range(MAX_COUNTERS + 5)})   # five too many: logged, skipped
        row.set("c0", 42.0)
        counters = {r["name"]: r["counters"] for r in table.snapshot()}["feed:x"]
        assert len(counters) == MAX_COUNTERS and counters["c0"] == 42.0 and f"c{MAX_COUNTERS}" not in counters
    finally:
        table.close()
