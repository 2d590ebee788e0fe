"""The compute actor's detector step: kind bitmap skips, the detector queue, and signals identical to per-batch runs."""
from __future__ import annotations

import msgspec
import numpy as np
import pytest

from engine.detectors.base import DetectorQueue
from engine.kernels.batches import kind_bits, kind_mask
from engine.kernels.flow import SIZE_BINS, SizeHistogram, size_add, size_quantile
from engine.record import RECORD_DTYPE, Kind, Side, Venue, empty_records
from engine.warmup import compute_harness

T0 = 1_700_000_000 * 10**9
CRITICAL = {"liquidation", "cascade", "volatility", "market_cascade", "liquidation_summary"}


def mixed_stream(ids: list[int], n: int, seed: int = 3, gap_ms: float = 20.0) -> np.ndarray:
    """``n`` records ``gap_ms`` apart on average: trades (a burst of big ones in the middle third), liquidations,
    book tops and depth, marks and open interest on the given instruments."""
    rng = np.random.default_rng(seed)
    recs = empty_records(n)
    ts = T0 + np.cumsum(rng.exponential(gap_ms * 1e6, n)).astype(np.int64)
    kinds = rng.choice([Kind.TRADE] * 12 + [Kind.LIQUIDATION, Kind.BOOK_TOP, Kind.BOOK_DEPTH, Kind.MARK,
                                            Kind.OPEN_INTEREST], n)
    burst = (np.arange(n) > n // 3) & (np.arange(n) < 2 * n // 3)
    inst = rng.integers(0, len(ids), n)
    price = 100.0 * np.exp(np.cumsum(rng.normal(0, 2e-4, n)) - 0.02 * burst.cumsum() / n)
    usd = rng.lognormal(np.log(2000.0), 1.0, n) * np.where(burst, rng.choice([1.0, 30.0, 400.0], n), 1.0)
    side = np.where(burst & (rng.random(n) < 0.8), -1, rng.choice([1, -1], n))
    for i in range(n):
        k, iid, p, t = int(kinds[i]), ids[int(inst[i])], float(price[i]), int(ts[i])
        if k == Kind.TRADE:
            row = (k, Venue.BINANCE, int(side[i]), 0, iid, t, t, p, usd[i] / p, usd[i], float(i), 0.0)
        elif k == Kind.LIQUIDATION:
            row = (k, Venue.BINANCE, Side.LONG, 0, iid, t, t, p, usd[i] / p, usd[i], 0.0, 0.0)
        elif k == Kind.BOOK_TOP:
            row = (k, Venue.BINANCE, 0, 0, iid, t, t, p * 0.9999, 5.0 * (1 + burst[i] * 9), p * 3.0, p * 1.0001, 1.0)
        elif k == Kind.BOOK_DEPTH:
            row = (k, Venue.BINANCE, 0, 0, iid, t, t, p, 0.01, 2e6 / (1 + 5 * burst[i]), 1e6, 1e6)
        elif k == Kind.MARK:
            row = (k, Venue.BINANCE, 0, 0, iid, t, t, p, p, 0.0, 1e-4 * (1 + 20 * burst[i]), 0.0)
        else:
            oi = 1e6 * (1 + 0.5 * burst[:i].sum() / n)
            row = (k, Venue.BINANCE, 0, 0, iid, t, t, p, oi / p, oi, 0.0, 0.0)
        recs[i] = row
    return recs


def batches(recs: np.ndarray, seed: int = 4):
    rng = np.random.default_rng(seed)
    i = 0
    while i < len(recs):
        k = int(rng.integers(1, 40))
        yield recs[i:i + k]
        i += k


def capture(actor) -> list:
    got: list = []
    actor.publisher.publish = got.append
    return got


def detector_signals(sigs: list) -> dict[str, list[dict]]:
    """Detector signals per kind in publication order, without the compute / publish stamps."""
    out: dict[str, list[dict]] = {}
    for s in sigs:
        d = msgspec.structs.asdict(s)
        kind = type(s).__name__
        if s.__struct_config__.tag in CRITICAL or kind == "Risk":
            continue
        d.pop("ts_computed"), d.pop("ts_published")
        out.setdefault(kind, []).append(d)
    return out


def test_queued_detectors_publish_the_same_signals_as_per_batch_runs():
    with compute_harness() as (per_batch, _, ids), compute_harness() as (queued, _, ids2):
        assert ids == ids2
        recs = mixed_stream(ids, 8000, gap_ms=2.0)        # ~16 s: the 100 ms cadence spans several batches
        a, b = capture(per_batch), capture(queued)
        assert queued.detector_queue is not None
        n_batches = 0
        for batch in batches(recs):
            n_batches += 1
            per_batch.process(batch)
            queued.process_critical(batch)
            queued.queue_detectors(batch)
        queued.flush_detectors()
        want, got = detector_signals(a), detector_signals(b)
        runs = queued.stats["detector_runs"]
    assert 8000 / 256 <= runs <= n_batches / 2                      # batches really were queued together
    assert sum(map(len, want.values())) >= 20 and len(want) >= 5, want.keys()   # the stream exercises detectors
    assert got == want


def test_queue_runs_on_count_on_stream_span_and_when_overdue():
    q = DetectorQueue(0.1, 8, RECORD_DTYPE)
    recs = empty_records(10)
    recs["kind"] = [Kind.TRADE] * 5 + [Kind.MARK] * 5
    recs["ts_recv"] = T0 + np.arange(10) * 10_000_000            # 10 ms apart
    assert q.add(recs[:3], now=5.0) is False and len(q) == 3
    assert not q.overdue(5.09) and q.overdue(5.1)                 # wall clock: cadence after the first add
    assert q.add(recs[3:9], now=5.0) is None and len(q) == 3       # does not fit: nothing queued
    assert q.add(recs[3:8], now=5.0) is True                       # full (8 records)
    out, kinds = q.take()
    assert len(q) == 0 and not q.overdue(99.0)
    assert out["ts_recv"].tolist() == recs["ts_recv"][:8].tolist()
    assert kinds == kind_bits(Kind.TRADE, Kind.MARK)
    span = empty_records(2)
    span["ts_recv"] = [T0, T0 + 100_000_000]                       # spans the 100 ms cadence of stream time
    assert q.add(span[:1], now=0.0) is False and q.add(span[1:], now=0.0) is True
    with pytest.raises(ValueError):
        DetectorQueue(0.0, 8, RECORD_DTYPE)


def test_kind_mask_and_detectors_skipped_by_kind():
    recs = empty_records(4)
    recs["kind"] = [Kind.TRADE, Kind.TRADE, Kind.BOOK_DEPTH, Kind.TRADE]
    assert kind_mask(recs) == kind_bits(Kind.TRADE, Kind.BOOK_DEPTH) == (1 << 1) | (1 << 7)
    assert kind_mask(recs[:0]) == 0

    class Probe:
        name = "probe"

        def __init__(self, consumes):
            self.consumes, self.calls = consumes, 0

        def run(self, records):
            self.calls += 1
            return []

    class Broken(Probe):
        def run(self, records):
            super().run(records)
            raise RuntimeError("detector bug")

    with compute_harness() as (actor, _, _ids):
        mark, trade, broken = Probe(kind_bits(Kind.MARK)), Probe(kind_bits(Kind.TRADE)), Broken(-1)
        actor._detector_kinds = [(broken, -1), (mark, mark.consumes), (trade, trade.consumes)]
        actor.run_detectors(recs)
        assert (broken.calls, mark.calls, trade.calls) == (1, 0, 1)    # a failing detector is counted, not fatal
        assert actor.stats["detector_errors"] == 1


def test_size_quantile_scan_from_the_highest_filled_bin_is_exact():
    sizes = SizeHistogram()
    sizes.grow(2)
    rng = np.random.default_rng(9)
    for usd in rng.lognormal(np.log(3000.0), 1.5, 5000):
        size_add(sizes.as_tuple(), 1, usd, 0.999)
    hist, weights, _ = sizes.as_tuple()
    assert weights[1, 2] == int(np.flatnonzero(hist[1])[-1]) and weights[0, 2] == 0

    def full_scan(q):          # the scan over every bin, top down
        target, acc = (1.0 - q) * weights[1, 1], 0.0
        for b in range(SIZE_BINS - 1, -1, -1):
            h = hist[1, b]
            if h > 0.0 and acc + h >= target:
                return 10.0 ** ((b + 1 - (target - acc) / h) / 10)
            acc += h
        return 1.0

    for q in (0.5, 0.9, 0.99, 0.999, 0.9999):
        assert size_quantile(sizes.as_tuple(), 1, q) == full_scan(q)
    assert size_quantile(sizes.as_tuple(), 0, 0.99) == 0.0


def test_risk_scans_assets_only_when_an_evaluation_is_due():
    with compute_harness() as (actor, _, ids):
        actor.process(mixed_stream(ids, 50))
        risk = next(d for d in actor.detectors if d.name == "risk")
        r = actor.runner
        calls = []
        real = risk.evaluate
        risk.evaluate = lambda a: calls.append(a) or real(a)
        every = int(risk.cfg.interval_s * 1e9)
        now = int(r.clock[0])
        risk.run(empty_records(0))
        assert calls == []                                  # every owned asset was evaluated at `now` already
        r.clock[0] = now + every - 1
        risk.run(empty_records(0))
        assert calls == []
        r.clock[0] = now + every
        risk.run(empty_records(0))
        assert sorted(calls) == np.flatnonzero(r.owned).tolist() and len(calls) == 3


def test_records_still_queued_at_shutdown_are_run():
    with compute_harness() as (actor, _, ids):
        capture(actor)
        recs = mixed_stream(ids, 50, gap_ms=0.01)          # 0.5 ms of stream: well inside the cadence
        actor.process_critical(recs)
        actor.queue_detectors(recs)
        assert len(actor.detector_queue) == 50 and actor.stats["detector_runs"] == 0
    assert actor.stats["detector_runs"] == 1 and len(actor.detector_queue) == 0
