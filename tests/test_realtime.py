"""engine.realtime_priority: the compute loop and its ZeroMQ I/O thread under SCHED_FIFO, or a clear warning."""
from __future__ import annotations

import logging
import multiprocessing as mp
import os
import time

from engine import osutil

def _child(priority: int, q) -> None:
    import zmq
    ctx = zmq.Context()
    sock = ctx.socket(zmq.PUB)         # starts libzmq's I/O thread, which names itself once running
    names = lambda: [open(f"/proc/self/task/{t}/comm").read() for t in os.listdir("/proc/self/task")]  # noqa: E731
    deadline = time.monotonic() + 10
    while not any(n.startswith("ZMQbg/IO") for n in names()) and time.monotonic() < deadline:
        time.sleep(0.01)
    ok = osutil.set_realtime(priority)
    policies = {}
    for tid in os.listdir("/proc/self/task"):
        name = open(f"/proc/self/task/{tid}/comm").read().strip()
        policies[name if int(tid) != os.getpid() else "main"] = (
            os.sched_getscheduler(int(tid)), os.sched_getparam(int(tid)).sched_priority)
    sock.close()
    ctx.term()
    q.put((ok, policies))

def _run_child(priority: int):
    q = mp.get_context("spawn").Queue()
    p = mp.get_context("spawn").Process(target=_child, args=(priority, q))
    p.start()
    out = q.get(timeout=30)
    p.join(10)
    return out

def test_set_realtime_applies_fifo_to_the_loop_and_the_zmq_io_thread_one_above():
    ok, policies = _run_child(7)
    io = [v for k, v in policies.items() if k.startswith("ZMQbg/IO")]
    assert io, policies
    if ok:
        assert policies["main"] == (os.SCHED_FIFO, 7)
        assert all(v == (os.SCHED_FIFO, 8) for v in io)
        reaper = [v for k, v in policies.items() if k.startswith("ZMQbg/Reaper")]
        assert all(v[0] == os.SCHED_OTHER for v in reaper)      # only the threads that carry signals
    else:   # not allowed here (no CAP_SYS_NICE, RLIMIT_RTPRIO too low): nothing changed
        assert policies["main"][0] == os.SCHED_OTHER and all(v[0] == os.SCHED_OTHER for v in io)

def test_set_realtime_without_permission_returns_false(monkeypatch):
    def refuse(*_):
        raise PermissionError(1, "Operation not permitted")
    monkeypatch.setattr(os, "sched_setscheduler", refuse)
    assert osutil.set_realtime(5) is False

def test_compute_warns_once_and_reports_zero_when_not_allowed(monkeypatch, caplog):
    from actors import compute
    from engine.config import Config
    actor = compute.ComputeActor(Config(), 0)
    actor.stats = {"realtime": 0}
    monkeypatch.setattr(compute, "set_realtime", lambda prio: False)
    with caplog.at_level(logging.WARNING):
        assert actor.go_realtime(5) is False
    assert actor.stats["realtime"] == 0
    assert "LimitRTPRIO" in caplog.text and "engine.realtime_priority 5" in caplog.text
    monkeypatch.setattr(compute, "set_realtime", lambda prio: True)
    assert actor.go_realtime(5) is True and actor.stats["realtime"] == 5
    caplog.clear()
    assert actor.go_realtime(0) is False and not caplog.text    # 0: normal scheduling, nothing attempted
