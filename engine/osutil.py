"""Small Linux process controls: CPU pinning, timer slack, priorities."""
from __future__ import annotations

import ctypes
import os

__all__ = ["pin_to_cores", "set_timer_slack", "available_cores", "die_with_parent", "die_with_supervisor"]

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
