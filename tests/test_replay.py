"""Replay (engine/replay.py): a recorded live run, replayed through the same pipeline, gives the same signals."""
from __future__ import annotations

import math
import tempfile
import threading
import time

import msgspec
import numpy as np
import pytest

from engine.bus import Subscriber
from engine.config import Config, DetectorsConfig, RecorderConfig, VenuesConfig
from engine.history import History
from engine.record import RECORD_DTYPE, Kind, Side, Venue
from engine.replay import Progress, replay_config, run_replay
from tests.conftest import wait_until

pytestmark = pytest.mark.process

T0 = 1_771_000_000 * 10**9
KEEP = {"liquidations", "velocity", "volatility", "cascade", "zones"}


def make_config(namespace: str, run: str, root: str) -> Config:
    cfg = Config()
    det = cfg.detectors
    # plug-in detectors outside this test's subject are switched off, so the comparison is about the pipeline
    off = {n: msgspec.structs.replace(getattr(det, n), enabled=False) for n in DetectorsConfig.__struct_fields__
           if n not in KEEP and hasattr(getattr(det, n), "enabled")}
    det = msgspec.structs.replace(det, **off, cascade=msgspec.structs.replace(det.cascade, publish_interval_s=1000.0),
                                  zones=msgspec.structs.replace(det.zones, min_zone_usd=1_000.0))
    venues = {v: msgspec.structs.replace(getattr(cfg.venues, v), enabled=v == "binance")
              for v in VenuesConfig.__struct_fields__}
    return msgspec.structs.replace(
        cfg, detectors=det, venues=msgspec.structs.replace(cfg.venues, **venues),
        engine=msgspec.structs.replace(cfg.engine, namespace=namespace, run_dir=run, ring_capacity=4096,
                                       max_instruments=64, max_assets=16, park_timeout_ms=2.0),
        supervisor=msgspec.structs.replace(cfg.supervisor, health_port=0),
        bus=msgspec.structs.replace(cfg.bus, endpoint=f"ipc://{run}/bus.sock", heartbeat_interval_s=0.2),
        alerts=msgspec.structs.replace(cfg.alerts, enabled=False),
        recorder=RecorderConfig(enabled=True, root=root, flush_interval_s=0.2))


def market(ids: dict[str, int], seconds: int = 400, seed: int = 5) -> np.ndarray:
    """Trades, marks, rising OI, book depth and a liquidation burst with a price drop, for BTC and ETH."""
    rng = np.random.default_rng(seed)
    rows = []
    for asset, p0 in (("BTC", 60_000.0), ("ETH", 3_000.0)):
        iid, p, oi = ids[asset], p0, 1000.0
        for s in range(seconds):
            t = T0 + s * 10**9
            crash = 300 <= s < 330
            p *= math.exp(rng.normal(-0.004 if crash else 0.0, 0.0008))
            for k in range(4):
                side = Side.SELL if (crash or rng.random() < 0.5) else Side.BUY
                q = float(rng.uniform(0.1, 2.0))
                rows.append((Kind.TRADE, Venue.BINANCE, side, 0, iid, t + k * 2 * 10**8, t + k * 2 * 10**8 + 10**6,
                             p, q, p * q, 0.0, 0.0))
            rows.append((Kind.MARK, Venue.BINANCE, 0, 0, iid, t + 9 * 10**8, t + 9 * 10**8 + 10**6, p, p, 0.0,
                         0.0001, 0.0))
            if s % 10 == 9:
                oi += float(rng.uniform(5, 30)) if not crash else -20.0
                rows.append((Kind.OPEN_INTEREST, Venue.BINANCE, 0, 0, iid, t + 95 * 10**7, t + 95 * 10**7 + 10**6,
                             p, oi, oi * p, 0.0, 0.0))
                for band, usd in ((0.005, 2e5), (0.01, 5e5), (0.02, 1e6)):
                    rows.append((Kind.BOOK_DEPTH, Venue.BINANCE, 0, 0, iid, t + 96 * 10**7, t + 96 * 10**7 + 10**6,
                                 p, band, 2 * usd, usd, usd))
            if crash:
                for k in range(2):
                    q = float(rng.uniform(1, 20))
                    rows.append((Kind.LIQUIDATION, Venue.BINANCE, Side.LONG, 0, iid, t + k * 10**8 + 5 * 10**7,
                                 t + k * 10**8 + 6 * 10**7, p, q, p * q, p, 0.0))
    out = np.array(rows, dtype=RECORD_DTYPE)
    return out[np.argsort(out["ts_recv"], kind="stable")]


def comparable(payloads) -> list:
    out = []
    for topic, payload in payloads:
        if topic.startswith("heartbeat."):
            continue
        d = msgspec.msgpack.decode(payload)
        for k in ("ts_computed", "ts_published"):
            d.pop(k, None)
        out.append((topic, msgspec.json.encode(d, order="sorted")))
    return out


@pytest.mark.soak   # two supervised pipelines start one after the other: ~40 s on the shared 2-core box
def test_replay_of_a_recorded_run_gives_the_live_signals(namespace):
    from engine.supervisor import ActorSpec, Supervisor
    root = tempfile.mkdtemp(prefix="ut-hist-")
    run = tempfile.mkdtemp(prefix="ut-run-")
    cfg = make_config(namespace, run, root)
    # -- the live run: compute + recorder under the supervisor; the test is the feed -------------------
    sup = Supervisor(cfg, specs=[ActorSpec("compute:0", ["compute", "--worker", "0"]),
                                 ActorSpec("recorder", ["recorder"])], log_level="WARNING")
    sup.start()
    try:
        ids = {"BTC": sup.registry.add(Venue.BINANCE, "BTCUSDT", "BTC"),
               "ETH": sup.registry.add(Venue.BINANCE, "ETHUSDT", "ETH")}
        ring = sup.rings["binance"]
        ring.become_producer()
        wait_until(lambda: {r["name"] for r in ring.readers()} >= {"compute-0", "recorder"}, timeout=60,
                   message="compute and recorder attached")
        status = lambda name: next(a for a in sup.actor_status() if a["name"] == name)   # noqa: E731
        wait_until(lambda: status("recorder")["counters"].get("signals", 0) > 0, timeout=60,
                   message="the recorder hears the compute heartbeats")
        recs = market(ids)
        for i in range(0, len(recs), 512):
            wait_until(lambda: all(r["lag"] < 2048 for r in ring.readers()), timeout=30, message="readers keep up")
            ring.write_batch(recs[i:i + 512])
        wait_until(lambda: all(r["lag"] == 0 for r in ring.readers()), timeout=30, message="rings drained")
        time.sleep(1.0)
    finally:
        sup.stop()
    hist = History(root)
    assert len(hist.records()) == len(recs)
    live = comparable((t, p) for _, t, p in hist.signals())
    kinds = {t.split(".")[0] for t, _ in live}
    assert {"liquidation", "cascade", "zone_approach"} <= kinds, kinds

    # -- the replay: the recording through a fresh pipeline, as fast as it goes ------------------------
    rcfg = make_config(namespace + "r", tempfile.mkdtemp(prefix="ut-run-"), root)
    got: list = []
    sub = Subscriber(rcfg.bus.endpoint)
    stop = threading.Event()

    def collect():
        while not stop.is_set():
            m = sub.sock.poll(50)
            if m:
                got.append(tuple(f.decode() if i == 0 else f for i, f in enumerate(sub.sock.recv_multipart())))

    th = threading.Thread(target=collect, daemon=True)
    th.start()
    try:
        stats = run_replay(rcfg, root, speed=0.0, progress=False, namespace_suffix="")
    finally:
        stop.set()
        th.join(2)
        sub.close()
    assert stats["written"] == len(recs) and stats["drained"]
    replayed = comparable(got)
    assert sorted(replayed) == sorted(live)
    assert len(replayed) > 50


def test_replay_config_enables_only_the_recorded_venues():
    cfg = replay_config(Config(), ["bybit"])
    assert [v for v in VenuesConfig.__struct_fields__ if getattr(cfg.venues, v).enabled] == ["bybit"]
    assert cfg.engine.namespace.endswith("-replay") and cfg.supervisor.health_port == 0


def test_progress_line_shows_rate_and_time_left():
    import io
    p = Progress(1000, stream=io.StringIO())
    p.start -= 2.0
    line = p.line(500)
    assert "50.0%" in line and "500/1,000" in line and "/s" in line and "left 00:00:0" in line
