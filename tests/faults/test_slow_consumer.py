"""Fault 7: a consumer paused for 10x (heavy: 100x) ring capacity.

What must hold: the feed's write latency does not change (the producer never
waits for readers, even a parked one whose doorbell queue is full); the
consumer reports exactly what it lost (``written == read + lost``) and reads
new records again at once; a ZeroMQ subscriber that stops reading detects
every missed signal by sequence number.
"""
from __future__ import annotations

import time

import pytest
import zmq

from engine.bus import Publisher, Subscriber
from engine.idle import Doorbell
from engine.record import Kind
from engine.ring import Ring, RingReader, ring_segment
from engine.signals import Heartbeat

from .harness import figure, percentile, replay_hint, rng

CAPACITY = 4096
BATCH = 32


def _records(r, n: int) -> list[tuple]:
    return [(Kind.TRADE, 1, r.choice((0, 1)), 0, r.randrange(8), i, i, 100.0 + r.random(), 1.0, 100.0, float(i), 0.0)
            for i in range(n)]


def _write_timed(ring: Ring, batch: list[tuple], n_batches: int, reader: RingReader | None) -> list[float]:
    """Write ``n_batches`` batches; the reader (if any) keeps up between batches. Return µs per batch."""
    out = []
    clock = time.perf_counter_ns
    for _ in range(n_batches):
        t = clock()
        ring.write_many(batch)
        out.append((clock() - t) / 1000.0)
        if reader is not None:
            reader.poll()
    return out


def run(namespace: str, multiple: int, parked: bool) -> dict:
    name = f"slow/{multiple}x/{'parked' if parked else 'polling'}"
    r = rng(name)
    ring = Ring.create(ring_segment(namespace, "slow"), CAPACITY)
    ring.become_producer()
    bell = Doorbell() if parked else None
    reader = RingReader(ring, "compute:0", doorbell_token=bell.token if bell else 0)
    batch = _records(r, BATCH)
    try:
        warm = _write_timed(ring, batch, 200, reader)
        live = _write_timed(ring, batch, 2000, reader)
        if parked:
            reader.set_parked(True)      # it went to sleep on its doorbell... and its process stopped
        paused_batches = multiple * CAPACITY // BATCH
        paused = _write_timed(ring, batch, paused_batches, None)
        written_while_paused = paused_batches * BATCH
        reader.set_parked(False)
        got, lost = reader.poll()
        caught_up = len(got)
        while reader.available():
            more, l2 = reader.poll()
            caught_up += len(more)
            lost += l2
        after = _write_timed(ring, batch, 100, None)
        fresh, fresh_lost = reader.poll()
        written = ring.write_cursor
        return {"name": name, "warm": warm, "live": live, "paused": paused, "after": after, "written": written,
                "read": reader.read, "lost": reader.lost, "lost_at_resume": lost, "caught_up": caught_up,
                "written_while_paused": written_while_paused, "fresh": len(fresh), "fresh_lost": fresh_lost}
    finally:
        reader.release()
        if bell is not None:
            bell.close()
        ring.close()


def _check(namespace: str, multiple: int, parked: bool) -> None:
    res = run(namespace, multiple, parked)
    hint = replay_hint(res["name"])
    assert res["written"] == res["read"] + res["lost"], hint
    # everything but the last capacity's worth of the pause is lost, and nothing else
    assert res["lost_at_resume"] == res["written_while_paused"] - CAPACITY, hint
    assert res["caught_up"] == CAPACITY, hint
    assert res["fresh"] == 100 * BATCH and res["fresh_lost"] == 0, hint     # recovered
    live50, paused50 = percentile(res["live"], 50), percentile(res["paused"], 50)
    live99, paused99 = percentile(res["live"], 99), percentile(res["paused"], 99)
    figure("slow_consumer_write_latency", res["name"], multiple=multiple, parked=parked, batch=BATCH,
           live_p50_us=round(live50, 2), live_p99_us=round(live99, 2), paused_p50_us=round(paused50, 2),
           paused_p99_us=round(paused99, 2), lost=res["lost"], read=res["read"], written=res["written"])
    # the producer does not wait for readers: the same cost per batch (generous bound: a shared 2-core host)
    assert paused50 <= 2.0 * live50 + 5.0, (live50, paused50, hint)


@pytest.mark.fault
@pytest.mark.parametrize("parked", [False, True], ids=["polling", "parked"])
def test_paused_consumer_10x_capacity(namespace, parked):
    _check(namespace, 10, parked)


@pytest.mark.fault_heavy
@pytest.mark.parametrize("parked", [False, True], ids=["polling", "parked"])
def test_paused_consumer_100x_capacity(namespace, parked):
    _check(namespace, 100, parked)


@pytest.mark.fault
def test_zmq_subscriber_that_stops_reading_counts_every_missed_signal(tmp_path):
    r = rng("slow/zmq")
    ctx = zmq.Context()
    ep = f"ipc://{tmp_path}/bus.sock"
    pub = Publisher(ep, "slow", context=ctx, sndhwm=64)
    sub = Subscriber(ep, context=ctx, rcvhwm=64)
    try:
        for _ in range(200):   # until the subscription has propagated
            pub.heartbeat()
            if sub.recv(timeout_ms=10) is not None:
                break
        while sub.recv(timeout_ms=50) is not None:
            pass
        first_seq = pub._seq["heartbeat.slow"] + 1
        n = r.randint(5_000, 8_000)       # far beyond both high-water marks while the subscriber sleeps
        for _ in range(n):
            pub.heartbeat()
        received, gaps_before = 0, sub.gaps
        while sub.recv(timeout_ms=200) is not None:   # it wakes and drains what the queues kept
            received += 1
        pub.heartbeat()                   # then one more, so a loss at the tail shows as a gap too
        last_seq = pub._seq["heartbeat.slow"]
        got = sub.recv(timeout_ms=2000)
        assert got is not None and got.signal.seq == last_seq
        received += 1
        missed = sub.gaps - gaps_before
        sent = last_seq - first_seq + 1
        figure("zmq_slow_subscriber", "slow/zmq", sent=sent, received=received, gaps_counted=missed)
        assert missed > 0, "the high-water marks never overflowed: the test proved nothing"
        assert received + missed == sent, replay_hint("slow/zmq")
    finally:
        sub.close()
        pub.close()
        ctx.term()
