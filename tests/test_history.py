"""History segments (engine/history.py) and the recorder actor (actors/recorder.py), in-process."""
from __future__ import annotations

import tempfile

import numpy as np
import pytest

from engine.history import (History, HistoryWriter, InstrumentInfo, day_of, liquidation_totals,
                            open_interest_series, parse_span)
from engine.record import RECORD_DTYPE, Kind, Side, Venue
from tests.conftest import wait_until

pytestmark = pytest.mark.unit

DAY = 86_400 * 10**9
T0 = 1_771_000_000 * 10**9 - (1_771_000_000 * 10**9) % DAY + 3_600 * 10**9   # 01:00 UTC of some day


def make_records(n: int, t0: int = T0, step: int = 10**9, kind: int = Kind.TRADE, instrument: int = 0) -> np.ndarray:
    r = np.zeros(n, dtype=RECORD_DTYPE)
    r["kind"] = kind
    r["venue"] = Venue.BINANCE
    r["instrument"] = instrument
    r["ts_recv"] = t0 + np.arange(n, dtype=np.int64) * step
    r["ts_exchange"] = r["ts_recv"] - 1000
    r["price"] = 100.0 + np.arange(n)
    r["qty"] = 1.0
    r["notional"] = r["price"]
    return r


@pytest.fixture
def root():
    return tempfile.mkdtemp(prefix="ut-hist-")


def test_records_round_trip_in_time_order_and_range(root):
    w = HistoryWriter(root, chunk_records=100)
    a = make_records(250)
    b = make_records(50, t0=T0 + 500_000_000, kind=Kind.MARK)
    w.add_records("binance", a)
    w.add_records("bybit", b)
    w.flush()
    h = History(root)
    out = h.records()
    assert len(out) == 300
    assert np.all(np.diff(out["ts_recv"]) >= 0)
    assert h.venues() == ["binance", "bybit"]
    # a range read: only chunks that overlap are decompressed, rows are filtered exactly
    t0, t1 = T0 + 120 * 10**9, T0 + 130 * 10**9
    part = h.records(t0, t1, venues=["binance"])
    assert part["ts_recv"].tolist() == a["ts_recv"][120:131].tolist()
    assert h.count_records(t0, t1, venues=["binance"]) >= 11
    assert len(h.records(kinds=(Kind.MARK,))) == 50


def test_batches_split_at_utc_midnight(root):
    w = HistoryWriter(root)
    recs = make_records(10, t0=T0 - 3_600 * 10**9 - 5 * 10**9)   # 5 s before midnight .. 5 s after
    w.add_records("binance", recs)
    w.flush()
    h = History(root)
    assert h.days() == [day_of(int(recs["ts_recv"][0])), day_of(int(recs["ts_recv"][-1]))]
    assert len(h.records()) == 10


def test_signals_round_trip_with_topic_filter(root):
    w = HistoryWriter(root)
    for i in range(5):
        w.add_signal(T0 + i, "cascade.BTC" if i % 2 else "liquidation.ETH", bytes([i]))
    w.flush()
    h = History(root)
    assert [p for _, _, p in h.signals()] == [bytes([i]) for i in range(5)]
    assert [t for _, t, _ in h.signals(topic_prefix="cascade.")] == ["cascade.BTC", "cascade.BTC"]


def test_missing_index_is_rebuilt_and_corrupt_chunk_is_counted(root):
    w = HistoryWriter(root, chunk_records=10)
    recs = make_records(30)
    for k in range(3):                                   # three chunks of 10
        w.add_records("binance", recs[10 * k:10 * k + 10])
    seg = next(iter(History(root).root.glob("*/records-binance.seg")))
    seg.with_suffix(".idx").unlink()
    assert len(History(root).records()) == 30          # scanned from the chunk headers
    data = bytearray(seg.read_bytes())
    data[60] ^= 0xFF                                     # inside the first chunk's payload
    seg.write_bytes(bytes(data))
    h = History(root)
    assert len(h.records()) == 20
    assert h.bad_chunks == 1


def test_prune_removes_whole_old_days(root):
    w = HistoryWriter(root)
    w.add_records("binance", make_records(3, t0=T0 - 10 * DAY))
    w.add_records("binance", make_records(3, t0=T0))
    w.flush()
    removed = w.prune(retention_days=2, now_ns=T0 + DAY // 2)
    assert removed == [day_of(T0 - 10 * DAY)]
    assert History(root).days() == [day_of(T0)]


def test_queries_liquidations_and_open_interest(root):
    w = HistoryWriter(root)
    w.set_instruments([InstrumentInfo(0, Venue.BINANCE, "BTCUSDT", "BTC"), InstrumentInfo(1, Venue.BINANCE, "ETHUSDT", "ETH")])
    liq = make_records(4, kind=Kind.LIQUIDATION)
    liq["side"] = [Side.LONG, Side.LONG, Side.SHORT, Side.LONG]
    eth = make_records(2, kind=Kind.LIQUIDATION, instrument=1)
    oi = make_records(3, kind=Kind.OPEN_INTEREST)
    w.add_records("binance", np.concatenate([liq, eth, oi]))
    w.flush()
    h = History(root)
    tot = liquidation_totals(h, "btcusdt", T0 - parse_span("24h"))
    assert tot == {"binance": {"long_usd": 100.0 + 101 + 103, "long_n": 3, "short_usd": 102.0, "short_n": 1}}
    assert liquidation_totals(h, "BTC", T0 + 2 * 10**9) == {"binance": {"long_usd": 103.0, "long_n": 1,
                                                                       "short_usd": 102.0, "short_n": 1}}
    series = open_interest_series(h, "BTC", T0 - parse_span("7d"))
    assert series["binance"][:, 2].tolist() == [100.0, 101.0, 102.0]


def test_parse_span_rejects_garbage():
    assert parse_span("24h") == 24 * 3600 * 10**9
    with pytest.raises(ValueError, match="not a time span"):
        parse_span("yesterday")


def test_recorder_stores_ring_records_signals_and_instruments(namespace, root):
    import msgspec
    from actors.recorder import RecorderActor
    from engine.bus import Publisher
    from engine.config import Config, RecorderConfig, VenuesConfig
    from engine.instruments import Registry, registry_segment
    from engine.ring import Ring, ring_segment
    from engine.signals import Liquidation

    run = tempfile.mkdtemp(prefix="ut-run-")
    off = {v: msgspec.structs.replace(getattr(Config().venues, v), enabled=False)
           for v in VenuesConfig.__struct_fields__ if v != "binance"}
    cfg = Config()
    cfg = msgspec.structs.replace(
        cfg, engine=msgspec.structs.replace(cfg.engine, namespace=namespace, ring_capacity=1024, max_instruments=16,
                                            max_assets=8),
        bus=msgspec.structs.replace(cfg.bus, endpoint=f"ipc://{run}/bus.sock"),
        venues=msgspec.structs.replace(cfg.venues, **off), recorder=RecorderConfig(enabled=True, root=root))
    reg = Registry.open(registry_segment(namespace), 16, 8)
    iid = reg.add(Venue.BINANCE, "BTCUSDT", "BTC")
    ring = Ring.open(ring_segment(namespace, "binance"), 1024)
    ring.become_producer()
    pub = Publisher(cfg.bus.endpoint, "test")
    rec = RecorderActor(cfg)
    rec.setup()
    try:
        ring.write_batch(make_records(40, instrument=iid))
        sig = Liquidation(asset="BTC", side="long", price=1.0, qty=1.0, notional_usd=1.0)
        wait_until(lambda: (pub.publish(sig), rec.poll_once(), rec.stats["signals"])[2] > 0, timeout=5,
                   message="a signal reaches the recorder")
        assert rec.stats["records"] == 40 and rec.stats["lost"] == 0
        rec.flush()
    finally:
        rec.teardown()
        pub.close()
        ring.close()
        reg.close()
    h = History(root)
    assert len(h.records()) == 40
    assert h.instruments()[iid] == InstrumentInfo(iid, Venue.BINANCE, "BTCUSDT", "BTC")
    assert h.signals(topic_prefix="liquidation.BTC")
