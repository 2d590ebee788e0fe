"""Ring costs: one record from Python, a batch of 1,000, and a reader poll of 1,000."""
from __future__ import annotations

import uuid

import numpy as np
import pytest

from engine import shm
from engine.record import RECORD_DTYPE, Kind
from engine.ring import Ring, RingReader, ring_segment

pytestmark = pytest.mark.bench

REC = (Kind.TRADE, 1, 1, 0, 7, 1_700_000_000_000_000_000, 1_700_000_000_000_000_001, 50_000.0, 0.01, 500.0, 1.0, 1.0)


@pytest.fixture
def ring():
    ns = "b" + uuid.uuid4().hex[:8]
    r = Ring.create(ring_segment(ns, "bench"), 1 << 16)
    r.become_producer()
    yield r
    r.close()
    shm.sweep(ns)


def test_write_one_tuple(benchmark, ring):
    benchmark(ring.write_tuple, REC)


def test_write_one_fields(benchmark, ring):
    benchmark(ring.write, *REC)


def test_write_many_1000_tuples(benchmark, ring):
    recs = [REC] * 1000
    benchmark(ring.write_many, recs)


def test_write_batch_1000_numpy(benchmark, ring):
    arr = np.array([REC] * 1000, dtype=RECORD_DTYPE)
    benchmark(ring.write_batch, arr)


def test_write_and_poll_1000(benchmark, ring):
    reader = RingReader(ring, "bench")
    arr = np.array([REC] * 1000, dtype=RECORD_DTYPE)

    def cycle():
        ring.write_batch(arr)
        out, lost = reader.poll(1000)
        assert len(out) == 1000 and lost == 0

    benchmark(cycle)
