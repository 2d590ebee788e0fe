"""Simulator fault API (engine/simulator/server.py): each action from Python and over HTTP."""
from __future__ import annotations

import json
import time
import urllib.error
import urllib.request

import pytest
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from engine.config import SimulatorConfig
from engine.simulator import start_in_thread
from engine.simulator.server import SimServer

pytestmark = pytest.mark.fault

DEPTH = "btcusdt@depth@100ms"


class _Venue:
    name = "v"


def _frames(n, stream="s"):
    return [(stream, f'{{"i":{i}}}'.encode()) for i in range(n)]


# -- unit: the frame fault pipeline -------------------------------------------------

def test_drop_duplicate_reorder_on_the_next_n_frames_of_a_stream():
    srv = SimServer([_Venue()])
    srv.inject("drop", 2, stream="s")
    got = srv._apply_frame_faults("v", _frames(4) + _frames(2, "other"))
    assert [f[1] for f in got] == [b'{"i":2}', b'{"i":3}', b'{"i":0}', b'{"i":1}']
    srv.inject("duplicate", 1, venue="v")
    got = srv._apply_frame_faults("v", _frames(2))
    assert [f[1] for f in got] == [b'{"i":0}', b'{"i":0}', b'{"i":1}']
    srv.inject("reorder", 2, stream="s")
    got = srv._apply_frame_faults("v", _frames(5))
    assert [f[1] for f in got] == [b'{"i":1}', b'{"i":0}', b'{"i":3}', b'{"i":2}', b'{"i":4}']
    c = srv.counters()
    assert (c["fault_dropped"], c["fault_duplicated"], c["fault_reordered"]) == (2, 1, 2)
    assert srv.frame_faults == []


def test_reorder_holds_a_frame_across_publish_batches():
    srv = SimServer([_Venue()])
    srv.inject("reorder", 1, stream="s")
    assert srv._apply_frame_faults("v", _frames(1)) == []
    assert [f[1] for f in srv._apply_frame_faults("v", [("s", b"B")])] == [b"B", b'{"i":0}']


def test_faults_of_another_venue_do_not_apply():
    srv = SimServer([_Venue()])
    srv.inject("drop", 1, venue="w")
    assert len(srv._apply_frame_faults("v", _frames(3))) == 3


@pytest.mark.parametrize("mode", ["truncate", "garble"])
def test_corruption_is_seeded(mode):
    raw = json.dumps({"e": "depthUpdate", "b": [["1.0", "2.0"]] * 20}).encode()
    outs = []
    for seed in (5, 5, 6):
        srv = SimServer([_Venue()], seed=seed)
        srv.inject("corrupt", 3, stream="s", mode=mode)
        outs.append([f[1] for f in srv._apply_frame_faults("v", [("s", raw)] * 3)])
    assert outs[0] == outs[1] != outs[2]
    for bad in outs[0]:
        assert bad != raw
        with pytest.raises(ValueError):
            json.loads(bad)
    if mode == "truncate":
        assert all(raw.startswith(b) and len(b) < len(raw) for b in outs[0])


def test_bad_fault_arguments_raise():
    srv = SimServer([_Venue()])
    with pytest.raises(ValueError):
        srv.inject("explode", 1)
    with pytest.raises(ValueError):
        srv.http_error(200, 1)


# -- over the wire ------------------------------------------------------------------

@pytest.fixture(scope="module")
def sim():
    handle = start_in_thread(SimulatorConfig(rate=500, seed=5, venues=["binance"], first_cascade_after_s=1000.0,
                                             ping_interval_s=60.0, pong_timeout_s=60.0))
    yield handle
    handle.stop()


def _get(url):
    try:
        with urllib.request.urlopen(url, timeout=5) as r:
            return r.status, dict(r.headers), json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), json.loads(e.read())


def _control(sim, action):
    status, _, body = _get(sim.endpoints()["rest_url"] + "/_sim/" + action)
    assert status == 200, body
    return body


def _depth_frames(ws, n):
    return [json.loads(ws.recv(timeout=5)) for _ in range(n)]


def _ws(sim, streams=DEPTH):
    return connect(f"{sim.endpoints()['ws_urls']['public']}/ws/{streams}")


def test_http_drop_breaks_the_pu_chain(sim):
    with _ws(sim) as ws:
        last = _depth_frames(ws, 2)[-1]
        before = sim.counters()["fault_dropped"]
        _control(sim, f"drop?n=3&stream={DEPTH}")
        frames = [last] + _depth_frames(ws, 6)
    breaks = sum(1 for a, b in zip(frames, frames[1:]) if b["pu"] != a["u"])
    assert breaks == 1
    assert sim.counters()["fault_dropped"] - before == 3


def test_http_duplicate_and_reorder(sim):
    with _ws(sim) as ws:
        _depth_frames(ws, 1)
        _control(sim, f"duplicate?n=1&stream={DEPTH}")
        frames = _depth_frames(ws, 4)
        us = [f["u"] for f in frames]
        assert any(a == b for a, b in zip(us, us[1:]))
        _control(sim, f"reorder?n=1&venue=binance&stream={DEPTH}")
        frames = _depth_frames(ws, 4)
        us = [f["u"] for f in frames]
        assert any(b < a for a, b in zip(us, us[1:]))


def test_http_corrupt(sim):
    with _ws(sim) as ws:
        ws.recv(timeout=5)
        _control(sim, f"corrupt?n=1&mode=garble&stream={DEPTH}")
        bad = 0
        for _ in range(4):
            try:
                json.loads(ws.recv(timeout=5))
            except ValueError:
                bad += 1
    assert bad == 1


def test_http_error_429_with_retry_after_then_5xx_then_normal(sim):
    rest = sim.endpoints()["rest_url"] + "/fapi/v1/depth?symbol=BTCUSDT&limit=5"
    _control(sim, "http_error?status=429&n=2&retry_after=7")
    _control(sim, "http_error?status=503&n=1")
    got = [_get(rest) for _ in range(4)]
    assert [g[0] for g in got] == [429, 429, 503, 200]
    assert got[0][1].get("Retry-After") == "7" and "Retry-After" not in got[2][1]
    assert "lastUpdateId" in got[3][2]
    c = sim.counters()
    assert c["fault_http_429"] == 2 and c["fault_http_503"] == 1


def test_http_bad_arguments_are_400(sim):
    status, _, _ = _get(sim.endpoints()["rest_url"] + "/_sim/drop?n=x")
    assert status == 400
    status, _, _ = _get(sim.endpoints()["rest_url"] + "/_sim/drop?venue=nope")
    assert status == 400


def test_refuse_new_connections_for_a_while(sim):
    with _ws(sim) as live:
        live.recv(timeout=5)
        _control(sim, "refuse?seconds=0.6")
        with pytest.raises(InvalidStatus) as info:
            _ws(sim).close()
        assert info.value.response.status_code == 503
        assert _get(sim.endpoints()["rest_url"] + "/fapi/v1/time")[0] == 503
        live.recv(timeout=5)            # connections already open keep streaming
    time.sleep(0.7)
    with _ws(sim) as ws:
        ws.recv(timeout=5)
    assert sim.counters()["fault_refused"] >= 2


def _silent(ws, seconds):
    """Drain what was in flight; return True when the socket then stays silent for ``seconds``."""
    deadline = time.monotonic() + 2.0
    while time.monotonic() < deadline:
        try:
            ws.recv(timeout=seconds)
        except TimeoutError:
            return True
    return False


def test_stall_with_heartbeats_keeps_answering_pings(sim):
    with _ws(sim) as ws:
        ws.recv(timeout=5)
        _control(sim, "stall?venue=binance&pings=1")
        try:
            assert _silent(ws, 0.4)
            assert ws.ping().wait(timeout=2)
        finally:
            _control(sim, "unstall?venue=binance")
        ws.recv(timeout=5)
    assert sim.counters()["fault_frames_stalled"] > 0


def test_stall_without_heartbeats_stops_answering_pings(sim):
    with _ws(sim) as ws:
        ws.recv(timeout=5)
        _control(sim, "stall?venue=binance&pings=0")
        try:
            assert _silent(ws, 0.4)
            assert not ws.ping().wait(timeout=0.5)
        finally:
            _control(sim, "unstall?venue=binance")
        assert ws.ping().wait(timeout=2)    # the queued ping is read and answered once reading resumes
        ws.recv(timeout=5)


def test_faults_listing(sim):
    _control(sim, "drop?n=1000&stream=nosuch@depth")
    listed = _control(sim, "faults")
    assert {"action": "drop", "n": 1000, "venue": None, "stream": "nosuch@depth", "mode": "truncate"} in listed["frames"]
    sim.call(lambda: sim.sim.server.frame_faults.clear())
