"""Simulator: synthetic market model, Binance throttle, and the served wire protocol."""
from __future__ import annotations

import asyncio
import base64
import json
import os
import socket
import time
import urllib.error
import urllib.request

import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from engine.config import SimulatorConfig
from engine.simulator import start_in_thread
from engine.simulator.binance import BinanceVenue, ForceOrderThrottle, stream_category
from engine.simulator.market import SPECS, Liquidation, SyntheticMarket, Trade
from tests.conftest import wait_until

THRESHOLDS = {s: spec.liq_threshold_usd for s, spec in SPECS.items()}


# ------------------------------------------------------------------ market model (simulated time)

@pytest.mark.unit
def test_market_is_deterministic_for_a_seed():
    a = SyntheticMarket(seed=11, rate=2000).run(5.0)
    b = SyntheticMarket(seed=11, rate=2000).run(5.0)
    c = SyntheticMarket(seed=12, rate=2000).run(5.0)
    assert a == b
    assert a != c
    assert sum(isinstance(e, Trade) for e in a) > 1000


def _throttled(events):
    throttle = ForceOrderThrottle()
    out = []
    for e in events:
        if isinstance(e, Liquidation):
            throttle.offer(e)
        out.extend((e.t, l) for l in throttle.due(e.t))
    return out, throttle


@pytest.mark.unit
@pytest.mark.parametrize("seed", [1, 7, 42])
def test_cascade_visible_through_throttle_within_deadline(seed):
    first = 20.0
    market = SyntheticMarket(seed=seed, rate=300, first_cascade_after_s=first, cascade_every_s=45)
    sent, _ = _throttled(market.run(first + 15.0))
    big = [(t, l) for t, l in sent if l.qty * l.avg_price >= THRESHOLDS[l.symbol]]
    found = False
    for sym in SPECS:
        times = [t for t, l in big if l.symbol == sym]
        found |= any(times[i + 4] - times[i] <= 30.0 for i in range(len(times) - 4))
    assert found, "no symbol had >= 5 threshold-sized liquidations within 30 s"
    assert market.cascades_started >= 1


@pytest.mark.unit
def test_throttle_sends_at_most_one_force_order_per_symbol_per_second():
    market = SyntheticMarket(seed=3, rate=300, first_cascade_after_s=1.0)
    market.trigger_cascade("BTCUSDT", all_symbols=True, duration_s=30.0)
    events = market.run(30.0)
    sent, throttle = _throttled(events)
    assert throttle.suppressed > 0
    for sym in SPECS:
        times = [t for t, l in sent if l.symbol == sym]
        assert all(b - a >= 1.0 - 1e-9 for a, b in zip(times, times[1:]))
    # each release is the latest liquidation of its window
    assert sum(isinstance(e, Liquidation) for e in events) == len(sent) + throttle.suppressed + len(throttle.pending)


@pytest.mark.unit
def test_liquidation_share_sets_fraction_of_frames():
    market = SyntheticMarket(seed=5, rate=5000, liquidation_share=0.2, cascade_every_s=0)
    events = [e for e in market.run(5.0) if isinstance(e, (Liquidation, Trade)) or type(e).__name__ == "BookTop"]
    share = sum(isinstance(e, Liquidation) for e in events) / len(events)
    assert 0.17 < share < 0.23


@pytest.mark.unit
def test_stream_categories_follow_the_2026_split():
    assert stream_category("btcusdt@bookTicker") == "public"
    assert stream_category("btcusdt@depth20@100ms") == "public"
    assert stream_category("btcusdt@depth@100ms") == "public"
    assert stream_category("btcusdt@aggTrade") == "market"
    assert stream_category("!forceOrder@arr") == "market"
    assert stream_category("!markPrice@arr@1s") == "market"
    assert stream_category("not a stream") is None


# ------------------------------------------------------------------ served protocol

@pytest.fixture
def sim():
    handle = start_in_thread(SimulatorConfig(rate=2000, seed=3, first_cascade_after_s=1.0, cascade_every_s=20.0,
                                             ping_interval_s=0.3, pong_timeout_s=0.5))
    yield handle
    handle.stop()


def _recv_json(ws, timeout=5.0):
    return json.loads(ws.recv(timeout=timeout))


def _first_of(ws, stream, timeout=5.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        msg = _recv_json(ws, timeout)
        if msg.get("stream") == stream:
            return msg["data"]
    pytest.fail(f"no frame of {stream}")


def _get(url):
    try:
        with urllib.request.urlopen(url, timeout=5) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def _is_num_str(v):
    return isinstance(v, str) and float(v) >= 0


@pytest.mark.process
def test_combined_market_streams_have_binance_fields_and_types(sim):
    url = sim.endpoints()["ws_urls"]["market"]
    streams = "btcusdt@aggTrade/btcusdt@trade/btcusdt@markPrice@1s/!markPrice@arr@1s"
    with connect(f"{url}/stream?streams={streams}") as ws:
        agg = _first_of(ws, "btcusdt@aggTrade")
        assert list(agg) == ["e", "E", "s", "a", "p", "q", "f", "l", "T", "m"]
        assert agg["e"] == "aggTrade" and agg["s"] == "BTCUSDT" and isinstance(agg["m"], bool)
        assert _is_num_str(agg["p"]) and _is_num_str(agg["q"]) and isinstance(agg["E"], int)
        assert abs(agg["E"] - time.time() * 1000) < 2000
        trade = _first_of(ws, "btcusdt@trade")
        assert set(trade) == {"e", "E", "T", "s", "t", "p", "q", "X", "m"} and trade["X"] == "MARKET"
        mark = _first_of(ws, "btcusdt@markPrice@1s")
        assert set(mark) == {"e", "E", "s", "p", "i", "P", "r", "T"} and mark["e"] == "markPriceUpdate"
        assert all(isinstance(mark[k], str) for k in "piPr") and mark["T"] % (8 * 3600 * 1000) == 0
        arr = _first_of(ws, "!markPrice@arr@1s")
        assert isinstance(arr, list) and {m["s"] for m in arr} == {"BTCUSDT", "ETHUSDT", "SOLUSDT"}


@pytest.mark.process
def test_raw_public_streams_and_depth_chain(sim):
    url = sim.endpoints()["ws_urls"]["public"]
    with connect(f"{url}/ws/btcusdt@depth@100ms/ethusdt@bookTicker") as ws:
        diffs, tops = [], []
        while len(diffs) < 3 or not tops:
            msg = _recv_json(ws)
            assert "stream" not in msg
            (diffs if msg["e"] == "depthUpdate" else tops).append(msg)
        assert set(tops[0]) == {"e", "u", "s", "b", "B", "a", "A", "T", "E"}
        assert float(tops[0]["b"]) < float(tops[0]["a"])
        assert set(diffs[0]) == {"e", "E", "T", "s", "U", "u", "pu", "b", "a"}
        for prev, cur in zip(diffs, diffs[1:]):
            assert cur["pu"] == prev["u"] and cur["U"] == prev["u"] + 1
        assert all(isinstance(level[0], str) and isinstance(level[1], str) for level in diffs[0]["b"])
    status, snap = _get(sim.endpoints()["rest_url"] + "/fapi/v1/depth?symbol=BTCUSDT&limit=5")
    assert status == 200 and len(snap["bids"]) == 5 and isinstance(snap["lastUpdateId"], int)


@pytest.mark.process
def test_subscribe_ack_list_unsubscribe_and_errors(sim):
    url = sim.endpoints()["ws_urls"]["market"]
    with connect(f"{url}/ws") as ws:
        ws.send(json.dumps({"method": "SUBSCRIBE", "params": ["btcusdt@aggTrade", "btcusdt@bookTicker"], "id": 1}))
        assert ws.recv(timeout=5) == '{"result":null,"id":1}'
        ws.send(json.dumps({"method": "LIST_SUBSCRIPTIONS", "id": 2}))
        msg = _recv_json(ws)
        while "id" not in msg:
            msg = _recv_json(ws)
        # the book stream belongs to /public: acked, never delivered, not listed
        assert msg == {"result": ["btcusdt@aggTrade"], "id": 2}
        ws.send(json.dumps({"method": "UNSUBSCRIBE", "params": ["btcusdt@aggTrade"], "id": "x"}))
        ws.send("not json")
        replies = []
        while len(replies) < 2:
            msg = _recv_json(ws)
            if "id" in msg:
                replies.append(msg)
        assert replies[0] == {"result": None, "id": "x"}
        assert replies[1]["error"]["code"] == 3
    assert sim.counters()["wrong_path_streams"] == 1


@pytest.mark.process
def test_wrong_path_stream_in_url_is_not_delivered(sim):
    url = sim.endpoints()["ws_urls"]["public"]
    with connect(f"{url}/stream?streams=btcusdt@aggTrade/btcusdt@bookTicker") as ws:
        for _ in range(50):
            assert _recv_json(ws)["stream"] == "btcusdt@bookTicker"


@pytest.mark.process
def test_rate_limit_disconnects_after_ten_messages_per_second(sim):
    url = sim.endpoints()["ws_urls"]["market"]
    with connect(f"{url}/ws") as ws:
        # the close may already hit one of the later sends on a busy machine
        with pytest.raises(ConnectionClosed) as info:
            for i in range(12):
                ws.send(json.dumps({"method": "LIST_SUBSCRIPTIONS", "id": i}))
            while True:
                ws.recv(timeout=5)
        assert info.value.rcvd.code == 1008
    assert sim.counters()["rate_limit_disconnects"] == 1


@pytest.mark.process
def test_rest_endpoints(sim):
    rest = sim.endpoints()["rest_url"]
    status, info = _get(rest + "/fapi/v1/exchangeInfo")
    assert status == 200
    btc = next(s for s in info["symbols"] if s["symbol"] == "BTCUSDT")
    assert (btc["baseAsset"], btc["quoteAsset"], btc["contractType"], btc["status"]) == ("BTC", "USDT", "PERPETUAL", "TRADING")
    filters = {f["filterType"]: f for f in btc["filters"]}
    assert filters["PRICE_FILTER"]["tickSize"] == "0.10" and filters["LOT_SIZE"]["stepSize"] == "0.001"
    status, oi = _get(rest + "/fapi/v1/openInterest?symbol=ETHUSDT")
    assert status == 200 and set(oi) == {"openInterest", "symbol", "time"} and _is_num_str(oi["openInterest"])
    assert isinstance(oi["time"], int)
    status, prem = _get(rest + "/fapi/v1/premiumIndex")
    assert status == 200 and len(prem) == 3 and _is_num_str(prem[0]["markPrice"])
    assert _get(rest + "/fapi/v1/openInterest?symbol=NOPEUSDT") == (400, {"code": -1121, "msg": "Invalid symbol."})
    status, body = _get(rest + "/fapi/v1/nothing")
    assert status == 404 and body["code"] == -5000


@pytest.mark.process
@pytest.mark.fault
@pytest.mark.parametrize("mode", ["clean", "reset"])
def test_forced_disconnect(sim, mode):
    url = sim.endpoints()["ws_urls"]["market"]
    with connect(f"{url}/ws/btcusdt@aggTrade") as ws:
        ws.recv(timeout=5)
        status, body = _get(sim.endpoints()["rest_url"] + f"/_sim/disconnect?venue=binance&mode={mode}")
        assert status == 200 and body == {"disconnected": 1}
        with pytest.raises(ConnectionClosed) as info:
            while True:
                ws.recv(timeout=5)
        if mode == "clean":
            assert info.value.rcvd.code == 1001
        else:
            assert info.value.rcvd is None
    assert sim.counters()["forced_disconnects"] == 1


@pytest.mark.process
@pytest.mark.fault
def test_pause_stalls_and_resume_restarts(sim):
    url = sim.endpoints()["ws_urls"]["market"]
    with connect(f"{url}/ws/btcusdt@aggTrade") as ws:
        ws.recv(timeout=5)
        sim.call(sim.sim.pause)
        while True:   # drain what was in flight, then silence
            try:
                ws.recv(timeout=0.3)
            except TimeoutError:
                break
        sim.call(sim.sim.resume)
        assert json.loads(ws.recv(timeout=5))["e"] == "aggTrade"


def _raw_ws_connect(port, path):
    """Open a WebSocket by hand so that pings are never answered."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=5)
    key = base64.b64encode(os.urandom(16)).decode()
    sock.sendall((f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                  f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n").encode())
    head = b""
    while b"\r\n\r\n" not in head:
        head += sock.recv(4096)
    assert head.startswith(b"HTTP/1.1 101")
    return sock, head.split(b"\r\n\r\n", 1)[1]


@pytest.mark.process
@pytest.mark.fault
def test_ping_is_sent_and_silent_client_is_dropped(sim):
    sock, data = _raw_ws_connect(sim.port, "/market/ws")
    opcodes = []
    try:
        while True:
            while len(data) < 2:
                chunk = sock.recv(4096)
                if not chunk:
                    raise EOFError
                data += chunk
            length = data[1] & 0x7F
            opcodes.append(data[0] & 0x0F)
            data = data[2 + length:]
    except (EOFError, ConnectionResetError):
        pass
    finally:
        sock.close()
    assert opcodes[0] == 0x9            # ping frame
    assert 0x8 in opcodes               # then a close (1011) when no pong came
    wait_until(lambda: sim.counters().get("pong_timeouts") == 1, 5, message="pong timeout counted")


@pytest.mark.process
def test_connection_closed_at_max_age():
    with start_in_thread(SimulatorConfig(rate=100, max_connection_age_s=0.3)) as handle:
        with connect(handle.endpoints()["ws_urls"]["market"] + "/ws") as ws:
            with pytest.raises(ConnectionClosed) as info:
                while True:
                    ws.recv(timeout=5)
            assert info.value.rcvd.code == 1000


@pytest.mark.process
def test_served_force_orders_are_throttled_per_symbol():
    with start_in_thread(SimulatorConfig(rate=500, first_cascade_after_s=0.2, cascade_every_s=100)) as handle:
        handle.call(handle.sim.trigger_cascade, "SOLUSDT", all_symbols=True, duration_s=20.0)
        seen: dict[str, list[int]] = {}
        with connect(handle.endpoints()["ws_urls"]["market"] + "/ws/!forceOrder@arr") as ws:
            deadline = time.monotonic() + 8
            while sum(map(len, seen.values())) < 8 and time.monotonic() < deadline:
                msg = _recv_json(ws)
                assert msg["e"] == "forceOrder" and msg["o"]["X"] == "FILLED"
                seen.setdefault(msg["o"]["s"], []).append(msg["E"])
        assert sum(map(len, seen.values())) >= 8
        for times in seen.values():
            assert all(b - a >= 950 for a, b in zip(times, times[1:]))   # ms, allowing loop jitter
        assert handle.counters()["force_orders_suppressed"] > 0


@pytest.mark.process
def test_throughput_at_rate_10000(capsys):
    """Print (not assert) the frames/s the server actually sent."""
    symbols = ["btcusdt", "ethusdt", "solusdt"]

    async def count(endpoints, seconds):
        from websockets.asyncio.client import connect as aconnect
        market = "/".join(f"{s}@aggTrade" for s in symbols)
        public = "/".join(f"{s}@bookTicker" for s in symbols)
        got = [0]

        async def reader(url):
            async with aconnect(url, max_queue=None) as ws:
                end = time.monotonic() + seconds
                while time.monotonic() < end:
                    await ws.recv()
                    got[0] += 1
        await asyncio.gather(reader(endpoints["ws_urls"]["market"] + "/stream?streams=" + market),
                             reader(endpoints["ws_urls"]["public"] + "/stream?streams=" + public))
        return got[0]

    with start_in_thread(SimulatorConfig(rate=10_000, cascade_every_s=0)) as handle:
        before = handle.counters()["frames_sent"]
        t0 = time.monotonic()
        received = asyncio.run(count(handle.endpoints(), 2.0))
        elapsed = time.monotonic() - t0
        sent = handle.counters()["frames_sent"] - before
    with capsys.disabled():
        print(f"\nsimulator throughput at rate=10000: sent {sent / elapsed:,.0f} frames/s, "
              f"received {received / elapsed:,.0f} frames/s over {elapsed:.1f} s")
    assert received > 0


@pytest.mark.process
def test_run_writes_ready_file_and_stops_on_sigterm(tmp_path):
    import signal
    import subprocess
    import sys
    ready = tmp_path / "ready.json"
    code = ("from engine.simulator import run; from engine.config import SimulatorConfig; "
            f"run(SimulatorConfig(rate=100), ready_file={str(ready)!r})")
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        line = json.loads(proc.stdout.readline())
        assert json.loads(ready.read_text()) == line
        status, info = _get(line["endpoints"]["binance"]["rest_url"] + "/fapi/v1/exchangeInfo")
        assert status == 200 and line["port"] > 0
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
    finally:
        proc.kill() if proc.poll() is None else None
        proc.stdout.close()
