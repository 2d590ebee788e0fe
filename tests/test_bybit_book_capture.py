"""Bybit's ``unit_step`` book rule against Bybit's own order-book dump (orderbook.500, 1 snapshot + 49 deltas).

The capture is the evidence for the rule (``u`` steps by exactly 1 per delta); here the real frames go through
the Bybit parser with a :class:`~engine.books.BookSet` attached (as the feed builds it), whole and with one delta
removed, and an independent stdlib replay of the frames is the true book. The simulator's book frames are held
to the same ``u`` contract.
"""
from __future__ import annotations

import json

import pytest

from engine.books import attach, unit_step
from engine.captures import iter_capture
from engine.record import Control, Flag, Kind
from engine.simulator.bybit import BybitVenue
from engine.simulator.market import SyntheticMarket, spec_for
from engine.venues import Outcome, bybit

OB500 = "bybit/nautilus_trader/2024-12-01_XRPUSDT_ob500.data"
SYMBOL, IID = "XRPUSDT", 4
BANDS = (0.005, 0.01)
DROPPED = 20          # index of the delta removed in the gap test
RESYNC_AT = 30        # index of the frame whose state the resync snapshot carries


@pytest.fixture
def frames(shared_data) -> list[bytes]:
    return [fr.payload for fr in iter_capture(shared_data / OB500)]


def synced_parser():
    """A Bybit parser with books attached as the feed does; BOOK_DEPTH on every publish; resync requests kept."""
    parser = bybit.Parser({SYMBOL: IID}.get, flags=Flag.REPLAY)
    books = attach(parser, bybit, depth_levels=50, bands=BANDS, depth_interval_s=0.0)
    asked: list[str] = []
    books.on_resync = asked.append
    return parser, books, asked


class Replay:
    """Independent reconstruction of the book: a snapshot replaces it, size 0 deletes a level, else sets it."""

    def __init__(self) -> None:
        self.bids: dict[float, float] = {}
        self.asks: dict[float, float] = {}

    def apply(self, frame: bytes) -> None:
        m = json.loads(frame)
        if m["type"] == "snapshot":
            self.bids.clear()
            self.asks.clear()
        for side, key in ((self.bids, "b"), (self.asks, "a")):
            for p, q in m["data"][key]:
                if float(q) == 0.0:
                    side.pop(float(p), None)
                else:
                    side[float(p)] = float(q)

    def top(self) -> tuple[float, float, float, float]:
        bid, ask = max(self.bids), min(self.asks)
        return bid, self.bids[bid], ask, self.asks[ask]

    def snapshot_frame(self, like: bytes) -> bytes:
        """The book as a Bybit snapshot frame with ``like``'s ids (what a resubscription would push)."""
        m = json.loads(like)
        m["type"] = "snapshot"
        m["data"]["b"] = [[str(p), str(q)] for p, q in sorted(self.bids.items(), reverse=True)]
        m["data"]["a"] = [[str(p), str(q)] for p, q in sorted(self.asks.items())]
        return json.dumps(m).encode()


def published(out: list) -> list:
    return [r for r in out if r[0] in (Kind.BOOK_TOP, Kind.BOOK_DEPTH)]


def check_publish(out: list, truth: Replay) -> None:
    """A publish: one BOOK_DEPTH per band at the true mid, and a BOOK_TOP (if any) equal to the true top."""
    bid, bid_qty, ask, ask_qty = truth.top()
    depth = [r for r in out if r[0] == Kind.BOOK_DEPTH]
    assert [r[8] for r in depth] == list(BANDS)
    assert all(r[7] == pytest.approx(0.5 * (bid + ask)) for r in depth)
    for r in out:
        if r[0] == Kind.BOOK_TOP:
            assert (r[7], r[8], r[10], r[11]) == (bid, bid_qty, ask, ask_qty)


def test_capture_ids_step_by_one(frames):
    """The evidence for the rule: u rises by exactly 1 on every delta, and seq rises with it."""
    data = [json.loads(f)["data"] for f in frames]
    assert [json.loads(f)["type"] for f in frames] == ["snapshot"] + ["delta"] * 49
    assert [b["u"] - a["u"] for a, b in zip(data, data[1:])] == [1] * 49
    assert all(b["seq"] > a["seq"] for a, b in zip(data, data[1:]))


def test_whole_capture_publishes_after_every_delta_without_a_gap(frames):
    parser, books, asked = synced_parser()
    assert books.rule is unit_step and books.source == "resubscribe"
    truth = Replay()
    for f in frames:
        out: list = []
        truth.apply(f)
        assert parser.parse(f, 1, out)[0] == Outcome.EMITTED
        assert not [r for r in out if r[0] == Kind.CONTROL]
        check_publish(out, truth)
        assert books.book(SYMBOL).last_id == json.loads(f)["data"]["u"]
    c = books.counters()
    assert (c["book_snapshots"], c["book_gaps"], c["book_resyncs"], c["book_stale"], c["book_requests"]) == \
        (1, 0, 0, 0, 0)
    assert asked == []
    book = books.book(SYMBOL)
    assert book.synced and book.bids == truth.bids and book.asks == truth.asks


def test_one_delta_removed_is_one_gap_and_nothing_is_published_until_the_resync_snapshot(frames):
    parser, books, asked = synced_parser()
    truth = Replay()
    for f in frames[:RESYNC_AT + 1]:   # the true book at RESYNC_AT, for the resync snapshot
        truth.apply(f)
    lossy = frames[:DROPPED] + frames[DROPPED + 1:]
    for f in lossy[:DROPPED]:
        parser.parse(f, 1, [])
    assert books.book(SYMBOL).synced

    out: list = []
    assert parser.parse(lossy[DROPPED], 1, out)[0] == Outcome.EMITTED   # the delta after the lost one
    assert published(out) == []
    assert [(r[4], r[10]) for r in out if r[0] == Kind.CONTROL] == [(IID, float(Control.BOOK_INVALID))]
    assert asked == [SYMBOL] and not books.book(SYMBOL).synced

    for f in lossy[DROPPED + 1:RESYNC_AT]:   # deltas before the fresh snapshot: dropped, never published
        out = []
        assert parser.parse(f, 1, out)[0] == Outcome.PARSED and out == []
    c = books.counters()
    assert (c["book_gaps"], c["book_resyncs"], c["book_stale"], c["book_unsynced"]) == (1, 1, 0, 1)

    out = []
    assert parser.parse(truth.snapshot_frame(frames[RESYNC_AT]), 1, out)[0] == Outcome.EMITTED
    check_publish(out, truth)
    assert [r for r in out if r[0] == Kind.BOOK_TOP]   # a resynced book always publishes its top
    for f in frames[RESYNC_AT + 1:]:
        out = []
        truth.apply(f)
        assert parser.parse(f, 1, out)[0] == Outcome.EMITTED
        check_publish(out, truth)
    book = books.book(SYMBOL)
    assert book.synced and book.bids == truth.bids and book.asks == truth.asks
    c = books.counters()
    assert (c["book_gaps"], c["book_resyncs"], c["book_snapshots"], c["book_unsynced"]) == (1, 1, 2, 0)


def test_level1_snapshots_with_a_repeated_u_bypass_the_rule(frames):
    """``orderbook.1`` re-sends its snapshot (same ``u``) every 3 s: each gives a BOOK_TOP, the books see nothing."""
    parser, books, asked = synced_parser()
    for f in frames:
        parser.parse(f, 1, [])
    before = books.counters()
    m = json.loads(frames[0])
    m["topic"] = f"orderbook.1.{SYMBOL}"
    m["data"]["b"], m["data"]["a"] = m["data"]["b"][:1], m["data"]["a"][:1]
    level1 = json.dumps(m).encode()
    for _ in range(3):   # the same u three times, older than the depth book's
        out: list = []
        assert parser.parse(level1, 1, out) == (Outcome.EMITTED, f"orderbook.1.{SYMBOL}")
        [top] = out
        assert top[0] == Kind.BOOK_TOP and top[3] & Flag.SNAPSHOT
        assert (top[7], top[8], top[10], top[11]) == (1.9531, 6203.0, 1.9532, 10480.0)
    assert books.counters() == before and asked == []
    assert books.book(SYMBOL).last_id == json.loads(frames[-1])["data"]["u"]


class _Client:
    """What :meth:`BybitVenue.handle_text` needs of a connection."""

    def __init__(self) -> None:
        self.streams: set[str] = set()
        self.conn = self


class _Hub:
    def __init__(self) -> None:
        self.subs: dict[str, set] = {}

    def subscribe(self, client: _Client, names) -> None:
        for n in names:
            client.streams.add(n)
            self.subs.setdefault(n, set()).add(client)

    def unsubscribe(self, client: _Client, names) -> None:
        for n in names:
            client.streams.discard(n)
            self.subs.get(n, set()).discard(client)


def _as_sent(levels, spec) -> list[tuple[float, float]]:
    """Levels as the simulator's frames print them (the spec's decimals), read back as floats."""
    return [(float(f"{p:.{spec.price_decimals}f}"), float(f"{q:.{spec.qty_decimals}f}")) for p, q in levels]


def test_simulator_keeps_u_contiguous_across_a_mid_stream_snapshot():
    """As in the capture, the simulator steps ``u`` by one per frame of a topic. Another connection subscribing the
    topic makes its next frame a snapshot for every subscriber (Bybit may push one at any time): ``u`` stays
    contiguous, the book resets to it without a gap, and every publish is the market's true book."""
    market, spec = SyntheticMarket(["BTCUSDT"], seed=3, rate=100, cascade_every_s=0), spec_for("BTCUSDT")
    venue, hub = BybitVenue(["BTCUSDT"], market=market), _Hub()
    topic = "orderbook.200.BTCUSDT"
    parser = bybit.Parser({"BTCUSDT": 1}.get)
    books = attach(parser, bybit, depth_levels=20, depth_interval_s=0.0)
    first, second = _Client(), _Client()
    venue.handle_text(first, json.dumps({"op": "subscribe", "args": [topic]}), hub)
    frames, compared = [], 0
    for step in range(400):
        if step == 200:
            venue.handle_text(second, json.dumps({"op": "subscribe", "args": [topic]}), hub)
        for name, raw in venue.render(market.step(), market.t, hub.subs, 1_700_000_000_000 + step):
            if name != topic:
                continue
            frames.append(json.loads(raw))
            out: list = []
            parser.parse(raw, 1, out)
            if [r for r in out if r[0] == Kind.BOOK_DEPTH]:   # published: the market's book at its seq
                seq, bids, asks = market.book_snapshot("BTCUSDT", 20)
                assert frames[-1]["data"]["seq"] == seq
                assert books.book("BTCUSDT").levels(20) == (_as_sent(bids, spec), _as_sent(asks, spec))
                compared += 1
    us = [f["data"]["u"] for f in frames]
    assert us == list(range(us[0], us[0] + len(us)))
    kinds = [f["type"] for f in frames]
    assert kinds[0] == "snapshot" and kinds.count("snapshot") == 2 and kinds.index("snapshot", 1) > 10
    c = books.counters()
    assert (c["book_snapshots"], c["book_gaps"], c["book_resyncs"], c["book_stale"]) == (2, 0, 0, 0)
    assert compared == len(frames) > 30 and books.book("BTCUSDT").synced
