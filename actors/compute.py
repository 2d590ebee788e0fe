"""Compute worker: poll every venue ring, run the kernels, publish signals, keep the state table.

Worker ``w`` of ``engine.compute_workers`` owns the assets with
``asset_id % compute_workers == w``, so each asset's cross-venue aggregate
lives in one process. Signals:

* ``Liquidation`` for every liquidation of an owned asset at or above
  ``detectors.liquidations.publish_min_usd``;
* ``Cascade`` whenever an asset's level changes (up or down), and at most
  every ``publish_interval_s`` of stream time while it stays above NONE;
* ``Volatility`` when an asset's regime changes;
* a heartbeat every ``bus.heartbeat_interval_s``.
"""
from __future__ import annotations

import time

import numpy as np

from engine.bus import publisher_for
from engine.config import Config, VenuesConfig
from engine.detectors import DetectorContext, build as build_detectors
from engine.idle import Doorbell, make_idle
from engine.instruments import Registry, registry_segment
from engine.kernels import BatchRunner
from engine.kernels import columns as C
from engine.kernels.pipeline import EV_LEVEL, EV_REGIME
from engine.record import VENUE_NAMES, Flag
from engine.ring import Ring, RingReader, ring_segment
from engine.signals import LEVELS, REGIMES, Cascade, Liquidation, Volatility
from engine.state import StateTable

from .base import Actor

__all__ = ["ComputeActor", "size_class"]

STATE_INTERVAL_S = 0.05     # state table refresh period (wall clock)
COUNTERS_INTERVAL_S = 1.0


def size_class(notional: float, single_usd: float, liq_cfg) -> str:
    """retail / large / whale / institutional against the asset's single-liquidation threshold."""
    if notional >= single_usd * liq_cfg.institutional_multiple:
        return "institutional"
    if notional >= single_usd * liq_cfg.whale_multiple:
        return "whale"
    if notional >= single_usd * liq_cfg.large_multiple:
        return "large"
    return "retail"


class ComputeActor(Actor):
    """One compute worker process (``compute:<worker>``)."""

    kind = "compute"

    def __init__(self, cfg: Config, worker: int):
        super().__init__(cfg, f"compute:{worker}")
        self.worker = worker
        self.publisher = None
        self.readers: list[RingReader] = []
        self.doorbell = None
        self.registry = None
        self.table = None

    # -- lifecycle --------------------------------------------------------
    def setup(self) -> None:
        cfg = self.cfg
        eng = cfg.engine
        self.publisher = publisher_for(cfg, self.name)  # before pinning: libzmq's thread inherits affinity
        self.doorbell = Doorbell()
        for venue in VenuesConfig.__struct_fields__:
            if getattr(cfg.venues, venue).enabled:
                ring = Ring.open(ring_segment(eng.namespace, venue), eng.ring_capacity)
                self.readers.append(RingReader(ring, f"compute-{self.worker}", doorbell_token=self.doorbell.token))
        self.registry = Registry.open(registry_segment(eng.namespace), eng.max_instruments, eng.max_assets)
        self.table = StateTable.open(eng.namespace, eng.max_instruments, eng.max_assets)
        det = cfg.detectors
        self.runner = BatchRunner(det, self.registry, self.worker, eng.compute_workers)
        self.table.set_windows(self.runner.velocity.windows_s, self.runner.vol.windows, det.cascade.window_s)
        self.runner.warm_up()
        self.detectors = build_detectors(DetectorContext(cfg, self.registry, self.runner))
        params = ({"timeout_s": eng.park_timeout_ms / 1e3, "spin_s": eng.park_spin_us / 1e6}
                  if eng.idle == "park" else {})
        self.idle = make_idle(eng.idle, self.readers, self.doorbell, **params)
        if eng.compute_cores:
            self.pin([eng.compute_cores[self.worker % len(eng.compute_cores)]])
        self._symbols: dict[int, tuple[str, str]] = {}
        self._last_cascade_pub = np.zeros(0, dtype=np.int64)
        self._next_republish = 0       # stream time (ns) of the next due re-publication; 0 = check
        self._inst_version = -1
        self._inst_asset_list: list[int] = []
        self._single_usd: list[float] = []
        self.stats = dict(records=0, lost=0, batches=0, max_batch=0, kernel_ns=0, unknown=0,
                          sig_liquidation=0, sig_cascade=0, sig_volatility=0)

    def run(self) -> None:
        cfg = self.cfg
        hb_every = cfg.bus.heartbeat_interval_s
        now = time.monotonic()
        next_hb = now
        next_state = now + STATE_INTERVAL_S
        next_counters = now + COUNTERS_INTERVAL_S
        while not self.stopping:
            work = 0
            for reader in self.readers:
                recs, lost = reader.poll()
                if lost:
                    self.stats["lost"] += lost
                if len(recs):
                    work += len(recs)
                    self.process(recs)
            now = time.monotonic()
            if now >= next_hb:
                next_hb = now + hb_every
                self.publisher.heartbeat({k: float(v) for k, v in self.stats.items() if k != "kernel_ns"})
            if now >= next_state:
                next_state = now + STATE_INTERVAL_S
                self.write_state()
            if now >= next_counters:
                next_counters = now + COUNTERS_INTERVAL_S
                self.publish_counters()
            self.beat()
            self.idle.idle(work)

    def teardown(self) -> None:
        if self.table is not None and hasattr(self, "runner"):
            self.write_state()
        for reader in self.readers:
            reader.set_parked(False)
            reader.ring.close()
        if self.doorbell is not None:
            self.doorbell.close()
        if self.publisher is not None:
            self.publisher.close()
        if self.table is not None:
            self.table.close()
        if self.registry is not None:
            self.registry.close()

    # -- one batch --------------------------------------------------------
    def process(self, recs: np.ndarray) -> None:
        """Run the kernels on one polled batch and publish what it produced."""
        st = self.stats
        t0 = time.perf_counter_ns()
        events = self.runner.run(recs)
        st["kernel_ns"] += time.perf_counter_ns() - t0
        n = len(recs)
        st["records"] += n
        st["batches"] += 1
        st["max_batch"] = max(st["max_batch"], n)
        st["unknown"] = self.runner.unknown
        det = self.cfg.detectors
        if det.liquidations.enabled:
            self.publish_liquidations(recs)
        for batch in events:
            for ev in batch:
                if ev["kind"] == EV_LEVEL:
                    self.publish_cascade(ev["asset"], ev["row"], int(ev["prev"]), int(ev["ts_exchange"]),
                                         int(ev["ts_recv"]))
                elif ev["kind"] == EV_REGIME:
                    self.publish_volatility(ev)
        if det.cascade.enabled:
            self.republish_cascades(int(recs["ts_recv"][-1]))
        # after the liquidation/cascade signals: the plug-in detectors do not delay those
        publish = self.publisher.publish
        for d in self.detectors:
            for sig in d.run(recs):
                publish(sig)

    def _symbol(self, iid: int) -> tuple[str, str]:
        s = self._symbols.get(iid)
        if s is None:
            inst = self.registry.get(iid)
            s = self._symbols[iid] = (inst.symbol, VENUE_NAMES.get(inst.venue, str(inst.venue)))
        return s

    def publish_liquidations(self, recs: np.ndarray) -> None:
        """One signal per liquidation of an owned asset the kernel found in this batch."""
        r = self.runner
        idx = r.liquidations()
        if not len(idx):
            return
        liq_cfg = self.cfg.detectors.liquidations
        for i in idx.tolist():
            # one tuple in record field order: a single call, where per-field access costs one each
            _, _, side, flags, iid, ts_exchange, ts_recv, price, qty, usd, _, _ = recs[i].item()
            if usd < liq_cfg.publish_min_usd:
                continue
            a = self._asset_of(iid)
            symbol, venue = self._symbol(iid)
            self.publisher.publish(Liquidation(
                asset=r.asset_names[a], venue=venue, symbol=symbol, ts_exchange=ts_exchange,
                ts_recv=ts_recv, ts_computed=time.time_ns(), side="short" if side < 0 else "long",
                price=price, qty=qty, notional_usd=usd, size_class=size_class(usd, self._single_usd[a], liq_cfg),
                capped=bool(flags & Flag.CAPPED)))
            self.stats["sig_liquidation"] += 1

    def _asset_of(self, iid: int) -> int:
        if self._inst_version != self.runner.n_inst:   # the registry grew: new Python-side copies
            self._inst_version = self.runner.n_inst
            self._inst_asset_list = self.runner.inst_asset.tolist()
            self._single_usd = self.runner.single_usd.tolist()
        return self._inst_asset_list[iid]

    def publish_cascade(self, a: int, row: np.ndarray, prev: int, ts_exchange: int, ts_recv: int) -> None:
        r = self.runner
        det = self.cfg.detectors
        row = row.tolist()
        labels = r.velocity.labels
        vel_on = det.velocity.enabled
        cs = C.CASCADE_SUMS
        self.publisher.publish(Cascade(
            asset=r.asset_names[a], ts_exchange=ts_exchange, ts_recv=ts_recv, ts_computed=time.time_ns(),
            level=LEVELS[int(row[C.LEVEL])], score=round(row[C.SCORE], 4), previous_level=LEVELS[prev],
            count=int(row[cs + C.N_LONG] + row[cs + C.N_SHORT]), window_s=det.cascade.window_s,
            notional_usd=row[cs + C.USD_LONG] + row[cs + C.USD_SHORT], long_usd=row[cs + C.USD_LONG],
            short_usd=row[cs + C.USD_SHORT],
            velocity_usd_s={lb: row[C.VEL_USD + k] for k, lb in enumerate(labels)} if vel_on else {},
            velocity_n_s={lb: row[C.VEL_N + k] for k, lb in enumerate(labels)} if vel_on else {},
            acceleration_usd_s2=row[C.ACCEL_HEAD], regime=REGIMES[int(row[C.REGIME])], price=row[C.PRICE],
            factors={"count": row[C.F_COUNT], "velocity": row[C.F_VELOCITY], "acceleration": row[C.F_ACCEL],
                     "regime": row[C.F_REGIME]}))
        self.stats["sig_cascade"] += 1
        if len(self._last_cascade_pub) < r.n_assets:
            grown = np.zeros(r.n_assets, dtype=np.int64)
            grown[: len(self._last_cascade_pub)] = self._last_cascade_pub
            self._last_cascade_pub = grown
        self._last_cascade_pub[a] = int(r.clock[0])
        self._next_republish = min(self._next_republish, int(r.clock[0]) + int(
            self.cfg.detectors.cascade.publish_interval_s * 1e9))
        r.asset_rows[a, C.LAST_SIGNAL_TS] = time.time_ns()

    def republish_cascades(self, ts_recv: int) -> None:
        """Re-publish assets above NONE whose last cascade signal is ``publish_interval_s`` old (stream time).

        The scan runs only when the stream clock reaches the earliest due time it found last
        (a level change resets that), not on every batch.
        """
        r = self.runner
        now = int(r.clock[0])
        if now < self._next_republish:
            return
        interval = int(self.cfg.detectors.cascade.publish_interval_s * 1e9)
        active = np.flatnonzero((r.asset_rows[:, C.LEVEL] > 0) & r.owned)
        next_due = now + interval
        for a in active.tolist():
            if a >= len(self._last_cascade_pub):
                continue
            due = int(self._last_cascade_pub[a]) + interval
            if now >= due:
                row = r.asset_rows[a]
                self.publish_cascade(a, row.copy(), int(row[C.LEVEL]), now, ts_recv)
                due = now + interval
            next_due = min(next_due, due)
        self._next_republish = next_due

    def publish_volatility(self, ev) -> None:
        r = self.runner
        a = int(ev["asset"])
        row = ev["row"].tolist()
        symbol, venue = self._symbol(int(ev["instrument"]))
        self.publisher.publish(Volatility(
            asset=r.asset_names[a], ts_exchange=int(ev["ts_exchange"]), ts_recv=int(ev["ts_recv"]),
            ts_computed=time.time_ns(), regime=REGIMES[int(ev["new"])], previous_regime=REGIMES[int(ev["prev"])],
            realized={lb: row[C.RV + k] for k, lb in enumerate(r.vol.labels)}, price=row[C.PRICE]))
        self.stats["sig_volatility"] += 1
        r.asset_rows[a, C.LAST_SIGNAL_TS] = time.time_ns()

    # -- periodic ---------------------------------------------------------
    def write_state(self) -> None:
        """Copy the owned rows into the shared state table."""
        r = self.runner
        n_i = min(r.n_inst, self.table.max_instruments)
        n_a = min(r.n_assets, self.table.max_assets)
        if n_i:
            self.table.write("i", np.flatnonzero(r.owned[r.inst_asset[:n_i]]), r.inst_rows)
        if n_a:
            self.table.write("a", np.flatnonzero(r.owned[:n_a]), r.asset_rows)

    def publish_counters(self) -> None:
        st = self.stats
        rec = st["records"]
        self.counters({**{k: float(v) for k, v in st.items() if k != "kernel_ns"},
                       "kernel_ns_per_record": st["kernel_ns"] / rec if rec else 0.0,
                       "producer_restarts": float(sum(rd.producer_restarts for rd in self.readers))})
