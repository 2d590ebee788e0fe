"""Binance local book synced from depth diffs + REST snapshot: real captures and the simulator under faults."""
from __future__ import annotations

import asyncio
import json
import math
import types
from pathlib import Path

import httpx
import pytest
from hypothesis import given, settings, strategies as st

from engine.books import attach
from engine.captures import iter_capture
from engine.config import SimulatorConfig
from engine.record import Control, Kind
from engine.simulator import start_in_thread
from engine.simulator.market import spec_for
from engine.venues import ConnectionPlan, Outcome, binance
from engine.wsfeed import WsFeed

# hftbacktest captures that start with the REST /fapi/v1/depth snapshot (PROVENANCE.md: "rest": 1)
WITH_SNAPSHOT = ["binance_usdm/hftbacktest/btcusdt_20230404.dat.gz", "binance_usdm/hftbacktest/btcusdt_20240718.gz",
                 "binance_usdm/hftbacktest/ethusdt_20240718.gz"]


@pytest.mark.playback
@pytest.mark.parametrize("rel", WITH_SNAPSHOT)
def test_capture_replay_syncs_and_matches_book_ticker(shared_data, rel):
    """Expected numbers come from the frames (a first pass): diffs with ``u < lastUpdateId`` before the
    first applied one are stale (whether they arrived before or after the snapshot), later ``pu`` breaks
    are gaps, and the synced best bid/ask must equal the ``bookTicker`` carrying the same update id ``u``."""
    symbol = Path(rel).name.split("_")[0].upper()
    frames = [fr for fr in iter_capture(shared_data / rel) if fr.direction not in ("open", "sent")]
    snapshot_id = next(json.loads(fr.payload)["lastUpdateId"] for fr in frames if fr.direction == "rest")
    expect_stale = expect_gaps = 0
    prev_u = None
    for fr in frames:
        data = json.loads(fr.payload)["data"] if fr.direction != "rest" else {}
        if data.get("e") != "depthUpdate":
            continue
        if prev_u is None:
            assert data["U"] <= snapshot_id or data["u"] < snapshot_id, "snapshot older than the first diff"
            if data["u"] < snapshot_id:
                expect_stale += 1
            else:
                prev_u = data["u"]
        else:
            expect_gaps += data["pu"] != prev_u
            prev_u = data["u"]

    ids: dict[str, int] = {}
    parser = binance.Parser(lambda s: ids.setdefault(s, len(ids)))
    books = attach(parser, binance, 20)
    ticker_at: dict[int, tuple[float, float]] = {}
    compared = mismatched = 0
    for fr in frames:
        out: list = []
        if fr.direction == "rest":
            assert parser.book_snapshot(symbol, fr.payload, fr.ts_ns, out) == Outcome.EMITTED
            continue
        data = json.loads(fr.payload)["data"]
        if data.get("e") == "bookTicker":
            ticker_at[data["u"]] = (float(data["b"]), float(data["a"]))
        parser.parse(fr.payload, fr.ts_ns, out)
        book = books.book(symbol)
        if book is not None and book.synced and book.last_id in ticker_at:
            bid, _, ask, _ = book.best()
            compared += 1
            mismatched += (bid, ask) != ticker_at[book.last_id]
    c = books.counters()
    assert books.book(symbol).synced
    assert (c["book_stale"], c["book_gaps"], c["book_crossed"]) == (expect_stale, expect_gaps, 0)
    assert compared > 100 and mismatched == 0


# -- simulator: every published state equals the true book, under faults ----------------------------

SYMBOLS = ["BTCUSDT", "ETHUSDT"]
N = 20


class CheckingParser(binance.Parser):
    """After every depth frame, compare the synced book with the simulator's true top-N at the same id."""

    venue = None
    compared = 0
    mismatches: list

    def _depth(self, msg, stream, ts_recv, out):
        outcome = super()._depth(msg, stream, ts_recv, out)
        self.check(msg.s)
        return outcome

    def book_snapshot(self, symbol, payload, ts_recv, out):
        outcome = super().book_snapshot(symbol, payload, ts_recv, out)
        self.check(symbol)
        return outcome

    def check(self, symbol):
        book = self.books.book(symbol)
        if book is None or not book.synced:
            return
        truth = self.venue.true_book(symbol, book.last_id)
        if truth is None:
            return   # a REST snapshot taken between two diffs: no recorded truth at that id
        spec = spec_for(symbol)
        norm = lambda levels: [(round(p, spec.price_decimals), round(q, spec.qty_decimals)) for p, q in levels]
        bids, asks = book.levels(N)
        self.compared += 1
        if norm(bids) != norm(truth[0][:N]) or norm(asks) != norm(truth[1][:N]):
            self.mismatches.append((symbol, book.last_id))


@pytest.mark.process
@pytest.mark.fault
def test_simulator_book_sync_survives_drops_duplicates_reorders_and_429():
    sim = start_in_thread(SimulatorConfig(rate=300, seed=11, venues=["binance"], symbols=SYMBOLS,
                                          first_cascade_after_s=1000.0))
    try:
        asyncio.run(asyncio.wait_for(_run_faulted_feed(sim), 20))
    finally:
        sim.stop()


async def _run_faulted_feed(sim):
    ep = sim.endpoints()
    venue = sim.sim.venue("binance")
    server = sim.sim.server
    streams = tuple(f"{s.lower()}@depth@100ms" for s in SYMBOLS)
    plan = ConnectionPlan("public/0", f"{ep['ws_urls']['public']}/stream?streams={'/'.join(streams)}",
                          streams, streams, True)
    ids = {s: i for i, s in enumerate(SYMBOLS)}
    parser = CheckingParser(ids.get)
    parser.venue, parser.mismatches = venue, []
    books = attach(parser, binance, N)
    written: list = []
    async with httpx.AsyncClient(base_url=ep["rest_url"]) as client:
        async def fetch(symbol):
            path, params, _ = binance.depth_snapshot_request(symbol)
            resp = await client.get(path, params=params)
            resp.raise_for_status()
            return resp.content

        feed = WsFeed(binance, [plan], parser, written.extend, snapshot_fetcher=fetch)
        task = asyncio.create_task(feed.run())
        try:
            await _until(lambda: all(books.book(s) and books.book(s).synced for s in SYMBOLS))
            btc = books.book("BTCUSDT")
            # the first resync's snapshot request is refused once (429): the feed retries it
            sim.call(server.http_error, 429, 1, 0.1)
            for action, n in (("drop", 2), ("duplicate", 2), ("reorder", 1), ("drop", 1)):
                before = btc.resyncs
                sim.call(server.inject, action, n, stream="btcusdt@depth@100ms")
                await _until(lambda: not server.frame_faults)
                await _until(lambda: btc.synced and btc.resyncs >= before and btc.last_id in venue.symbols["BTCUSDT"].truth)
                await asyncio.sleep(0.3)
            await asyncio.sleep(1.0)
        finally:
            feed.stop()
            await task
    counts = {s: books.book(s).counters() for s in SYMBOLS}
    assert parser.mismatches == []
    assert parser.compared > 50
    assert counts["BTCUSDT"]["gaps"] >= 3 and counts["BTCUSDT"]["resyncs"] >= 3    # 2 drops + 1 reorder
    assert counts["BTCUSDT"]["stale"] >= 2                                           # the 2 duplicates
    assert counts["ETHUSDT"]["gaps"] == counts["ETHUSDT"]["resyncs"] == 0           # only BTC resynced
    assert feed.stats.snapshot_errors == 1
    invalid = [r for r in written if r[0] == Kind.CONTROL and r[10] == Control.BOOK_INVALID]
    assert {r[4] for r in invalid} == {ids["BTCUSDT"]}
    assert {r[4] for r in written if r[0] == Kind.BOOK_DEPTH} == {0, 1}
    stats = feed.stats.as_dict()
    assert stats["book_gaps"] == counts["BTCUSDT"]["gaps"] and stats["book_unsynced"] == 0


async def _until(predicate, timeout=8.0):
    deadline = asyncio.get_running_loop().time() + timeout
    while not predicate():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("timed out")
        await asyncio.sleep(0.02)


# -- the resubscribe source: WsFeed unsubscribes and resubscribes only that symbol's book stream --------

def _resubscribing_venue():
    """Binance's wire contract, posing as a venue whose snapshot comes with a (re)subscription."""
    mod = types.ModuleType("resubscribing_binance")
    mod.__dict__.update({k: v for k, v in vars(binance).items() if not k.startswith("__")})
    mod.BOOK_SOURCE = "resubscribe"
    mod.is_book_stream = lambda s: "@depth" in s
    mod.unsubscribe_messages = lambda streams, first_id: [
        json.dumps({"method": "UNSUBSCRIBE", "params": list(streams), "id": first_id}).encode()]
    return mod


@pytest.mark.process
def test_resubscribe_resync_touches_only_the_symbols_book_stream():
    sim = start_in_thread(SimulatorConfig(rate=300, seed=2, venues=["binance"], symbols=SYMBOLS,
                                          first_cascade_after_s=1000.0))
    try:
        asyncio.run(asyncio.wait_for(_run_resubscribe(sim), 15))
    finally:
        sim.stop()


async def _run_resubscribe(sim):
    mod = _resubscribing_venue()
    ep = sim.endpoints()
    venue = sim.sim.venue("binance")
    received: list = []
    handle_text = venue.handle_text

    def recording(client, text, hub):
        received.append(json.loads(text))
        return handle_text(client, text, hub)

    sim.call(setattr, venue, "handle_text", recording)
    streams = ("btcusdt@depth@100ms", "btcusdt@bookTicker", "ethusdt@depth@100ms")
    plan = ConnectionPlan("public/0", f"{ep['ws_urls']['public']}/stream", streams, streams, False)
    parser = binance.Parser({"BTCUSDT": 0}.get)    # ETHUSDT frames are IGNORED: it has no book
    books = attach(parser, mod, N)
    feed = WsFeed(mod, [plan], parser, lambda recs: None)
    task = asyncio.create_task(feed.run())
    try:
        # BTC's first diff finds no synced book and asks for a snapshot: the feed resubscribes its stream
        await _until(lambda: len(received) >= 3 and feed.stats.outcomes[Outcome.CONTROL] >= 3)
    finally:
        feed.stop()
        await task
    assert [(m["method"], m["params"]) for m in received] == [("SUBSCRIBE", list(streams)),
                                                               ("UNSUBSCRIBE", ["btcusdt@depth@100ms"]),
                                                               ("SUBSCRIBE", ["btcusdt@depth@100ms"])]
    assert feed.stats.book_resubscribes == 1 and books.book("BTCUSDT").requests == 1
    assert books.book("ETHUSDT") is None


# -- fuzz: a books-enabled parser never raises and never publishes a bad record ----------------------

_num = st.one_of(st.integers(-5, 10**6).map(str), st.sampled_from(["NaN", "Infinity", "-1", "1e400", "", "x"]),
                 st.floats(allow_nan=True, allow_infinity=True).map(str))


@pytest.mark.property
@settings(max_examples=300, deadline=None)
@given(st.lists(st.fixed_dictionaries({
    "U": st.integers(0, 30), "du": st.integers(0, 3), "dpu": st.integers(-2, 2),
    "b": st.lists(st.tuples(_num, _num), max_size=3), "a": st.lists(st.tuples(_num, _num), max_size=3),
    "snapshot": st.booleans()}), max_size=25))
def test_fuzzed_diffs_and_snapshots_never_raise(steps):
    parser = binance.Parser({"BTCUSDT": 0}.get)
    books = attach(parser, binance, 5)
    for s in steps:
        out: list = []
        u = s["U"] + s["du"]
        body = {"e": "depthUpdate", "E": 1, "T": 1, "s": "BTCUSDT", "U": s["U"], "u": u, "pu": s["U"] - 1 + s["dpu"],
                "b": [list(l) for l in s["b"]], "a": [list(l) for l in s["a"]]}
        frame = json.dumps({"stream": "btcusdt@depth@100ms", "data": body}).encode()
        outcome, _ = parser.parse(frame, 1, out)
        assert outcome in tuple(Outcome)
        if s["snapshot"]:
            snap = json.dumps({"lastUpdateId": u, "bids": body["b"], "asks": body["a"]}).encode()
            assert parser.book_snapshot("BTCUSDT", snap, 1, out) in tuple(Outcome)
        for r in out:
            if r[0] in (Kind.BOOK_TOP, Kind.BOOK_DEPTH):
                assert all(math.isfinite(v) and v >= 0.0 for v in r[7:12])
        book = books.book("BTCUSDT")
        if book is not None and book.synced and book.best():
            bid, _, ask, _ = book.best()
            assert bid < ask
