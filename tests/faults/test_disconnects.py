"""Fault 1: forced disconnects across venues (clean close, abrupt reset, close before the subscribe ack).

Every venue's feed runs as the feed actor builds it (its ``plan()`` and parser,
:func:`harness.start_venue_feed`) against one simulator. A seeded schedule
picks a venue and a mode per fault; after each the test waits for the venue to
be live again. What must hold:

* every server-side close yields exactly one ``Control.RECONNECTED`` record
  (and ``stats.reconnects``), then market data again;
* where trade ids are consecutive (Binance aggTrade), every hole in the ids is
  reported once, by a ``Control.GAP`` right before the first trade after it,
  with the exact count: ``ids sent - received == reported gap``;
* no feed task ever exits.

Figure: reconnect-to-live p50/p99 (fault -> first market-data record after
the RECONNECTED), per mode.

"Close before the subscribe ack" has no switch in the simulator's fault API:
:class:`PreAckTrap` wraps the simulator's ``subscribe`` (called for a
subscription in the URL and for a SUBSCRIBE message alike) so the next
subscription of an armed venue closes the socket instead: its ack is never
sent (a clean close leaves the protocol CLOSING, so the reply is suppressed).
"""
from __future__ import annotations

import asyncio
import collections
import time

import pytest

from engine.config import SimulatorConfig
from engine.record import Control, Kind
from engine.simulator import start_in_thread
from engine.simulator.server import SimServer

from .harness import figure, percentile, replay_hint, scaled, schedule, sim_call, start_venue_feed, wait_for

VENUES = ("binance", "bybit", "okx", "gate", "bitget", "hyperliquid")
MODES = ("clean", "reset", "pre_ack")
LIVE_TIMEOUT_S = 15.0


class PreAckTrap:
    """Close the next subscribing socket of an armed venue before its ack (clean or reset)."""

    def __init__(self, server: SimServer):
        self.server = server
        self.armed: dict[str, str] = {}
        self.sprung: collections.Counter[str] = collections.Counter()
        self._subscribe = server.subscribe
        server.subscribe = self.subscribe

    def arm(self, venue: str, how: str) -> None:
        self.armed[venue] = how

    def subscribe(self, client, names) -> None:
        names = list(names)
        how = self.armed.get(client.venue.name)
        if how is None or not names:
            return self._subscribe(client, names)
        del self.armed[client.venue.name]
        self.sprung[client.venue.name] += 1
        if how == "reset":
            SimServer._reset(client.conn)
        else:   # close frame now; the protocol is CLOSING, so the venue's ack is never written
            proto = client.conn.protocol
            proto.send_close(1001, "simulator: closed before the subscribe ack")
            client.conn.transport.write(b"".join(proto.data_to_send()))


def _check_trade_gaps(run) -> tuple[int, int, int]:
    """Walk one consecutive-id venue's records: every id hole must be announced by one GAP of its size right
    before the trade after it, and no GAP anywhere else. Return (ids sent over the span, received, gap)."""
    last: dict[int, int] = {}
    first: dict[int, int] = {}
    received = reported = 0
    pending: dict[int, float] = {}     # instrument -> GAP count written, waiting for its trade
    for r in run.records:
        kind, iid = r[0], r[4]
        if kind == Kind.CONTROL and r[10] == Control.GAP:
            assert iid not in pending, f"two GAPs in a row for instrument {iid}"
            pending[iid] = r[11]
            reported += int(r[11])
        elif kind == Kind.TRADE:
            tid = int(r[10])
            received += 1
            if iid in last:
                assert tid > last[iid], f"duplicate or out-of-order trade id {tid} after {last[iid]}"
                hole = tid - last[iid] - 1
                announced = pending.pop(iid, 0)
                assert announced == hole, f"instrument {iid}: hole of {hole} ids before {tid} reported as {announced}"
            else:
                first[iid] = tid
            last[iid] = tid
    assert not pending, f"GAP without a following trade: {pending}"
    sent = sum(last[i] - first[i] + 1 for i in last)
    return sent, received, reported


async def _disconnects(sim, name: str, n: int) -> dict:
    trap = await sim_call(sim, PreAckTrap, sim.sim.server)
    runs = {v: await start_venue_feed(sim, v) for v in VENUES}
    for v, run in runs.items():
        await wait_for(lambda: run.first_data(0) is not None, LIVE_TIMEOUT_S, f"{v} live")
    faults = schedule(name, n, actions=MODES, targets=VENUES)
    expected = collections.Counter()
    latency: dict[str, list[float]] = {m: [] for m in MODES}
    for k, fault in enumerate(faults):
        v, mode = fault.target, fault.action
        run = runs[v]
        before = len(run.controls(Control.RECONNECTED))
        mark = len(run.records)
        t0 = time.monotonic()
        if mode == "pre_ack":   # the reconnect after a clean close is closed before its ack
            await sim_call(sim, trap.arm, v, "reset" if k % 2 else "clean")
        closed = await sim_call(sim, sim.sim.disconnect, v, abrupt=(mode == "reset"))
        assert closed >= 1, (str(fault), replay_hint(name))
        want = before + closed + (1 if mode == "pre_ack" else 0)
        expected[v] += closed + (1 if mode == "pre_ack" else 0)

        def live() -> bool:
            rec = run.controls(Control.RECONNECTED, mark)
            return len(rec) + before >= want and run.first_data(rec[-1]) is not None

        await wait_for(live, LIVE_TIMEOUT_S, f"{fault} to come back live ({replay_hint(name)})")
        latency[mode].append(run.times[run.first_data(run.controls(Control.RECONNECTED, mark)[-1])] - t0)
        assert not any(r.task.done() for r in runs.values()), f"a feed exited after {fault}"
    await asyncio.sleep(0.3)   # a late extra reconnect would show here
    for r in runs.values():
        await r.stop()
    assert await sim_call(sim, lambda: dict(trap.sprung)) == {v: c for v, c in collections.Counter(
        f.target for f in faults if f.action == "pre_ack").items()}
    for v, run in runs.items():
        got = len(run.controls(Control.RECONNECTED))
        assert got == expected[v] == run.feed.stats.reconnects, (v, got, expected[v], replay_hint(name))
    sent, received, gap = _check_trade_gaps(runs["binance"])
    assert sent - received == gap, (sent, received, gap, replay_hint(name))
    assert gap > 0 or expected["binance"] == 0, "Binance was disconnected but no trade was missed: nothing checked"
    counters = sim.counters()
    wire = sum(c for s, c in counters["frames_by_stream"].items() if s.endswith("@aggTrade"))
    all_lat = [x for xs in latency.values() for x in xs]
    return figure("reconnect_to_live", name, disconnects=n, reconnects=sum(expected.values()),
                  p50_ms=round(percentile(all_lat, 50) * 1e3, 1), p99_ms=round(percentile(all_lat, 99) * 1e3, 1),
                  **{f"{m}_p50_ms": round(percentile(xs, 50) * 1e3, 1) for m, xs in latency.items() if xs},
                  binance_ids_sent=sent, binance_received=received, binance_gap_reported=gap,
                  binance_wire_frames=wire, binance_lost_in_flight=wire - received)


@pytest.fixture
def sim():
    handle = start_in_thread(SimulatorConfig(rate=400, seed=7, venues=list(VENUES), first_cascade_after_s=1e9,
                                             ping_interval_s=60.0, pong_timeout_s=60.0))
    yield handle
    handle.stop()


@pytest.mark.fault
@pytest.mark.timeout(60)
def test_forced_disconnects_across_venues_reconnect_once_and_count_every_gap(sim):
    asyncio.run(_disconnects(sim, "disconnects/default", scaled(30, 1000, False)))


@pytest.mark.fault_heavy
@pytest.mark.timeout(900)
def test_forced_disconnects_heavy(sim):
    asyncio.run(_disconnects(sim, "disconnects/heavy", scaled(30, 1000, True)))
