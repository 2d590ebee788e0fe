"""Seeds, fault schedules and figures shared by the fault tests.

Every fault test draws its randomness from :func:`rng` (seeded by the test's
own name and ``UNDERTOW_FAULT_SEED``, default 7) and builds its fault list
with :func:`schedule`, so a failing run replays exactly: the assertion
message carries the seed, and ``UNDERTOW_FAULT_SEED=<seed> pytest <test>``
repeats the same faults in the same order.

Each test reports its figure through :func:`figure`: printed (see it with
``-s``) and appended as one JSON line to ``$UNDERTOW_FAULT_FIGURES`` when
set; ``bench/fault_figures.py`` runs the suite and prints them all.
"""
from __future__ import annotations

import asyncio
import inspect
import json
import math
import os
import random
import time
import zlib
from dataclasses import dataclass, field
from typing import Any, Sequence

from engine import venues
from engine.config import VenueConfig
from engine.record import Kind
from engine.rest import RestPoller, WeightBudget
from engine.wsfeed import WsFeed

__all__ = ["BASE_SEED", "rng", "Fault", "schedule", "figure", "percentile", "scaled", "replay_hint", "FeedRun",
           "start_venue_feed", "wait_for", "sim_call"]

BASE_SEED = int(os.environ.get("UNDERTOW_FAULT_SEED", "7"))


def rng(name: str) -> random.Random:
    """A generator seeded from ``name`` and the base seed: independent per test, stable across runs."""
    return random.Random(BASE_SEED * 1_000_003 + zlib.crc32(name.encode()))


@dataclass(frozen=True)
class Fault:
    """One scheduled fault: what, where, when (seconds from the start) and its parameters."""

    at_s: float
    action: str
    target: str = ""
    params: dict = field(default_factory=dict)

    def __str__(self) -> str:
        extra = "".join(f" {k}={v}" for k, v in self.params.items())
        return f"t+{self.at_s:.3f}s {self.action} {self.target}{extra}".rstrip()


def schedule(name: str, n: int, actions: Sequence[str], targets: Sequence[str] = ("",),
             spacing_s: tuple[float, float] = (0.0, 0.0)) -> list[Fault]:
    """``n`` faults chosen at random from ``actions`` x ``targets``, spaced by a uniform draw in ``spacing_s``."""
    r = rng(name + "/schedule")
    t = 0.0
    out = []
    for _ in range(n):
        t += r.uniform(*spacing_s)
        out.append(Fault(round(t, 6), r.choice(list(actions)), r.choice(list(targets))))
    return out


def scaled(default: int, heavy: int, heavy_run: bool) -> int:
    """The count for this run: ``default`` in the ``fault`` subset, ``heavy`` behind ``fault_heavy``."""
    return heavy if heavy_run else default


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (``q`` in 0..100) of a non-empty sequence."""
    s = sorted(values)
    k = max(0, min(len(s) - 1, math.ceil(q / 100.0 * len(s)) - 1))
    return s[k]


def figure(name: str, seed_name: str, **values: Any) -> dict:
    """Print one figure and append it to ``$UNDERTOW_FAULT_FIGURES`` (JSON lines)."""
    rec = {"figure": name, "seed": BASE_SEED, "test": seed_name, **values}
    print("FIGURE " + json.dumps(rec, sort_keys=True))
    path = os.environ.get("UNDERTOW_FAULT_FIGURES")
    if path:
        with open(path, "a") as f:
            f.write(json.dumps(rec, sort_keys=True) + "\n")
    return rec


def replay_hint(name: str) -> str:
    """What to put in an assertion message so the failure can be replayed."""
    return f"replay: UNDERTOW_FAULT_SEED={BASE_SEED} pytest -k {name.split('/')[0]}"


# -- one venue's WsFeed on the simulator (faults 1-3) ------------------------------------------------------


class FeedRun:
    """One venue's :class:`~engine.wsfeed.WsFeed` against the simulator, with every record it wrote and the
    monotonic time of each write (for detection and reconnect-to-live latencies)."""

    def __init__(self, venue: str, feed, ids: dict[str, int]):
        self.venue, self.feed, self.ids = venue, feed, ids
        self.records: list[tuple] = []
        self.times: list[float] = []
        self.task = None

    def write(self, recs: list) -> None:
        now = time.monotonic()
        self.records.extend(recs)
        self.times.extend([now] * len(recs))

    def controls(self, code: int, since: int = 0) -> list[int]:
        """Indexes of the CONTROL records with ``code`` written at or after index ``since``."""
        return [i for i in range(since, len(self.records))
                if self.records[i][0] == Kind.CONTROL and self.records[i][10] == code]

    def first_data(self, since: int) -> int | None:
        """Index of the first market-data (non-CONTROL) record at or after ``since``."""
        return next((i for i in range(since, len(self.records)) if self.records[i][0] != Kind.CONTROL), None)

    async def stop(self) -> None:
        self.feed.stop()
        await asyncio.wait_for(self.task, 10)


async def start_venue_feed(sim, venue: str, *, n_symbols: int = 2, streams: Sequence[str] = ("trades",),
                           **feed_kw: Any) -> FeedRun:
    """Start ``venue``'s feed on the simulator as the feed actor builds it (the venue's ``plan()``, its
    parser with the listing's contract sizes), writing into a :class:`FeedRun`; call inside a running loop."""
    vm = venues.load(venue)
    ep = sim.endpoints(venue)
    symbols = list(ep.get("symbols") or sim.sim.cfg.symbols)[:n_symbols]
    vcfg = VenueConfig(ws_urls=ep["ws_urls"], rest_url=ep["rest_url"], symbols=symbols, streams=list(streams))
    ids = {s: i + 1 for i, s in enumerate(symbols)}
    parser = vm.Parser(ids.get)
    if "contract_sizes" in inspect.signature(vm.Parser).parameters:
        rest = RestPoller(vm, ep["rest_url"], WeightBudget(vm.REST_WEIGHT_PER_MINUTE))
        try:
            listing = await rest.instruments() or []
        finally:
            await rest.aclose()
        parser = vm.Parser(ids.get, contract_sizes={i.symbol: i.contract_size for i in listing if i.contract_size > 0})
    run = FeedRun(venue, None, ids)
    run.feed = WsFeed(vm, vm.plan(vcfg, vcfg.ws_urls), parser, run.write,
                      **{"reconnect_initial_s": 0.05, "reconnect_max_s": 0.5, **feed_kw})
    run.task = asyncio.create_task(run.feed.run(), name=f"feed:{venue}")
    return run


async def wait_for(pred, timeout: float, what: str) -> float:
    """Poll ``pred`` on the loop until truthy; return the monotonic time it became so, or fail with ``what``."""
    deadline = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        await asyncio.sleep(0.002)
    return time.monotonic()


async def sim_call(sim, fn, *args: Any, **kw: Any) -> Any:
    """Run ``fn`` (sync or async) on the simulator's loop and await its result without blocking this loop
    (a blocking call would stall the client half of a clean close handshake)."""
    async def invoke() -> Any:
        result = fn(*args, **kw)
        return await result if asyncio.iscoroutine(result) else result
    return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(invoke(), sim.loop))
