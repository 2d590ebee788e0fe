"""Venue-agnostic WebSocket connection manager.

One :class:`WsFeed` runs every socket of one venue on an asyncio loop. Per
:class:`~engine.venues.ConnectionPlan` it:

* connects, and subscribes (in the URL, or by the venue's subscribe messages
  spaced ``MESSAGE_INTERVAL_S`` apart);
* stamps each frame with ``time.time_ns()`` the moment ``recv`` returns, hands
  it to the venue parser and writes the records through ``write``;
* reconnects after any drop with capped, jittered, unlimited exponential
  back-off, resubscribing from the stored plan, and writes exactly one
  ``Control.RECONNECTED`` record per drop;
* watches every regularly ticking stream: silent for ``stale_after_s`` ->
  ``Control.STREAM_STALE`` and a resubscribe; every watched stream silent, or
  one silent for three periods -> reconnect;
* rotates the socket before the venue's forced close (``rotate_after_s``),
  make-before-break: the new socket runs beside the old one until it delivers
  data, and duplicate trades / liquidations across the handover are dropped;
* after a reconnect, compares the first trade id per instrument with the last
  one seen and writes ``Control.GAP`` (``aux2`` = missed ids) when trades were lost;
* resyncs one symbol's order book when the parser's :class:`engine.books.BookSet`
  asks (``books.on_resync``): fetches the REST snapshot through the injected
  ``snapshot_fetcher(symbol) -> bytes`` and hands it to ``parser.book_snapshot``,
  or, for venues whose snapshot comes with a (re)subscription, unsubscribes and
  resubscribes that symbol's book streams (the venue module's
  ``is_book_stream(stream)`` and ``unsubscribe_messages(streams, first_id)``).

websockets answers server pings by itself (the protocol layer queues the pong
on receipt of a ping); ``tests/test_wsfeed.py`` pins that.

Control records carry ``instrument = CONNECTION_WIDE`` when they concern a
whole socket; consumers must check ``kind == CONTROL`` before indexing by
instrument.
"""
from __future__ import annotations

import asyncio
import logging
import random
import time
from collections import deque
from types import ModuleType
from typing import Awaitable, Callable

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from engine.record import Control, Flag, Kind
from engine.venues import ConnectionPlan, Outcome

__all__ = ["WsFeed", "FeedStats", "CONNECTION_WIDE", "backoff_delay", "control_record"]

log = logging.getLogger("undertow.wsfeed")

CONNECTION_WIDE = 0xFFFFFFFF
_STALE_RECONNECT_PERIODS = 3
_HANDOVER_TIMEOUT_S = 10.0
_OVERLAP_KEYS = 200_000
_SNAPSHOT_RETRY_S = (0.5, 1.0, 2.0)   # waits between failed snapshot fetches of one resync
_TRADE, _LIQ = Kind.TRADE, Kind.LIQUIDATION
_CAPPED = Flag.CAPPED


def backoff_delay(attempt: int, initial_s: float, max_s: float, rand: Callable[[], float] = random.random) -> float:
    """Delay before reconnect ``attempt`` (0-based): capped exponential with equal jitter."""
    cap = min(max_s, initial_s * (2.0 ** min(attempt, 62)))
    return cap * (0.5 + 0.5 * rand())


def control_record(venue: int, code: int, ts_ns: int, instrument: int = CONNECTION_WIDE, count: float = 0.0) -> tuple:
    """A CONTROL record tuple (``aux`` = code, ``aux2`` = count)."""
    return (Kind.CONTROL, venue, 0, 0, instrument, ts_ns, ts_ns, 0.0, 0.0, 0.0, float(code), float(count))


class FeedStats:
    """Counters of one feed, read by the actor once a second."""

    __slots__ = ("frames", "outcomes", "kinds", "reconnects", "stale", "gaps", "duplicates",
                 "rotations", "connects", "subscribes_sent", "pings_sent", "snapshot_fetches",
                 "snapshot_errors", "book_resubscribes", "extra", "started", "connected_s", "open_since",
                 "plans", "liq_slots", "capped_liquidations", "capped_slots", "saturated_slots")

    def __init__(self) -> None:
        self.frames = 0
        self.outcomes = [0] * len(Outcome)
        self.kinds = [0] * 8
        self.reconnects = 0
        self.stale = 0
        self.gaps = 0
        self.duplicates = 0
        self.rotations = 0
        self.pings_sent = 0
        self.connects = 0
        self.subscribes_sent = 0
        self.snapshot_fetches = 0
        self.snapshot_errors = 0
        self.book_resubscribes = 0
        self.extra: Callable[[], dict] | None = None   # e.g. the book counters, merged into as_dict()
        # coverage: how much of the time each planned socket was connected (monotonic seconds)
        self.started = time.monotonic()
        self.connected_s = 0.0
        self.open_since: dict[str, float] = {}
        self.plans = 0
        # capped liquidation streams (Flag.CAPPED: Binance 1/symbol/s, OKX): a liquidation in the 1 s slot
        # right after the previous one of its symbol means the cap was probably binding (saturated)
        self.liq_slots = 0              # (symbol, 1 s slot) pairs with at least one liquidation, every stream
        self.capped_liquidations = 0
        self.capped_slots = 0
        self.saturated_slots = 0

    def connected(self, key: str, up: bool) -> None:
        """Record socket ``key`` going up or down (for the connected share of time)."""
        now = time.monotonic()
        if up:
            self.open_since.setdefault(key, now)
        elif key in self.open_since:
            self.connected_s += now - self.open_since.pop(key)

    def coverage(self) -> dict[str, float]:
        """Connected share of time over all planned sockets, and the capped streams' saturation."""
        now = time.monotonic()
        up = self.connected_s + sum(now - t for t in self.open_since.values())
        span = max(1e-9, (now - self.started) * max(1, self.plans))
        return {"connected_share": min(1.0, up / span), "liq_slots": self.liq_slots,
                "capped_liquidations": self.capped_liquidations,
                "capped_slots": self.capped_slots, "saturated_slots": self.saturated_slots,
                "saturation_share": self.saturated_slots / self.capped_slots if self.capped_slots else 0.0}

    def as_dict(self) -> dict[str, float]:
        d = {"frames": self.frames, "reconnects": self.reconnects, "stale": self.stale, "gaps": self.gaps,
             "duplicates": self.duplicates, "rotations": self.rotations, "connects": self.connects, "pings_sent": self.pings_sent}
        for o in Outcome:
            d[o.name.lower()] = self.outcomes[o]
        for k, name in Kind.NAMES.items():
            d[f"events_{name}"] = self.kinds[k]
        if self.extra is not None or self.snapshot_fetches:
            d.update(snapshot_fetches=self.snapshot_fetches, snapshot_errors=self.snapshot_errors,
                     book_resubscribes=self.book_resubscribes)
        d.update(self.coverage())
        if self.extra is not None:
            d.update(self.extra())
        return d


class _Socket:
    """One live socket: its client messages are rate limited."""

    def __init__(self, ws: ClientConnection, interval_s: float):
        self.ws = ws
        self.interval_s = interval_s
        self.last_send = 0.0
        self.data_frames = 0
        self.send_lock = asyncio.Lock()

    async def send_spaced(self, msgs: list[bytes]) -> None:
        async with self.send_lock:
            loop = asyncio.get_running_loop()
            for m in msgs:
                wait = self.last_send + self.interval_s - loop.time()
                if wait > 0:
                    await asyncio.sleep(wait)
                await self.ws.send(m.decode())
                self.last_send = loop.time()


class _PlanState:
    """What survives reconnects of one plan: stream freshness and gap checks."""

    def __init__(self, plan: ConnectionPlan):
        self.plan = plan
        self.last_data: dict[str, int] = {}
        self.stale_since: dict[str, int] = {}
        self.sock: _Socket | None = None        # the socket serving the plan now
        # during a make-before-break handover: trades without ids (Bybit, Hyperliquid, Bitget's
        # 19-digit ids) by (instrument, time, side, price, qty) -> the socket that delivered them first
        self.overlap: dict[tuple, _Socket] | None = None

    def reset_freshness(self, now_ns: int) -> None:
        self.last_data = {s: now_ns for s in self.plan.watched}
        self.stale_since.clear()


class WsFeed:
    """Run one venue's sockets and write their records through ``write(list_of_tuples)``."""

    def __init__(self, venue_module: ModuleType, plans: list[ConnectionPlan], parser, write: Callable[[list], object],
                 *, reconnect_initial_s: float = 0.5, reconnect_max_s: float = 30.0, stale_after_s: float = 30.0,
                 rotate_after_s: float = 82800.0, connect_kwargs: dict | None = None,
                 snapshot_fetcher: Callable[[str], Awaitable[bytes]] | None = None):
        self.venue_module = venue_module
        self.venue = venue_module.VENUE
        self.plans = plans
        self.parser = parser
        self.write = write
        self.reconnect_initial_s = reconnect_initial_s
        self.reconnect_max_s = reconnect_max_s
        self.stale_after_ns = int(stale_after_s * 1e9)
        self.rotate_after_s = rotate_after_s
        self.interval_s = getattr(venue_module, "MESSAGE_INTERVAL_S", 0.0)
        self.consecutive_ids = getattr(venue_module, "trade_stream_ids", False)
        self.ping_interval_s = getattr(venue_module, "PING_INTERVAL_S", 0.0)   # 0: protocol pings only
        self.connect_kwargs = {"compression": None, "max_size": 1 << 24, "open_timeout": 10.0, "close_timeout": 1.0,
                               **(connect_kwargs or {})}
        self.stats = FeedStats()
        self.stats.plans = len(plans)
        self._liq_slot: dict[int, int] = {}
        self._stop = asyncio.Event()
        self._last_trade: dict[int, int] = {}
        self._recent_liq: dict[int, deque] = {}
        self._req_id = 0
        self._background: set[asyncio.Task] = set()
        self._states: list[_PlanState] = []
        self.snapshot_fetcher = snapshot_fetcher
        self._resyncing: set[str] = set()
        self.books = getattr(parser, "books", None)
        if self.books is not None:
            self.books.on_resync = self._on_resync
            self.stats.extra = self.books.counters

    # -- lifecycle -------------------------------------------------------------------
    async def run(self) -> None:
        """Run every plan until :meth:`stop`."""
        self._stop = asyncio.Event()
        self._states = [_PlanState(p) for p in self.plans]
        tasks = [asyncio.create_task(self._run_plan(st), name=f"ws:{st.plan.key}") for st in self._states]
        try:
            await self._stop.wait()
        finally:
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await asyncio.gather(*self._background, return_exceptions=True)

    def stop(self) -> None:
        """Ask :meth:`run` to close every socket and return."""
        self._stop.set()

    # -- one plan --------------------------------------------------------------------
    async def _run_plan(self, st: _PlanState) -> None:
        attempt = 0
        connected_before = False
        while not self._stop.is_set():
            sock = await self._open(st.plan)
            if sock is None:
                await self._sleep(backoff_delay(attempt, self.reconnect_initial_s, self.reconnect_max_s))
                attempt += 1
                continue
            if connected_before:
                self.stats.reconnects += 1
                self.write([control_record(self.venue, Control.RECONNECTED, time.time_ns(), count=attempt + 1)])
            connected_before = True
            st.sock = sock
            st.reset_freshness(time.monotonic_ns())
            self.stats.connected(st.plan.key, True)
            try:
                sock = await self._serve(sock, asyncio.create_task(self._read(sock, st)), st)
            finally:
                self.stats.connected(st.plan.key, False)
            attempt = 0 if sock.data_frames else attempt + 1
            if not self._stop.is_set():
                await self._sleep(backoff_delay(attempt, self.reconnect_initial_s, self.reconnect_max_s))

    async def _open(self, plan: ConnectionPlan) -> _Socket | None:
        try:
            ws = await connect(plan.url, **self.connect_kwargs)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # DNS, refused, handshake, timeout: all retried
            log.warning("connect %s failed: %s", plan.key, exc)
            return None
        self.stats.connects += 1
        sock = _Socket(ws, self.interval_s)
        if not plan.subscribe_in_url:
            await self._subscribe(sock, plan.streams)
        return sock

    async def _subscribe(self, sock: _Socket, streams, renew: bool = False) -> None:
        """Subscribe ``streams``; ``renew``: unsubscribe them first where the venue can (a venue that
        answers a repeated subscribe with "already subscribed" would not restart a silent stream)."""
        msgs = []
        unsub = getattr(self.venue_module, "unsubscribe_messages", None) if renew else None
        if unsub is not None:
            msgs = unsub(list(streams), self._req_id + 1)
            self._req_id += len(msgs)
        subs = self.venue_module.subscribe_messages(list(streams), self._req_id + 1)
        self._req_id += len(subs)
        msgs += subs
        self.stats.subscribes_sent += len(subs)
        try:
            await sock.send_spaced(msgs)
        except ConnectionClosed:
            pass

    async def _serve(self, sock: _Socket, reader: asyncio.Task, st: _PlanState) -> _Socket:
        """Watch one socket (and its successors after rotations) until it drops; return the last one."""
        loop = asyncio.get_running_loop()
        check_s = max(0.01, min(1.0, self.stale_after_ns / 4e9))
        rotate_at = loop.time() + self.rotate_after_s * (0.95 + 0.05 * random.random())
        ping_every = self.ping_interval_s
        if ping_every:
            check_s = min(check_s, ping_every / 4)
        next_ping = loop.time() + ping_every
        try:
            while not self._stop.is_set():
                done, _ = await asyncio.wait({reader}, timeout=check_s)
                if done:
                    break
                if self._check_stale(sock, st):
                    break
                if ping_every and loop.time() >= next_ping:
                    next_ping = loop.time() + ping_every
                    await self._ping(sock)
                if loop.time() >= rotate_at:
                    new = await self._handover(sock, reader, st)
                    if new is None:
                        rotate_at = loop.time() + _HANDOVER_TIMEOUT_S  # old socket still serves; retry soon
                        continue
                    sock, reader = new
                    st.sock = sock
                    self.stats.rotations += 1
                    rotate_at = loop.time() + self.rotate_after_s * (0.95 + 0.05 * random.random())
        finally:
            # close while the reader still drains: a full receive queue would stall the closing handshake
            await asyncio.shield(sock.ws.close())
            reader.cancel()
        return sock

    async def _ping(self, sock: _Socket) -> None:
        """Send the venue's application-level keepalive (its reply is parsed as CONTROL)."""
        self.stats.pings_sent += 1
        try:
            await sock.ws.send(self.venue_module.ping_message())
        except ConnectionClosed:
            pass

    async def _handover(self, old: _Socket, old_reader: asyncio.Task, st: _PlanState):
        st.overlap = {}     # from before the new socket opens: it may start with what the old one just sent
        new = await self._open(st.plan)
        if new is None:
            st.overlap = None
            return None
        reader = asyncio.create_task(self._read(new, st))
        deadline = asyncio.get_running_loop().time() + _HANDOVER_TIMEOUT_S
        while new.data_frames == 0 and not reader.done() and asyncio.get_running_loop().time() < deadline:
            await asyncio.wait({reader}, timeout=0.01)
        if reader.done() or new.data_frames == 0:
            st.overlap = None
            reader.cancel()
            await new.ws.close()
            return None
        retire = asyncio.create_task(self._retire(old, old_reader, st))
        self._background.add(retire)
        retire.add_done_callback(self._background.discard)
        return new, reader

    @staticmethod
    async def _retire(sock: _Socket, reader: asyncio.Task, st: _PlanState) -> None:
        await sock.ws.close()
        reader.cancel()
        st.overlap = None

    def _check_stale(self, sock: _Socket, st: _PlanState) -> bool:
        """Flag silent streams; return True when the socket should be replaced."""
        if not st.last_data:
            return False
        now = time.monotonic_ns()      # freshness runs on the monotonic clock: a wall-clock step is not silence
        limit = self.stale_after_ns
        newly, silent = [], 0
        for stream, last in st.last_data.items():
            if now - last <= limit:
                continue
            silent += 1
            if stream not in st.stale_since:
                st.stale_since[stream] = now
                newly.append(stream)
            elif now - st.stale_since[stream] > (_STALE_RECONNECT_PERIODS - 1) * limit:
                return True
        if newly:
            symbol_of = getattr(self.venue_module, "stream_symbol", None)
            lookup = self.parser.lookup
            recs = []
            for stream in newly:
                iid = lookup(symbol_of(stream)) if symbol_of else None
                recs.append(control_record(self.venue, Control.STREAM_STALE, time.time_ns(),
                                           CONNECTION_WIDE if iid is None else iid, (now - st.last_data[stream]) / 1e9))
            self.stats.stale += len(newly)
            self.write(recs)
            if silent == len(st.last_data):
                return True
            asyncio.get_running_loop().create_task(self._subscribe(sock, newly, renew=True))
        return False

    # -- frames ----------------------------------------------------------------------
    async def _read(self, sock: _Socket, st: _PlanState) -> None:
        ws = sock.ws
        parse = self.parser.parse
        stats = self.stats
        outcomes = stats.outcomes
        last_data = st.last_data
        out: list = []
        try:
            while True:
                payload = await ws.recv(decode=False)
                ts = time.time_ns()
                stats.frames += 1
                outcome, stream = parse(payload, ts, out)
                outcomes[outcome] += 1
                if outcome <= Outcome.PARSED:
                    sock.data_frames += 1
                    if stream in last_data:
                        last_data[stream] = time.monotonic_ns()
                        if st.stale_since:
                            st.stale_since.pop(stream, None)
                if out:
                    if st.overlap is not None:
                        self._drop_overlap(out, st, sock)
                    self._emit(out, st)
                    out.clear()
        except ConnectionClosed:
            return

    def _drop_overlap(self, recs: list, st: _PlanState, sock: _Socket) -> None:
        """During a handover, drop id-less trades the other socket already delivered (in place)."""
        overlap = st.overlap
        keep = []
        for r in recs:
            if r[0] == _TRADE and r[10] == 0.0:
                key = (r[4], r[5], r[2], r[7], r[8])
                first = overlap.setdefault(key, sock)
                if first is not sock:
                    self.stats.duplicates += 1
                    continue
            keep.append(r)
        if len(keep) != len(recs):
            recs[:] = keep
        if len(overlap) > _OVERLAP_KEYS:    # a handover that never ends must not grow without bound
            for key in list(overlap)[: len(overlap) // 2]:
                del overlap[key]

    def _emit(self, recs: list, st: _PlanState) -> None:
        kinds = self.stats.kinds
        keep = recs
        for i, r in enumerate(recs):
            k = r[0]
            if (k == _TRADE and r[10] > 0.0) or k == _LIQ:
                keep = self._dedup(recs, i, st)
                break
            kinds[k] += 1
        if keep:
            self.write(keep)

    def _dedup(self, recs: list, start: int, st: _PlanState) -> list:
        """Drop trades already seen (by id) and liquidations already seen; write GAP controls."""
        kinds = self.stats.kinds
        keep = recs[:start]
        last_trade = self._last_trade
        for r in recs[start:]:
            k, iid = r[0], r[4]
            if k == _TRADE and r[10] > 0.0:
                tid = int(r[10])
                last = last_trade.get(iid)
                if last is not None:
                    if tid <= last:
                        self.stats.duplicates += 1
                        continue
                    if self.consecutive_ids and tid > last + 1:   # a reconnect, a stall that dropped frames, ...
                        self.stats.gaps += 1
                        keep.append(control_record(self.venue, Control.GAP, r[6], iid, tid - last - 1))
                last_trade[iid] = tid
            elif k == _LIQ:
                seen = self._recent_liq.setdefault(iid, deque(maxlen=16))
                key = (r[5], r[2], r[7], r[8])
                if key in seen:
                    self.stats.duplicates += 1
                    continue
                seen.append(key)
                self._liq_slot_seen(iid, r[5], r[3] & _CAPPED)
            kinds[k] += 1
            keep.append(r)
        return keep

    # -- book resync -----------------------------------------------------------------
    def _on_resync(self, symbol: str) -> None:
        """``books.on_resync``: start one resync task per symbol (called from the parser)."""
        if symbol in self._resyncing:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:   # parsing outside the loop (tests, replay): leave it to the caller
            self.books.requests.add(symbol)
            return
        self._resyncing.add(symbol)
        task = loop.create_task(self._resync(symbol), name=f"resync:{symbol}")
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _resync(self, symbol: str) -> None:
        try:
            if self.books.source == "rest":
                await self._fetch_snapshot(symbol)
            elif self.books.source == "resubscribe":
                await self._resubscribe_book(symbol)
        finally:
            self._resyncing.discard(symbol)

    async def _fetch_snapshot(self, symbol: str) -> None:
        if self.snapshot_fetcher is None:
            log.warning("book of %s needs a REST snapshot but no snapshot_fetcher was given", symbol)
            return
        for wait in (*_SNAPSHOT_RETRY_S, None):
            self.stats.snapshot_fetches += 1
            try:
                payload = await self.snapshot_fetcher(symbol)
            except asyncio.CancelledError:
                raise
            except Exception as exc:   # HTTP error, 429, timeout: retried, then left to the book's re-request
                self.stats.snapshot_errors += 1
                log.warning("book snapshot of %s failed: %s", symbol, exc)
                if wait is None or self._stop.is_set():
                    return
                await self._sleep(wait)
                continue
            out: list = []
            outcome = self.parser.book_snapshot(symbol, payload, time.time_ns(), out)
            self.stats.outcomes[outcome] += 1
            if out:
                self._emit(out, None)
            return

    async def _resubscribe_book(self, symbol: str) -> None:
        vm = self.venue_module
        is_book, unsubscribe = getattr(vm, "is_book_stream", None), getattr(vm, "unsubscribe_messages", None)
        if is_book is None or unsubscribe is None:
            log.warning("%s cannot resubscribe book streams (no is_book_stream/unsubscribe_messages)", vm.__name__)
            return
        for st in self._states:
            streams = [s for s in st.plan.streams if is_book(s) and vm.stream_symbol(s) == symbol]
            if not streams or st.sock is None:
                continue
            msgs = unsubscribe(streams, self._req_id + 1)
            self._req_id += len(msgs)
            self.stats.book_resubscribes += 1
            try:
                await st.sock.send_spaced(msgs)
            except ConnectionClosed:
                continue   # the reconnect resubscribes everything
            await self._subscribe(st.sock, streams)

    def _liq_slot_seen(self, iid: int, ts_ns: int, capped: int) -> None:
        stats = self.stats
        slot = ts_ns // 1_000_000_000
        last = self._liq_slot.get(iid)
        if capped:
            stats.capped_liquidations += 1
        if last == slot:
            return
        stats.liq_slots += 1
        self._liq_slot[iid] = slot
        if capped:
            stats.capped_slots += 1
            if last is not None and slot == last + 1:
                stats.saturated_slots += 1

    async def _sleep(self, seconds: float) -> None:
        try:
            await asyncio.wait_for(self._stop.wait(), timeout=seconds)
        except asyncio.TimeoutError:
            pass
