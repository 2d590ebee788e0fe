"""The ZeroMQ signal bus: a publisher with per-topic sequence numbers, and a subscriber that counts gaps."""
from __future__ import annotations

import time
from dataclasses import dataclass, field

import msgspec
import zmq

from .security import CurveClient, CurveServer, curve_server_for
from .signals import Heartbeat, SignalBase, decode, encode, topic_of

_set = msgspec.structs.force_setattr
_SNDMORE = int(zmq.SNDMORE)

__all__ = ["Publisher", "Subscriber", "Received", "publisher_for", "internal_endpoint"]


class Publisher:
    """Publish signals as ``[topic, msgpack]``; ``bind`` or ``connect`` to ``endpoint``.

    Create it before pinning the process to a core (libzmq's I/O thread
    inherits the creating thread's affinity). With ``curve`` the socket is a
    CurveZMQ server: subscribers without its public key are refused.
    """

    def __init__(self, endpoint: str, name: str, bind: bool = True, sndhwm: int = 100000,
                 context: zmq.Context | None = None, linger_ms: int = 200, curve: CurveServer | None = None):
        self.ctx = context or zmq.Context.instance()
        self.sock = self.ctx.socket(zmq.PUB)
        self.sock.setsockopt(zmq.SNDHWM, sndhwm)
        self.sock.setsockopt(zmq.LINGER, linger_ms)
        self._auth = curve.apply(self.sock) if curve is not None else None
        if bind:
            self.sock.bind(endpoint)
        else:
            self.sock.connect(endpoint)
        self.endpoint = endpoint
        self.name = name
        self._seq: dict[str, int] = {}
        self.published = 0
        self.started = time.monotonic()

    def publish(self, sig: SignalBase) -> SignalBase:
        """Stamp ``seq`` and ``ts_published`` on ``sig`` (in place: pass a fresh signal) and send it."""
        topic = topic_of(sig)
        seq = self._seq.get(topic, 0) + 1
        self._seq[topic] = seq
        # The signal was built for this call: stamping it in place skips a copy of every field.
        _set(sig, "seq", seq)
        _set(sig, "ts_published", time.time_ns())
        # Two plain sends rather than send_multipart (whose flag arithmetic goes through enum
        # operators), copying: zero-copy pays pyzmq's free-callback thread hop, a loss below ~64 kB.
        send = self.sock.send
        send(topic.encode(), _SNDMORE)
        send(encode(sig))
        self.published += 1
        return sig

    def heartbeat(self, info: dict[str, float] | None = None) -> SignalBase:
        """Publish ``heartbeat.<name>``."""
        now = time.time_ns()
        return self.publish(Heartbeat(asset=self.name, ts_exchange=now, ts_recv=now, ts_computed=now,
                                      uptime_s=time.monotonic() - self.started, published=self.published,
                                      info=info or {}))

    def close(self) -> None:
        self.sock.close()
        if self._auth is not None:
            self._auth.stop()


@dataclass
class Received:
    """A signal as received, with the local receive time (ns)."""

    topic: str
    signal: SignalBase
    ts_received: int
    gap: int = 0  # signals missed on this topic just before this one


@dataclass
class _GapCounter:
    last: dict[str, int] = field(default_factory=dict)
    gaps: int = 0
    malformed: int = 0


class Subscriber:
    """Subscribe to topic prefixes at one or more endpoints and decode signals (``curve``: a CurveZMQ bus)."""

    def __init__(self, endpoints: str | list[str], topics: list[str] | tuple[str, ...] = ("",),
                 context: zmq.Context | None = None, rcvhwm: int = 100000, curve: CurveClient | None = None):
        self.ctx = context or zmq.Context.instance()
        self.sock = self.ctx.socket(zmq.SUB)
        self.sock.setsockopt(zmq.RCVHWM, rcvhwm)
        self.sock.setsockopt(zmq.LINGER, 0)
        if curve is not None:
            curve.apply(self.sock)
        for t in topics:
            self.sock.setsockopt(zmq.SUBSCRIBE, t.encode())
        for ep in [endpoints] if isinstance(endpoints, str) else endpoints:
            self.sock.connect(ep)
        self._c = _GapCounter()

    @property
    def gaps(self) -> int:
        """Signals missed, from per-topic sequence numbers."""
        return self._c.gaps

    @property
    def malformed(self) -> int:
        return self._c.malformed

    def recv(self, timeout_ms: int | None = None) -> Received | None:
        """Next signal, or None on timeout. Malformed messages are counted and skipped."""
        while True:
            if timeout_ms is not None and not self.sock.poll(timeout_ms):
                return None
            frames = self.sock.recv_multipart()
            now = time.time_ns()
            if len(frames) != 2:
                self._c.malformed += 1
                continue
            try:
                sig = decode(frames[1])
            except (msgspec.DecodeError, msgspec.ValidationError):
                self._c.malformed += 1
                continue
            topic = frames[0].decode(errors="replace")
            prev = self._c.last.get(topic)
            gap = 0
            if prev is not None and sig.seq > prev + 1:
                gap = sig.seq - prev - 1
                self._c.gaps += gap
            self._c.last[topic] = sig.seq
            return Received(topic, sig, now, gap)

    def close(self) -> None:
        self.sock.close()


def internal_endpoint(run_dir: str) -> str:
    """Where publishers connect when several compute workers share the public endpoint via a proxy."""
    return f"ipc://{run_dir}/bus-in.sock"


def publisher_for(cfg, name: str, context: zmq.Context | None = None) -> Publisher:
    """The publisher an actor should use under ``cfg``.

    With one compute worker it binds the public endpoint itself (one hop to
    subscribers); with several, each connects to the supervisor's XSUB/XPUB
    proxy, which owns the public endpoint.
    """
    if cfg.engine.compute_workers == 1:
        return Publisher(cfg.bus.endpoint, name, bind=True, sndhwm=cfg.bus.sndhwm, context=context,
                         curve=curve_server_for(cfg.bus))
    return Publisher(internal_endpoint(cfg.engine.run_dir), name, bind=False, sndhwm=cfg.bus.sndhwm,
                     context=context)
