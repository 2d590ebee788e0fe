"""Start-up under the supervisor: a slow warm-up (numba on a cold cache) is not a hang; a hung loop still is.

The actor beats from a thread while ``setup()`` and ``warm_up()`` run and stops that thread before
it turns RUNNING; the supervisor bounds start-up by ``supervisor.startup_timeout_ms`` and, once
RUNNING, by ``heartbeat_timeout_ms`` again. ``UNDERTOW_TEST_SLOW_WARMUP_S`` stands in for a
compilation longer than the start-up grace; the ``fault_heavy`` variant compiles for real into an
empty numba cache.
"""
from __future__ import annotations

import math
import os
import socket
import time
from pathlib import Path

import msgspec
import pytest

from engine import shm
from engine.actor_table import RUNNING
from engine.config import Config, ConfigError, VenuesConfig, _check
from engine.supervisor import ActorSpec, Supervisor, _Child

from .conftest import wait_until

HEARTBEAT_S = 1.0
GRACE_S = 4.0


def _config(tmp: Path, namespace: str, **supervisor) -> Config:
    return msgspec.convert({
        "engine": {"namespace": namespace, "run_dir": str(tmp), "ring_capacity": 4096},
        "supervisor": {"heartbeat_timeout_ms": int(HEARTBEAT_S * 1000), "startup_grace_ms": int(GRACE_S * 1000),
                       "restart_backoff_initial_ms": 100, "stop_timeout_ms": 3000, "health_port": 0} | supervisor,
        "bus": {"endpoint": f"ipc://{tmp}/bus.sock", "heartbeat_interval_s": 0.2},
        "venues": {v: {"enabled": False} for v in VenuesConfig.__struct_fields__} | {"binance": {"symbols": ["BTCUSDT"]}},
    }, Config)


def _row(sup: Supervisor, name: str) -> dict | None:
    return {r["name"]: r for r in sup.table.snapshot(counters=False)}.get(name)


def _watch(sup: Supervisor, seconds: float, until=None):
    """Run the supervisor's watch loop in small steps for up to ``seconds``; stop early once ``until()`` is truthy."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        sup.loop(duration=0.05)
        if until is not None and (got := until()):
            return got
    return None


def _start_then_hang(tmp: Path, namespace: str, env: dict, ready_within_s: float, **supervisor) -> dict:
    """A compute actor whose start-up outlasts the grace, then whose loop hangs; the figures of both phases."""
    cfg = _config(tmp, namespace, **supervisor)
    sup = Supervisor(cfg, specs=[ActorSpec("compute:0", ["compute", "--worker", "0"])],
                     env={**os.environ, "UNDERTOW_TEST_HANG_AFTER_READY": "1", **env}, log_level="WARNING")
    child = sup.children["compute:0"]
    try:
        sup.start()
        t0 = time.monotonic()
        spares_before_ready = []

        harness_shm = set()

        def ready():
            row = _row(sup, "compute:0")
            if row is None or row["state"] != RUNNING:
                spares_before_ready.append(child.standby)
                harness_shm.update(n for n in shm.list_segments(namespace) if "-warmup" in n)
                return None
            return row
        assert _watch(sup, ready_within_s, ready), f"compute not RUNNING within {ready_within_s}s"
        ready_s = time.monotonic() - t0
        assert child.hung_kills == 0 and child.restarts == 0, \
            f"killed during start-up: {child.hung_kills} hung kills, {child.restarts} restarts"
        assert not any(spares_before_ready), "a warm spare was started beside a cold start"
        t1 = time.monotonic()
        assert _watch(sup, HEARTBEAT_S + 5, lambda: child.hung_kills), "a hung loop after RUNNING was not killed"
        hang_s = time.monotonic() - t1
        assert hang_s <= HEARTBEAT_S + 1.5, f"hung loop killed after {hang_s:.2f}s (heartbeat timeout {HEARTBEAT_S}s)"
        return {"ready_s": ready_s, "hang_killed_s": hang_s, "harness_shm": harness_shm}
    finally:
        sup.stop()


# -- the policy ---------------------------------------------------------------
@pytest.mark.unit
@pytest.mark.parametrize("state,age_s,up_s,killed", [
    (1, 0.1, 300.0, ""),                       # starting and beating (compiling): left alone
    (1, 0.1, 601.0, "not ready"),              # beating but never ready: startup_timeout_ms
    (1, 3.5, 3.5, ""),                         # no beat yet (imports), inside the grace
    (1, 4.5, 4.5, "missed heartbeats"),        # silent past the grace
    (2, 0.5, 900.0, ""),                       # running and beating
    (2, 1.5, 900.0, "missed heartbeats"),      # running, silent past heartbeat_timeout_ms
])
def test_hang_policy(tmp_path, state, age_s, up_s, killed):
    sup = Supervisor(_config(tmp_path, "unused", startup_timeout_ms=600_000), specs=[])
    child = _Child(ActorSpec("compute:0", []), started=100.0)
    why = sup._hung(child, {"state": state, "heartbeat_age_s": age_s}, 100.0 + up_s)
    assert (killed in why) if killed else why == "", why


@pytest.mark.unit
@pytest.mark.parametrize("keys,path", [
    ({"startup_grace_ms": 500}, "supervisor.startup_grace_ms"),          # below heartbeat_timeout_ms
    ({"startup_timeout_ms": 2000}, "supervisor.startup_timeout_ms"),     # below startup_grace_ms
])
def test_startup_keys_are_validated(tmp_path, keys, path):
    with pytest.raises(ConfigError, match=path):
        _check(_config(tmp_path, "unused", **keys))


@pytest.mark.unit
def test_systemd_start_timeout_is_extended_while_actors_start_and_only_until_startup_timeout(tmp_path):
    path = str(tmp_path / "notify.sock")
    fake = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    fake.bind(path)
    fake.setblocking(False)
    try:
        got = []
        for started_ago_s in (0.0, 61.0):     # inside, then past startup_timeout_ms = 60 s
            sup = Supervisor(_config(tmp_path, "unused", startup_timeout_ms=60_000),
                             specs=[ActorSpec("compute:0", [])], env={"NOTIFY_SOCKET": path})
            sup.children["compute:0"].next_start = math.inf    # never started: start-up never ends
            sup.started -= started_ago_s
            sup.loop(duration=0.1)
            sup.notifier.close()
            msgs = []
            while True:
                try:
                    msgs.append(fake.recv(512))
                except BlockingIOError:
                    break
            got.append(any(m.startswith(b"EXTEND_TIMEOUT_USEC=30000000") for m in msgs))
        assert got == [True, False]
    finally:
        fake.close()


@pytest.mark.unit
def test_warm_up_is_skipped_only_for_a_cache_stamped_warm(tmp_path, monkeypatch):
    from engine import warmup
    runs = []
    monkeypatch.setattr(warmup, "compile_kernels", lambda namespace="": runs.append(1) or 1.5)
    monkeypatch.setenv("NUMBA_CACHE_DIR", str(tmp_path))
    assert warmup.ensure_compiled() == 1.5 and runs == [1]          # empty cache: compile
    stamp = warmup._stamp()
    assert stamp.parent == tmp_path
    stamp.touch()                                                    # what a completed compile_kernels leaves
    assert warmup.ensure_compiled() is None and runs == [1]


# -- the actor under the supervisor ------------------------------------------------
@pytest.mark.process
@pytest.mark.timeout(300)
def test_a_warm_up_longer_than_the_grace_is_not_a_hang_but_a_hung_loop_is(tmp_path, namespace):
    # ~15 s with a warm numba cache (scripts/test warms it first); minutes when the kernels changed since
    figures = _start_then_hang(tmp_path, namespace, {"UNDERTOW_TEST_SLOW_WARMUP_S": str(GRACE_S + 3)},
                               ready_within_s=240, startup_timeout_ms=240_000, warm_standby=["compute"])
    assert figures["ready_s"] >= GRACE_S + 3


@pytest.mark.process
@pytest.mark.timeout(120)
def test_an_actor_that_never_gets_ready_is_killed_at_the_startup_timeout(tmp_path, namespace):
    cfg = _config(tmp_path, namespace, startup_timeout_ms=int(GRACE_S * 1000) + 2000, warm_standby=[])
    sup = Supervisor(cfg, specs=[ActorSpec("compute:0", ["compute", "--worker", "0"])],
                     env={**os.environ, "UNDERTOW_TEST_SLOW_WARMUP_S": "600"}, log_level="CRITICAL")
    child = sup.children["compute:0"]
    try:
        sup.start()
        t0 = time.monotonic()
        assert _watch(sup, 30, lambda: child.hung_kills), "a start-up that never ends was not killed"
        took = time.monotonic() - t0
        assert GRACE_S + 2 - 0.5 <= took <= GRACE_S + 2 + 3, took
    finally:
        sup.stop()


@pytest.mark.fault_heavy
@pytest.mark.process
@pytest.mark.timeout(900)
def test_a_cold_numba_cache_converges_without_restarts(tmp_path, namespace):
    """Compute with an EMPTY numba cache: it compiles every kernel during start-up, is never killed for it."""
    cache = tmp_path / "numba-cache"
    cache.mkdir()
    figures = _start_then_hang(tmp_path, namespace, {"NUMBA_CACHE_DIR": str(cache)}, ready_within_s=800,
                               startup_timeout_ms=800_000, warm_standby=["compute"])
    assert any(cache.rglob("*.nbi")), "nothing was compiled into the empty cache"
    assert figures["harness_shm"], "the warm-up harness's shared memory was not inside the daemon's namespace"
    print(f"\ncold-cache start-up: RUNNING after {figures['ready_s']:.1f}s, no restart; "
          f"hung loop killed {figures['hang_killed_s']:.2f}s after RUNNING")
