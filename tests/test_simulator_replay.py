"""Simulator replay: recorded captures come out byte for byte, in order."""
from __future__ import annotations

import json
import time
import urllib.request

import pytest
from websockets.sync.client import connect

from engine.config import SimulatorConfig
from engine.simulator import start_in_thread
from engine.simulator.replay import iter_replay_frames


def _replay(paths, path_and_query, n_expected):
    cfg = SimulatorConfig(mode="replay", replay_files=[str(p) for p in paths], speed=0)
    with start_in_thread(cfg) as handle:
        got = []
        with connect(f"ws://127.0.0.1:{handle.port}{path_and_query}", max_size=None) as ws:
            while len(got) < n_expected:
                got.append(ws.recv(timeout=10, decode=False))
        return got, handle.counters()


@pytest.mark.playback
@pytest.mark.process
def test_replay_cryptofeed_capture_combined_is_byte_exact(shared_data):
    path = shared_data / "cryptofeed/sample_data/BINANCE_FUTURES.ws.1.0"
    frames = [f for f in iter_replay_frames([str(path)]) if "@aggTrade" in f[1] or "@kline_1m" in f[1]]
    assert len(frames) == 91 + 67
    streams = sorted({f[1] for f in frames})
    got, counters = _replay([path], "/market/stream?streams=" + "/".join(streams), len(frames))
    assert got == [f[3] for f in frames]


@pytest.mark.playback
@pytest.mark.process
def test_replay_hftbacktest_raw_mode_sends_data_bytes(shared_data):
    path = shared_data / "binance_usdm/collect-binancefutures/btcusdt_20220811.dat.gz"
    frames = [f for f in iter_replay_frames([str(path)]) if f[1] == "btcusdt@depth@0ms"]
    assert len(frames) == 206
    got, _ = _replay([path], "/public/ws/btcusdt@depth@0ms", len(frames))
    assert got == [f[2] for f in frames]
    assert json.loads(got[0])["e"] == "depthUpdate"


@pytest.mark.playback
@pytest.mark.process
def test_replay_at_speed_keeps_spacing_and_serves_rest_snapshot(shared_data):
    path = shared_data / "binance_usdm/collect-binancefutures/btcusdt_20220811.dat.gz"
    cfg = SimulatorConfig(mode="replay", replay_files=[str(path)], speed=20.0)
    with start_in_thread(cfg) as handle:
        t0 = time.monotonic()
        with connect(f"ws://127.0.0.1:{handle.port}/market/ws/btcusdt@trade") as ws:
            for _ in range(1326):
                ws.recv(timeout=10)
        elapsed = time.monotonic() - t0
        # the recorder spliced a REST depth snapshot into the capture; it is served as recorded
        with urllib.request.urlopen(handle.endpoints()["rest_url"] + "/fapi/v1/depth?symbol=BTCUSDT") as r:
            assert json.loads(r.read())["lastUpdateId"] > 0
    assert 0.2 < elapsed < 2.0   # ~7.2 s of capture at 20x
