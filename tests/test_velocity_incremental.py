"""The velocity kernel's shortcuts (occupancy bits, cached sums of the older buckets) against full re-sums.

:func:`velocity.refresh_row` sums a window as its older buckets (cached until
a liquidation in another bucket, a head move or a new bucket, and summed from
the buckets marked written only) plus the current bucket. These tests rebuild
every column from the same rings after each step, in that order, in plain
Python, and require equal floats bit for bit; against the newest-first
:func:`windows.ring_sums` they must agree up to rounding (counts exactly).
Streams have bursts, late and refused events, quiet gaps longer than every
window and ring, and jumps of days.
"""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.kernels import columns as C
from engine.kernels import velocity
from engine.kernels.windows import ring_sums

T0 = 1_700_000_000_000_000_000
N_KEYS = 3
LAYOUTS = [velocity.VelocityLayout([1.0, 5.0, 20.0, 60.0], 30.0), velocity.VelocityLayout([0.5, 2.0, 10.0], 90.0)]
S = 10**9

gaps = st.one_of(
    st.just(0),                                                 # burst: same instant
    st.integers(0, 400_000_000),                                # within a few fine buckets
    st.integers(-70 * S, 0),                                    # late, some older than the fine ring (refused there)
    st.integers(1, 200).map(lambda s: s * S),                   # past the fine windows and ring
    st.integers(1, 120).map(lambda m: m * 60 * S),              # past the hour ring
    st.integers(20, 60).map(lambda h: h * 3600 * S),            # past the day ring
)
steps = st.lists(st.tuples(st.sampled_from(["liq", "liq", "refresh"]), gaps, st.integers(0, N_KEYS - 1),
                           st.sampled_from([-1, 1]), st.floats(0, 5e6, allow_nan=False)), max_size=80)


def ordered_sums(ring, key, now, widths, out):
    """Window sums in the kernel's order: the older buckets newest first, then the current one."""
    buckets, head = ring.buckets, ring.head
    nb, h = buckets.shape[1], int(head[key])
    held = lambda b: h - nb < b <= h     # noqa: E731
    out[:] = 0.0
    for w, k in enumerate(widths):
        acc = [0.0] * buckets.shape[2]
        for b in range(now - 1, now - int(k), -1):
            if held(b):
                acc = [a + float(v) for a, v in zip(acc, buckets[key, b % nb])]
        if held(now):
            acc = [a + float(v) for a, v in zip(acc, buckets[key, now % nb])]
        out[w, :len(acc)] = acc


def full_row(rings, layout, key, now, sums=ordered_sums):
    """The velocity columns of ``key`` at ``now`` from full re-sums of every ring with ``sums``."""
    out = np.zeros((16, C.DAY_CHANNELS))
    row = np.zeros(C.NCOL)
    sums(rings.fine, key, now // velocity.BUCKET_NS, layout.widths, out)
    row[C.CASCADE_SUMS:C.CASCADE_SUMS + 4] = out[layout.slots[0], :4]
    row[C.MINUTE_SUMS:C.MINUTE_SUMS + 4] = out[layout.slots[1], :4]
    for k, w in enumerate(layout.windows_s):
        s = layout.slots[2 + k]
        row[C.VEL_N + k] = (out[s, 0] + out[s, 1]) / w
        row[C.VEL_USD + k] = (out[s, 2] + out[s, 3]) / w
    sums(rings.hour, key, now // velocity.HOUR_BUCKET_NS, velocity.HOUR_WIDTHS, out)
    for col, i in ((C.M5_SUMS, 0), (C.M15_SUMS, 1), (C.HOUR_SUMS, 2)):
        row[col:col + 4] = out[i, :4]
    sums(rings.day, key, now // velocity.DAY_BUCKET_NS, velocity.DAY_WIDTHS, out)
    row[C.H4_SUMS:C.H4_SUMS + 4] = out[0, :4]
    row[C.DAY_SUMS:C.DAY_SUMS + 4] = out[1, :4]
    row[C.WHALE_DAY:C.WHALE_DAY + 4] = out[1, 4:8]
    return row


def newest_first(ring, key, now, widths, out):
    ring_sums(ring.buckets, ring.head, key, now, widths, out)


SUM_COLUMNS = [C.CASCADE_SUMS, C.MINUTE_SUMS, C.HOUR_SUMS, C.M5_SUMS, C.M15_SUMS, C.H4_SUMS, C.DAY_SUMS, C.WHALE_DAY]


def row_columns(nv):
    return [c + i for c in SUM_COLUMNS for i in range(4)] + [C.VEL_N + k for k in range(nv)] + \
        [C.VEL_USD + k for k in range(nv)]


def assert_same(row, expected, nv, where):
    cols = row_columns(nv)
    got, want = row[cols], expected[cols]
    assert np.array_equal(got, want), (where, [(c, g, w) for c, g, w in zip(cols, got, want) if g != w])


def assert_rounding_only(row, plain, nv, where):
    """Against newest-first ring_sums: counts equal, USD within a few ulps of the window's total."""
    counts = [c + i for c in SUM_COLUMNS for i in (C.N_LONG, C.N_SHORT)] + [C.VEL_N + k for k in range(nv)]
    assert np.array_equal(row[counts], plain[counts]), where
    cols = row_columns(nv)
    np.testing.assert_allclose(row[cols], plain[cols], rtol=1e-12, atol=1e-6, err_msg=str(where))


def assert_bits_mark_written(rings):
    """A bit is set exactly where a fine bucket holds a liquidation (every one adds 1 to a count channel)."""
    for ring in (rings.fine, rings.hour, rings.day):
        slots = np.arange(ring.buckets.shape[1])
        bits = (ring.bits[:, slots >> 6] >> (slots & 63)) & 1
        assert np.array_equal(bits == 1, (ring.buckets[:, :, 0] + ring.buckets[:, :, 1]) > 0)


def replay(layout, script, rings=None):
    """Run ``script`` through add_liquidation / refresh_row, checking every refreshed row; return the rings."""
    rings = rings or velocity.VelocityRings(layout, N_KEYS)
    rows = np.zeros((N_KEYS, C.NCOL))
    scratch = np.zeros((16, C.DAY_CHANNELS))
    t = clock = T0
    for i, (op, gap, key, side, usd) in enumerate(script):
        t += gap
        clock = max(clock, t)
        tup = rings.as_tuple()
        if op == "liq":
            velocity.add_liquidation(tup, key, t, side, usd, usd >= 1e6)
            assert_bits_mark_written(rings)
        for k in {key, (key + 1) % N_KEYS}:       # the key just touched and one left alone
            velocity.refresh_row(tup, k, clock, layout.widths, layout.slots, layout.windows_s, scratch, rows[k])
            nv = len(layout.windows_s)
            assert_same(rows[k], full_row(rings, layout, k, clock), nv, (i, k))
            assert_rounding_only(rows[k], full_row(rings, layout, k, clock, newest_first), nv, (i, k))
    return rings


@pytest.mark.property
@pytest.mark.parametrize("layout", LAYOUTS, ids=["default", "wide"])
@settings(max_examples=80, deadline=None)
@given(script=steps)
def test_shortcuts_equal_full_sums(layout, script):
    replay(layout, script)


@pytest.mark.unit
def test_burst_then_silence_then_wrap():
    """A burst in one bucket, a late event, then gaps of exactly the ring lengths and one past them."""
    layout = LAYOUTS[0]
    ring_ns = layout.n_buckets * velocity.BUCKET_NS
    script = [("liq", 0, 0, 1, 1000.0 + i) for i in range(50)]
    script += [("liq", -3 * S, 0, -1, 7.5), ("liq", ring_ns - velocity.BUCKET_NS, 0, 1, 2.0),
               ("refresh", velocity.BUCKET_NS, 0, 1, 0.0), ("liq", 0, 0, 1, 3.0),
               ("liq", 64 * velocity.HOUR_BUCKET_NS, 0, 1, 4.0), ("refresh", 128 * velocity.DAY_BUCKET_NS, 0, 1, 0.0),
               ("liq", -40 * S, 0, 1, 5.0)]
    rings = replay(layout, script)
    assert rings.fine.bits[0].any()   # the last late event still landed in the fine ring


@pytest.mark.unit
def test_grow_keeps_bits_and_caches():
    layout = LAYOUTS[0]
    script = [("liq", S // 3, k % N_KEYS, 1, 10.0 * k) for k in range(30)]
    rings = replay(layout, script)
    parts = [(ring, name) for ring in (rings.fine, rings.hour, rings.day)
             for name in ("buckets", "head", "marks", "older")]
    before = [getattr(ring, name).copy() for ring, name in parts]
    rings.grow(N_KEYS + 2)
    for (ring, name), old in zip(parts, before):
        new = getattr(ring, name)
        assert new.shape[0] == N_KEYS + 2 and np.array_equal(new[:N_KEYS], old)
    assert not rings.fine.bits[N_KEYS:].any() and (rings.day.at[N_KEYS:] == velocity.EMPTY).all()
    replay(layout, script, rings)       # and it goes on matching the full sums


@pytest.mark.unit
def test_late_event_after_a_refresh_of_a_later_bucket():
    """A key refreshed at the clock, then a late liquidation past its head but before the clock's bucket."""
    layout = LAYOUTS[0]
    script = [("liq", 0, 0, 1, 5.0), ("liq", 10 * S, 2, 1, 6.0),    # key 2, then key 0 refreshed 10 s on
              ("liq", -3 * S, 0, 1, 7.0), ("liq", -2 * S, 0, -1, 8.0)]
    replay(layout, script)
