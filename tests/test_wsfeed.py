"""The connection manager against a local websockets server."""
from __future__ import annotations

import asyncio
import json
import time
import types

import pytest
from websockets.asyncio.server import serve

from engine.record import Control, Flag, Kind, Side, Venue
from engine.venues import ConnectionPlan, binance
from engine.wsfeed import CONNECTION_WIDE, WsFeed, backoff_delay

pytestmark = pytest.mark.unit

STREAM = "btcusdt@aggTrade"
MARK = "btcusdt@markPrice@1s"


def agg_trade(tid: int, price: str = "28145.10", qty: str = "0.020", maker: bool = True) -> str:
    data = {"e": "aggTrade", "E": 1680652700455, "a": tid, "s": "BTCUSDT", "p": price, "q": qty,
            "f": tid * 10, "l": tid * 10 + 2, "T": 1680652700452, "m": maker}
    return json.dumps({"stream": STREAM, "data": data})


def mark_frame() -> str:
    data = {"e": "markPriceUpdate", "E": 1680652701000, "s": "BTCUSDT", "p": "28144.8", "i": "28158.6",
            "r": "0.0001", "T": 1680681600000}
    return json.dumps({"stream": MARK, "data": data})


async def wait_until(pred, timeout: float = 5.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.005)


class Harness:
    """A local server scripted per connection, and a WsFeed writing into a list."""

    def __init__(self, script, streams=(STREAM,), watched=(STREAM,), in_url=False, venue=binance, parser=None,
                 **feed_kw):
        self.script = script
        self.venue = venue
        self.parser = parser
        self.streams, self.watched, self.in_url = streams, watched, in_url
        self.feed_kw = {"reconnect_initial_s": 0.05, "reconnect_max_s": 0.2, "stale_after_s": 30.0, **feed_kw}
        self.records: list[tuple] = []
        self.connections = 0
        self.paths: list[str] = []
        self.connected_at: list[float] = []
        self.received: list[list] = []

    async def _handler(self, conn):
        n = self.connections
        self.connections += 1
        self.paths.append(conn.request.path)
        self.connected_at.append(time.monotonic())
        inbox: list = []
        self.received.append(inbox)
        await self.script(n, conn, inbox)

    async def __aenter__(self):
        self.server = await serve(self._handler, "127.0.0.1", 0)
        port = self.server.sockets[0].getsockname()[1]
        base = f"ws://127.0.0.1:{port}/market/stream"
        url = f"{base}?streams={'/'.join(self.streams)}" if self.in_url else base
        plan = ConnectionPlan("market/0", url, tuple(self.streams), tuple(self.watched), self.in_url)
        ids = {"BTCUSDT": 7}
        self.feed = WsFeed(self.venue, [plan], self.parser or binance.Parser(ids.get), self.records.extend,
                           **self.feed_kw)
        self.task = asyncio.create_task(self.feed.run())
        return self

    async def __aexit__(self, *exc):
        self.feed.stop()
        await asyncio.wait_for(self.task, 5)
        self.server.close()
        await self.server.wait_closed()

    def kind(self, k):
        return [r for r in self.records if r[0] == k]

    def controls(self, code):
        return [r for r in self.kind(Kind.CONTROL) if r[10] == code]


async def expect_subscribe(conn, inbox):
    msg = json.loads(await conn.recv())
    inbox.append(msg)
    assert msg["method"] == "SUBSCRIBE"
    await conn.send(json.dumps({"result": None, "id": msg["id"]}))
    return msg


async def hold_open(conn):
    try:
        await conn.wait_closed()
    except Exception:
        pass


@pytest.mark.timeout(20)
def test_subscribe_frames_malformed_and_ack():
    async def script(n, conn, inbox):
        await expect_subscribe(conn, inbox)
        await conn.send(agg_trade(100))
        await conn.send('{"stream":"btcusdt@aggTrade","data":{"e":"aggTrade","p":')  # truncated
        await conn.send(agg_trade(101, maker=False))
        await hold_open(conn)

    async def main():
        async with Harness(script) as h:
            await wait_until(lambda: len(h.kind(Kind.TRADE)) == 2, what="two trades")
            assert h.received[0][0]["params"] == [STREAM]
            t0, t1 = h.kind(Kind.TRADE)
            assert (t0[1], t0[2], t0[4], t0[5], t0[7], t0[8], t0[10], t0[11]) == (
                Venue.BINANCE, Side.SELL, 7, 1680652700452_000_000, 28145.10, 0.020, 100.0, 3.0)
            assert t1[2] == Side.BUY
            assert t0[6] > 0 and abs(t0[6] - time.time_ns()) < 5e9  # local receive stamp in ns
            s = h.feed.stats.as_dict()
            assert s["malformed"] == 1 and s["control"] == 1 and s["reconnects"] == 0 and h.connections == 1
    asyncio.run(main())


@pytest.mark.timeout(20)
def test_clean_and_abrupt_close_reconnect_once_each_and_resubscribe():
    async def script(n, conn, inbox):
        await expect_subscribe(conn, inbox)
        await conn.send(agg_trade(200 + n))
        if n == 0:
            await conn.close()                       # clean close
        elif n == 1:
            await asyncio.sleep(0.01)
            conn.transport.abort()                   # abrupt: TCP reset, no close frame
        else:
            await hold_open(conn)

    async def main():
        async with Harness(script) as h:
            await wait_until(lambda: len(h.kind(Kind.TRADE)) == 3, what="a trade on each of 3 connections")
            await asyncio.sleep(0.1)  # nothing more may arrive: no extra reconnects
            assert h.connections == 3
            assert len(h.controls(Control.RECONNECTED)) == 2
            assert all(r[4] == CONNECTION_WIDE for r in h.controls(Control.RECONNECTED))
            assert [m[0]["params"] for m in h.received] == [[STREAM]] * 3
            gaps = [b - a for a, b in zip(h.connected_at, h.connected_at[1:])]
            assert all(g >= 0.05 * 0.5 for g in gaps), gaps   # waited the jittered back-off
            assert h.feed.stats.reconnects == 2
    asyncio.run(main())


@pytest.mark.timeout(20)
def test_refused_connections_back_off_until_server_appears():
    delays = [backoff_delay(a, 0.5, 30.0, lambda: 1.0) for a in range(10)]
    assert delays[:4] == [0.5, 1.0, 2.0, 4.0] and max(delays) == 30.0
    assert backoff_delay(3, 0.5, 30.0, lambda: 0.0) == 2.0  # jitter keeps at least half


@pytest.mark.timeout(20)
def test_subscription_in_url_is_used_on_every_connection():
    async def script(n, conn, inbox):
        await conn.send(agg_trade(300 + n))
        if n == 0:
            await conn.close()
        else:
            await hold_open(conn)

    async def main():
        async with Harness(script, in_url=True) as h:
            await wait_until(lambda: len(h.kind(Kind.TRADE)) == 2, what="trades on two connections")
            assert h.paths == [f"/market/stream?streams={STREAM}"] * 2
            assert len(h.controls(Control.RECONNECTED)) == 1
    asyncio.run(main())


@pytest.mark.timeout(20)
def test_stale_stream_is_flagged_resubscribed_then_reconnected():
    async def script(n, conn, inbox):
        await expect_subscribe(conn, inbox)
        await conn.send(mark_frame())
        await conn.send(agg_trade(400 + n))
        await hold_open(conn)   # then silence on both streams

    async def main():
        async with Harness(script, streams=(STREAM, MARK), watched=(STREAM, MARK), stale_after_s=0.15) as h:
            await wait_until(lambda: h.connections >= 2, what="reconnect after all streams went stale")
            stale = h.controls(Control.STREAM_STALE)
            assert {r[4] for r in stale} == {7} and len(stale) >= 2
            assert h.feed.stats.stale >= 2
            await wait_until(lambda: len(h.controls(Control.RECONNECTED)) >= 1, what="RECONNECTED")
    asyncio.run(main())


async def silent_mark_script(n, conn, inbox):
    """The trade stream keeps ticking, the mark stream never does; what the client sends lands in ``inbox``."""
    await expect_subscribe(conn, inbox)
    tid = 500
    try:
        while True:
            await conn.send(agg_trade(tid))
            tid += 1
            try:
                inbox.append(json.loads(await asyncio.wait_for(conn.recv(), 0.02)))
            except asyncio.TimeoutError:
                pass
    except Exception:
        pass


@pytest.mark.timeout(20)
def test_one_silent_stream_is_resubscribed_without_reconnect():
    async def main():
        async with Harness(silent_mark_script, streams=(STREAM, MARK), watched=(STREAM, MARK), stale_after_s=0.15,
                           ) as h:
            await wait_until(lambda: h.received and len(h.received[0]) >= 2, what="resubscribe of the silent stream")
            assert h.received[0][1]["params"] == [MARK]
            assert [r[4] for r in h.controls(Control.STREAM_STALE)] == [7]
            assert h.connections == 1
    asyncio.run(main())


@pytest.mark.timeout(20)
def test_server_ping_is_answered():
    pongs = []

    async def script(n, conn, inbox):
        waiter = await conn.ping(b"hb")
        pongs.append(await asyncio.wait_for(waiter, 2.0))
        await hold_open(conn)

    async def main():
        async with Harness(script, in_url=True) as h:
            await wait_until(lambda: pongs, what="pong")
            assert h.connections == 1
    asyncio.run(main())


@pytest.mark.timeout(20)
def test_application_keepalive_is_sent_at_the_venue_interval():
    venue = types.ModuleType("pinging_binance")
    venue.__dict__.update({k: v for k, v in vars(binance).items() if not k.startswith("__")})
    venue.PING_INTERVAL_S = 0.05
    venue.ping_message = lambda: "ping"

    async def script(n, conn, inbox):
        try:
            async for msg in conn:
                inbox.append(msg)
        except Exception:
            pass

    async def main():
        async with Harness(script, in_url=True, venue=venue) as h:
            t0 = time.monotonic()
            await wait_until(lambda: h.received and h.received[0].count("ping") >= 3, what="three keepalives")
            assert time.monotonic() - t0 >= 0.1          # spaced by the interval, not sent in a burst
            assert h.feed.stats.pings_sent >= 3 and h.connections == 1
    asyncio.run(main())


@pytest.mark.timeout(20)
def test_rotation_is_make_before_break_and_drops_duplicate_trades():
    clock = {"tid": 1000}

    async def script(n, conn, inbox):
        try:
            while True:   # every connection sends the same trade ids at the same time
                await conn.send(agg_trade(clock["tid"] - 1))
                await conn.send(agg_trade(clock["tid"]))
                await asyncio.sleep(0.005)
        except Exception:
            pass

    h = run_two_rotations(script, clock, tick_s=0.002)
    ids = [r[10] for r in h.kind(Kind.TRADE)]
    assert ids == sorted(set(ids)), "duplicate or out-of-order trade ids across a handover"
    assert h.feed.stats.duplicates > 0
    assert not h.controls(Control.RECONNECTED)


def run_two_rotations(script, clock: dict, tick_s: float, **harness_kw) -> Harness:
    """Run ``script`` behind a feed that rotates its socket every 0.2 s until it has rotated twice, while
    ``clock["tid"]`` (the venue's latest trade id) advances every ``tick_s``; return the finished harness."""
    async def ticker():
        while True:
            clock["tid"] += 1
            await asyncio.sleep(tick_s)

    async def main():
        t = asyncio.create_task(ticker())
        try:
            async with Harness(script, in_url=True, rotate_after_s=0.2, **harness_kw) as h:
                await wait_until(lambda: h.feed.stats.rotations >= 2, what="two rotations")
        finally:
            t.cancel()
        return h
    return asyncio.run(main())


class IdlessParser:
    """Binance frames, parsed as a venue whose trades carry no numeric id (Bybit, Hyperliquid)."""

    def __init__(self):
        self.inner = binance.Parser({"BTCUSDT": 7}.get)
        self.lookup = self.inner.lookup

    def parse(self, payload, ts, out):
        n = len(out)
        result = self.inner.parse(payload, ts, out)
        for i in range(n, len(out)):
            if out[i][0] == Kind.TRADE:
                out[i] = out[i][:10] + (0.0,) + out[i][11:]
        return result


@pytest.mark.timeout(20)
def test_rotation_drops_id_less_trades_the_old_socket_delivered():
    clock = {"tid": 1000}

    def frame(tid):
        data = {"e": "aggTrade", "E": tid, "a": tid, "s": "BTCUSDT", "p": "28145.10", "q": "0.020",
                "f": tid, "l": tid, "T": 1680652700000 + tid, "m": True}
        return json.dumps({"stream": STREAM, "data": data})

    async def script(n, conn, inbox):
        sent = clock["tid"]   # like a venue: a new subscriber gets the trades made after it subscribed
        try:
            while True:   # every connection sends each new trade once, at the same time as the others
                tid = clock["tid"]
                if tid != sent:
                    await conn.send(frame(tid))
                    sent = tid
                await asyncio.sleep(0.001)
        except Exception:
            pass

    h = run_two_rotations(script, clock, tick_s=0.003, parser=IdlessParser())
    trades = h.kind(Kind.TRADE)
    assert trades and all(r[10] == 0.0 for r in trades)
    times = [r[5] for r in trades]
    assert len(times) == len(set(times)), "a trade delivered by both sockets during a handover got through twice"
    assert h.feed.stats.duplicates > 0


@pytest.mark.timeout(20)
def test_silent_stream_is_unsubscribed_then_subscribed_where_the_venue_can():
    venue = types.ModuleType("renewing_binance")
    venue.__dict__.update({k: v for k, v in vars(binance).items() if not k.startswith("__")})
    venue.unsubscribe_messages = lambda streams, first_id=1: [
        json.dumps({"method": "UNSUBSCRIBE", "params": list(streams), "id": first_id}).encode()]

    async def main():
        async with Harness(silent_mark_script, streams=(STREAM, MARK), watched=(STREAM, MARK), stale_after_s=0.15,
                           venue=venue) as h:
            await wait_until(lambda: h.received and len(h.received[0]) >= 3, what="unsubscribe + subscribe")
            renew = h.received[0][1:3]
            assert [(m["method"], m["params"]) for m in renew] == [("UNSUBSCRIBE", [MARK]), ("SUBSCRIBE", [MARK])]
            assert renew[1]["id"] > renew[0]["id"]
            assert h.connections == 1
    asyncio.run(main())


def test_coverage_connected_share_and_capped_saturation(monkeypatch):
    import engine.wsfeed as wsfeed_mod
    clock = {"t": 100.0}
    monkeypatch.setattr(wsfeed_mod.time, "monotonic", lambda: clock["t"])
    plan = ConnectionPlan("market/0", "ws://unused", (STREAM,), (STREAM,), True)
    written: list = []
    feed = WsFeed(binance, [plan, plan._replace(key="market/1")], binance.Parser({"BTCUSDT": 7}.get), written.extend)
    st = feed.stats
    st.connected("market/0", True)          # t=100: socket 0 up, socket 1 never connects
    clock["t"] = 110.0
    st.connected("market/0", False)         # down after 10 s
    clock["t"] = 120.0
    assert st.coverage()["connected_share"] == pytest.approx(10.0 / (20.0 * 2))
    st.connected("market/0", True)
    clock["t"] = 130.0                      # an open socket counts up to now
    assert st.coverage()["connected_share"] == pytest.approx(20.0 / (30.0 * 2))

    def liq(sec, price, flags=Flag.CAPPED):
        ts = (1_700_000_000 + sec) * 1_000_000_000 + 123
        return (Kind.LIQUIDATION, Venue.BINANCE, Side.LONG, flags, 7, ts, ts, price, 1.0, price, 0.0, 0.0)

    # slots 0, 1 (saturated), 3, 3 (same slot), 4 (saturated); an uncapped one is not counted
    feed._emit([liq(0, 1.0), liq(1, 2.0), liq(3, 3.0), liq(3, 4.0), liq(4, 5.0), liq(9, 6.0, flags=0)],
               wsfeed_mod._PlanState(plan))
    cov = st.coverage()
    assert (cov["capped_liquidations"], cov["capped_slots"], cov["saturated_slots"]) == (5, 4, 2)
    assert cov["saturation_share"] == pytest.approx(0.5)
    assert len([r for r in written if r[0] == Kind.LIQUIDATION]) == 6
    assert st.as_dict()["saturated_slots"] == 2 and cov["liq_slots"] == 5   # the uncapped slot 9 too


@pytest.mark.timeout(20)
def test_trade_id_hole_without_a_reconnect_is_one_exact_gap():
    # a stall that drops frames (or a lost frame) leaves the socket up: the hole is still reported, exactly
    async def script(n, conn, inbox):
        await expect_subscribe(conn, inbox)
        for tid in (1, 2, 3, 7, 8, 9, 9, 15):
            await conn.send(agg_trade(tid))
        await hold_open(conn)

    async def main():
        async with Harness(script) as h:
            await wait_until(lambda: len(h.kind(Kind.TRADE)) == 7, what="seven distinct trades")
        assert [r[10] for r in h.kind(Kind.TRADE)] == [1, 2, 3, 7, 8, 9, 15]
        assert [r[11] for r in h.controls(Control.GAP)] == [3, 5]      # ids 4-6 and 10-14
        assert h.feed.stats.gaps == 2 and h.feed.stats.duplicates == 1
        assert not h.controls(Control.RECONNECTED)
    asyncio.run(main())
