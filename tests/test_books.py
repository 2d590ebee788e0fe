"""engine/books.py: the generic book state machine and every provided sequence rule."""
from __future__ import annotations

import random

import pytest
from hypothesis import given, settings, strategies as st

from engine import books
from engine.books import APPLY, GAP, RESET, STALE, BookSet
from engine.record import Control, Kind, Venue
from engine.venues import Outcome

T = 1_700_000_000_000_000_000


class Clock:
    def __init__(self):
        self.now = 0

    def __call__(self):
        return self.now


def make(rule=books.pu_chain, source="rest", **kw):
    bs = BookSet(Venue.BINANCE, rule, source=source, clock=kw.pop("clock", Clock()), **kw)
    asked = []
    bs.on_resync = asked.append
    return bs, asked


def kinds(out):
    return [r[0] for r in out]


def tops(out):
    return [(r[7], r[8], r[10], r[11]) for r in out if r[0] == Kind.BOOK_TOP]


def controls(out):
    return [r for r in out if r[0] == Kind.CONTROL]


SNAP_B = [(100.0, 1.0), (99.0, 2.0), (98.0, 3.0)]
SNAP_A = [(101.0, 1.5), (102.0, 2.5), (103.0, 3.5)]


# -- rules ------------------------------------------------------------------------

@pytest.mark.parametrize("args, want", [
    ((100, 90, 99, 89, True), STALE),       # u < lastUpdateId: dropped before sync
    ((100, 95, 105, 94, True), APPLY),      # spans lastUpdateId
    ((100, 100, 105, 99, True), APPLY),     # U == lastUpdateId
    ((100, 101, 105, 100, True), APPLY),    # chained to the snapshot: pu == lastUpdateId
    ((100, 102, 105, 101, True), GAP),      # U > lastUpdateId: snapshot too old
    ((105, 106, 110, 105, False), APPLY),   # pu == last u
    ((105, 100, 105, 99, False), STALE),    # duplicate of the last applied
    ((105, 111, 115, 110, False), GAP),     # pu skips ahead
])
def test_pu_chain(args, want):
    assert books.pu_chain(*args) == want


@pytest.mark.parametrize("args, want", [
    ((100, 90, 100, -1, True), STALE),      # u <= baseId
    ((100, 95, 105, -1, True), APPLY),      # U <= baseId+1 <= u
    ((100, 101, 105, -1, True), APPLY),
    ((100, 102, 105, -1, True), GAP),       # first buffered U > baseId+1
    ((105, 106, 106, -1, False), APPLY),    # strict +1 when first == last
    ((105, 107, 107, -1, False), GAP),
])
def test_id_range(args, want):
    assert books.id_range(*args) == want


def test_prev_chain_okx_docs_sequence():
    # PROTOCOLS §3.4 docs example: snapshot (-1, 10), then (10, 15), no-change (15, 15), reset (15, 3), then (3, 5)
    rule = books.prev_chain
    last, fresh = 10, True
    for prev, seq in [(10, 15), (15, 15), (15, 3), (3, 5)]:
        assert rule(last, seq, seq, prev, fresh) == APPLY
        last, fresh = seq, False
    assert rule(5, 5, 5, 3, False) == STALE    # the (3, 5) update delivered twice
    assert rule(5, 9, 9, 7, False) == GAP      # (5, 7) lost


def test_prev_chain_bitget_first_update_spans_snapshot():
    # Bitget v3: the snapshot's seq must fall in [pseq, seq] of the first update after it
    assert books.prev_chain(50, 55, 55, 48, True) == APPLY
    assert books.prev_chain(50, 55, 55, 48, False) == GAP
    assert books.prev_chain_zero_reset(50, 7, 7, 0, False) == RESET
    assert books.prev_chain_zero_reset(50, 51, 51, 50, False) == APPLY


@pytest.mark.parametrize("args, want", [
    ((100, 101, 101, -1, True), APPLY),     # the first delta after the snapshot: snapshot u + 1
    ((100, 102, 102, -1, True), GAP),       # ... one after it was lost
    ((105, 106, 106, -1, False), APPLY),    # u == last + 1
    ((105, 105, 105, -1, False), STALE),    # duplicate of the last applied
    ((105, 103, 103, -1, False), STALE),    # late: the older half of a reordered pair
    ((105, 107, 107, -1, False), GAP),      # one delta lost (or the newer of a pair came first)
    ((105, 1, 1, -1, False), RESET),        # u=1: service restarted, a full book
    ((0, 1, 1, -1, True), RESET),
])
def test_unit_step_bybit(args, want):
    assert books.unit_step(*args) == want


# -- state machine ----------------------------------------------------------------

def synced(bs, symbol="BTC", snap_id=100):
    out = []
    assert bs.snapshot(symbol, 7, snap_id, SNAP_B, SNAP_A, T, T, out) == Outcome.EMITTED
    return out


def test_snapshot_publishes_top_and_depth_bands():
    bs, _ = make(bands=(0.01, 0.05))
    out = synced(bs)
    assert tops(out) == [(100.0, 1.0, 101.0, 1.5)]
    top = out[0]
    assert top[9] == pytest.approx(100.0 * 1.0 + 101.0 * 1.5) and top[4] == 7 and top[1] == Venue.BINANCE
    depth = [r for r in out if r[0] == Kind.BOOK_DEPTH]
    mid = 100.5
    # 1 %: bids >= 99.495 (100), asks <= 101.505 (101); 5 %: every level
    assert [(r[7], r[8]) for r in depth] == [(mid, 0.01), (mid, 0.05)]
    assert depth[0][10] == pytest.approx(100.0) and depth[0][11] == pytest.approx(151.5)
    assert depth[1][10] == pytest.approx(100 + 198 + 294) and depth[1][11] == pytest.approx(151.5 + 255 + 360.5)
    assert depth[1][9] == pytest.approx(depth[1][10] + depth[1][11])


def test_delta_updates_top_only_when_it_changes():
    clock = Clock()
    bs, _ = make(clock=clock, depth_interval_s=1.0)
    synced(bs)
    out = []
    assert bs.delta("BTC", 7, 99, 105, 90, [(97.0, 4.0)], [], T, T, out) == Outcome.PARSED  # below the top
    assert out == []
    assert bs.delta("BTC", 7, 106, 110, 105, [(100.0, 0.0)], [(101.0, 9.0)], T, T, out) == Outcome.EMITTED
    assert tops(out) == [(99.0, 2.0, 101.0, 9.0)]
    clock.now = int(1.1e9)
    out.clear()
    bs.delta("BTC", 7, 111, 112, 110, [(96.0, 1.0)], [], T, T, out)
    assert kinds(out) == [Kind.BOOK_DEPTH] * 4
    b = bs.book("BTC")
    assert b.levels(2) == ([(99.0, 2.0), (98.0, 3.0)], [(101.0, 9.0), (102.0, 2.5)])
    assert b.last_id == 112


def test_stale_delta_before_snapshot_is_dropped_and_bridge_applies():
    bs, asked = make()
    out = []
    # deltas arrive before the REST snapshot: buffered, nothing published, one snapshot request
    for first, last, prev, bid in [(90, 95, 89, (99.5, 1.0)), (96, 104, 95, (99.6, 1.0)), (105, 110, 104, (99.7, 1.0))]:
        assert bs.delta("BTC", 7, first, last, prev, [bid], [], T, T, out) == Outcome.PARSED
    assert out == [] and asked == ["BTC"]
    bs.snapshot("BTC", 7, 100, SNAP_B, SNAP_A, T, T, out)
    b = bs.book("BTC")
    assert b.synced and b.last_id == 110 and b.stale == 1
    assert 99.5 not in b.bids and b.bids[99.6] == 1.0 and b.bids[99.7] == 1.0
    assert tops(out) == [(100.0, 1.0, 101.0, 1.5)]


def test_snapshot_older_than_buffer_asks_again():
    bs, asked = make()
    bs.delta("BTC", 7, 120, 130, 119, [], [], T, T, [])
    out = []
    bs.snapshot("BTC", 7, 100, SNAP_B, SNAP_A, T, T, out)    # U=120 > lastUpdateId: too old
    b = bs.book("BTC")
    assert not b.synced and b.gaps == 1 and asked == ["BTC", "BTC"]
    assert tops(out) == [] and [r[10] for r in controls(out)] == [Control.BOOK_INVALID]


def test_gap_resyncs_only_that_symbol_and_publishes_nothing_until_resynced():
    bs, asked = make()
    synced(bs, "BTC")
    synced(bs, "ETH")
    out = []
    bs.delta("BTC", 7, 101, 105, 100, [(99.9, 1.0)], [], T, T, out)
    bs.delta("BTC", 7, 111, 115, 110, [(99.8, 1.0)], [], T, T, out)   # 106..110 lost
    assert [r[10] for r in controls(out)] == [Control.BOOK_INVALID]
    assert asked == ["BTC"]
    out.clear()
    bs.delta("BTC", 7, 116, 120, 115, [(100.5, 1.0)], [], T, T, out)
    bs.delta("ETH", 7, 101, 105, 100, [(100.5, 1.0)], [], T, T, out)
    assert tops(out) == [(100.5, 1.0, 101.0, 1.5)]      # ETH only
    assert bs.book("ETH").synced and not bs.book("BTC").synced
    c = bs.counters()
    assert c["book_gaps"] == 1 and c["book_resyncs"] == 1 and c["book_unsynced"] == 1
    out.clear()
    bs.snapshot("BTC", 7, 117, SNAP_B, SNAP_A, T, T, out)
    b = bs.book("BTC")
    assert b.synced and b.last_id == 120 and b.bids[100.5] == 1.0


def test_duplicate_and_reorder():
    bs, _ = make()
    synced(bs)
    out = []
    d1 = (101, 105, 100, [(100.0, 5.0)], [])
    d2 = (106, 108, 105, [(100.0, 6.0)], [])
    d3 = (109, 112, 108, [(100.0, 7.0)], [])
    bs.delta("BTC", 7, *d1, T, T, out)
    bs.delta("BTC", 7, *d1, T, T, out)    # duplicate: dropped
    b = bs.book("BTC")
    assert b.synced and b.stale == 1 and b.bids[100.0] == 5.0
    bs.delta("BTC", 7, *d3, T, T, out)    # d3 before d2: a gap for a pu chain
    assert not b.synced and b.gaps == 1


def test_crossed_book_resyncs():
    bs, asked = make()
    synced(bs)
    out = []
    bs.delta("BTC", 7, 101, 102, 100, [(101.5, 1.0)], [], T, T, out)
    b = bs.book("BTC")
    assert b.crossed == 1 and not b.synced and asked == ["BTC"]
    assert tops(out) == []
    bad = []
    bs2, _ = make()
    bs2.snapshot("X", 1, 5, [(10.0, 1.0)], [(9.0, 1.0)], T, T, bad)   # crossed snapshot is never published
    assert tops(bad) == [] and bs2.book("X").crossed == 1


def test_bad_levels_are_counted_and_resync():
    bs, _ = make()
    out = []
    assert bs.snapshot("BTC", 7, 1, [(float("nan"), 1.0)], SNAP_A, T, T, out) == Outcome.MALFORMED
    synced(bs)
    assert bs.delta("BTC", 7, 101, 102, 100, [(99.0, -1.0)], [], T, T, out) == Outcome.MALFORMED
    b = bs.book("BTC")
    assert b.bad_levels == 2 and not b.synced


def test_u1_reset_replaces_the_book():
    bs, _ = make(books.unit_step, source="resubscribe")
    synced(bs)
    out = []
    bs.delta("BTC", 7, 1, 1, -1, [(50.0, 1.0)], [(51.0, 1.0)], T, T, out)
    b = bs.book("BTC")
    assert b.synced and b.levels(5) == ([(50.0, 1.0)], [(51.0, 1.0)]) and b.last_id == 1
    assert tops(out) == [(50.0, 1.0, 51.0, 1.0)]


def test_resubscribe_source_drops_deltas_before_the_pushed_snapshot():
    bs, asked = make(books.prev_chain, source="resubscribe")
    synced(bs, snap_id=10)
    out = []
    bs.delta("BTC", 7, 20, 20, 18, [], [], T, T, out)     # gap
    bs.delta("BTC", 7, 21, 21, 20, [(99.9, 1.0)], [], T, T, out)
    assert asked == ["BTC"] and not bs.book("BTC").buffer
    bs.snapshot("BTC", 7, 30, SNAP_B, SNAP_A, T, T, out)
    bs.delta("BTC", 7, 31, 31, 30, [(100.2, 1.0)], [], T, T, out)
    b = bs.book("BTC")
    assert b.synced and 99.9 not in b.bids and b.bids[100.2] == 1.0


def test_push_source_never_requests():
    bs, asked = make(None, source="push")
    out = []
    bs.snapshot("BTC", 7, 0, [(10.0, 1.0)], [(9.0, 1.0)], T, T, out)
    assert asked == [] and not bs.book("BTC").synced
    bs.snapshot("BTC", 7, 0, SNAP_B, SNAP_A, T, T, out)
    assert bs.book("BTC").synced and tops(out) == [(100.0, 1.0, 101.0, 1.5)]


def test_unanswered_request_is_repeated_with_backoff():
    clock = Clock()
    bs, asked = make(clock=clock, request_timeout_s=1.0, max_request_interval_s=3.0)
    for ms in (0, 500, 999, 1000, 2500, 2999, 3000, 5999, 6000):
        clock.now = ms * 1_000_000
        bs.delta("BTC", 7, 1, 2, 0, [], [], T, T, [])
    # requests at 0, 1000 (1 s after), 3000 (2 s after), 6000 (3 s cap)
    assert len(asked) == 4 and bs.book("BTC").requests == 4


def test_buffer_is_bounded():
    bs, _ = make(max_buffer=3)
    for i in range(10):
        bs.delta("BTC", 7, i, i, i - 1, [], [], T, T, [])
    b = bs.book("BTC")
    assert len(b.buffer) == 3 and b.buffer_overflows == 7


def test_checksum_mismatch_resyncs():
    bs, _ = make(books.prev_chain, source="resubscribe", checksum=lambda b: int(sum(b.bids.values()) * 10))
    synced(bs, snap_id=1)
    out = []
    bs.delta("BTC", 7, 2, 2, 1, [(97.0, 1.0)], [], T, T, out, checksum=70)
    assert bs.book("BTC").synced
    bs.delta("BTC", 7, 3, 3, 2, [(96.0, 1.0)], [], T, T, out, checksum=999)
    b = bs.book("BTC")
    assert b.checksum_failures == 1 and not b.synced


def test_scale_converts_contracts_and_trim_keeps_the_top():
    bs, _ = make(max_levels=3, depth=2)
    out = []
    bs.snapshot("BTC", 7, 1, [(100.0 - i, 1.0) for i in range(6)], [(101.0 + i, 1.0) for i in range(6)], T, T, out,
                scale=0.01)
    b = bs.book("BTC")
    assert b.bid_px == [98.0, 99.0, 100.0] and b.ask_px == [101.0, 102.0, 103.0]
    assert b.bids[100.0] == pytest.approx(0.01)


def test_attach_uses_the_venue_module():
    class Mod:
        VENUE = Venue.GATE
        BOOK_RULE = staticmethod(books.id_range)
        BOOK_SOURCE = "rest"

    class P:
        flags = 4

    p = P()
    bs = books.attach(p, Mod, depth_levels=50)
    assert p.books is bs and bs.rule is books.id_range and bs.depth == 50 and bs.flags == 4
    assert books.attach(P(), object()) is None


# -- model check: random drops/dups/reorders never publish a wrong book ------------

@pytest.mark.parametrize("rule, source, max_step", [
    (books.pu_chain, "rest", 3),               # Binance: a delta spans 1..3 ids
    (books.unit_step, "resubscribe", 1),       # Bybit: u steps by one; a lost delta is a gap
])
@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**32 - 1))
def test_random_faults_never_publish_a_wrong_book(rule, source, max_step, seed):
    rng = random.Random(seed)
    truth_b = {100.0 - i: 1.0 for i in range(10)}
    truth_a = {101.0 + i: 1.0 for i in range(10)}
    uid = 1000
    history = {uid: (dict(truth_b), dict(truth_a))}
    frames = []
    for _ in range(80):
        first = uid + 1
        uid += rng.randint(1, max_step)
        bids = [(100.0 - rng.randint(0, 12), float(rng.choice([0, 1, 2, 3]))) for _ in range(rng.randint(0, 3))]
        asks = [(101.0 + rng.randint(0, 12), float(rng.choice([0, 1, 2, 3]))) for _ in range(rng.randint(0, 3))]
        for p, q in bids:
            truth_b.pop(p, None) if q == 0 else truth_b.__setitem__(p, q)
        for p, q in asks:
            truth_a.pop(p, None) if q == 0 else truth_a.__setitem__(p, q)
        history[uid] = (dict(truth_b), dict(truth_a))
        frames.append((first, uid, first - 1 if not frames else frames[-1][1], bids, asks))
    delivered = []
    for f in frames:
        r = rng.random()
        if r < 0.05:
            continue
        delivered.append(f)
        if r > 0.95:
            delivered.append(f)
        if r < 0.10 and len(delivered) > 1:
            delivered[-1], delivered[-2] = delivered[-2], delivered[-1]
    bs, asked = make(rule, source)
    checked = 0
    for i, f in enumerate(delivered):
        out = []
        bs.delta("S", 1, *f, T, T, out)
        if asked and i % 7 == 0:      # the snapshot answer comes some frames later
            asked.clear()
            bid_id = f[1]
            tb, ta = history[bid_id]
            bs.snapshot("S", 1, bid_id, sorted(tb.items(), reverse=True), sorted(ta.items()), T, T, out)
        b = bs.book("S")
        if b.synced:
            tb, ta = history[b.last_id]
            assert b.bids == {p: q for p, q in tb.items()} and b.asks == ta
            checked += 1
        else:
            assert tops(out) == []
    assert checked > 0
