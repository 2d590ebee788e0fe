"""``undertow replay``: recorded segments or venue captures back through the live pipeline.

Replay is the live code path: the supervisor creates the registry and one
ring per recorded venue and starts the ordinary compute workers (and alerts
/ recorder when enabled); :class:`ReplayFeed` then stands where the feed
actors stand, as the rings' producer, and writes the recorded records into
them. Only the source differs:

* a history root (engine/history.py): records in the ring's own dtype,
  their instrument ids mapped from the recording's ``instruments.json`` onto
  this registry;
* capture files (engine/captures.py): every received frame through the
  venue's own parser, symbols registered like a live feed does.

Pacing follows ``ts_recv``: ``speed`` 1 is real time, 10 ten times faster,
0 as fast as the compute workers take it. The feed never laps a reader: it
waits while the slowest compute reader is more than half a ring behind, so a
replay loses no record. Records keep their timestamps (the stream clock of
the kernels), so the signals are those of the live run on the same data.
"""
from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Iterator

import msgspec
import numpy as np

from .config import Config, VenuesConfig
from .history import History
from .instruments import Registry, registry_segment
from .record import RECORD_DTYPE, VENUE_NAMES, Flag, venue_id
from .ring import Ring, ring_segment

__all__ = ["ReplayFeed", "history_source", "capture_source", "replay_config", "run_replay", "Progress"]

Source = Iterator[tuple[str, np.ndarray]]


def history_source(root: str | os.PathLike, registry: Registry,
                   t0: int | None = None, t1: int | None = None) -> tuple[list[str], int, Source]:
    """(venues, record count, chunks) of a history root, instrument ids remapped onto ``registry``."""
    hist = History(root)
    mapping = np.zeros(max([i.id for i in hist.instruments().values()], default=-1) + 1, dtype=np.int64)
    for info in hist.instruments().values():
        mapping[info.id] = registry.add(info.venue, info.symbol, info.asset)
    venues = hist.venues()

    def chunks() -> Source:   # day by day, venues merged in ts_recv order within the day
        for day in hist.days():
            day_t0 = max(t0 or 0, int(np.datetime64(day, "ns").astype(np.int64)))
            day_t1 = day_t0 + 86_400 * 10**9 - 1 if t1 is None else min(t1, day_t0 + 86_400 * 10**9 - 1)
            recs = hist.records(day_t0, day_t1)
            if not len(recs):
                continue
            known = recs["instrument"] < len(mapping)
            recs = recs[known].copy()
            recs["instrument"] = mapping[recs["instrument"]]
            recs["flags"] |= Flag.REPLAY
            for v in np.unique(recs["venue"]).tolist():
                yield VENUE_NAMES[v], recs[recs["venue"] == v]
    return venues, hist.count_records(t0, t1), chunks()


def capture_source(venue_name: str, files: list[str], registry: Registry) -> tuple[list[str], int, Source]:
    """(venues, frame count estimate 0, chunks) of capture files parsed by ``venue_name``'s parser."""
    from . import venues as venue_modules
    from .captures import iter_capture
    from .symbols import register
    venue = venue_modules.load(venue_name)

    def lookup(symbol: str):
        return register(registry, venue, [symbol], {}).get(symbol)

    parser = venue.Parser(lookup, Flag.REPLAY)

    def chunks() -> Source:
        out: list = []
        for path in files:
            for fr in iter_capture(path):
                if fr.direction != "recv":
                    continue
                parser.parse(fr.payload, fr.ts_ns, out)
                if len(out) >= 1024:
                    yield venue_name, np.array(out, dtype=RECORD_DTYPE)
                    out.clear()
        if out:
            yield venue_name, np.array(out, dtype=RECORD_DTYPE)
    return [venue_name], 0, chunks()


class Progress:
    """A one-line progress bar on stderr: share done, rate, time left."""

    def __init__(self, total: int, stream=None, every_s: float = 0.2):
        self.total, self.stream, self.every_s = total, stream or sys.stderr, every_s
        self.start = self.last = time.monotonic()

    def line(self, done: int) -> str:
        el = max(time.monotonic() - self.start, 1e-9)
        rate = done / el
        if self.total:
            frac = min(done / self.total, 1.0)
            left = (self.total - done) / rate if rate > 0 else float("inf")
            bar = "#" * int(frac * 30)
            eta = time.strftime("%H:%M:%S", time.gmtime(left)) if left != float("inf") else "--:--:--"
            return f"[{bar:<30}] {100 * frac:5.1f}% {done:,}/{self.total:,} records {rate:,.0f}/s left {eta}"
        return f"{done:,} records {rate:,.0f}/s"

    def update(self, done: int, force: bool = False) -> None:
        now = time.monotonic()
        if force or now - self.last >= self.every_s:
            self.last = now
            self.stream.write("\r" + self.line(done))
            self.stream.flush()


class ReplayFeed:
    """Writes recorded records into the rings as their producer, paced and without lapping a compute reader."""

    def __init__(self, rings: dict[str, Ring], speed: float = 0.0, reader_prefix: str = "compute-",
                 readers_expected: int = 1):
        self.rings = rings
        self.speed = speed
        self.prefix = reader_prefix
        self.expected = readers_expected
        self.written = 0
        self.skipped = 0   # records of a venue with no ring
        self._t0_stream = None
        self._t0_wall = 0.0
        for r in rings.values():
            r.become_producer()

    def _readers(self, ring: Ring) -> list[dict]:
        return [r for r in ring.readers() if r["name"].startswith(self.prefix)]

    def wait_readers(self, timeout_s: float = 60.0) -> None:
        """Block until every ring has its compute readers (they attach at 'resume' = the current cursor)."""
        deadline = time.monotonic() + timeout_s
        while any(len(self._readers(r)) < self.expected for r in self.rings.values()):
            if time.monotonic() > deadline:
                raise TimeoutError("the compute workers did not attach to the rings")
            time.sleep(0.05)

    def _room(self, ring: Ring, n: int) -> None:
        half = ring.capacity // 2
        while True:
            lag = max((r["lag"] for r in self._readers(ring)), default=0)
            if lag + n <= half:
                return
            time.sleep(0.0005)

    def write(self, venue: str, recs: np.ndarray) -> None:
        ring = self.rings.get(venue)
        if ring is None:
            self.skipped += len(recs)
            return
        step = max(1, ring.capacity // 8)
        for i in range(0, len(recs), step):
            part = recs[i:i + step]
            if self.speed > 0:
                self._pace(int(part["ts_recv"][0]))
            self._room(ring, len(part))
            ring.write_batch(part)
            self.written += len(part)

    def _pace(self, ts: int) -> None:
        if self._t0_stream is None:
            self._t0_stream, self._t0_wall = ts, time.monotonic()
            return
        due = self._t0_wall + (ts - self._t0_stream) / 1e9 / self.speed
        delay = due - time.monotonic()
        if delay > 0:
            time.sleep(delay)

    def drained(self) -> bool:
        """Every compute reader has read everything written."""
        return all(r["lag"] == 0 for ring in self.rings.values() for r in self._readers(ring))


def replay_config(cfg: Config, venues: list[str], namespace_suffix: str = "-replay") -> Config:
    """``cfg`` with exactly the replayed venues enabled, in its own namespace, without the health server."""
    changes = {}
    for name in VenuesConfig.__struct_fields__:
        v = getattr(cfg.venues, name)
        changes[name] = msgspec.structs.replace(v, enabled=name in venues)
    eng = msgspec.structs.replace(cfg.engine, namespace=cfg.engine.namespace + namespace_suffix)
    sup = msgspec.structs.replace(cfg.supervisor, health_port=0)   # a running daemon may hold the port
    return msgspec.structs.replace(cfg, engine=eng, supervisor=sup,
                                   venues=msgspec.structs.replace(cfg.venues, **changes))


def run_replay(cfg: Config, path: str, speed: float = 0.0, venue: str | None = None, progress: bool = True,
               with_alerts: bool = False, log_level: str = "WARNING", namespace_suffix: str = "-replay") -> dict:
    """Replay ``path`` (a history root, or capture files of ``venue``) through compute workers; return counts."""
    from .supervisor import ActorSpec, Supervisor
    p = Path(path)
    if not p.exists():
        raise FileNotFoundError(path)
    is_history = p.is_dir() and (p / "instruments.json").exists()
    if not is_history and venue is None:
        raise ValueError(f"{path}: not a history root (no instruments.json); give --venue to replay a capture")
    if is_history:
        venues = History(p).venues()
    else:
        venue_id(venue)   # KeyError names an unknown venue
        venues = [venue]
    rcfg = replay_config(cfg, venues, namespace_suffix)
    specs = [ActorSpec(f"compute:{k}", ["compute", "--worker", str(k)]) for k in range(rcfg.engine.compute_workers)]
    if with_alerts and rcfg.alerts.enabled:
        specs.append(ActorSpec("alerts", ["alerts"]))
    sup = Supervisor(rcfg, specs=specs, log_level=log_level)
    sup.start()
    stats = {"written": 0, "skipped": 0, "wall_s": 0.0}
    try:
        _, total, chunks = history_source(p, sup.registry) if is_history else \
            capture_source(venue, [str(p)], sup.registry)
        feed = ReplayFeed(sup.rings, speed, readers_expected=rcfg.engine.compute_workers)
        feed.wait_readers()
        bar = Progress(total) if progress else None
        t0 = time.monotonic()
        for v, recs in chunks:
            feed.write(v, recs)
            sup._check_children(time.monotonic())
            if bar:
                bar.update(feed.written)
        deadline = time.monotonic() + 60
        while not feed.drained() and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.5)   # the last batch's signals leave after its records were read
        if bar:
            bar.update(feed.written, force=True)
            sys.stderr.write("\n")
        stats.update(written=feed.written, skipped=feed.skipped, wall_s=time.monotonic() - t0,
                     drained=feed.drained())
    finally:
        sup.stop()
    return stats
