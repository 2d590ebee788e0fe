"""The live compute path in this process, over private rings, at the speed the kernels run.

:class:`OfflinePipeline` sets up a real :class:`~actors.compute.ComputeActor` (worker 0 of 1) on its own
namespace, with one ring per replayed venue, like ``undertow replay`` does with its supervisor, but without
processes: each batch is written into its venue's ring, read back by the actor's own ring reader and
handed to ``ComputeActor.process``, so kernels, detectors and signal building are the live ones. The
actor's housekeeping that the live loop times by the wall clock (detector factors into the cascade
kernel, profile refreshes) runs here on stream time at the configured intervals, so a run at any speed
sees what a live run at real time would. Every signal the actor publishes is collected instead of sent.
"""
from __future__ import annotations

import shutil
import tempfile
import uuid
from collections import Counter

import msgspec
import numpy as np

from .. import shm
from ..config import Config, VenuesConfig
from ..instruments import Registry, registry_segment
from ..replay import replay_config
from ..ring import Ring, ring_segment

__all__ = ["OfflinePipeline", "SignalCollector", "KEPT_KINDS"]

KEPT_KINDS = ("cascade", "zone_approach", "risk", "market_cascade")   # the rest are only counted


class SignalCollector:
    """Stands in for the actor's bus publisher: keeps the signals a backtest scores, counts every kind."""

    def __init__(self, keep: tuple[str, ...] = KEPT_KINDS):
        self.keep = keep
        self.signals: list = []
        self.counts: Counter = Counter()

    def publish(self, sig):
        kind = type(sig).__struct_config__.tag
        self.counts[kind] += 1
        if kind in self.keep:
            self.signals.append(sig)
        return sig

    def heartbeat(self, info=None) -> None:
        return None

    def close(self) -> None:
        return None


class OfflinePipeline:
    """A set-up compute actor fed synchronously (use as a context manager)."""

    def __init__(self, cfg: Config, venues: list[str]):
        unknown = sorted(set(venues) - set(VenuesConfig.__struct_fields__))
        if unknown:
            raise ValueError(f"unknown venues {unknown}")
        self.run_dir = tempfile.mkdtemp(prefix="ut-backtest-")
        ns = "bt" + uuid.uuid4().hex[:8]
        rcfg = replay_config(cfg, venues, namespace_suffix="")
        self.cfg = msgspec.structs.replace(
            rcfg,
            engine=msgspec.structs.replace(rcfg.engine, namespace=ns, run_dir=self.run_dir, compute_workers=1,
                                           compute_cores=[]),
            bus=msgspec.structs.replace(rcfg.bus, endpoint=f"ipc://{self.run_dir}/bus.sock"),
            profiles=msgspec.structs.replace(rcfg.profiles, bootstrap_rest=False))
        self.venues = [v for v in VenuesConfig.__struct_fields__ if v in venues]
        self.collector = SignalCollector()
        self.stream_ns = 0
        self.records = 0
        self.lost = 0
        self._next_factors = 0
        self.actor = None

    # -- lifecycle ----------------------------------------------------------------
    def __enter__(self) -> "OfflinePipeline":
        from actors.compute import ComputeActor
        eng = self.cfg.engine
        self.registry = Registry.open(registry_segment(eng.namespace), eng.max_instruments, eng.max_assets)
        self.rings = {v: Ring.open(ring_segment(eng.namespace, v), eng.ring_capacity) for v in self.venues}
        for r in self.rings.values():
            r.become_producer()
        try:
            self.actor = ComputeActor(self.cfg, 0)
            self.actor.setup()
        except BaseException:
            self.__exit__(None, None, None)
            raise
        self.actor.publisher.close()
        self.actor.publisher = self.collector
        self.actor.profiles.clock = lambda: self.stream_ns
        self.actor.profiles.next_refresh_ns = 0
        self.readers = dict(zip(self.venues, self.actor.readers))   # setup opens them in VenuesConfig order
        return self

    def __exit__(self, *exc) -> None:
        if self.actor is not None:
            self.actor.teardown()
            self.actor = None
        for r in getattr(self, "rings", {}).values():
            r.close()
        if getattr(self, "registry", None) is not None:
            self.registry.close()
            self.registry = None
        shm.sweep(self.cfg.engine.namespace)
        shutil.rmtree(self.run_dir, ignore_errors=True)

    # -- feeding --------------------------------------------------------------------
    def feed(self, venue: str, recs: np.ndarray) -> None:
        """Write ``venue``'s records (time-ordered) through its ring into the actor; run due housekeeping."""
        ring, reader = self.rings[venue], self.readers[venue]
        step = max(1, ring.capacity // 4)
        for i in range(0, len(recs), step):
            ring.write_batch(recs[i:i + step])
            while True:
                got, lost = reader.poll()
                self.lost += lost
                if not len(got):
                    break
                self.records += len(got)
                self.stream_ns = max(self.stream_ns, int(got["ts_recv"].max()))
                self.actor.process(got)
                self.housekeeping()

    def housekeeping(self) -> None:
        """What the live loop does between batches, on stream time: factors and profile refreshes."""
        a = self.actor
        if self.stream_ns >= self._next_factors:
            self._next_factors = self.stream_ns + int(self.cfg.detectors.cascade.factor_refresh_s * 1e9)
            a.refresh_factors()
        a.refresh_profiles_if_due()

    def advance(self, stream_ns: int) -> None:
        """Stream time moved to ``stream_ns`` without records (a quiet stretch of a sparse series)."""
        self.stream_ns = max(self.stream_ns, stream_ns)

    # -- reading the model ------------------------------------------------------------
    @property
    def signals(self) -> list:
        return self.collector.signals

    def zones(self):
        """The zone detector, or None when it is not running."""
        return next((d for d in self.actor.detectors if d.name == "zones"), None)

    def zone_map(self, asset: str) -> tuple[float, dict] | None:
        """(price, asset_map) of the zone model now, or None before the asset has a price and a grid."""
        z = self.zones()
        if z is None:
            return None
        summary, m = z.zones(asset), z.asset_map(asset)
        if not summary or m is None or not summary.get("price") or not np.isfinite(m["price"]).all():
            return None
        return summary["price"], m
