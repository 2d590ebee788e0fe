"""Signal encoding, topics, sequence numbers and gap counting on the ZeroMQ bus."""
from __future__ import annotations

import time

import msgspec
import pytest
import zmq
from hypothesis import given, strategies as st

from engine.bus import Publisher, Subscriber
from engine.signals import SCHEMA_VERSION, Cascade, Heartbeat, Liquidation, Volatility, decode, encode, topic_of

pytestmark = pytest.mark.unit


def liq(asset="BTC", n=1.0):
    return Liquidation(asset=asset, venue="binance", symbol=f"{asset}USDT", side="long", price=50_000.0, qty=n,
                       notional_usd=50_000.0 * n, ts_exchange=1, ts_recv=2, ts_computed=3)


def test_topics_are_kind_dot_asset():
    assert topic_of(liq()) == "liquidation.BTC"
    assert topic_of(Cascade(asset="ETH", level="WATCH", score=3.0)) == "cascade.ETH"
    assert topic_of(Volatility(asset="SOL", regime="high")) == "volatility.SOL"
    assert topic_of(Heartbeat(asset="compute:0")) == "heartbeat.compute:0"


@given(st.floats(allow_nan=False, allow_infinity=False), st.integers(0, 2**62), st.text(max_size=10))
def test_round_trip(score, ts, asset):
    s = Cascade(asset=asset or "X", level="WARNING", score=score, ts_exchange=ts, factors={"velocity": 1.0})
    back = decode(encode(s))
    assert back == s and type(back) is Cascade and back.v == SCHEMA_VERSION


def test_payload_carries_its_kind_tag():
    assert msgspec.msgpack.decode(encode(liq()))["kind"] == "liquidation"


def test_unknown_kind_is_rejected():
    bad = msgspec.msgpack.encode({"kind": "nope", "asset": "BTC"})
    with pytest.raises(msgspec.ValidationError):
        decode(bad)


@pytest.fixture
def endpoint(tmp_path):
    return f"ipc://{tmp_path}/bus.sock"


def _connected(pub, sub, probe_topic="heartbeat."):
    """PUB/SUB joins asynchronously: publish heartbeats until the subscriber sees one."""
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        pub.heartbeat()
        if sub.recv(timeout_ms=50) is not None:
            return
    raise AssertionError("subscriber never connected")


def test_publisher_stamps_seq_and_time_and_subscriber_filters(endpoint):
    ctx = zmq.Context()
    pub = Publisher(endpoint, "test", context=ctx)
    sub = Subscriber(endpoint, ["liquidation.BTC", "heartbeat."], context=ctx)
    _connected(pub, sub)
    pub.publish(liq("ETH"))  # filtered out
    t0 = time.time_ns()
    sent = pub.publish(liq("BTC"))
    got = sub.recv(timeout_ms=2000)
    assert got is not None and got.topic == "liquidation.BTC"
    assert got.signal.seq == sent.seq == 1
    assert got.signal.ts_published >= t0 and got.ts_received >= got.signal.ts_published
    assert (got.signal.ts_exchange, got.signal.ts_recv, got.signal.ts_computed) == (1, 2, 3)
    sub.close(); pub.close(); ctx.term()


def test_subscriber_counts_gaps_per_topic(endpoint):
    ctx = zmq.Context()
    pub = Publisher(endpoint, "test", context=ctx)
    sub = Subscriber(endpoint, ["liquidation."], context=ctx)
    deadline = time.monotonic() + 5
    while sub.recv(timeout_ms=20) is None:  # join
        pub.publish(liq("SYNC"))
        assert time.monotonic() < deadline
    pub.publish(liq("BTC"))
    pub._seq["liquidation.BTC"] += 3  # as if three BTC signals were dropped on the way
    pub.publish(liq("BTC"))
    pub.publish(liq("ETH"))  # another topic: its own sequence, no gap
    got = [sub.recv(timeout_ms=2000) for _ in range(3)]
    while (m := sub.recv(timeout_ms=50)) is not None:
        got.append(m)
    btc = [m for m in got if m.topic == "liquidation.BTC"]
    assert [m.signal.seq for m in btc] == [1, 5] and btc[1].gap == 3
    assert sub.gaps == 3
    sub.close(); pub.close(); ctx.term()


def test_malformed_messages_are_counted_not_raised(endpoint):
    ctx = zmq.Context()
    raw = ctx.socket(zmq.PUB)
    raw.bind(endpoint)
    sub = Subscriber(endpoint, [""], context=ctx)
    deadline = time.monotonic() + 5
    got = None
    while got is None and time.monotonic() < deadline:
        raw.send_multipart([b"junk.X", b"\xc1not msgpack"])
        raw.send_multipart([b"only-one-frame"])
        raw.send_multipart([b"liquidation.BTC", encode(liq())])
        got = sub.recv(timeout_ms=50)
    assert got is not None and got.topic == "liquidation.BTC"
    assert sub.malformed >= 2
    sub.close(); raw.close(0); ctx.term()
