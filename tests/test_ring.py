"""The shared-memory ring: cursor arithmetic, lapping, torn-read safety, cross-process use."""
from __future__ import annotations

import multiprocessing as mp
import time

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from engine import shm
from engine.idle import Doorbell, Park
from engine.record import RECORD_DTYPE, Kind
from engine.ring import MAX_READERS, Ring, RingError, RingReader, ring_segment

pytestmark = pytest.mark.unit


def rec(i: int) -> tuple:
    return (Kind.TRADE, 1, 1, 0, i % 1000, i, i, float(i), 1.0, float(i), float(i), 0.0)


@pytest.fixture
def ring(namespace):
    r = Ring.create(ring_segment(namespace, "t"), 64)
    r.become_producer()
    yield r
    r.close()


def test_write_then_read_preserves_fields(ring):
    reader = RingReader(ring, "r")
    ring.write(*rec(5))
    out, lost = reader.poll()
    assert lost == 0 and len(out) == 1
    assert out[0]["kind"] == Kind.TRADE and out[0]["ts_exchange"] == 5 and out[0]["price"] == 5.0
    assert out.dtype == RECORD_DTYPE


def test_capacity_must_be_power_of_two(namespace):
    with pytest.raises(ValueError):
        Ring.create(ring_segment(namespace, "bad"), 100)


def test_attach_missing_ring_is_a_clear_error(namespace):
    with pytest.raises(RingError, match="does not exist"):
        Ring.attach(ring_segment(namespace, "nope"))


def test_lapped_reader_learns_exactly_how_many_it_lost(ring):
    reader = RingReader(ring, "r")
    for i in range(200):
        ring.write_tuple(rec(i))
    out, lost = reader.poll()
    assert lost == 200 - ring.capacity
    assert len(out) == ring.capacity
    assert list(out["ts_exchange"]) == list(range(200 - ring.capacity, 200))
    assert reader.read + reader.lost == ring.write_cursor


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 300), st.integers(1, 200)), min_size=1, max_size=30),
       st.sampled_from(["write", "many", "batch"]))
def test_cursor_arithmetic_written_equals_read_plus_lost(steps, mode):
    """For any interleaving of writes and bounded polls, every record is either read once, in order, or counted lost."""
    ns = "h" + str(time.monotonic_ns())
    ring = Ring.create(ring_segment(ns, "p"), 64)
    try:
        ring.become_producer()
        reader = RingReader(ring, "r")
        seen = []
        n = 0
        for writes, poll_max in steps:
            batch = [rec(n + k) for k in range(writes)]
            if mode == "write":
                for t in batch:
                    ring.write_tuple(t)
            elif mode == "many":
                ring.write_many(batch)
            else:
                arr = np.array(batch, dtype=RECORD_DTYPE) if batch else np.zeros(0, RECORD_DTYPE)
                ring.write_batch(arr)
            n += writes
            out, _ = reader.poll(poll_max)
            seen.extend(int(x) for x in out["ts_exchange"])
        while reader.available():
            out, _ = reader.poll()
            seen.extend(int(x) for x in out["ts_exchange"])
        assert ring.write_cursor == n
        assert reader.read + reader.lost == n
        assert seen == sorted(set(seen)), "records out of order or duplicated"
        assert len(seen) == reader.read
        assert all(0 <= s < n for s in seen)
    finally:
        ring.close()
        shm.sweep(ns)


def test_reader_that_reattaches_by_name_resumes(ring):
    r1 = RingReader(ring, "compute-0")
    for i in range(10):
        ring.write_tuple(rec(i))
    r1.poll(4)
    r2 = RingReader(ring, "compute-0")  # a restarted consumer
    out, lost = r2.poll()
    assert lost == 0 and list(out["ts_exchange"]) == list(range(4, 10))


def test_start_positions(ring):
    for i in range(10):
        ring.write_tuple(rec(i))
    assert RingReader(ring, "a", start="latest").available() == 0
    assert RingReader(ring, "b", start="earliest").available() == 10


def test_reader_slots_are_bounded(ring):
    readers = [RingReader(ring, f"r{i}") for i in range(MAX_READERS)]
    with pytest.raises(RingError, match="reader slots"):
        RingReader(ring, "one-too-many")
    readers[0].release()
    RingReader(ring, "fits-now")


def test_new_producer_bumps_generation_and_keeps_cursor(namespace):
    name = ring_segment(namespace, "g")
    a = Ring.create(name, 64)
    g1 = a.become_producer()
    a.write_tuple(rec(1))
    reader = RingReader(Ring.attach(name), "r")
    b = Ring.attach(name)  # a restarted producer
    g2 = b.become_producer()
    b.write_tuple(rec(2))
    out, lost = reader.poll()
    assert g2 == g1 + 1 and reader.producer_restarts == 1
    assert lost == 0 and [int(x) for x in out["ts_exchange"]] == [2]
    a.close(); b.close(); reader.ring.close()


def test_parked_reader_is_woken_by_the_producer(ring):
    bell = Doorbell()
    reader = RingReader(ring, "parked", doorbell_token=bell.token)
    idle = Park([reader], bell, timeout_s=2.0)

    import threading
    t0 = time.monotonic()
    threading.Timer(0.05, lambda: ring.write_tuple(rec(1))).start()
    idle.idle(0)
    waited = time.monotonic() - t0
    bell.close()
    assert reader.available() == 1
    assert waited < 1.0, "woken by the doorbell, not by the 2 s timeout"


def _producer(name: str, n: int, start_evt) -> None:
    ring = Ring.attach(name)
    ring.become_producer()
    start_evt.wait(10)
    for i in range(n):
        ring.write_tuple(rec(i))
        if i % 5000 == 0:
            time.sleep(0.001)  # let the slow reader fall behind sometimes, not always
    ring.close()


def _consumer(name: str, reader_name: str, n: int, delay: float, q, ready) -> None:
    ring = Ring.attach(name)
    reader = RingReader(ring, reader_name, start="earliest")
    ready.set()
    last = -1
    ordered = True
    deadline = time.monotonic() + 30
    while reader.read + reader.lost < n and time.monotonic() < deadline:
        out, _ = reader.poll(512)
        if len(out):
            ts = out["ts_exchange"]
            ordered &= bool(ts[0] > last) and bool(np.all(np.diff(ts) == 1) or np.all(np.diff(ts) > 0))
            # a record's fields must be mutually consistent: never torn
            ordered &= bool(np.all(out["price"] == ts.astype(np.float64)))
            ordered &= bool(np.all(out["aux"] == ts.astype(np.float64)))
            last = int(ts[-1])
        if delay:
            time.sleep(delay)
    q.put((reader_name, reader.read, reader.lost, ordered))
    ring.close()


@pytest.mark.process
def test_cross_process_producer_and_two_consumers(namespace):
    name = ring_segment(namespace, "x")
    Ring.create(name, 1024).close()
    ctx = mp.get_context("spawn")
    n = 200_000
    q = ctx.Queue()
    go = ctx.Event()
    ready = [ctx.Event(), ctx.Event()]
    consumers = [ctx.Process(target=_consumer, args=(name, "fast", n, 0.0, q, ready[0])),
                 ctx.Process(target=_consumer, args=(name, "slow", n, 0.002, q, ready[1]))]
    for c in consumers:
        c.start()
    for evt in ready:  # both consumers hold a cursor before the first write
        assert evt.wait(30)
    prod = ctx.Process(target=_producer, args=(name, n, go))
    prod.start()
    go.set()
    results = {}
    for _ in consumers:
        nm, read, lost, ordered = q.get(timeout=60)
        results[nm] = (read, lost, ordered)
    prod.join(30)
    for c in consumers:
        c.join(10)
    for nm, (read, lost, ordered) in results.items():
        assert read + lost == n, (nm, read, lost)
        assert ordered, f"{nm} saw out-of-order or torn records"
    assert results["slow"][1] > 0, "the slow consumer should have been lapped"
