"""Small Linux process controls: CPU pinning, timer slack, priorities."""
from __future__ import annotations

import ctypes
import os

__all__ = ["pin_to_cores", "set_timer_slack", "set_realtime", "available_cores", "die_with_parent",
           "die_with_supervisor"]

_PR_SET_TIMERSLACK = 29


def available_cores() -> list[int]:
    """Cores this process may run on."""
    return sorted(os.sched_getaffinity(0))


def pin_to_cores(cores: list[int] | tuple[int, ...]) -> list[int]:
    """Pin the calling process to ``cores`` (ignoring ones that do not exist); return the set used.

    Create ZeroMQ contexts and sockets *before* calling this: libzmq's I/O
    thread inherits the affinity of the thread that starts it.
    """
    allowed = set(available_cores())
    wanted = [c for c in cores if c in allowed]
    if wanted:
        os.sched_setaffinity(0, wanted)
    return sorted(os.sched_getaffinity(0))


def set_timer_slack(ns: int = 1) -> bool:
    """Lower the kernel timer slack so short sleeps wake on time; return success."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(_PR_SET_TIMERSLACK, ctypes.c_ulong(ns), 0, 0, 0) == 0
    except OSError:  # pragma: no cover - not Linux
        return False


def set_realtime(priority: int, thread_prefixes: tuple[str, ...] = ("ZMQbg/IO",)) -> bool:
    """Put the calling thread under ``SCHED_FIFO`` at ``priority``, and this process's threads named with one
    of ``thread_prefixes`` (libzmq's I/O threads, which carry every signal in and out) one above it; return
    success.

    A woken FIFO thread preempts normal ones at once instead of waiting out their slice; the I/O thread
    above its loop sends a signal the moment it is queued, not when the loop next blocks. Needs
    CAP_SYS_NICE or an RLIMIT_RTPRIO of at least ``priority + 1`` (systemd: ``LimitRTPRIO=``); without
    either nothing changes and this returns False. Only for threads that block when idle: a spinning
    FIFO thread keeps its core from everything else.
    """
    io_threads = []
    for tid in os.listdir("/proc/self/task"):
        try:
            with open(f"/proc/self/task/{tid}/comm") as f:
                name = f.read().strip()
        except OSError:  # the thread ended meanwhile
            continue
        if name.startswith(thread_prefixes):
            io_threads.append(int(tid))
    try:
        os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(priority))
        for tid in io_threads:
            os.sched_setscheduler(tid, os.SCHED_FIFO, os.sched_param(priority + 1))
    except PermissionError:
        return False
    return True


_PR_SET_PDEATHSIG = 1


def die_with_parent(expected_parent: int, sig: int = 15) -> bool:
    """Ask the kernel to send ``sig`` when our parent exits; exit now if it already has."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, sig, 0, 0, 0)
    except OSError:  # pragma: no cover - not Linux
        return False
    if os.getppid() != expected_parent:  # parent died before prctl took effect
        os._exit(1)
    return True


def die_with_supervisor() -> bool:
    """:func:`die_with_parent` for the supervisor named in ``$UNDERTOW_PARENT_PID`` (no-op when unset)."""
    parent = os.environ.get("UNDERTOW_PARENT_PID", "")
    return die_with_parent(int(parent)) if parent.isdigit() else False
