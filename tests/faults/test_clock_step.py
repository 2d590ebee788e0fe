"""Fault 10: the wall clock stepped by +-5 s mid-run (faked in-process).

Timers, staleness and back-off must run on the monotonic clock; only event
timestamps may follow the wall clock. ``time.time``/``time.time_ns`` are
replaced by a stepped clock (``time.monotonic*`` untouched), each component
is driven across the step, and its decisions are compared with an unstepped
run.
"""
from __future__ import annotations

import asyncio
import time
import types

import pytest

from engine import wsfeed as wsfeed_mod
from engine.actor_table import ActorTable, actor_table_segment
from engine.rest import WeightBudget
from engine.venues import ConnectionPlan, binance

from .harness import figure, replay_hint, rng

STEPS_S = (+5.0, -5.0)


class SteppedWallClock:
    """A ``time`` module stand-in: :meth:`step` moves the wall clock only, :meth:`advance` lets time pass
    on both clocks (without sleeping)."""

    def __init__(self):
        self.offset_ns = 0     # wall clock only
        self.elapsed_ns = 0    # both clocks

    def step(self, seconds: float) -> None:
        self.offset_ns += int(seconds * 1e9)

    def advance(self, seconds: float) -> None:
        self.elapsed_ns += int(seconds * 1e9)

    def module(self) -> types.SimpleNamespace:
        ns = types.SimpleNamespace(**{k: getattr(time, k) for k in dir(time) if not k.startswith("__")})
        ns.time_ns = lambda: time.time_ns() + self.offset_ns + self.elapsed_ns
        ns.time = lambda: ns.time_ns() / 1e9
        ns.monotonic_ns = lambda: time.monotonic_ns() + self.elapsed_ns
        ns.monotonic = lambda: ns.monotonic_ns() / 1e9
        return ns


def _feed(stale_after_s: float) -> tuple[wsfeed_mod.WsFeed, list, wsfeed_mod._PlanState]:
    plan = ConnectionPlan("market/0", "ws://127.0.0.1:1/x", ("btcusdt@aggTrade",), ("btcusdt@aggTrade",), True)
    written: list = []
    parser = types.SimpleNamespace(lookup=lambda s: 0, parse=None)
    feed = wsfeed_mod.WsFeed(binance, [plan], parser, written.extend, stale_after_s=stale_after_s)
    st = wsfeed_mod._PlanState(plan)
    return feed, written, st


@pytest.mark.fault
@pytest.mark.parametrize("step", STEPS_S, ids=["plus5s", "minus5s"])
def test_stream_staleness_ignores_a_wall_clock_step(monkeypatch, step):
    clock = SteppedWallClock()
    monkeypatch.setattr(wsfeed_mod, "time", clock.module())
    feed, written, st = _feed(stale_after_s=2.0)
    st.reset_freshness(wsfeed_mod.time.monotonic_ns())  # data just arrived on every stream
    clock.step(step)
    if step > 0:   # a live stream must not look 5 s silent
        assert not feed._check_stale(None, st) and written == [], replay_hint("clock/stale")
    else:          # a stream that then really stays silent for 2.5 s (> stale_after_s) must still be caught
        clock.advance(2.5)
        assert feed._check_stale(None, st) and len(written) == 1, replay_hint("clock/stale")


@pytest.mark.fault
@pytest.mark.parametrize("step", STEPS_S, ids=["plus5s", "minus5s"])
def test_rest_budget_and_ban_ignore_a_wall_clock_step(monkeypatch, step):
    r = rng(f"clock/budget/{step}")
    clock = SteppedWallClock()
    budget = WeightBudget(10, window_s=2.0)
    for _ in range(r.randint(6, 10)):
        budget.spend(1)
    budget.block_for(1.5)
    before = (budget.wait_time(1), budget.available())
    monkeypatch.setattr(time, "time", clock.module().time)
    monkeypatch.setattr(time, "time_ns", clock.module().time_ns)
    clock.step(step)
    after = (budget.wait_time(1), budget.available())
    assert after[1] == before[1]
    assert abs(after[0] - before[0]) < 0.05, (before, after, replay_hint("clock/budget"))


@pytest.mark.fault
@pytest.mark.parametrize("step", STEPS_S, ids=["plus5s", "minus5s"])
def test_reconnect_back_off_and_actor_heartbeats_ignore_a_wall_clock_step(monkeypatch, namespace, step):
    clock = SteppedWallClock()
    table = ActorTable.open(actor_table_segment(namespace))
    try:
        row = table.row("feed:binance", pid=1)
        row.beat()
        age_before = {r["name"]: r["heartbeat_age_s"] for r in table.snapshot(counters=False)}["feed:binance"]
        monkeypatch.setattr(time, "time", clock.module().time)
        monkeypatch.setattr(time, "time_ns", clock.module().time_ns)
        clock.step(step)
        age_after = {r["name"]: r["heartbeat_age_s"] for r in table.snapshot(counters=False)}["feed:binance"]
        assert abs(age_after - age_before) < 0.5, (age_before, age_after)

        async def timed_sleep() -> float:
            feed, _, _ = _feed(2.0)
            loop = asyncio.get_running_loop()
            t0 = loop.time()
            task = asyncio.create_task(feed._sleep(0.3))
            await asyncio.sleep(0.05)
            clock.step(step)   # mid-sleep
            await task
            return loop.time() - t0

        slept = asyncio.run(timed_sleep())
        figure("clock_step", f"clock/{step}", step_s=step, heartbeat_age_shift_s=round(age_after - age_before, 4),
               backoff_slept_s=round(slept, 3), backoff_asked_s=0.3)
        assert 0.28 <= slept <= 0.6, slept
    finally:
        table.close()
