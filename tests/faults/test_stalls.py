"""Fault 3: silent stalls -- a whole connection, then one stream among many.

* Whole connection: the simulator stops every venue's frames and stops reading
  its sockets (``stall(pings=False)``: a dead peer). Each venue's feed (trades
  and marks of two symbols) must flag a silent stream ``STREAM_STALE`` within
  ``stale_after_s`` plus one check period of the stall, flag every watched
  stream before it replaces the socket (RECONNECTED), and be live again once
  the stall ends.
* One stream: Binance with trades and marks of three symbols; the next frames
  of one stream (seeded choice) are dropped while every other stream and the
  socket's pings keep flowing. The venue restarts that stream when it is
  subscribed again (the test's stand-in: a SUBSCRIBE naming it clears the drop).
  Exactly one ``STREAM_STALE`` (for that stream's instrument), the only client
  messages name that stream alone, no reconnect, the other streams keep their
  pace and their trade ids stay consecutive, and the stream comes back.

Figure: detection latency (fault -> STREAM_STALE record) p50/p99 against the
bound. ``SCHED_SLACK_S`` allows for the event loop being late on a loaded
2-core machine; the bound itself is ``stale_after_s`` + the feed's check period.
"""
from __future__ import annotations

import asyncio
import json
import time

import pytest

from engine.config import SimulatorConfig
from engine.record import Control, Kind
from engine.simulator import start_in_thread
from engine.wsfeed import WsFeed

from .harness import figure, percentile, replay_hint, rng, scaled, sim_call, start_venue_feed, wait_for

VENUES = ("binance", "bybit", "okx", "gate", "bitget", "hyperliquid")
SCHED_SLACK_S = 0.3


def _check_period(feed: WsFeed) -> float:
    """The period of ``WsFeed._serve``'s staleness check (its ``check_s``)."""
    check = max(0.01, min(1.0, feed.stale_after_ns / 4e9))
    return min(check, feed.ping_interval_s / 4) if feed.ping_interval_s else check


@pytest.fixture
def sim():
    handle = start_in_thread(SimulatorConfig(rate=600, seed=rng("stalls/sim").randrange(1 << 30),
                                             venues=list(VENUES), first_cascade_after_s=1e9,
                                             ping_interval_s=60.0, pong_timeout_s=60.0))
    yield handle
    handle.stop()


# -- a whole connection ---------------------------------------------------------------------------------------

async def _connection_stalls(sim, name: str, rounds: int) -> dict:
    stale_s = 1.5   # every venue's marks tick once a second
    runs = {v: await start_venue_feed(sim, v, streams=("trades", "mark"), stale_after_s=stale_s) for v in VENUES}
    latencies: list[float] = []
    replace_latencies: list[float] = []
    try:
        for v, run in runs.items():
            await wait_for(lambda: run.first_data(0) is not None, 15, f"{v} live")
        for n in range(rounds):
            marks = {v: len(run.records) for v, run in runs.items()}
            if n == 0:
                quiet = {v: len(run.controls(Control.STREAM_STALE)) for v, run in runs.items()}
                assert not any(quiet.values()), ("a stream went stale before any stall", quiet)
            t0 = time.monotonic()
            await sim_call(sim, sim.sim.server.stall, None, pings=False)
            for v, run in runs.items():   # every watched stream flagged, then the socket replaced
                await wait_for(lambda: run.controls(Control.RECONNECTED, marks[v]), 15, f"{v} stall detected")
            await sim_call(sim, sim.sim.server.unstall)
            for v, run in runs.items():
                replaced = run.controls(Control.RECONNECTED, marks[v])[0]
                stale = [i for i in run.controls(Control.STREAM_STALE, marks[v]) if i < replaced]
                watched = sum(len(p.watched) for p in run.feed.plans)
                assert len(stale) == watched and {run.records[i][4] for i in stale} == set(run.ids.values()), \
                    (v, len(stale), watched, replay_hint(name))
                took = run.times[stale[0]] - t0
                latencies.append(took)
                replace_latencies.append(run.times[replaced] - t0)
                bound = stale_s + _check_period(run.feed) + SCHED_SLACK_S
                assert took <= bound, f"{v}: stall detected after {took:.3f}s > {bound:.3f}s ({replay_hint(name)})"
            for v, run in runs.items():   # data flows again on the new socket
                await wait_for(lambda: run.first_data(run.controls(Control.RECONNECTED, marks[v])[0]) is not None, 15,
                               f"{v} live after the stall")
            await asyncio.sleep(0.5)   # let the reconnect settle before the next round
    finally:
        for run in runs.values():
            await run.stop()
    return figure("stall_detection_connection", name, stalls=len(latencies), stale_after_s=stale_s,
                  p50_ms=round(percentile(latencies, 50) * 1e3, 1), p99_ms=round(percentile(latencies, 99) * 1e3, 1),
                  max_ms=round(max(latencies) * 1e3, 1),
                  replaced_p50_ms=round(percentile(replace_latencies, 50) * 1e3, 1),
                  replaced_p99_ms=round(percentile(replace_latencies, 99) * 1e3, 1))


@pytest.mark.fault
@pytest.mark.timeout(60)
def test_a_silent_connection_is_detected_and_replaced_on_every_venue(sim):
    asyncio.run(_connection_stalls(sim, "stalls/connection", scaled(1, 20, False)))


@pytest.mark.fault_heavy
@pytest.mark.timeout(600)
def test_silent_connections_heavy(sim):
    asyncio.run(_connection_stalls(sim, "stalls/connection/heavy", scaled(1, 20, True)))


# -- one stream among many ------------------------------------------------------------------------------------

class ClientLog:
    """Every client message Binance's simulator receives; a SUBSCRIBE naming ``restart_on`` clears ``fault``
    (the venue restarts a stream that is subscribed again)."""

    def __init__(self, venue):
        self.messages: list[dict] = []
        self.fault = None
        self.restart_on = ""
        self._handle = venue.handle_text
        venue.handle_text = self.handle_text

    def handle_text(self, client, msg, hub):
        m = json.loads(msg)
        self.messages.append(m)
        if self.fault is not None and m.get("method") == "SUBSCRIBE" and self.restart_on in m.get("params", ()):
            self.fault.n = 0
            self.fault = None
        return self._handle(client, msg, hub)


def _is_stream(run, rec, stream: str) -> bool:
    """Whether record ``rec`` came from Binance stream ``stream`` (trades: aggTrade, marks: markPrice@1s)."""
    suffix = {Kind.TRADE: "@aggTrade", Kind.MARK: "@markPrice@1s"}.get(rec[0])
    return suffix is not None and stream.endswith(suffix) and run.ids[stream.split("@")[0].upper()] == rec[4]


async def _stream_stalls(sim, name: str, rounds: int) -> dict:
    stale_s = 1.5
    r = rng(name)
    log = await sim_call(sim, ClientLog, sim.sim.venue("binance"))
    run = await start_venue_feed(sim, "binance", n_symbols=3, streams=("trades", "mark"), stale_after_s=stale_s)
    watched = run.feed.plans[0].watched
    assert len(watched) == 6, watched
    iid_of = {s: run.ids[s.split("@")[0].upper()] for s in watched}
    latencies: list[float] = []
    stalled: list[str] = []
    try:
        await wait_for(lambda: len({(x[0], x[4]) for x in run.records if x[0] != Kind.CONTROL}) == 6, 15,
                       "every stream live")
        for _ in range(rounds):
            stream = r.choice(watched)
            stalled.append(stream)
            mark, n_msgs = len(run.records), len(log.messages)
            t0 = time.monotonic()
            fault = await sim_call(sim, sim.sim.server.inject, "drop", 10 ** 9, venue="binance", stream=stream)
            log.restart_on, log.fault = stream, fault

            def back() -> bool:
                stale = run.controls(Control.STREAM_STALE, mark)
                return bool(stale) and any(
                    _is_stream(run, x, stream)
                    for x in run.records[stale[0]:])

            await wait_for(back, stale_s * 3, f"{stream}: stale, resubscribed and flowing again")
            stale = run.controls(Control.STREAM_STALE, mark)
            await asyncio.sleep(0.2)   # a second STREAM_STALE or a reconnect would show here
            assert run.controls(Control.STREAM_STALE, mark) == stale and len(stale) == 1, (stream, replay_hint(name))
            assert run.records[stale[0]][4] == iid_of[stream]
            assert run.controls(Control.RECONNECTED) == []
            sent = log.messages[n_msgs:]
            assert sent and all(m["params"] == [stream] for m in sent), (stream, sent, replay_hint(name))
            took = run.times[stale[0]] - t0
            latencies.append(took)
            bound = stale_s + _check_period(run.feed) + SCHED_SLACK_S
            assert took <= bound, f"{stream}: detected after {took:.3f}s > {bound:.3f}s ({replay_hint(name)})"
            _others_kept_pace(run, stream, mark, stale_s)
    finally:
        await run.stop()
    ids: dict[int, list[int]] = {}
    for x in run.records:
        if x[0] == Kind.TRADE:
            ids.setdefault(x[4], []).append(int(x[10]))
    for iid, seq in ids.items():   # the stalled aggTrade stream loses what was dropped; nothing else may
        holes = sum(b - a - 1 for a, b in zip(seq, seq[1:]))
        assert holes == 0 or any(iid_of[s] == iid and s.endswith("aggTrade") for s in stalled), \
            (iid, holes, replay_hint(name))
    return figure("stall_detection_stream", name, stalls=len(latencies), stale_after_s=stale_s, streams=len(watched),
                  p50_ms=round(percentile(latencies, 50) * 1e3, 1), p99_ms=round(percentile(latencies, 99) * 1e3, 1),
                  max_ms=round(max(latencies) * 1e3, 1))


def _others_kept_pace(run, stalled: str, mark: int, stale_s: float) -> None:
    """Every other stream delivered at least every ``stale_s`` from ``mark`` on."""
    last: dict[tuple, float] = {}
    for i in range(mark, len(run.records)):
        x = run.records[i]
        key = (x[0], x[4])
        if x[0] == Kind.CONTROL:
            continue
        if key in last:
            gap = run.times[i] - last[key]
            assert gap < stale_s or _is_stream(run, x, stalled), (key, gap)
        last[key] = run.times[i]


@pytest.mark.fault
@pytest.mark.timeout(60)
def test_one_silent_stream_among_many_is_resubscribed_alone(sim):
    asyncio.run(_stream_stalls(sim, "stalls/stream", scaled(3, 30, False)))


@pytest.mark.fault_heavy
@pytest.mark.timeout(900)
def test_silent_streams_heavy(sim):
    asyncio.run(_stream_stalls(sim, "stalls/stream/heavy", scaled(3, 30, True)))
