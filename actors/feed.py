"""The feed actor: one exchange's WebSocket and REST data into its ring.

``setup`` opens the ring (claiming the producer role) and the instrument
registry; ``run`` registers the configured symbols (with exchangeInfo metadata
when REST answers, else the base stripped from the symbol), then runs the
sockets and the open-interest poller on a uvloop event loop. A task on that
loop beats, heartbeats the ring and publishes counters about once a second,
so a hung loop stops the beats and the supervisor restarts the process.
"""
from __future__ import annotations

import asyncio
import time

import uvloop

from actors.base import Actor
from engine.config import Config
from engine.instruments import Market, Registry, canonical_asset, registry_segment
from engine.record import Kind
from engine.rest import RestPoller, WeightBudget
from engine.ring import Ring, ring_segment
from engine import venues
from engine.wsfeed import WsFeed

__all__ = ["FeedActor"]

_COUNTER_INTERVAL_S = 1.0


class FeedActor(Actor):
    """Stream one venue's market data into ``ring_segment(namespace, venue)``."""

    kind = "feed"

    def __init__(self, cfg: Config, venue: str):
        super().__init__(cfg, f"feed:{venue}")
        self.venue_name = venue
        self.venue = venues.load(venue)
        self.vcfg = getattr(cfg.venues, venue)
        self.ring: Ring | None = None
        self.registry: Registry | None = None
        self.ids: dict[str, int] = {}
        self.last_price: dict[int, float] = {}

    def setup(self) -> None:
        e = self.cfg.engine
        self.ring = Ring.open(ring_segment(e.namespace, self.venue_name), e.ring_capacity)
        self.ring.become_producer()
        self.registry = Registry.open(registry_segment(e.namespace), e.max_instruments, e.max_assets)

    def teardown(self) -> None:
        for res in (self.ring, self.registry):
            if res is not None:
                res.close()

    # -- instruments -----------------------------------------------------------------
    def register(self, infos) -> None:
        """Register the configured symbols, with venue metadata where known."""
        by_symbol = {i.symbol: i for i in infos or ()}
        for symbol in self.vcfg.symbols:
            info = by_symbol.get(symbol)
            base = info.base if info else self.venue.base_from_symbol(symbol)
            asset, units = canonical_asset(base)
            quote = info.quote if info else symbol[len(base):] or "USDT"
            contract = (info.contract_size if info and info.contract_size > 0 else 1.0) * units
            tick = info.tick_size if info else 0.0
            self.ids[symbol] = self.registry.add(self.venue.VENUE, symbol, asset, Market.PERP_LINEAR,
                                                 contract, tick, quote)

    # -- records ---------------------------------------------------------------------
    def write(self, recs: list) -> None:
        self.ring.write_many(recs)
        last = self.last_price
        for r in recs:
            if r[0] == Kind.MARK or r[0] == Kind.TRADE:
                last[r[4]] = r[7]

    # -- run -------------------------------------------------------------------------
    def run(self) -> None:
        uvloop.run(self._main())

    async def _main(self) -> None:
        v = self.vcfg
        rest = RestPoller(self.venue, v.rest_url or self.venue.DEFAULT_REST_URL,
                          WeightBudget(min(v.rest_weight_per_minute, self.venue.REST_WEIGHT_PER_MINUTE)))
        self.register(await rest.instruments())
        plans = self.venue.plan(v, v.ws_urls or None)
        feed = WsFeed(self.venue, plans, self.venue.Parser(self.ids.get), self.write,
                      reconnect_initial_s=v.reconnect_initial_s, reconnect_max_s=v.reconnect_max_s,
                      stale_after_s=v.stale_after_s, rotate_after_s=v.rotate_after_s)
        tasks = [asyncio.create_task(feed.run(), name="ws")]
        if "oi" in v.streams:
            tasks.append(asyncio.create_task(rest.poll_open_interest(
                list(v.symbols), v.oi_poll_interval_s, self.ids.get, lambda iid: self.last_price.get(iid, 0.0),
                self.write, lambda: self.stopping), name="oi"))
        await asyncio.sleep(0)  # let the first connects create their sockets before pinning
        if self.cfg.engine.feed_cores:
            self.pin(self.cfg.engine.feed_cores)
        try:
            await self._housekeeping(feed, rest)
        finally:
            feed.stop()
            for t in tasks[1:]:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await rest.aclose()

    async def _housekeeping(self, feed: WsFeed, rest: RestPoller) -> None:
        """Beat, heartbeat the ring and publish counters until stopping."""
        tick = min(self.beat_interval_s, 0.25)
        next_counters = 0.0
        while not self.stopping:
            self.beat()
            self.ring.heartbeat()
            now = time.monotonic()
            if now >= next_counters:
                next_counters = now + _COUNTER_INTERVAL_S
                counters = feed.stats.as_dict()
                counters["rest_errors"] = rest.errors
                counters["rest_weight_used"] = rest.budget.used
                counters["rest_requests"] = rest.requests
                self.counters(counters)
            await asyncio.sleep(tick)
