"""Fault 4: book faults on every venue's sequence rule, checked against the simulator's true book.

Each venue's feed runs as the feed actor builds it (its ``plan()``, its parser with the listing's contract
sizes, a :class:`~engine.books.BookSet` from the venue's ``BOOK_RULE``/``BOOK_SOURCE``, REST snapshots through
a :class:`~engine.rest.RestPoller` with the venue's ``REST_HEADERS``) for two symbols (Gate: three, see
:data:`WATCHED`) against a simulator serving that venue alone. Faults hit BTC's book stream only:

* ``drop`` / ``duplicate`` / ``reorder`` of one delta frame (the fault API);
* ``crossed``: the next delta carries a bid at the best ask (the simulator's ``render`` wrapped here);
* ``stale_snapshot`` (REST venues): a dropped delta forces a resync whose REST snapshot is served from
  30 updates ago, older than every buffered delta; ``ahead_snapshot``: the book stream lags (``delay``
  fault) while the book resyncs, so the REST snapshot is newer than every delta still on the wire.

The true book is recorded on the simulator's thread: the market's best :data:`N` levels after every
``BookDiff`` and in every snapshot it serves, keyed by the market's update id (the id every venue's
frames carry: Binance/Gate/Bitget/OKX ids, Bybit's ``seq``; Hyperliquid has none, so its book must equal
*one* of the true states). What must hold:

* detection is exact: per fault, the book counters move by exactly :data:`DETECTS` (e.g. a drop is one
  gap and one resync; Bybit's too: its ``u`` steps by one per delta, see :func:`engine.books.unit_step`).
  Hyperliquid pushes whole snapshots, so a dropped, duplicated or reordered push cannot corrupt it: the
  book is always some true state;
* only BTC resyncs: SOL's book (and Gate's ETH's) is never invalidated, never re-requested, and keeps publishing;
* every published update (each parse that wrote BOOK_TOP / BOOK_DEPTH) shows a book whose best N levels,
  and the BOOK_TOP record itself, equal the true book at that update id; after each resync it is the
  true book again.

Figure per venue: faults, detections by kind, resync time (invalidated -> synced) p50/p99, publishes
compared and wrong publishes (asserted 0). ``fault`` runs a few faults per venue; ``fault_heavy`` 40 more.
"""
from __future__ import annotations

import asyncio
import collections
import inspect
import json
import time

import pytest

from engine import venues
from engine.books import attach
from engine.config import SimulatorConfig, VenueConfig
from engine.record import Control, Kind
from engine.rest import RestPoller, WeightBudget
from engine.simulator import start_in_thread
from engine.simulator.market import BookDiff, spec_for
from engine.wsfeed import WsFeed

from .harness import FeedRun, figure, percentile, replay_hint, rng, scaled, schedule, sim_call, wait_for

VENUES = ("binance", "bybit", "okx", "gate", "bitget", "hyperliquid")
SYMBOLS = ("BTCUSDT", "SOLUSDT")     # market symbols; faults hit the first. Gate sizes both in whole contracts
# more symbols watched (never faulted) on one venue: Gate's ETH_USDT (0.01 ETH contracts) rests fractional
# contracts, so its book is true only from a decimal-size snapshot (REST_HEADERS: X-Gate-Size-Decimal)
WATCHED = {"gate": ("ETHUSDT",)}
N = 20                               # levels compared (the market's BookDiff carries its best 20)
DEPTH_LEVELS = {"bybit": 200, "bitget": 20}   # streams whose snapshot holds the whole (<= 60-level) book
REST_LIMIT = {"gate": 100}           # Gate's default 20 would miss levels the simulator (no level-20 window) moves
STALE_AGE = 30                       # updates between a stale snapshot and the state it should show
TIMEOUT_S = 20.0     # how long a step may take on a loaded 2-core box (a bound, not a measured figure)

_GAP = {"gaps": 1, "resyncs": 1}
_DUP = {"stale": 1, "gaps": 0, "resyncs": 0}
_CROSSED = {"crossed": 1, "resyncs": 1, "gaps": 0}
_SEQUENCED = {"drop": _GAP, "duplicate": _DUP, "reorder": _GAP, "crossed": _CROSSED}
_REST = {**_SEQUENCED, "stale_snapshot": {"gaps": 2, "resyncs": 2}, "ahead_snapshot": {"gaps": 0, "resyncs": 1}}
_UNSEEN = {"gaps": 0, "resyncs": 0, "crossed": 0}
# venue -> fault -> exact change of BTC's book counters (what the venue's sequence rule can see)
DETECTS = {
    "binance": _REST, "gate": _REST, "okx": _SEQUENCED, "bitget": _SEQUENCED, "bybit": _SEQUENCED,
    "hyperliquid": {"drop": _UNSEEN, "duplicate": _UNSEEN, "reorder": _UNSEEN, "crossed": _CROSSED},
}
# OKX's simulator labels a snapshot with the last update's seqId (so the next update chains to it, as on OKX)
# while its levels include the best-level changes since (which that next update carries): a book fresh from
# such a snapshot may show a true state from that id up to the next update
LABELLED_BY_LAST_DELTA = {"okx"}
BOOK_MARK = {"binance": "@depth@100ms", "bybit": "orderbook.", "okx": "books:", "gate": "order_book_update:",
             "bitget": "books.", "hyperliquid": "l2Book:"}


def symbols_of(venue: str) -> tuple[str, ...]:
    """The market symbols ``venue``'s run streams: :data:`SYMBOLS`, then its :data:`WATCHED` ones."""
    return SYMBOLS + WATCHED.get(venue, ())


def _norm(levels, spec) -> tuple:
    return tuple((round(p, spec.price_decimals), round(q, spec.qty_decimals)) for p, q in levels[:N])


class Truth:
    """The market's true best levels per symbol and update id, recorded on the simulator's thread by wrapping
    ``market.book_snapshot`` and the venue's ``render``; also where the crossed and stale-snapshot faults live."""

    def __init__(self, market, venue, symbols: tuple[str, ...] = SYMBOLS) -> None:
        self.states = {s: collections.OrderedDict() for s in symbols}
        self.seen = {s: {} for s in symbols}          # normalized state -> update id (id-less venues)
        self.cross_next: set[str] = set()
        self.crossed_sent = 0
        self.stale_next: set[str] = set()
        self.stale_served = 0
        snapshot, render = market.book_snapshot, venue.render

        def book_snapshot(symbol, limit):
            if symbol in self.stale_next and len(self.states[symbol]) > STALE_AGE:
                self.stale_next.discard(symbol)
                self.stale_served += 1
                old = list(self.states[symbol].items())[-STALE_AGE]
                return old[0], list(old[1][0]), list(old[1][1])
            uid, bids, asks = snapshot(symbol, limit)
            self.record(symbol, uid, bids, asks)
            return uid, bids, asks

        def checked_render(events, t, subs, now_ms):
            out = []
            for ev in events:
                if type(ev) is BookDiff and ev.symbol in self.states:
                    self.record(ev.symbol, ev.last_id, ev.top_bids, ev.top_asks)
                    if ev.symbol in self.cross_next:
                        self.cross_next.discard(ev.symbol)
                        self.crossed_sent += 1
                        level = (ev.top_asks[0][0], ev.top_bids[0][1])   # a bid at the best ask
                        ev = ev._replace(bids=[*ev.bids, level], top_bids=[level, *ev.top_bids])
                out.append(ev)
            return render(out, t, subs, now_ms)

        market.book_snapshot = book_snapshot
        venue.render = checked_render

    def record(self, symbol: str, uid: int, bids, asks) -> None:
        if symbol not in self.states:
            return
        spec = spec_for(symbol)
        state = (_norm(bids, spec), _norm(asks, spec))
        states = self.states[symbol]
        states[uid] = state
        self.seen[symbol][state] = uid
        if len(states) > 5000:
            states.popitem(last=False)


class Checker:
    """Wraps the parser: after every call that published book records, the published book must be the true
    book at its update id. Also tracks resync times and which fault window each mismatch fell in."""

    def __init__(self, venue: str, books, truth: Truth, natives: list[str]) -> None:
        self.venue, self.books, self.truth = venue, books, truth
        self.market_of = dict(zip(natives, symbols_of(venue)))
        self.id_of = {s: i + 1 for i, s in enumerate(natives)}
        self.symbol_of = {i: s for s, i in self.id_of.items()}
        self.label = "start"
        self.compared = collections.Counter()       # native symbol -> publishes compared
        self.unverifiable = 0
        self.mismatches: list[tuple] = []           # (label, symbol, update id)
        self.seq_of_u: dict[str, dict[int, int]] = collections.defaultdict(dict)   # Bybit: u -> seq
        self.synced: dict[str, bool] = {}
        self.down_since: dict[str, float] = {}
        self.resync_s: list[float] = []
        self.errors: list[str] = []

    def wrap(self, parser) -> None:
        """Check inside the BookSet's publish step (the exact state it publishes); track sync per parse."""
        publish, parse = self.books._publish, parser.parse

        def checked_publish(b, ts_ex, ts_recv, out, force_depth=False):
            n = len(out)
            publish(b, ts_ex, ts_recv, out, force_depth)
            if len(out) > n:
                self.guarded(self.check, b.symbol, next((r for r in out[n:] if r[0] == Kind.BOOK_TOP), None))

        def checked_parse(payload, ts, out):
            if self.venue == "bybit" and b'"orderbook.' in payload[:40]:
                self.guarded(self.bybit_ids, payload)
            result = parse(payload, ts, out)
            self.guarded(self.sync_times)
            return result
        self.books._publish, parser.parse = checked_publish, checked_parse
        if hasattr(parser, "book_snapshot"):
            snapshot = parser.book_snapshot

            def checked_snapshot(symbol, payload, ts, out):
                result = snapshot(symbol, payload, ts, out)
                self.guarded(self.sync_times)
                return result
            parser.book_snapshot = checked_snapshot

    def guarded(self, fn, *args) -> None:
        """A failing check is recorded (asserted at the end), never raised into the feed's read loop."""
        try:
            fn(*args)
        except Exception as exc:   # noqa: BLE001 - reported by the test
            self.errors.append(repr(exc))

    def bybit_ids(self, payload: bytes) -> None:
        d = json.loads(payload)["data"]
        self.seq_of_u[d["s"]][d["u"]] = d["seq"]

    def sync_times(self) -> None:
        now = time.monotonic()
        for symbol, book in self.books.books.items():
            was = self.synced.get(symbol, False)
            if was and not book.synced:
                self.down_since[symbol] = now
            elif book.synced and symbol in self.down_since:
                self.resync_s.append(now - self.down_since.pop(symbol))
            self.synced[symbol] = book.synced

    def check(self, symbol: str, top) -> None:
        """The book ``symbol`` just published (and its BOOK_TOP record) against the true book at its id."""
        book = self.books.book(symbol)
        msym = self.market_of[symbol]
        spec = spec_for(msym)
        bids, asks = book.levels(N)
        state = (_norm(bids, spec), _norm(asks, spec))
        if self.venue == "hyperliquid":
            ok = state in self.truth.seen[msym]
        else:
            uid = self.seq_of_u[symbol].get(book.last_id) if self.venue == "bybit" else book.last_id
            truth = self.truth.states[msym].get(uid)
            if truth is None:
                self.unverifiable += 1
                return
            ok = state == truth
            if not ok and book.fresh and self.venue in LABELLED_BY_LAST_DELTA:
                later = self.truth.seen[msym].get(state)
                ok = later is not None and later >= uid
        if ok and top is not None:   # the published record is the book's best level
            ok = _norm([(top[7], top[8])], spec) == state[0][:1] and _norm([(top[10], top[11])], spec) == state[1][:1]
        self.compared[symbol] += 1
        if not ok:
            self.mismatches.append((self.label, symbol, book.last_id))


async def _start_feed(sim, venue: str) -> tuple[FeedRun, object, Checker, Truth, list]:
    """The venue's feed as the feed actor builds it, with books, a REST snapshot fetcher and the checks."""
    vm = venues.load(venue)
    ep = sim.endpoints(venue)
    symbols = symbols_of(venue)
    natives = list(ep.get("symbols") or symbols)[:len(symbols)]
    vcfg = VenueConfig(ws_urls=ep["ws_urls"], rest_url=ep["rest_url"], symbols=natives, streams=["book"],
                       depth_levels=DEPTH_LEVELS.get(venue, N))
    ids = {s: i + 1 for i, s in enumerate(natives)}
    kw = {}
    if "contract_sizes" in inspect.signature(vm.Parser).parameters:
        rest = RestPoller(vm, ep["rest_url"], WeightBudget(vm.REST_WEIGHT_PER_MINUTE))
        try:
            kw["contract_sizes"] = {i.symbol: i.contract_size for i in await rest.instruments() or []
                                    if i.contract_size > 0}
        finally:
            await rest.aclose()
    parser = vm.Parser(ids.get, **kw)
    books = attach(parser, vm, N)
    truth = await sim_call(sim, Truth, sim.sim.market, sim.sim.venue(venue), symbols)
    checker = Checker(venue, books, truth, natives)
    checker.wrap(parser)
    closers = []
    fetch = None
    if books.source == "rest":
        rest = RestPoller(vm, ep["rest_url"], WeightBudget(vm.REST_WEIGHT_PER_MINUTE))
        closers.append(rest.aclose)

        async def fetch(symbol):
            limit = REST_LIMIT.get(venue)
            return await rest.get(*vm.depth_snapshot_request(symbol, *([limit] if limit else [])))
    run = FeedRun(venue, None, ids)
    run.feed = WsFeed(vm, vm.plan(vcfg, vcfg.ws_urls), parser, run.write, snapshot_fetcher=fetch,
                      reconnect_initial_s=0.05, reconnect_max_s=0.5,
                      connect_kwargs={"additional_headers": getattr(vm, "WS_HEADERS", {})})
    run.task = asyncio.create_task(run.feed.run(), name=f"feed:{venue}")
    return run, books, checker, truth, closers


def _book_stream(sim, venue: str, native: str) -> str:
    """The simulator's name of ``native``'s book stream (as subscribed by the feed)."""
    mark = BOOK_MARK[venue]
    token = native.lower() if venue == "binance" else native
    names = [s for s in sim.sim.server.subs[venue] if mark in s and token in s]
    assert len(names) == 1, (venue, native, sorted(sim.sim.server.subs[venue]))
    return names[0]


def _resync_counters(books, symbol: str) -> dict:
    """What moves when a symbol's book is invalidated or re-requested (a push venue's snapshots always move)."""
    c = books.book(symbol).counters()
    keys = ("gaps", "resyncs", "crossed", "checksum_failures", "bad_levels", "requests")
    return {k: c[k] for k in keys + (("snapshots",) if books.source != "push" else ())}


async def _settled(books, checker: Checker, native: str, what: str) -> None:
    """The book is synced and has published two more checked updates."""
    await wait_for(lambda: books.book(native) is not None and books.book(native).synced, TIMEOUT_S, what)
    base = checker.compared[native]
    await wait_for(lambda: checker.compared[native] >= base + 2 and books.book(native).synced, TIMEOUT_S, what)


async def _inject(sim, run: FeedRun, books, truth: Truth, venue: str, fault: str, stream: str, native: str) -> None:
    server = sim.sim.server
    if fault in ("drop", "duplicate", "reorder"):
        await sim_call(sim, server.inject, fault, 1, stream=stream)
        await wait_for(lambda: not server.frame_faults, TIMEOUT_S, f"{fault} applied")
    elif fault == "crossed":
        sent = truth.crossed_sent
        truth.cross_next.add(SYMBOLS[0])
        await wait_for(lambda: truth.crossed_sent > sent, TIMEOUT_S, "crossed delta sent")
    elif fault == "stale_snapshot":
        served = truth.stale_served
        await wait_for(lambda: len(truth.states[SYMBOLS[0]]) > 2 * STALE_AGE, TIMEOUT_S, "history to go stale from")
        truth.stale_next.add(SYMBOLS[0])
        await sim_call(sim, server.inject, "drop", 1, stream=stream)
        await wait_for(lambda: not server.frame_faults, TIMEOUT_S, "drop applied")
        await wait_for(lambda: truth.stale_served > served, TIMEOUT_S, "stale snapshot served")
    elif fault == "ahead_snapshot":
        fault_obj = await sim_call(sim, server.inject, "delay", 4, stream=stream)
        await wait_for(lambda: fault_obj.held and len(fault_obj.held) >= 2, TIMEOUT_S, "stream lagging")
        out: list = []
        books.invalidate(native, time.time_ns(), out)   # e.g. a reconnect: the REST snapshot is fetched now
        run.write(out)
        await wait_for(lambda: not server.frame_faults, TIMEOUT_S, "lagging frames released")
    else:
        raise ValueError(fault)


async def _book_faults(sim, venue: str, name: str, extra: int) -> dict:
    run, books, checker, truth, closers = await _start_feed(sim, venue)
    natives = list(checker.id_of)
    btc, *others = natives   # others: SOL and the venue's WATCHED symbols, never faulted
    try:
        for s in natives:
            await _settled(books, checker, s, f"{venue} {s} synced")
        stream = _book_stream(sim, venue, btc)
        others_before = {s: _resync_counters(books, s) for s in others}
        r = rng(name)
        kinds = list(DETECTS[venue])
        faults = kinds + [f.action for f in schedule(name, extra, kinds)]
        r.shuffle(faults)
        detected = collections.Counter()
        for k, fault in enumerate(faults):
            checker.label = f"{k}:{fault}"
            before = books.book(btc).counters()
            await _inject(sim, run, books, truth, venue, fault, stream, btc)
            await _settled(books, checker, btc, f"{venue} {fault} settled ({replay_hint(name)})")
            after = books.book(btc).counters()
            delta = {c: after[c] - before[c] for c in after}
            want = DETECTS[venue][fault]
            assert {c: delta[c] for c in want} == want, (venue, fault, k, delta, replay_hint(name))
            if fault == "ahead_snapshot":   # the deltas older than the snapshot were dropped, not applied
                assert delta["stale"] >= 1, (venue, delta, replay_hint(name))
            for c in ("gaps", "stale", "crossed"):
                detected[c] += delta[c]
        await asyncio.sleep(0.3)
        assert not run.task.done(), f"{venue} feed exited"
    finally:
        await run.stop()
        for close in closers:
            await close()
    assert checker.errors == [], (venue, checker.errors[:3])
    assert checker.mismatches == [], (venue, checker.mismatches[:5], replay_hint(name))
    for s in others:
        assert _resync_counters(books, s) == others_before[s], (venue, f"{s}'s book was disturbed", replay_hint(name))
    invalid = {rec[4] for rec in run.records if rec[0] == Kind.CONTROL and rec[10] == Control.BOOK_INVALID}
    assert invalid == {checker.id_of[btc]}, (venue, invalid)
    assert all(checker.compared[s] >= 2 for s in others) and checker.compared[btc] >= 2 * len(faults)
    assert checker.unverifiable <= checker.compared[btc] // 20, (venue, checker.unverifiable)   # ids all recorded
    times = checker.resync_s or [0.0]
    return figure("book_faults", name, venue=venue, faults=len(faults), kinds=dict(collections.Counter(faults)),
                  gaps=detected["gaps"], stale=detected["stale"], crossed=detected["crossed"],
                  resyncs=len(checker.resync_s), resync_p50_ms=round(percentile(times, 50) * 1e3, 1),
                  resync_p99_ms=round(percentile(times, 99) * 1e3, 1), compared=sum(checker.compared.values()),
                  unverifiable=checker.unverifiable, wrong_publishes=len(checker.mismatches))


@pytest.fixture
def sim(request):
    venue = request.node.callspec.params["venue"]
    handle = start_in_thread(SimulatorConfig(rate=100, seed=7, venues=[venue], symbols=list(symbols_of(venue)),
                                             first_cascade_after_s=1e9, cascade_every_s=0.0,
                                             ping_interval_s=60.0, pong_timeout_s=60.0), throttle=False)
    yield handle
    handle.stop()


@pytest.mark.fault
@pytest.mark.timeout(60)
@pytest.mark.parametrize("venue", VENUES)
def test_book_faults_detected_exactly_and_no_wrong_book_published(sim, venue):
    asyncio.run(_book_faults(sim, venue, f"book_faults/{venue}", scaled(2, 40, False)))


@pytest.mark.fault_heavy
@pytest.mark.timeout(600)
@pytest.mark.parametrize("venue", VENUES)
def test_book_faults_heavy(sim, venue):
    asyncio.run(_book_faults(sim, venue, f"book_faults/{venue}/heavy", scaled(2, 40, True)))
