"""The Telegram bot actor (``undertow actor bot``): commands answered from the engine, in its own process.

One asyncio event loop runs everything, so the command handlers and the
history they read never race:

* a periodic tick (``bot.poll_interval_ms``) drains every enabled venue's
  ring through the bot's own reader slot (``bot``, starting at the oldest
  record the ring still holds) and the bus (every signal but heartbeats)
  into :class:`engine.bot.history.History`, samples open interest from the
  state table, publishes counters and beats the heartbeat. Ring and bus
  polls never block; the tick sleeps between rounds;
* the python-telegram-bot client (:mod:`engine.bot.app`) long-polls the Bot
  API at ``[alerts.telegram].api_base_url``; if it cannot start (Bot API
  unreachable, token refused) it is retried with back-off while the history
  keeps filling;
* at start, 1-minute candles are bootstrapped from kline REST under the
  bot's own weight budget (never more than the venue's own per-minute
  budget), one pass per :data:`KLINE_SOURCES` entry whose venue is enabled:
  Binance USD-M perps (``/fapi/v1/klines``) and, with ``[venues.binance_spot]``,
  spot (``/api/v3/klines``, its own host and budget), so ``/price``,
  ``/volume`` and ``/cvd`` have spot candles from the first minute; then
  Bybit, OKX, Bitget, Gate and Hyperliquid, each for the perp assets no
  source before it lists, and Bybit and OKX spot for the spot pairs Binance
  spot does not list (a pass waits for those venues' feeds to register
  first), so every minute bootstrapped holds one venue's volume. A failed
  symbol is counted and skipped, never fatal. Only
  closed minutes older than the first record the bot read from *that venue's*
  ring are loaded, and never over a minute built from trades, so no trade is
  counted twice; bootstrapped minutes hold one venue's volume only (and no
  taker split outside Binance);
* with ``[venues.binance_spot]`` enabled, a :class:`engine.bot.spot_tickers.SpotTickers`
  fed by its own one-socket ``!miniTicker@arr`` feed ranks every spot pair
  for ``/top10 spot`` (the feed actors carry only the watched symbols).

The start-up notice is the alert actor's; the bot sends none. Chat
preferences (``/alerts stop``, ``/mute`` ...) are kept in ``bot-prefs.json``
in the alerts' state directory.
"""
from __future__ import annotations

import asyncio
import functools
import logging
import os
import time
from types import ModuleType
from typing import Callable, NamedTuple

from engine.bot.app import Access, BotService, bot_token, build_application, start_bot, stop_bot
from engine.bot.candles import KLINE_PATH, MINUTE_MS, T, fetch_binance_klines, fetch_venue_klines, kline_weight
from engine.bot.commands import BotContext
from engine.bot.history import History, market_class
from engine.bot.market import MarketView
from engine.bot.prefs import Prefs, prefs_path
from engine.bot.spot_tickers import SpotTickers
from engine.bus import Subscriber
from engine.config import Config
from engine.instruments import Market, Registry, canonical_asset, registry_segment
from engine.record import Venue
from engine.ring import Ring, RingReader, ring_segment
from engine.security import curve_client_for
from engine.signals import Heartbeat
from engine.state import StateTable
from engine.supervisor import enabled_venues
from engine.venues import binance, binance_spot, bitget, bybit, bybit_spot, gate, hyperliquid, okx, okx_spot

from .alerts import bus_endpoint, state_dir
from .base import Actor

__all__ = ["BotActor", "READER_NAME", "KlineSource", "KLINE_SOURCES", "kline_targets", "bootstrap_klines",
           "kline_fetch", "covered_keys"]

READER_NAME = "bot"
TICK_BUDGET_S = 0.1            # ring work per tick (a 4096-record batch takes ~30 ms): a backlog spans ticks
MAX_BUS_MESSAGES = 1000        # per tick
LATE_MS = 10_000               # a minute counts as closed this long after its end (late trades)
REGISTRY_WAIT_S = 30.0         # how long the bootstrap waits for the feed to register Binance symbols
COUNTERS_INTERVAL_S = 1.0
RESTART_BACKOFF_S = (1.0, 60.0)
SPOT_TICKER_COUNTERS = ("frames", "malformed", "unknown", "reconnects", "stale")   # of the mini-ticker feed

KLINE_STATS = ("kline_symbols", "kline_candles", "kline_failed", "kline_malformed")

kline_log = logging.getLogger("undertow.bot.klines")


class KlineSource(NamedTuple):
    """One kline bootstrap pass: the venue (its ring and ``[venues.*]`` name) and market whose candles it fills,
    and the REST route; its counters are the ``kline_*`` ones behind ``prefix``."""

    venue_name: str
    venue: int
    market: int
    module: ModuleType                 # the venue module (RestPoller, DEFAULT_REST_URL; kline_request and
                                       # parse_klines where path is "")
    path: str                          # Binance's kline route ("" for the other venues)
    weight: Callable[[int], int] | None   # request weight of a ``limit``-row page (Binance)
    prefix: str


def _venue_source(name: str, venue: int, module: ModuleType, market: int = Market.PERP_LINEAR) -> KlineSource:
    return KlineSource(name, venue, market, module, "", None, f"{name}_")


# in order of preference: a source fills only the assets no earlier source of its market lists
KLINE_SOURCES = (
    KlineSource("binance", Venue.BINANCE, Market.PERP_LINEAR, binance, KLINE_PATH, kline_weight, ""),
    KlineSource("binance_spot", Venue.BINANCE_SPOT, Market.SPOT, binance_spot, binance_spot.KLINE_PATH,
                binance_spot.kline_weight, "spot_"),
    _venue_source("bybit", Venue.BYBIT, bybit),
    _venue_source("okx", Venue.OKX, okx),
    _venue_source("bitget", Venue.BITGET, bitget),
    _venue_source("gate", Venue.GATE, gate),
    _venue_source("hyperliquid", Venue.HYPERLIQUID, hyperliquid),
    _venue_source("bybit_spot", Venue.BYBIT_SPOT, bybit_spot, Market.SPOT),
    _venue_source("okx_spot", Venue.OKX_SPOT, okx_spot, Market.SPOT),
)


def kline_fetch(src: KlineSource, registry) -> Callable:
    """``fetch(get, symbol, minutes, now_ms) -> candles`` for ``src``: Binance's paged klines, else the venue
    module's, with each symbol's contract size from the registry (Gate's klines count contracts)."""
    if src.path:
        return functools.partial(_binance_fetch, path=src.path, weight=src.weight)
    sizes = {i.symbol: i.contract_size for i in registry.all() if i.venue == src.venue}

    async def fetch(get, symbol: str, minutes: int, now_ms: int):
        return await fetch_venue_klines(get, src.module, symbol, minutes, now_ms, sizes.get(symbol, 1.0))
    return fetch


async def _binance_fetch(get, symbol: str, minutes: int, now_ms: int, path: str, weight):
    return await fetch_binance_klines(get, symbol, minutes, now_ms, path=path, weight=weight)


def covered_keys(registry, sources, market: int) -> set[tuple[str, str]]:
    """Candle keys that an instrument of ``market`` on one of ``sources``' venues fills."""
    venues = {s.venue for s in sources}
    return {(i.asset, market_class(i.market)) for i in registry.all() if i.venue in venues and i.market == market}


def kline_targets(registry, max_symbols: int, venue: int = Venue.BINANCE,
                  market: int = Market.PERP_LINEAR, skip=frozenset()) -> list[tuple[str, tuple[str, str]]]:
    """(venue symbol, candle key) to bootstrap: the ``venue``'s instruments of ``market`` (USD-M linear perps by
    default), one symbol per asset (USDT first), no multiplier symbols (1000PEPE klines are priced per 1000), no
    key in ``skip`` (filled by a preferred venue), at most ``max_symbols``."""
    cands = [i for i in registry.all() if i.venue == venue and i.market == market]
    cands.sort(key=lambda i: (i.quote != "USDT", i.id))
    out, seen = [], set()
    for ins in cands:
        key = (ins.asset, market_class(ins.market))
        base = ins.symbol[: -len(ins.quote)] if ins.symbol.endswith(ins.quote) else ins.symbol
        if key in seen or key in skip or canonical_asset(base)[1] != 1.0:
            continue
        seen.add(key)
        out.append((ins.symbol, key))
    return out[:max_symbols]


async def bootstrap_klines(history: History, targets, get, minutes: int, now_ms: int, boundary_ms,
                           stats: dict, path: str = KLINE_PATH, weight=kline_weight, fetch=None) -> None:
    """Load the closed 1-minute klines of every target into ``history.candles``.

    ``get`` is ``RestPoller.get_retrying``; ``path``/``weight`` the kline route (USD-M by default, a
    :class:`KlineSource`'s for spot), or ``fetch`` (:func:`kline_fetch`) for any source; ``boundary_ms()`` is
    called before each load and gives the first
    minute that must not be loaded (the trades the bot reads cover it). Counts go into ``stats``:
    ``kline_symbols``, ``kline_candles``, ``kline_failed`` (request failed), ``kline_malformed`` (bad body).
    """
    from engine.rest import RestError
    fetch = fetch or functools.partial(_binance_fetch, path=path, weight=weight)
    for symbol, key in targets:
        try:
            candles = await fetch(get, symbol, minutes, now_ms)
        except RestError as exc:
            stats["kline_failed"] += 1
            kline_log.warning("kline bootstrap of %s failed: %s", symbol, exc)
            continue
        except (ValueError, IndexError, TypeError) as exc:
            stats["kline_malformed"] += 1
            kline_log.warning("kline bootstrap of %s: unusable reply (%s)", symbol, exc)
            continue
        closed = candles[candles[:, T] + MINUTE_MS <= boundary_ms()]
        stats["kline_candles"] += history.candles.load(key, closed)
        stats["kline_symbols"] += 1


class BotActor(Actor):
    """The ``bot`` process; see the module docstring."""

    kind = "bot"

    def __init__(self, cfg: Config, env: dict | None = None):
        super().__init__(cfg, "bot")
        self.env = os.environ if env is None else env
        self.readers: dict[str, RingReader] = {}
        self.first_ts_ns: dict[str, int] = {}        # venue -> exchange time of the first record read (or of
                                                     # the first poll, when the ring was empty)
        self.sub: Subscriber | None = None
        self.registry = None
        self.table = None
        self.market: MarketView | None = None
        self.history: History | None = None
        self.service: BotService | None = None
        self.app = None
        self.telegram_up = False
        self.stats = dict(records=0, lost=0, signals=0, telegram_start_failures=0, spot_listing_failed=0)
        self.kline_stats = {src.venue_name: dict.fromkeys(KLINE_STATS, 0) for src in KLINE_SOURCES}
        self._kline_pollers: dict[str, object] = {}   # venue name -> its bootstrap's REST client, once it runs
        self.spot_tickers: SpotTickers | None = None  # /top10 spot's all-market mini-tickers, with binance_spot
        self._ticker_feed = None

    # -- lifecycle --------------------------------------------------------
    def setup(self) -> None:
        cfg, eng, b, tg = self.cfg, self.cfg.engine, self.cfg.bot, self.cfg.alerts.telegram
        token = bot_token(self.env)
        if token is None:
            raise RuntimeError("no Telegram bot token: set TELEGRAM_BOT_TOKEN (or the telegram_bot_token credential)")
        self.sub = Subscriber(bus_endpoint(cfg), [""], rcvhwm=cfg.bus.sndhwm, curve=curve_client_for(cfg.bus))
        for venue in enabled_venues(cfg):
            ring = Ring.open(ring_segment(eng.namespace, venue), eng.ring_capacity)
            self.readers[venue] = RingReader(ring, READER_NAME, start="earliest")
        self.registry = Registry.open(registry_segment(eng.namespace), eng.max_instruments, eng.max_assets)
        self.table = StateTable.open(eng.namespace, eng.max_instruments, eng.max_assets)
        self.market = MarketView(self.registry, self.table)
        self.history = History(candle_minutes=b.history_minutes)
        prefs = Prefs(prefs_path(state_dir(cfg)), default_alerts=b.auto_start)
        actors = self._table.snapshot
        if cfg.venues.binance_spot.enabled:
            self.spot_tickers = SpotTickers()

        def context(chat_id: int) -> BotContext:
            return BotContext(self.market, self.history, prefs, cfg, actors=actors, chat_id=chat_id,
                              spot_tickers=self.spot_tickers)

        self.service = BotService(Access(frozenset(tg.chat_ids), frozenset(tg.admin_user_ids), b.group_commands),
                                  context)
        if not tg.chat_ids:
            self.log.warning("[alerts.telegram].chat_ids is empty: the bot answers nobody")
        self.app = build_application(token, tg.api_base_url, self.service)

    def run(self) -> None:
        asyncio.run(self._main())

    def teardown(self) -> None:
        for reader in self.readers.values():
            reader.ring.close()
        if self.sub is not None:
            self.sub.close()
        if self.table is not None:
            self.table.close()
        if self.registry is not None:
            self.registry.close()

    # -- event loop -------------------------------------------------------
    async def _main(self) -> None:
        b = self.cfg.bot
        tasks = [asyncio.create_task(self._telegram(), name="telegram")]
        if b.kline_bootstrap:
            tasks += [asyncio.create_task(self._bootstrap(src), name=f"klines:{src.venue_name}")
                      for src in KLINE_SOURCES if src.venue_name in self.readers]
        if self.spot_tickers is not None:
            self._ticker_feed = self.spot_tickers.feed(self.cfg.venues.binance_spot)
            tasks.append(asyncio.create_task(self._ticker_feed.run(), name="spot-tickers"))
            tasks.append(asyncio.create_task(self._spot_listing(), name="spot-listing"))
        interval = b.poll_interval_ms / 1000.0
        next_oi = next_counters = time.monotonic()
        try:
            while not self.stopping:
                self.poll_rings()
                self.poll_bus()
                now = time.monotonic()
                if now >= next_oi:
                    next_oi = now + b.oi_sample_interval_s
                    self.history.sample_oi(self.market.instruments())
                if now >= next_counters:
                    next_counters = now + COUNTERS_INTERVAL_S
                    self.counters(self._counters())
                self.beat()
                await asyncio.sleep(interval)
        finally:
            if self._ticker_feed is not None:
                self._ticker_feed.stop()
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            if self.telegram_up:
                await stop_bot(self.app)
            self.counters(self._counters())

    def poll_rings(self) -> int:
        """Fold what the rings hold into the history, one batch per ring per round, until they are empty or
        TICK_BUDGET_S has passed (checked after each round); return how many records were read."""
        n = 0
        deadline = time.monotonic() + TICK_BUDGET_S
        active = list(self.readers.items())
        while active:
            busy = []
            for venue, reader in active:
                recs, lost = reader.poll()
                self.stats["lost"] += lost
                if venue not in self.first_ts_ns:
                    stamped = recs["ts_exchange"][recs["ts_exchange"] > 0]
                    self.first_ts_ns[venue] = int(stamped.min()) if len(stamped) else time.time_ns()
                if len(recs):
                    self.history.ingest(recs, self.registry)
                    n += len(recs)
                    busy.append((venue, reader))
            active = busy
            if time.monotonic() >= deadline:
                break
        self.stats["records"] += n
        return n

    def poll_bus(self) -> int:
        n = 0
        while n < MAX_BUS_MESSAGES:
            msg = self.sub.recv(timeout_ms=0)
            if msg is None:
                break
            n += 1
            if not isinstance(msg.signal, Heartbeat):
                self.history.add_signal(msg.signal)
                self.stats["signals"] += 1
        return n

    async def _telegram(self) -> None:
        """Start the PTB client, retrying with back-off: the Bot API may be unreachable for a while."""
        delay, cap = RESTART_BACKOFF_S
        while not self.stopping:
            try:
                await start_bot(self.app)
                self.telegram_up = True
                self.log.info("Telegram bot @%s polling", self.service.username or "?")
                return
            except asyncio.CancelledError:
                raise
            except Exception as exc:   # unreachable API, refused token: counted and retried, history keeps filling
                self.stats["telegram_start_failures"] += 1
                self.log.warning("Telegram bot did not start (%s); retrying in %.0fs", type(exc).__name__, delay)
                try:
                    await stop_bot(self.app)
                except Exception:
                    pass
                await asyncio.sleep(delay)
                delay = min(delay * 2, cap)

    async def _spot_listing(self) -> None:
        """Keep /top10 spot to pairs the exchange lists as trading: read the spot listing at start and every
        ``resolve_interval_s`` (a halted pair keeps its last mini-ticker, so the tickers alone cannot tell)."""
        from engine.rest import RestPoller, WeightBudget
        from engine.venues import binance_spot
        vcfg = self.cfg.venues.binance_spot
        poller = RestPoller(binance_spot, vcfg.rest_url or binance_spot.DEFAULT_REST_URL,
                            WeightBudget(self.cfg.bot.kline_weight_per_minute))
        while True:
            infos = await poller.instruments()
            if infos is None:
                self.stats["spot_listing_failed"] += 1
                await asyncio.sleep(60.0)
                continue
            self.spot_tickers.set_listing(infos)
            if vcfg.resolve_interval_s <= 0:
                return
            await asyncio.sleep(vcfg.resolve_interval_s)

    async def _bootstrap(self, src: KlineSource) -> None:
        """One kline pass: wait for the feed to register ``src``'s instruments, then load their klines under
        the bot's own weight budget on that venue's REST host."""
        from engine.rest import RestPoller, WeightBudget
        b, name = self.cfg.bot, src.venue_name
        before = [s for s in KLINE_SOURCES[:KLINE_SOURCES.index(src)]
                  if s.market == src.market and s.venue_name in self.readers]
        deadline = time.monotonic() + REGISTRY_WAIT_S
        while time.monotonic() < deadline:
            targets = kline_targets(self.registry, b.kline_max_symbols, src.venue, src.market,
                                    covered_keys(self.registry, before, src.market))
            waiting = [s for s in before if not covered_keys(self.registry, [s], s.market)]
            if targets and not waiting:
                break
            await asyncio.sleep(0.5)
        if not targets:
            self.log.info("kline bootstrap: no %s instrument of the market it fills registered (or a preferred "
                          "venue lists them all); skipped", name)
            return
        budget = min(b.kline_weight_per_minute, src.module.REST_WEIGHT_PER_MINUTE)   # the venue's own cap too
        poller = RestPoller(src.module, getattr(self.cfg.venues, name).rest_url or src.module.DEFAULT_REST_URL,
                            WeightBudget(budget))
        now_ms = time.time_ns() // 1_000_000
        self._kline_pollers[name] = poller   # its counters are published live, with kline_failed and the rest
        stats = self.kline_stats[name]
        try:
            await bootstrap_klines(self.history, targets, poller.get_retrying, b.kline_minutes, now_ms,
                                   functools.partial(self._kline_boundary_ms, name), stats,
                                   fetch=kline_fetch(src, self.registry))
        finally:
            await poller.aclose()
        self.log.info("kline bootstrap (%s): %d candles for %d/%d symbols (%d failed, %d malformed)", name,
                      stats["kline_candles"], stats["kline_symbols"], len(targets), stats["kline_failed"],
                      stats["kline_malformed"])

    def _kline_boundary_ms(self, venue: str = "binance") -> int:
        """The first minute ``venue``'s klines must not fill: the minute of the first record read from that
        venue's ring (every later record, backlog included, is newer), and never a minute closed less than
        LATE_MS ago."""
        if venue not in self.first_ts_ns:
            self.poll_rings()
        limit = min(time.time_ns() // 1_000_000 - LATE_MS, self.first_ts_ns[venue] // 1_000_000)
        return limit - limit % MINUTE_MS

    def _counters(self) -> dict[str, float]:
        s, svc, h = self.stats, self.service, self.history
        c = {k: float(v) for k, v in s.items()}
        c.update(bus_gaps=self.sub.gaps, bus_malformed=self.sub.malformed, unknown_instruments=h.unknown_instruments,
                 candle_trades=h.candles.trades, candle_rejected=h.candles.rejected,
                 commands_answered=svc.answered, commands_refused=svc.refused, commands_ignored=svc.ignored,
                 command_errors=svc.errors, telegram_up=float(self.telegram_up))
        for src in KLINE_SOURCES:
            c.update({src.prefix + k: float(v) for k, v in self.kline_stats[src.venue_name].items()})
            if (poller := self._kline_pollers.get(src.venue_name)) is not None:
                c.update({f"{src.prefix}kline_{k}": float(v) for k, v in poller.counters().items()})
        if self.spot_tickers is not None:
            c["spot_tickers"] = float(len(self.spot_tickers.tickers))
            if self._ticker_feed is not None:
                fs = self._ticker_feed.stats.as_dict()
                c.update({f"spot_ticker_{k}": float(fs[k]) for k in SPOT_TICKER_COUNTERS})
        return c
