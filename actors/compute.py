"""Compute worker: poll every venue ring, run the kernels, publish signals, keep the state table.

Worker ``w`` of ``engine.compute_workers`` owns the assets with
``asset_id % compute_workers == w``, so each asset's cross-venue aggregate
lives in one process. Signals:

* ``Liquidation`` for every liquidation of an owned asset at or above
  ``detectors.liquidations.publish_min_usd``;
* ``Cascade`` whenever an asset's level changes (up or down), and at most
  every ``publish_interval_s`` of stream time while it stays above NONE;
* ``Volatility`` when an asset's regime changes;
* ``MarketCascade`` when ``market_min_assets`` assets reach ``market_level``
  within ``market_window_s`` (at most once per window);
* ``LiquidationSummary`` every ``summary_interval_s`` per asset with
  liquidations in the last 24 h (1 m .. 24 h totals, whale summary);
* a heartbeat every ``bus.heartbeat_interval_s``.
"""
from __future__ import annotations

import logging
import threading
import time

import numpy as np

from engine.bus import publisher_for
from engine.config import Config, VenuesConfig
from engine.coverage import coverage_rows, coverage_signals
from engine.hidden_liquidations import HiddenLiquidations
from engine.detectors import DetectorContext, build as build_detectors
from engine.detectors.base import DetectorQueue
from engine.venues import load as load_venue
from engine.idle import Doorbell, make_idle
from engine.instruments import Registry, registry_segment
from engine.kernels import BatchRunner
from engine.osutil import set_realtime
from engine.kernels import columns as C
from engine.kernels.cascade import P_MARKET
from engine.kernels.batches import kind_mask
from engine.kernels.pipeline import EV_LEVEL, EV_REGIME
from engine.record import RECORD_DTYPE, VENUE_NAMES, Flag
from engine.ring import Ring, RingReader, ring_segment
from engine.profiles import ProfileService, fetch_rest_volumes, snapshot_path
from engine.signals import LEVELS, REGIMES, Cascade, Liquidation, LiquidationSummary, MarketCascade, Volatility
from engine.state import StateTable

from .base import Actor

__all__ = ["ComputeActor", "size_class"]

STATE_INTERVAL_S = 0.05     # state table refresh period (wall clock)
COUNTERS_INTERVAL_S = 1.0
FACTOR_COLUMNS = {"volume": C.X_VOLUME, "oi": C.X_OI, "funding": C.X_FUNDING, "fuel": C.X_FUEL,
                  "depth_thinning": C.X_THINNING}
ALL_KINDS = -1

log = logging.getLogger("undertow.compute")


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
        self.hidden = HiddenLiquidations()
        self.profiles = ProfileService(cfg, self.runner, self.worker)
        self._profiled_assets = -1     # registry size at the last profile refresh
        if cfg.profiles.bootstrap_rest:
            threading.Thread(target=self._bootstrap_profiles, name="profile-bootstrap", daemon=True).start()
        ctx = DetectorContext(cfg, self.registry, self.runner, self.profiles)
        self.detectors = build_detectors(ctx)
        self._no_liquidations = [v for v in VenuesConfig.__struct_fields__ if getattr(cfg.venues, v).enabled
                                 and not getattr(load_venue(v), "LIQUIDATIONS_AVAILABLE", True)]
        ctx.detectors = {d.name: d for d in self.detectors}
        self._detector_kinds = [(d, getattr(d, "consumes", ALL_KINDS)) for d in self.detectors]
        self._detector_failures: dict[str, int] = {}
        self.detector_queue = (DetectorQueue(eng.detector_cadence_ms / 1e3, eng.detector_queue_records, RECORD_DTYPE)
                               if eng.detector_cadence_ms > 0 else None)
        self._factor_sources = {f: ctx.detectors.get(name) for f, name in det.cascade.factor_detectors.items()}
        self.missing_factors = sorted(f for f, d in self._factor_sources.items() if d is None)
        if self.missing_factors:
            log.info("cascade factors %s count 0: their detectors are not running", self.missing_factors)
        self._market_onsets: dict[int, int] = {}   # asset -> stream time it reached market_level
        self._market_published = 0
        params = ({"timeout_s": eng.park_timeout_ms / 1e3, "spin_s": eng.park_spin_us / 1e6}
                  if eng.idle == "park" else {})
        self.idle = make_idle(eng.idle, self.readers, self.doorbell, **params)
        if eng.compute_cores:
            self.pin([eng.compute_cores[self.worker % len(eng.compute_cores)]])
        self._symbols: dict[int, tuple[str, str]] = {}
        self._last_cascade_pub = np.zeros(0, dtype=np.int64)
        self._next_republish = 0       # stream time (ns) of the next due re-publication; 0 = check
        self._inst_version = -1
        self._stream_ns = 0
        self._inst_asset_list: list[int] = []
        self._single_usd: list[float] = []
        self.stats = dict(records=0, lost=0, batches=0, max_batch=0, kernel_ns=0, unknown=0,
                          sig_liquidation=0, sig_cascade=0, sig_volatility=0, sig_market_cascade=0,
                          sig_liquidation_summary=0, detector_errors=0, coverage_unknown_venue=0,
                          detector_runs=0, realtime=0)

    def warm_up(self) -> None:
        """Compile every kernel before RUNNING (start-up beats go on), so the event loop never compiles."""
        from engine.warmup import ensure_compiled
        took = ensure_compiled(self.cfg.engine.namespace)   # its shared memory inside ours: swept if killed
        if took is not None:
            log.info("numba kernels compiled in %.1f s", took)

    def run(self) -> None:
        cfg = self.cfg
        self.go_realtime(cfg.engine.realtime_priority)
        hb_every = cfg.bus.heartbeat_interval_s
        now = time.monotonic()
        next_hb = now
        next_state = now + STATE_INTERVAL_S
        next_counters = now + COUNTERS_INTERVAL_S
        cov_every = cfg.bus.coverage_interval_s if self.worker == 0 else 0.0   # one worker speaks for all
        next_coverage = now + cov_every
        next_factors = now
        next_summary = now + cfg.detectors.liquidations.summary_interval_s
        while not self.stopping:
            work = 0
            for reader in self.readers:
                recs, lost = reader.poll()
                if lost:
                    self.stats["lost"] += lost
                if len(recs):
                    work += len(recs)
                    self.process_critical(recs)
                    self.queue_detectors(recs)
            now = time.monotonic()
            q = self.detector_queue
            if q is not None and q.overdue(now):
                self.flush_detectors()
            if now >= next_hb:
                next_hb = now + hb_every
                self.publisher.heartbeat({k: float(v) for k, v in self.stats.items() if k != "kernel_ns"})
            if now >= next_state:
                next_state = now + STATE_INTERVAL_S
                self.write_state()
            if now >= next_counters:
                next_counters = now + COUNTERS_INTERVAL_S
                self.publish_counters()
            if cov_every and now >= next_coverage:
                next_coverage = now + cov_every
                self.publish_coverage()
            if now >= next_factors:
                next_factors = now + cfg.detectors.cascade.factor_refresh_s
                self.refresh_factors()
            if now >= next_summary and cfg.detectors.liquidations.enabled:
                next_summary = now + cfg.detectors.liquidations.summary_interval_s
                self.publish_summaries()
            self.refresh_profiles_if_due()
            self.beat()
            self.idle.idle(work)

    def go_realtime(self, priority: int) -> bool:
        """``engine.realtime_priority``: run this loop and its ZeroMQ I/O thread SCHED_FIFO (after warm-up:
        a cold-cache compile must not hold a core at real-time priority); warn once where it is not allowed."""
        if not priority:
            return False
        ok = set_realtime(priority)
        self.stats["realtime"] = priority if ok else 0
        if ok:
            log.info("compute loop runs SCHED_FIFO at priority %d", priority)
        else:
            log.warning("engine.realtime_priority %d not applied: the process needs CAP_SYS_NICE or an RLIMIT_RTPRIO "
                        "of at least %d (systemd: LimitRTPRIO=, RestrictRealtime=no; see docs/RUNBOOK.md)",
                        priority, priority)
        return ok

    def teardown(self) -> None:
        if getattr(self, "detector_queue", None) is not None and self.publisher is not None:
            try:
                self.flush_detectors()    # queued records still get their detector signals
            except Exception:  # a detector failing here must not keep the rings and the table from closing
                log.exception("detector run over the queued records failed at shutdown")
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
        """Run the kernels on one polled batch and publish what it produced: its liquidation and
        cascade signals first, then the plug-in detectors' (they never delay the former)."""
        self.process_critical(recs)
        self.run_detectors(recs)

    def process_critical(self, recs: np.ndarray) -> None:
        """The fused kernel and the liquidation / cascade / volatility signals of one batch."""
        st = self.stats
        t0 = time.perf_counter_ns()
        events = self.runner.run(recs)
        st["kernel_ns"] += time.perf_counter_ns() - t0
        self._stream_ns = int(recs["ts_recv"][-1])
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
                    self.check_market(int(ev["asset"]), int(ev["new"]), int(ev["ts"]), int(ev["ts_exchange"]),
                                      int(ev["ts_recv"]))
                elif ev["kind"] == EV_REGIME:
                    self.publish_volatility(ev)
        if det.cascade.enabled:
            self.republish_cascades(self._stream_ns)
        liqs = self.runner.liquidations()
        if len(liqs):    # after every signal of the batch: the estimate is not on their path
            self._estimate_hidden(recs[liqs])

    def run_detectors(self, recs: np.ndarray, kinds: int | None = None) -> None:
        """Run the plug-in detectors over one batch and publish their signals.

        ``kinds``: the batch's :func:`kind_mask` (computed when not given); a detector whose
        ``consumes`` bits miss it is not called at all.
        """
        if not len(recs):
            return
        if kinds is None:
            kinds = kind_mask(recs)
        publish = self.publisher.publish
        for d, consumes in self._detector_kinds:
            if consumes & kinds:
                try:
                    sigs = d.run(recs)
                except Exception:  # one detector's bug must not stop the others or the actor; counted
                    self._detector_failed(d)
                    continue
                for sig in sigs:
                    publish(sig)

    def _detector_failed(self, d) -> None:
        self.stats["detector_errors"] += 1
        n = self._detector_failures[d.name] = self._detector_failures.get(d.name, 0) + 1
        if n & (n - 1) == 0:      # the 1st, 2nd, 4th, 8th ... failure: a broken detector cannot flood the log
            log.exception("detector %s failed on a batch (%d failures so far)", d.name, n)

    def queue_detectors(self, recs: np.ndarray) -> None:
        """The poll loop's detector step: queue the batch, run the detectors over the queue when it is due
        (:class:`DetectorQueue`); without a queue (cadence 0), run them on this batch now."""
        q = self.detector_queue
        if q is None:
            self.run_detectors(recs)
            return
        due = q.add(recs, time.monotonic())
        if due is None:                   # no room: run what is queued, then queue this batch
            self.flush_detectors()
            due = q.add(recs, time.monotonic())
            if due is None:               # bigger than the whole queue: its own run
                self.run_detectors(recs)
                return
        if due:
            self.flush_detectors()

    def flush_detectors(self) -> None:
        """Run the detectors over everything queued."""
        recs, kinds = self.detector_queue.take()
        self.stats["detector_runs"] += 1
        self.run_detectors(recs, kinds)

    # -- profiles and detector factors ---------------------------------------
    def _bootstrap_profiles(self) -> None:
        """24 h USD volumes from the venues' REST tickers (a thread: the hot loop never waits on REST)."""
        try:
            volumes = fetch_rest_volumes(self.cfg, self.registry)
        except Exception as exc:  # any failure leaves the configured fallbacks in force
            log.warning("profile bootstrap from REST tickers failed, configured fallbacks stay: %s", exc)
            return
        log.info("profile bootstrap: 24 h volume for %d assets from REST", len(volumes))
        self.profiles.bootstrap(volumes)   # next refresh (the loop's) picks them up

    def refresh_profiles_if_due(self) -> None:
        """Refresh the asset profiles when their schedule says so or the registry has grown since the last one."""
        if self.profiles.due() or self.runner.n_assets != self._profiled_assets:
            self.refresh_profiles()

    def refresh_profiles(self) -> None:
        """Recompute the owned assets' profiles and thresholds; write the snapshot `undertow thresholds` reads."""
        self.profiles.refresh()
        self._profiled_assets = self.runner.n_assets
        self._inst_version = -1    # size classes read the new single-liquidation thresholds
        try:
            self.profiles.snapshot(snapshot_path(self.cfg, self.worker), self.detectors)
        except OSError as exc:
            log.warning("profile snapshot not written: %s", exc)

    def refresh_factors(self) -> None:
        """Copy the cascade factors' detector values (0..1) into the kernel's asset rows.

        A detector's value named like the factor (zones' ``fuel``, book's ``depth_thinning``) is taken as is;
        otherwise (volume / OI / funding) its largest value.
        """
        r = self.runner
        sources = [(f, FACTOR_COLUMNS[f], d) for f, d in self._factor_sources.items() if d is not None]
        if not sources:
            return
        rows = r.asset_rows
        for a in np.flatnonzero(r.owned).tolist():
            name = r.asset_names[a]
            for factor, col, d in sources:
                try:
                    values = d.factors(name)
                except Exception:  # a detector bug must not stop the cascade engine; counted
                    self.stats["detector_errors"] += 1
                    log.exception("%s.factors(%s) failed", d.name, name)
                    continue
                value = values[factor] if factor in values else max(values.values(), default=0.0)
                rows[a, col] = min(max(value, 0.0), 1.0)

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
        self._refresh_instruments()
        return self._inst_asset_list[iid]

    def _refresh_instruments(self) -> None:
        """New Python-side copies of the per-instrument arrays when the registry grew."""
        if self._inst_version != self.runner.n_inst:
            self._inst_version = self.runner.n_inst
            self._inst_asset_list = self.runner.inst_asset.tolist()
            self._single_usd = self.runner.single_usd.tolist()
            self._inst_venue = self.registry.venue_of()

    def _estimate_hidden(self, liqs: np.ndarray | None) -> None:
        """Feed the capped-stream estimate (liquidation records, or None to move stream time on)."""
        self._refresh_instruments()
        r = self.runner
        args = (r.inst_asset, self._inst_venue, r.inst_rows[:, C.OI_USD])
        if liqs is None:
            self.hidden.advance(self._stream_ns, *args)
        else:
            self.hidden.add(liqs, *args)

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
            factors={**{k: row[c] for k, c in C.FACTOR_COLUMNS.items()}, "burst": row[C.F_BURST],
                     "regime": row[C.F_REGIME]},
            heat=row[C.HEAT], intensity_n_s=row[C.INTENSITY], market_regime=self._market_regime(row),
            missing_factors=self.missing_factors, also_cascading=self._cascading(a)))
        self.stats["sig_cascade"] += 1
        if len(self._last_cascade_pub) < r.n_assets:
            grown = np.zeros(r.n_assets, dtype=np.int64)
            grown[: len(self._last_cascade_pub)] = self._last_cascade_pub
            self._last_cascade_pub = grown
        self._last_cascade_pub[a] = int(r.clock[0])
        self._next_republish = min(self._next_republish, int(r.clock[0]) + int(
            self.cfg.detectors.cascade.publish_interval_s * 1e9))
        r.asset_rows[a, C.LAST_SIGNAL_TS] = time.time_ns()

    def _market_regime(self, row: list) -> str:
        m = int(self.runner.cas_params[P_MARKET])
        return REGIMES[int(self.runner.asset_rows[m, C.REGIME] if m >= 0 else row[C.REGIME])]

    def _cascading(self, a: int) -> list[str]:
        r = self.runner
        return [r.asset_names[b] for b in np.flatnonzero(r.asset_rows[:, C.LEVEL] > 0).tolist() if b != a]

    def check_market(self, a: int, level: int, ts: int, ts_exchange: int, ts_recv: int) -> None:
        """Several assets reaching ``market_level`` within ``market_window_s``: publish a market-wide cascade.

        Counted per worker (the assets it owns); one signal per window at most.
        """
        cas = self.cfg.detectors.cascade
        need = LEVELS.index(cas.market_level)
        window = int(cas.market_window_s * 1e9)
        if level >= need:
            self._market_onsets.setdefault(a, ts)
        else:
            self._market_onsets.pop(a, None)
            return
        live = {b: t for b, t in self._market_onsets.items() if ts - t <= window}
        self._market_onsets = live
        if len(live) < cas.market_min_assets or ts - self._market_published < window:
            return
        self._market_published = ts
        r = self.runner
        order = sorted(live, key=live.get)
        rows = r.asset_rows
        cs = C.CASCADE_SUMS
        self.publisher.publish(MarketCascade(
            asset="*", ts_exchange=ts_exchange, ts_recv=ts_recv, ts_computed=time.time_ns(),
            level=LEVELS[int(min(rows[b, C.LEVEL] for b in order))], assets=[r.asset_names[b] for b in order],
            window_s=cas.market_window_s, scores={r.asset_names[b]: float(rows[b, C.SCORE]) for b in order},
            notional_usd=float(sum(rows[b, cs + C.USD_LONG] + rows[b, cs + C.USD_SHORT] for b in order))))
        self.stats["sig_market_cascade"] += 1

    def publish_summaries(self) -> None:
        """Rolling liquidation totals and the 24 h whale summary of every owned asset with liquidations in 24 h."""
        r = self.runner
        rows = r.asset_rows
        day = rows[:, C.DAY_SUMS + C.N_LONG] + rows[:, C.DAY_SUMS + C.N_SHORT]
        now = int(r.clock[0])
        for a in np.flatnonzero((day > 0) & r.owned).tolist():
            row = rows[a].tolist()
            w = C.WHALE_DAY
            long_usd, short_usd = row[w + C.USD_LONG], row[w + C.USD_SHORT]
            side = "long" if long_usd > short_usd else "short" if short_usd > long_usd else ""
            self.publisher.publish(LiquidationSummary(
                asset=r.asset_names[a], ts_exchange=int(row[C.LAST_LIQ_TS]), ts_recv=now, ts_computed=time.time_ns(),
                windows={lb: {"long_n": row[c], "short_n": row[c + 1], "long_usd": row[c + 2], "short_usd": row[c + 3]}
                         for lb, c in C.LIQ_WINDOW_COLUMNS.items()},
                whale_count_24h=int(row[w + C.N_LONG] + row[w + C.N_SHORT]), whale_usd_24h=long_usd + short_usd,
                whale_dominant_side=side, whale_threshold_usd=float(r.whale_usd[a]),
                lower_bound=row[C.LAST_CAPPED_TS] > 0 and now - row[C.LAST_CAPPED_TS] < 86400e9))
            self.stats["sig_liquidation_summary"] += 1

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

    def publish_coverage(self) -> None:
        """One ``coverage`` signal per venue from the feeds' counters in the actor table, also into the
        state table's venue rows (``undertow top``, the bot)."""
        sigs = coverage_signals(self._table.snapshot(), self._no_liquidations)
        for sig in sigs:
            self.publisher.publish(sig)
        ids, rows, unknown = coverage_rows(sigs)
        if unknown:
            self.stats["coverage_unknown_venue"] += len(unknown)
            log.warning("coverage of venues without a state-table row: %s", unknown)
        if len(ids):
            self.table.write("v", ids, rows)

    def publish_counters(self) -> None:
        st = self.stats
        rec = st["records"]
        self._estimate_hidden(None)
        self.counters({**{k: float(v) for k, v in st.items() if k != "kernel_ns"}, **self.hidden.counters(),
                       "kernel_ns_per_record": st["kernel_ns"] / rec if rec else 0.0,
                       "producer_restarts": float(sum(rd.producer_restarts for rd in self.readers))})
