"""Reader idle strategies (as in Aeron) and the doorbell a parked reader waits on.

On a machine with few cores only one process may busy-poll; every other
reader should wait in the kernel. ``park`` blocks on a Unix datagram socket
that the ring's producer rings after it publishes, so a parked reader wakes
within tens of microseconds without spinning.
"""
from __future__ import annotations

import os
import secrets
import select
import socket
import time
from typing import Protocol, Sequence

__all__ = ["Doorbell", "IdleStrategy", "Spin", "Backoff", "Sleep", "Park", "make_idle", "doorbell_address"]


def doorbell_address(token: int) -> bytes:
    """Abstract Unix socket address of the doorbell with ``token``."""
    return b"\0ut-db-%016x" % token


class Doorbell:
    """A wake-up socket owned by one reader process, shared by all the rings it reads."""

    def __init__(self) -> None:
        self.token = secrets.randbits(63) or 1
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(doorbell_address(self.token))
        self.sock.setblocking(False)

    def wait(self, timeout: float) -> bool:
        """Block up to ``timeout`` seconds for a ring; return whether one came."""
        ready, _, _ = select.select([self.sock], [], [], timeout)
        if ready:
            self.drain()
            return True
        return False

    def drain(self) -> None:
        """Discard pending wake-ups."""
        try:
            while True:
                self.sock.recv(64)
        except BlockingIOError:
            pass

    def close(self) -> None:
        self.sock.close()


class Parkable(Protocol):
    def set_parked(self, parked: bool) -> None: ...
    def available(self) -> int: ...


class IdleStrategy:
    """Called after every poll with the amount of work that poll did."""

    name = "base"

    def idle(self, work: int) -> None:
        raise NotImplementedError

    def close(self) -> None:
        pass


class Spin(IdleStrategy):
    """Busy-poll: lowest latency, burns a whole core."""

    name = "spin"

    def idle(self, work: int) -> None:
        return None


class Backoff(IdleStrategy):
    """Spin, then yield, then sleep with exponential growth up to ``max_sleep_s``."""

    name = "backoff"

    def __init__(self, spins: int = 200, yields: int = 20, min_sleep_s: float = 20e-6, max_sleep_s: float = 1e-3):
        self.spins, self.yields = spins, yields
        self.min_sleep_s, self.max_sleep_s = min_sleep_s, max_sleep_s
        self._count = 0
        self._sleep = min_sleep_s

    def idle(self, work: int) -> None:
        if work:
            self._count = 0
            self._sleep = self.min_sleep_s
            return
        self._count += 1
        if self._count <= self.spins:
            return
        if self._count <= self.spins + self.yields:
            os.sched_yield()
            return
        time.sleep(self._sleep)
        self._sleep = min(self._sleep * 2, self.max_sleep_s)


class Sleep(IdleStrategy):
    """Sleep a fixed period whenever a poll found nothing."""

    name = "sleep"

    def __init__(self, period_s: float = 100e-6):
        self.period_s = period_s

    def idle(self, work: int) -> None:
        if not work:
            time.sleep(self.period_s)


class Park(IdleStrategy):
    """Block on a doorbell that producers ring; wake at least every ``timeout_s``.

    For ``spin_s`` after a poll that found work the reader keeps polling instead
    of parking: records of one burst (a venue's packet carries several frames)
    then cost neither a doorbell round trip nor the cold caches of a wake-up.
    """

    name = "park"

    def __init__(self, readers: Sequence[Parkable], doorbell: Doorbell, timeout_s: float = 5e-3,
                 extra_fds: Sequence[int] = (), spin_s: float = 0.0):
        self.readers = list(readers)
        self.doorbell = doorbell
        self.timeout_s = timeout_s
        self.extra_fds = list(extra_fds)
        self.spin_s = spin_s
        self._spin_until = 0.0

    def idle(self, work: int) -> None:
        if work:
            if self.spin_s:
                self._spin_until = time.perf_counter() + self.spin_s
            return
        if self.spin_s and time.perf_counter() < self._spin_until:
            return
        for r in self.readers:
            r.set_parked(True)
        try:
            # Re-check after announcing: a record published before we parked
            # would otherwise wait for the timeout.
            if any(r.available() for r in self.readers):
                return
            if self.extra_fds:
                ready, _, _ = select.select([self.doorbell.sock, *self.extra_fds], [], [], self.timeout_s)
                if self.doorbell.sock in ready:
                    self.doorbell.drain()
            else:
                self.doorbell.wait(self.timeout_s)
        finally:
            for r in self.readers:
                r.set_parked(False)


def make_idle(name: str, readers: Sequence[Parkable] = (), doorbell: Doorbell | None = None,
              **params: float) -> IdleStrategy:
    """Build the idle strategy called ``name`` (spin, backoff, sleep or park)."""
    if name == "spin":
        return Spin()
    if name == "backoff":
        return Backoff(**params)
    if name == "sleep":
        return Sleep(**params)
    if name == "park":
        if doorbell is None:
            raise ValueError("park needs a doorbell")
        return Park(readers, doorbell, **params)
    raise ValueError(f"unknown idle strategy {name!r}")
