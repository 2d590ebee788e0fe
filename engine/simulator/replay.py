"""Replay recorded captures through the simulator's server, original bytes preserved.

Reads any format ``engine.captures.iter_capture`` knows (cryptofeed raw text,
hftbacktest gzip). Received frames must be Binance combined-stream envelopes
``{"stream":"<name>","data":{...}}`` (what both recorders hold): combined clients
get the envelope byte for byte, raw clients get the ``data`` bytes sliced out of
it. Several files are merged by their local timestamps. REST bodies in the
capture (depth snapshots, exchangeInfo) are served for their paths.

Playback starts when the first client has subscribed, so nothing is sent into
the void; ``speed`` 1 keeps the recorded spacing, N plays N× faster, 0 as fast
as the clients read (it waits while a client's write buffer is over 1 MiB).
"""
from __future__ import annotations

import asyncio
import heapq
import logging
from typing import Any, Iterable, Iterator
from urllib.parse import urlsplit

from engine.captures import iter_capture

__all__ = ["ReplayFrame", "iter_replay_frames", "CaptureReplay"]

log = logging.getLogger("undertow.simulator.replay")

_PREFIX = b'{"stream":"'
_DATA = b'","data":'
_BATCH = 512
_HIGH_WATER = 1 << 20

ReplayFrame = tuple[int, str, bytes, bytes]     # (ts_ns, stream, raw data, original envelope)


def split_envelope(payload: bytes) -> tuple[str, bytes] | None:
    """Return ``(stream, data bytes)`` of a combined-stream envelope, or None if it is not one."""
    body = payload.rstrip()
    if not body.startswith(_PREFIX) or not body.endswith(b"}"):
        return None
    end = body.find(_DATA, len(_PREFIX))
    if end < 0:
        return None
    return body[len(_PREFIX):end].decode(), body[end + len(_DATA):-1]


def iter_replay_frames(paths: Iterable[str], rest: dict | None = None) -> Iterator[ReplayFrame]:
    """Yield the received envelope frames of ``paths`` merged by time; put REST bodies into ``rest``."""
    def one(path: str) -> Iterator[ReplayFrame]:
        for f in iter_capture(path):
            if f.direction == "recv":
                parts = split_envelope(f.payload)
                if parts is not None:
                    yield f.ts_ns, parts[0], parts[1], f.payload
            elif f.direction == "rest" and rest is not None:
                route = urlsplit(f.url).path if f.url else "/fapi/v1/depth"
                rest.setdefault(route, f.payload)
    return heapq.merge(*(one(p) for p in paths), key=lambda fr: fr[0])


class CaptureReplay:
    """Feed capture files into a :class:`~engine.simulator.server.SimServer` for one venue."""

    def __init__(self, paths: Iterable[str], *, speed: float = 1.0, venue: str = "binance") -> None:
        self.paths = list(paths)
        self.speed = float(speed)
        self.venue = venue
        self.rest_bodies: dict[str, bytes] = {}
        self.frames_replayed = 0
        self.done = False
        # reading the first frame now also collects the REST bodies recorded before it
        self._frames = iter_replay_frames(self.paths, self.rest_bodies)
        self._first = next(self._frames, None)

    def rest_answer(self, venue: Any, path: str) -> tuple[int, Any] | None:
        body = self.rest_bodies.get(urlsplit(path).path)
        return None if body is None else (200, body)

    def counters(self) -> dict:
        return {"replay_frames": self.frames_replayed, "replay_done": self.done}

    async def run(self, server: Any) -> None:
        """Wait for a subscriber, then publish every frame at the configured speed."""
        frames, first = self._frames, self._first
        await server.subscribed.wait()
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        ts0 = first[0] if first else 0
        paused_total = 0.0
        batch: list = []
        for frame in ([first] if first else []):
            batch.append(frame[1:])
        for frame in frames:
            if self.speed > 0:
                due = t0 + paused_total + (frame[0] - ts0) / 1e9 / self.speed
                if due > loop.time():
                    self._flush(server, batch)
                    await asyncio.sleep(due - loop.time())
            batch.append(frame[1:])
            if len(batch) >= _BATCH:
                self._flush(server, batch)
                await asyncio.sleep(0)
                while self.speed == 0 and server.write_buffered() > _HIGH_WATER:
                    await asyncio.sleep(0.001)
            if not server.running.is_set():
                self._flush(server, batch)
                stalled = loop.time()
                await server.running.wait()
                paused_total += loop.time() - stalled
        self._flush(server, batch)
        self.done = True
        log.info("replay finished: %d frames", self.frames_replayed)

    def _flush(self, server: Any, batch: list) -> None:
        if batch:
            server.publish(self.venue, batch)
            self.frames_replayed += len(batch)
            batch.clear()
