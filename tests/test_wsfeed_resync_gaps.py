"""Trade-id gaps around a book resync are reported as GAP controls exactly once.

Records coming out of a resync (``WsFeed._fetch_snapshot`` writes what ``parser.book_snapshot`` returns, without
the socket's plan state) go through the same id checks as live frames: a hole there is one GAP, a replayed id is a
duplicate, and the next live frame does not report the same hole again. Before ff8c5e4 the check read the plan state, which a
resync's records do not have (None: an AttributeError in the resync task, its records lost with the GAP), and only
the first trade after a reconnect was checked; since then the check needs no plan state and ``_on_resync`` needs no
change."""
from __future__ import annotations

import asyncio
import json

import pytest

from engine.books import attach
from engine.record import Control, Kind, Side, Venue
from engine.venues import ConnectionPlan, Outcome, binance
from engine.wsfeed import WsFeed
from tests.test_wsfeed import Harness, agg_trade, expect_subscribe, hold_open, wait_until

pytestmark = pytest.mark.unit

IID = 7
DEPTH = "btcusdt@depth@100ms"
TRADES = "btcusdt@aggTrade"


def _trade(tid: int) -> tuple:
    ts = 1_700_000_000_000_000_000 + tid
    return (Kind.TRADE, Venue.BINANCE, Side.BUY, 0, IID, ts, ts, 100.0, 1.0, 100.0, float(tid), 1.0)


class ReplayingParser(binance.Parser):
    """A Binance parser whose book snapshot hands back buffered frames' trades (ids listed in the payload)."""

    def book_snapshot(self, symbol: str, payload: bytes, ts_recv: int, out: list) -> Outcome:
        out.extend(_trade(tid) for tid in json.loads(payload))
        return Outcome.EMITTED


def _gaps(records: list) -> list[float]:
    return [r[11] for r in records if r[0] == Kind.CONTROL and r[10] == Control.GAP]


def test_a_hole_in_the_records_a_resync_replays_is_one_gap():
    written: list = []

    async def fetch(symbol: str) -> bytes:
        return b"[3, 4, 8, 9]"   # 3 was seen live; 5-7 never arrive

    plan = ConnectionPlan("market/0", "ws://unused", (TRADES,), (TRADES,), True)
    feed = WsFeed(binance, [plan], ReplayingParser({"BTCUSDT": IID}.get), written.extend, snapshot_fetcher=fetch)
    feed._emit([_trade(1), _trade(2), _trade(3)], None)
    asyncio.run(feed._fetch_snapshot("BTCUSDT"))
    feed._emit([_trade(9), _trade(10), _trade(12)], None)   # live again: 9 replayed, 11 missing
    assert [r[10] for r in written if r[0] == Kind.TRADE] == [1, 2, 3, 4, 8, 9, 10, 12]
    assert _gaps(written) == [3, 1]
    assert feed.stats.gaps == 2 and feed.stats.duplicates == 2


def _depth(first: int, last: int, prev: int) -> str:
    data = {"e": "depthUpdate", "E": 1680652700455, "T": 1680652700452, "s": "BTCUSDT", "U": first, "u": last,
            "pu": prev, "b": [["100.0", "2.000"]], "a": [["100.5", "1.000"]]}
    return json.dumps({"stream": DEPTH, "data": data})


@pytest.mark.timeout(20)
def test_trade_holes_while_a_book_resyncs_are_each_reported_once():
    """Live socket: a depth diff starts a REST resync that is held open while trades with holes arrive."""
    release = asyncio.Event()
    fetches: list[str] = []

    async def fetch(symbol: str) -> bytes:
        fetches.append(symbol)
        await release.wait()
        return json.dumps({"lastUpdateId": 10, "E": 1680652700400, "T": 1680652700400,
                           "bids": [["100.0", "1.000"]], "asks": [["100.5", "1.000"]]}).encode()

    async def script(n, conn, inbox):
        await expect_subscribe(conn, inbox)
        await conn.send(_depth(11, 12, 10))          # unsynced: buffered, the resync starts
        for tid in (1, 2, 3, 6, 7):                  # a hole of 2 while the snapshot is on its way
            await conn.send(agg_trade(tid))
        await wait_until(lambda: len(h.kind(Kind.TRADE)) == 5, what="trades during the resync")
        release.set()
        await wait_until(lambda: h.kind(Kind.BOOK_TOP), what="the synced book")
        for tid in (7, 9, 10):                       # a replayed id and a hole of 1 after it
            await conn.send(agg_trade(tid))
        await hold_open(conn)

    parser = binance.Parser({"BTCUSDT": IID}.get)
    attach(parser, binance, 20)
    h = Harness(script, streams=(TRADES, DEPTH), watched=(TRADES,), parser=parser, snapshot_fetcher=fetch)

    async def main():
        async with h:
            await wait_until(lambda: len(h.kind(Kind.TRADE)) == 7, what="every distinct trade")
    asyncio.run(main())
    assert fetches == ["BTCUSDT"]
    assert [r[10] for r in h.kind(Kind.TRADE)] == [1, 2, 3, 6, 7, 9, 10]
    assert _gaps(h.records) == [2, 1]
    assert h.feed.stats.gaps == 2 and h.feed.stats.duplicates == 1
    top = h.kind(Kind.BOOK_TOP)[0]
    assert top[7] == 100.0 and top[8] == 2.0   # the snapshot with the buffered diff (id 11-12) replayed on it
