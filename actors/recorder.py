"""Recorder: every venue ring and every bus signal into the history (engine/history.py).

It reads each enabled venue's ring through its own reader slot (``recorder``,
so the compute workers' cursors are untouched and a restarted recorder
resumes where it stopped), subscribes to every topic on the bus and keeps the
raw msgpack payloads (signal kinds it does not know are stored too), writes
the instrument table beside the segments, flushes at least every
``recorder.flush_interval_s`` and applies the retention once an hour.
Records lapped in a ring before the recorder read them are counted as
``lost`` (the ring reader knows exactly how many), never silently missing.
"""
from __future__ import annotations

import time

import zmq

from engine.config import Config, VenuesConfig
from engine.history import CODEC, HistoryWriter, InstrumentInfo
from engine.instruments import Registry, registry_segment
from engine.ring import Ring, RingReader, ring_segment

from .base import Actor

__all__ = ["RecorderActor", "READER_NAME"]

READER_NAME = "recorder"
PRUNE_INTERVAL_S = 3600.0
POLL_SLEEP_S = 0.01


class RecorderActor(Actor):
    """The ``recorder`` process."""

    kind = "recorder"

    def __init__(self, cfg: Config):
        super().__init__(cfg, "recorder")
        self.readers: dict[str, RingReader] = {}
        self.sub = None
        self.writer: HistoryWriter | None = None
        self.registry = None
        self.stats = dict(records=0, lost=0, signals=0, bus_malformed=0, chunks=0, pruned_days=0)

    def setup(self) -> None:
        cfg, eng, rc = self.cfg, self.cfg.engine, self.cfg.recorder
        self.sub = zmq.Context.instance().socket(zmq.SUB)
        self.sub.setsockopt(zmq.RCVHWM, cfg.bus.sndhwm)
        self.sub.setsockopt(zmq.LINGER, 0)
        self.sub.setsockopt(zmq.SUBSCRIBE, b"")
        self.sub.connect(cfg.bus.endpoint)
        for venue in VenuesConfig.__struct_fields__:
            if getattr(cfg.venues, venue).enabled:
                ring = Ring.open(ring_segment(eng.namespace, venue), eng.ring_capacity)
                self.readers[venue] = RingReader(ring, READER_NAME)
        self.registry = Registry.open(registry_segment(eng.namespace), eng.max_instruments, eng.max_assets)
        self.writer = HistoryWriter(rc.root, codec=rc.codec, level=rc.level)
        self.log.info("recording to %s (%s, %s days retention)", rc.root,
                      CODEC if rc.codec == "auto" else rc.codec, rc.retention_days)

    def run(self) -> None:
        rc = self.cfg.recorder
        next_flush = time.monotonic() + rc.flush_interval_s
        next_prune = time.monotonic()
        while not self.stopping:
            work = self.poll_once()
            now = time.monotonic()
            if now >= next_flush:
                next_flush = now + rc.flush_interval_s
                self.flush()
            if now >= next_prune:
                next_prune = now + PRUNE_INTERVAL_S
                self.stats["pruned_days"] += len(self.writer.prune(rc.retention_days))
            self.beat()
            if not work:
                time.sleep(POLL_SLEEP_S)

    def poll_once(self) -> int:
        """Drain the rings and the bus once; return how many items were taken."""
        work = 0
        for venue, reader in self.readers.items():
            recs, lost = reader.poll()
            self.stats["lost"] += lost
            if len(recs):
                self.writer.add_records(venue, recs)
                self.stats["records"] += len(recs)
                work += len(recs)
        while self.sub.poll(0):
            frames = self.sub.recv_multipart()
            if len(frames) != 2:
                self.stats["bus_malformed"] += 1
                continue
            self.writer.add_signal(time.time_ns(), frames[0].decode(errors="replace"), frames[1])
            self.stats["signals"] += 1
            work += 1
        return work

    def flush(self) -> None:
        reg = self.registry
        self.writer.set_instruments([InstrumentInfo(i.id, i.venue, i.symbol, i.asset) for i in reg.all()])
        self.writer.flush()
        self.stats["chunks"] = self.writer.chunks
        self.counters({k: float(v) for k, v in self.stats.items()})

    def teardown(self) -> None:
        if self.writer is not None:
            self.poll_once()
            self.flush()
        for reader in self.readers.values():
            reader.ring.close()
        if self.sub is not None:
            self.sub.close()
        if self.registry is not None:
            self.registry.close()
