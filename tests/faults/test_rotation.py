"""Fault 2: Binance's 24 h forced close, time-compressed.

The simulator closes every socket at ``max_connection_age_s`` (Binance: 24 h;
here ``AGE_S``); the feed rotates at ``rotate_after_s`` (``ROTATE_S``, before
the close), make-before-break: the new socket runs beside the old one until it
delivers data. What must hold across every handover: no RECONNECTED, no GAP,
and per instrument the aggTrade ids received are exactly consecutive (Binance
ids are: none missing, none twice). The control run without rotation shows the
same forced close does lose trades, so the check can fail.

Figure: rotations, the most sockets the simulator saw open at once (2 = the
handover overlapped), and duplicates dropped during the overlaps.
"""
from __future__ import annotations

import asyncio

import pytest

from engine.config import SimulatorConfig
from engine.record import Control, Kind
from engine.simulator import start_in_thread

from .harness import figure, replay_hint, rng, scaled, sim_call, start_venue_feed, wait_for

AGE_S = 1.5
ROTATE_S = 0.8


@pytest.fixture
def sim():
    handle = start_in_thread(SimulatorConfig(rate=400, seed=rng("rotation/sim").randrange(1 << 30),
                                             venues=["binance"], first_cascade_after_s=1e9,
                                             max_connection_age_s=AGE_S))
    yield handle
    handle.stop()


def _trade_ids(run) -> dict[int, list[int]]:
    ids: dict[int, list[int]] = {}
    for r in run.records:
        if r[0] == Kind.TRADE:
            ids.setdefault(r[4], []).append(int(r[10]))
    return ids


async def _rotate(sim, name: str, rotations: int) -> dict:
    run = await start_venue_feed(sim, "binance", n_symbols=3, rotate_after_s=ROTATE_S)
    most_open = 0

    def rotated() -> bool:
        return run.feed.stats.rotations >= rotations

    async def watch_overlap() -> None:
        nonlocal most_open
        while True:
            most_open = max(most_open, await sim_call(sim, lambda: len(sim.sim.server.clients)))
            await asyncio.sleep(0.01)

    watcher = asyncio.create_task(watch_overlap())
    try:
        await wait_for(rotated, rotations * AGE_S + 10, f"{rotations} rotations ({replay_hint(name)})")
    finally:
        watcher.cancel()
        await run.stop()
    assert run.controls(Control.RECONNECTED) == [], ("a forced close got through", replay_hint(name))
    assert run.controls(Control.GAP) == [], replay_hint(name)
    for iid, ids in _trade_ids(run).items():
        missing = sorted(set(range(ids[0], ids[-1] + 1)) - set(ids))
        doubled = len(ids) - len(set(ids))
        assert not missing and not doubled and ids == sorted(ids), (iid, missing[:10], doubled, replay_hint(name))
    assert most_open >= 2, "the handover never overlapped: not make-before-break"
    return figure("rotation_handover", name, rotations=run.feed.stats.rotations, forced_close_s=AGE_S,
                  rotate_after_s=ROTATE_S, most_sockets_open=most_open,
                  overlap_duplicates_dropped=run.feed.stats.duplicates,
                  trades=sum(len(v) for v in _trade_ids(run).values()))


@pytest.mark.fault
@pytest.mark.timeout(60)
def test_rotation_before_the_forced_close_loses_and_doubles_no_trade(sim):
    asyncio.run(_rotate(sim, "rotation/default", scaled(5, 100, False)))


@pytest.mark.fault_heavy
@pytest.mark.timeout(600)
def test_rotation_heavy(sim):
    asyncio.run(_rotate(sim, "rotation/heavy", scaled(5, 100, True)))


@pytest.mark.fault
@pytest.mark.timeout(60)
def test_without_rotation_the_forced_close_loses_trades(sim):
    """The control: the same forced close, no rotation -> one reconnect and a GAP (the check above can fail)."""
    async def main():
        run = await start_venue_feed(sim, "binance", n_symbols=3, rotate_after_s=1e9)
        try:
            await wait_for(lambda: run.controls(Control.GAP), AGE_S + 10, "a GAP after the forced close")
        finally:
            await run.stop()
        assert len(run.controls(Control.RECONNECTED)) >= 1
    asyncio.run(main())
