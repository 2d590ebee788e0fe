"""The feed actor: one exchange's WebSocket and REST data into its ring.

``setup`` opens the ring (claiming the producer role) and the instrument
registry. ``run`` resolves the venue's ``symbols`` setting (a list, ``all`` or
``top:N``; :mod:`engine.symbols`) over REST, registers them (venue metadata
where REST answered, else the base stripped from the symbol), then runs the
sockets and the tiered open-interest pollers on a uvloop event loop, plus the
OI poller of the venue's coin- and USDC-margined perps (:mod:`engine.margin_oi`).
Every REST call of the venue shares ONE :class:`~engine.rest.WeightBudget`.

A selector is re-resolved every ``resolve_interval_s``: new listings are
registered and get sockets of their own (existing sockets are not touched),
and the open-interest tiers are planned again. Symbols that drop out of the
selection keep streaming until the actor restarts.

A task on the loop beats, heartbeats the ring and publishes counters about
once a second, so a hung loop stops the beats and the supervisor restarts
the process.
"""
from __future__ import annotations

import asyncio
import inspect
import time

import msgspec
import uvloop

from actors.base import Actor
from engine.books import attach as attach_books
from engine.config import Config
from engine.instruments import Registry, canonical_asset, registry_segment
from engine.margin_oi import MarginOiPoller, streamed_price
from engine.record import Kind
from engine.rest import RestPoller, WeightBudget
from engine.ring import Ring, ring_segment
from engine import symbols, venues
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
        self.budget_per_minute = min(self.vcfg.rest_weight_per_minute, self.venue.REST_WEIGHT_PER_MINUTE)
        self.ring: Ring | None = None
        self.registry: Registry | None = None
        self.ids: dict[str, int] = {}
        self.last_price: dict[int, float] = {}
        self.volumes: dict[str, float] = {}
        self.feeds: list[WsFeed] = []
        self.feed_tasks: list[asyncio.Task] = []
        self.oi_tasks: list[asyncio.Task] = []
        self.oi_plan: symbols.OiSchedule | None = None
        self.retired: list[asyncio.Task] = []
        self.contract_sizes: dict[str, float] = {}   # native symbol -> base units per contract (instrument list)
        self.margin_oi: MarginOiPoller | None = None

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
    def register(self, resolution: symbols.Resolution) -> list[str]:
        """Register the resolved symbols not registered yet; return those newly added."""
        fresh = [s for s in resolution.symbols if s not in self.ids]
        self.ids.update(symbols.register(self.registry, self.venue, fresh, resolution.infos))
        self.contract_sizes.update({s: i.contract_size for s, i in resolution.infos.items() if i.contract_size > 0})
        return [s for s in fresh if s in self.ids]

    def lookup(self, symbol: str) -> int | None:
        """The parsers' instrument id of ``symbol``: a streamed symbol, else a margin-OI contract.

        A market-wide channel (OKX ``liquidation-orders``) also carries the inverse/USDC swaps the margin-OI
        poller registered; they stay out of ``self.ids``, whose membership stops the poller polling them.
        """
        iid = self.ids.get(symbol)
        if iid is None and self.margin_oi is not None:
            return self.margin_oi.ids.get(symbol)
        return iid

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
        rest = RestPoller(self.venue, v.rest_url or self.venue.DEFAULT_REST_URL, WeightBudget(self.budget_per_minute))
        background: list[asyncio.Task] = []
        # Beats start first: resolving symbols may wait out REST retries, and an actor that
        # does not beat meanwhile is taken for hung; a stop during start-up cancels it.
        startup = asyncio.create_task(self._startup(rest, background), name="startup")
        try:
            await self._housekeeping(rest, startup)
        finally:
            startup.cancel()
            await asyncio.gather(startup, return_exceptions=True)
            for feed in self.feeds:
                feed.stop()
            for t in background + self.oi_tasks:
                t.cancel()
            await asyncio.gather(*self.feed_tasks, *background, *self.oi_tasks, *self.retired,
                                 return_exceptions=True)
            await rest.aclose()

    async def _startup(self, rest: RestPoller, background: list[asyncio.Task]) -> None:
        v = self.vcfg
        resolution = await symbols.resolve(v, self.venue, rest, self.venue_name)
        self.volumes = resolution.volumes
        self._start_feed(rest, self.register(resolution))
        self._plan_oi(rest)
        self._start_margin_oi(rest, background)
        if isinstance(v.symbols, str) and v.resolve_interval_s > 0:
            background.append(asyncio.create_task(self._re_resolve(rest), name="resolve"))
        await asyncio.sleep(0)  # let the first connects create their sockets before pinning
        if self.cfg.engine.feed_cores:
            self.pin(self.cfg.engine.feed_cores)

    def _new_feed(self, v, rest: RestPoller, plans) -> WsFeed:
        venue = self.venue
        # venues quoting contracts (OKX ctVal, Gate quanto_multiplier) need the listing's sizes
        takes_sizes = "contract_sizes" in inspect.signature(venue.Parser).parameters
        parser = venue.Parser(self.lookup, contract_sizes=self.contract_sizes) if takes_sizes \
            else venue.Parser(self.lookup)
        attach_books(parser, venue, v.depth_levels)   # venues without BOOK_SOURCE keep no books
        snapshot_request = getattr(venue, "depth_snapshot_request", None)
        feed = WsFeed(venue, plans, parser, self.write,
                      reconnect_initial_s=v.reconnect_initial_s, reconnect_max_s=v.reconnect_max_s,
                      stale_after_s=v.stale_after_s, rotate_after_s=v.rotate_after_s,
                      snapshot_fetcher=(lambda symbol: rest.get(*snapshot_request(symbol))) if snapshot_request else None,
                      connect_kwargs={"additional_headers": getattr(venue, "WS_HEADERS", {})})
        return feed

    def _start_feed(self, rest: RestPoller, new_symbols: list[str]) -> None:
        """Run sockets for ``new_symbols`` (the venue's plan() shards them) beside any running ones."""
        if not new_symbols:
            return
        v = msgspec.structs.replace(self.vcfg, symbols=new_symbols)
        plans = self.venue.plan(v, v.ws_urls or None)
        n = len(self.feeds)
        if n:   # keep socket names unique across feeds
            plans = [p._replace(key=f"{p.key}+{n}") for p in plans]
        feed = self._new_feed(v, rest, plans)
        self.feeds.append(feed)
        self.feed_tasks.append(asyncio.create_task(feed.run(), name=f"ws+{n}"))

    def _plan_oi(self, rest: RestPoller) -> None:
        """(Re)start the open-interest pollers on a tier plan that fits the venue's weight budget."""
        v = self.vcfg
        if ("oi" not in v.streams or getattr(self.venue, "oi_request", None) is None
                or getattr(self.venue, "OI_STREAMED", False)):   # the socket pushes OI: no REST polls
            return
        for t in self.oi_tasks:
            t.cancel()
        self.retired.extend(self.oi_tasks)   # awaited at shutdown
        self.oi_plan = symbols.oi_schedule(list(self.ids), self.volumes, v, self.venue, self.budget_per_minute)
        ref_price = lambda iid: self.last_price.get(iid, 0.0)
        self.oi_tasks = [
            asyncio.create_task(rest.poll_open_interest(tier, interval, self.ids.get, ref_price, self.write,
                                                        lambda: self.stopping), name=f"oi/{n}")
            for n, (tier, interval) in enumerate(self.oi_plan.tiers())]

    def _start_margin_oi(self, rest: RestPoller, background: list[asyncio.Task]) -> None:
        """Poll the coin- and USDC-margined perps of ``margin_oi.assets`` (engine/margin_oi.py) on the same budget."""
        m = self.cfg.margin_oi
        if not m.enabled or "oi" not in self.vcfg.streams:
            return
        self.margin_oi = _SizingMarginOi(self.venue_name, self.venue, rest, self.registry, m.assets, m.interval_s,
                                         self.budget_per_minute, streamed_price(self.registry, self.ids, self.last_price),
                                         self.write, skip=self.ids.__contains__, sizes=self.contract_sizes)
        background.append(asyncio.create_task(self.margin_oi.run(lambda: self.stopping), name="margin-oi"))

    async def _re_resolve(self, rest: RestPoller) -> None:
        """Every ``resolve_interval_s``: add new listings; keep everything already streaming."""
        v = self.vcfg
        while not self.stopping:
            await asyncio.sleep(v.resolve_interval_s)
            resolution = await symbols.resolve(v, self.venue, rest, self.venue_name)
            if resolution.source != "rest":
                continue   # REST failed: keep what runs
            hot_before = self.oi_plan.hot if self.oi_plan else []
            self.volumes = resolution.volumes or self.volumes
            added = self.register(resolution)
            if added:
                self.log.info("%d new instruments: %s", len(added), ", ".join(added[:20]))
                self._start_feed(rest, added)
            if added or (self.oi_plan and symbols.rank(list(self.ids), self.volumes)[:len(hot_before)] != hot_before):
                self._plan_oi(rest)

    async def _housekeeping(self, rest: RestPoller, startup: asyncio.Task) -> None:
        """Beat, heartbeat the ring and publish counters until stopping."""
        tick = min(self.beat_interval_s, 0.25)
        next_counters = 0.0
        while not self.stopping:
            if startup.done() and not startup.cancelled() and startup.exception() is not None:
                raise startup.exception()   # the actor exits; the supervisor restarts it
            self.beat()
            self.ring.heartbeat()
            now = time.monotonic()
            if now >= next_counters:
                next_counters = now + _COUNTER_INTERVAL_S
                self.counters(self.counter_values(rest))
            await asyncio.sleep(tick)

    def counter_values(self, rest: RestPoller) -> dict[str, float]:
        """Every socket's stats summed, the REST counters, and the symbol/OI plan."""
        counters: dict[str, float] = {}
        for feed in self.feeds:
            for k, val in feed.stats.as_dict().items():
                counters[k] = counters.get(k, 0) + val
        counters.update(rest.counters())
        counters["symbols"] = len(self.ids)
        counters["connections"] = sum(len(f.plans) for f in self.feeds)
        if self.margin_oi is not None:
            counters.update(self.margin_oi.counters())
        if self.oi_plan is not None:
            counters["oi_hot_interval_s"] = self.oi_plan.hot_interval_s
            counters["oi_tail_interval_s"] = self.oi_plan.tail_interval_s
        return counters


class _SizingMarginOi(MarginOiPoller):
    """The margin-OI poller that also gives the feed's parsers (``sizes``) each contract's listing size once
    discovered, so the contracts' records on the feed's sockets (OKX liquidations) convert from contracts."""

    def __init__(self, *args, sizes: dict[str, float], **kwargs):
        super().__init__(*args, **kwargs)
        self.sizes = sizes

    async def discover(self):
        found = await super().discover()
        for c in found:
            # Contract.contract_size is per canonical unit (1000PEPE -> PEPE); a parser wants the listing's own
            units = 1.0 if c.market.quote == "USD" else canonical_asset(self.venue.base_from_symbol(c.symbol))[1]
            self.sizes.setdefault(c.symbol, c.contract_size / units)
        return found
