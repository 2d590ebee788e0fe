"""Order books: L2 books kept from snapshot + deltas, one sequence rule per venue.

A :class:`BookSet` holds the books of one venue, one per native symbol. The
venue's parser decodes its book frames and calls

* ``books.snapshot(symbol, iid, snap_id, bids, asks, ts_ex, ts_recv, out)`` for a
  full book (REST snapshot, WS snapshot push, Hyperliquid ``l2Book``), and
* ``books.delta(symbol, iid, first, last, prev, bids, asks, ts_ex, ts_recv, out)``
  for an incremental update,

where ``bids``/``asks`` are ``(price, qty)`` float pairs (qty 0 deletes the
level; ``scale=`` converts contracts to base units) and both return an
:class:`~engine.venues.Outcome` the parser can return as is. Records are
appended to ``out`` only while the symbol is synced:

* ``Kind.BOOK_TOP`` whenever the best bid/ask or their sizes change;
* ``Kind.BOOK_DEPTH``, one record per depth band (default 0.5/1/2/5 % of mid),
  at most every ``depth_interval_s`` per symbol: ``price`` = mid, ``qty`` = band
  (fraction of mid), ``notional`` = bid + ask USD resting within the band,
  ``aux`` = bid USD, ``aux2`` = ask USD, over the levels held;
* ``Kind.CONTROL`` ``Control.BOOK_INVALID`` when a symbol loses sync.

Plugging a venue in
-------------------
Each delta carries three ids, ``first``, ``last`` and ``prev`` (pass the same
number twice, or -1, where the venue has fewer). A *sequence rule* is a plain
function ``rule(last_id, first, last, prev, fresh) -> verdict`` where
``last_id`` is the id the book is at (the snapshot id right after a snapshot,
then the ``last`` of the latest applied delta) and ``fresh`` is True until the
first delta after a snapshot has been applied. It returns :data:`APPLY`,
:data:`STALE` (old or duplicate: drop it silently), :data:`GAP` (resync this
symbol) or :data:`RESET` (the delta is a full new book: clear, then apply).
Provided rules (a venue module may pick one or write its own):

=========================  ==================================================================
:func:`pu_chain`           Binance USD-M ``U/u/pu`` (§1.5): ``pu`` must equal the last ``u``;
                           the first delta after the REST snapshot must span ``lastUpdateId``
:func:`id_range`           Gate ``U/u`` against a REST ``id`` (§4.4): ``U <= last+1 <= u``;
                           with ``first == last`` it is strict +1 contiguity
:func:`prev_chain`         OKX ``seqId/prevSeqId`` (§3.4, incl. heartbeat and reset updates),
                           Bitget v3 ``seq/pseq`` (§5.2); the first delta may span the snapshot
:func:`prev_chain_zero_reset`  as ``prev_chain``, and ``prev == 0`` resets (Bitget ``pseq=0``)
:func:`unit_step`          Bybit ``u`` (§2.4): each delta's ``u`` is the last + 1; older drop, a skip
                           is a gap, ``u == 1`` resets
``None``                   snapshot-only venues (Hyperliquid §6): call ``snapshot`` every push
=========================  ==================================================================

``BookSet(..., source=)`` says where a fresh snapshot comes from:
``"rest"`` (Binance, Gate: the feed fetches one; deltas are buffered and the
buffer is replayed through the rule against it), ``"resubscribe"`` (Bybit,
OKX, Bitget: resubscribing the book stream makes the venue push one; deltas
before it are dropped), ``"push"`` (Hyperliquid: the next push is one; nothing
is requested).

What a venue module adds (``engine/venues/binance.py`` is the worked example):
``BOOK_RULE`` (a rule above, or None) and ``BOOK_SOURCE``; its ``Parser`` has a
``books = None`` class attribute (set by :func:`attach`) and feeds ``books``
when it is not None; for ``"rest"``: ``depth_snapshot_request(symbol) ->
(path, params, weight)`` and ``Parser.book_snapshot(symbol, payload, ts_recv,
out) -> Outcome`` (decode the REST body, call ``books.snapshot``); for
``"resubscribe"``: ``is_book_stream(stream) -> bool`` and
``unsubscribe_messages(streams, first_id) -> list[bytes]`` (the feed sends those,
then ``subscribe_messages``, on the socket carrying the stream). A venue with a usable checksum passes ``checksum=fn`` (called
with the :class:`Book` after a delta, returns the venue's checksum) and gives
``checksum=value`` to ``delta``; a mismatch resyncs the symbol.

Resync: on a gap, a checksum failure, a crossed book or a bad level, only that
symbol is invalidated: it publishes nothing, buffers deltas and asks for a
snapshot through ``books.on_resync(symbol)`` (set by :class:`engine.wsfeed.WsFeed`,
which fetches the REST snapshot or resubscribes the stream; without a
callback the symbol lands in ``books.requests``). An unanswered request is
repeated on a later delta after ``request_timeout_s``, doubling up to
``max_request_interval_s``. :func:`attach` builds the BookSet of a parser from
the venue module's ``BOOK_RULE`` and ``BOOK_SOURCE``.

Counters per symbol (gaps, resyncs, crossed, checksum failures, stale deltas,
buffer overflows, bad levels, snapshots) are summed by :meth:`BookSet.counters`
into a flat ``book_*`` dict the feed merges into its stats.
"""
from __future__ import annotations

import math
import time
from bisect import bisect_left, insort
from collections import deque
from typing import Callable, Iterable

from engine.record import Control, Kind
from engine.venues import Outcome

__all__ = [
    "APPLY", "STALE", "GAP", "RESET", "SYNCED", "BUFFERING", "DEFAULT_BANDS", "Book", "BookSet", "attach",
    "pu_chain", "id_range", "prev_chain", "prev_chain_zero_reset", "unit_step",
]

APPLY, STALE, GAP, RESET = 0, 1, 2, 3
SYNCED, BUFFERING = 0, 1
DEFAULT_BANDS = (0.005, 0.01, 0.02, 0.05)
_INF = math.inf
_EMITTED, _PARSED, _MALFORMED = Outcome.EMITTED, Outcome.PARSED, Outcome.MALFORMED
_SOURCES = ("rest", "resubscribe", "push")
_COUNTERS = ("gaps", "resyncs", "crossed", "checksum_failures", "stale", "buffer_overflows", "bad_levels",
             "snapshots", "requests")


# -- sequence rules ----------------------------------------------------------------

def pu_chain(last_id: int, first: int, last: int, prev: int, fresh: bool) -> int:
    """Binance USD-M: ``pu`` must equal the previous ``u``; right after the snapshot, drop ``u < lastUpdateId``
    and accept the first event with ``U <= lastUpdateId <= u`` (or one chained to it, ``pu == lastUpdateId``)."""
    if prev == last_id:
        return APPLY
    if fresh:
        if last < last_id:
            return STALE
        return APPLY if first <= last_id else GAP
    return STALE if last <= last_id else GAP


def id_range(last_id: int, first: int, last: int, prev: int, fresh: bool) -> int:
    """Gate: drop ``u <= last``; apply when ``U <= last + 1 <= u``; a later ``U`` is a gap."""
    if last <= last_id:
        return STALE
    return APPLY if first <= last_id + 1 else GAP


def prev_chain(last_id: int, first: int, last: int, prev: int, fresh: bool) -> int:
    """OKX / Bitget: ``prev`` must equal the last id (OKX heartbeats ``prev == last`` and resets
    ``last < prev`` pass); the first delta after a snapshot may instead span it (``prev <= id <= last``)."""
    if prev == last_id:
        return APPLY
    if fresh and prev <= last_id <= last:
        return APPLY
    if prev < last <= last_id:
        return STALE
    return GAP


def prev_chain_zero_reset(last_id: int, first: int, last: int, prev: int, fresh: bool) -> int:
    """:func:`prev_chain`, and ``prev == 0`` carries a full new book (Bitget ``pseq=0`` after a restart)."""
    if prev == 0:
        return RESET
    return prev_chain(last_id, first, last, prev, fresh)


def unit_step(last_id: int, first: int, last: int, prev: int, fresh: bool) -> int:
    """Bybit: ``u`` must be the last ``u`` + 1 (the snapshot's for the first delta); an older or repeated ``u`` is
    stale, a skipped one a gap, and ``u == 1`` is a restarted service's full book.

    Evidence: every one of the 49 deltas in Bybit's own dump 2024-12-01_XRPUSDT_ob500 (orderbook.500) steps ``u`` by 1.
    """
    if last == 1:
        return RESET
    if last == last_id + 1:
        return APPLY
    return STALE if last <= last_id else GAP


# -- one book ----------------------------------------------------------------------

class Book:
    """One symbol's levels (price -> qty dicts plus ascending price arrays), sync state and counters."""

    __slots__ = ("symbol", "iid", "state", "fresh", "last_id", "bids", "asks", "bid_px", "ask_px", "buffer",
                 "requested_ns", "attempts", "top", "depth_ns", "synced_ns") + _COUNTERS

    def __init__(self, symbol: str, iid: int) -> None:
        self.symbol = symbol
        self.iid = iid
        self.state = BUFFERING
        self.fresh = True
        self.last_id = 0
        self.bids: dict[float, float] = {}
        self.asks: dict[float, float] = {}
        self.bid_px: list[float] = []   # ascending: best bid is the last
        self.ask_px: list[float] = []   # ascending: best ask is the first
        self.buffer: deque = deque()
        self.requested_ns = -1          # when the outstanding snapshot request was made; -1: none
        self.attempts = 0               # requests since the last successful sync
        self.top = None                 # the last published (bid, bid_qty, ask, ask_qty)
        self.depth_ns = 0               # when BOOK_DEPTH was last published
        self.synced_ns = 0
        for c in _COUNTERS:
            setattr(self, c, 0)

    @property
    def synced(self) -> bool:
        return self.state == SYNCED

    def best(self) -> tuple[float, float, float, float] | None:
        """``(bid, bid_qty, ask, ask_qty)`` or None when a side is empty."""
        if not self.bid_px or not self.ask_px:
            return None
        b, a = self.bid_px[-1], self.ask_px[0]
        return b, self.bids[b], a, self.asks[a]

    def levels(self, n: int) -> tuple[list[tuple[float, float]], list[tuple[float, float]]]:
        """The best ``n`` levels per side, best first."""
        bids, asks = self.bids, self.asks
        return ([(p, bids[p]) for p in self.bid_px[:-n - 1:-1]] if n else [],
                [(p, asks[p]) for p in self.ask_px[:n]])

    def depth_usd(self, bands: Iterable[float]) -> tuple[float, list[tuple[float, float, float]]]:
        """``(mid, [(band, bid_usd, ask_usd), ...])`` for ascending ``bands``: USD resting within ``band``
        of mid, per side."""
        b, a = self.bid_px[-1], self.ask_px[0]
        mid = 0.5 * (b + a)
        out = []
        bids, asks, bid_px, ask_px = self.bids, self.asks, self.bid_px, self.ask_px
        i, j = len(bid_px) - 1, 0
        bid_usd = ask_usd = 0.0
        for band in bands:
            lo, hi = mid * (1.0 - band), mid * (1.0 + band)
            while i >= 0 and bid_px[i] >= lo:
                p = bid_px[i]
                bid_usd += p * bids[p]
                i -= 1
            while j < len(ask_px) and ask_px[j] <= hi:
                p = ask_px[j]
                ask_usd += p * asks[p]
                j += 1
            out.append((band, bid_usd, ask_usd))
        return mid, out

    def clear(self) -> None:
        self.bids.clear()
        self.asks.clear()
        self.bid_px.clear()
        self.ask_px.clear()
        self.top = None

    def counters(self) -> dict[str, int]:
        return {c: getattr(self, c) for c in _COUNTERS}


def _valid(levels) -> bool:
    for p, q in levels:
        if not (0.0 < p < _INF and 0.0 <= q < _INF):
            return False
    return True


def _apply_side(side: dict, px: list, levels, scale: float) -> None:
    for p, q in levels:
        if q == 0.0:
            if p in side:
                del side[p]
                del px[bisect_left(px, p)]
        else:
            if p not in side:
                insort(px, p)
            side[p] = q * scale if scale != 1.0 else q


def _trim(book: Book, max_levels: int) -> None:
    """Drop the levels furthest from the top beyond ``max_levels`` a side."""
    extra = len(book.bid_px) - max_levels
    if extra > 0:
        for p in book.bid_px[:extra]:
            del book.bids[p]
        del book.bid_px[:extra]
    extra = len(book.ask_px) - max_levels
    if extra > 0:
        for p in book.ask_px[max_levels:]:
            del book.asks[p]
        del book.ask_px[max_levels:]


# -- the venue's books -----------------------------------------------------------

class BookSet:
    """The books of one venue: snapshot/delta in, BOOK_TOP / BOOK_DEPTH / CONTROL record tuples out."""

    def __init__(self, venue: int, rule: Callable[[int, int, int, int, bool], int] | None, *,
                 source: str = "rest", depth: int = 20, max_levels: int = 1000,
                 bands: Iterable[float] = DEFAULT_BANDS, depth_interval_s: float = 1.0, flags: int = 0,
                 checksum: Callable[[Book], int] | None = None, max_buffer: int = 1000,
                 request_timeout_s: float = 5.0, max_request_interval_s: float = 60.0,
                 clock: Callable[[], int] = time.monotonic_ns) -> None:
        if source not in _SOURCES:
            raise ValueError(f"source must be one of {_SOURCES}, got {source!r}")
        self.venue = venue
        self.rule = rule
        self.source = source
        self.depth = depth
        self.max_levels = max(depth, max_levels)
        self.bands = tuple(sorted(bands))
        self.depth_interval_ns = int(depth_interval_s * 1e9)
        self.flags = flags
        self.checksum = checksum
        self.max_buffer = max_buffer
        self.request_timeout_ns = int(request_timeout_s * 1e9)
        self.max_request_interval_ns = int(max_request_interval_s * 1e9)
        self.clock = clock
        self.books: dict[str, Book] = {}
        self.on_resync: Callable[[str], object] | None = None
        self.requests: set[str] = set()   # symbols waiting for a snapshot when no on_resync is set
        self.snapshots_ignored = 0

    # -- access ----------------------------------------------------------------------
    def book(self, symbol: str) -> Book | None:
        return self.books.get(symbol)

    def counters(self) -> dict[str, int]:
        """Sums over symbols as ``book_<name>``, plus ``book_unsynced`` (symbols not synced now)."""
        out = dict.fromkeys((f"book_{c}" for c in _COUNTERS), 0)
        unsynced = 0
        for b in self.books.values():
            for c in _COUNTERS:
                out[f"book_{c}"] += getattr(b, c)
            unsynced += b.state != SYNCED
        out["book_unsynced"] = unsynced
        out["book_snapshots_ignored"] = self.snapshots_ignored
        return out

    def _get(self, symbol: str, iid: int) -> Book:
        b = self.books.get(symbol)
        if b is None:
            b = self.books[symbol] = Book(symbol, iid)
        return b

    # -- input -----------------------------------------------------------------------
    def snapshot(self, symbol: str, iid: int, snap_id: int, bids, asks, ts_ex: int, ts_recv: int, out: list,
                 scale: float = 1.0) -> Outcome:
        """Load a full book; replay buffered deltas (REST source); publish it when consistent."""
        b = self._get(symbol, iid)
        n = len(out)
        if not (_valid(bids) and _valid(asks)):
            b.bad_levels += 1
            return _MALFORMED
        if self.source == "rest" and b.state == SYNCED:
            self.snapshots_ignored += 1   # a late answer to a request already satisfied
            return _PARSED
        b.snapshots += 1
        b.clear()
        _apply_side(b.bids, b.bid_px, bids, scale)
        _apply_side(b.asks, b.ask_px, asks, scale)
        _trim(b, self.max_levels)
        b.last_id = snap_id
        b.fresh = True
        b.requested_ns = -1
        b.state = SYNCED
        buffered = b.buffer
        b.buffer = deque()
        if self.source == "rest":   # deltas that arrived while the snapshot was on its way
            for first, last, prev, dbids, dasks, _, d_recv, dscale in buffered:
                if not (_valid(dbids) and _valid(dasks)):
                    b.bad_levels += 1
                    self._invalidate(b, d_recv, out)
                if b.state != SYNCED:
                    break
                self._delta(b, first, last, prev, dbids, dasks, d_recv, dscale, out)
        if b.state == SYNCED and self._check(b, ts_recv, out):
            b.attempts = 0
            b.synced_ns = self.clock()
            self._publish(b, ts_ex, ts_recv, out, force_depth=True)
        return _EMITTED if len(out) > n else _PARSED

    def delta(self, symbol: str, iid: int, first: int, last: int, prev: int, bids, asks, ts_ex: int, ts_recv: int,
              out: list, checksum: int | None = None, scale: float = 1.0) -> Outcome:
        """Apply one incremental update through the venue's rule; buffer it while unsynced."""
        b = self.books.get(symbol)
        if b is None:
            b = self._get(symbol, iid)
        if b.state != SYNCED:
            self._buffer(b, (first, last, prev, bids, asks, ts_ex, ts_recv, scale))
            return _PARSED
        if not (_valid(bids) and _valid(asks)):
            b.bad_levels += 1
            self._invalidate(b, ts_recv, out)
            return _MALFORMED
        n = len(out)
        if self._delta(b, first, last, prev, bids, asks, ts_recv, scale, out, checksum) and self._check(b, ts_recv, out):
            self._publish(b, ts_ex, ts_recv, out)
        return _EMITTED if len(out) > n else _PARSED

    def invalidate(self, symbol: str, ts_ns: int, out: list) -> None:
        """Mark ``symbol`` unsynced and ask for a snapshot (e.g. after its socket reconnected)."""
        b = self.books.get(symbol)
        if b is not None and b.state == SYNCED:
            self._invalidate(b, ts_ns, out)

    # -- internals -------------------------------------------------------------------
    def _delta(self, b: Book, first, last, prev, bids, asks, ts_recv, scale, out, checksum=None) -> bool:
        """Run one delta through the rule; return whether it was applied (a gap invalidates)."""
        rule = self.rule
        verdict = APPLY if rule is None else rule(b.last_id, first, last, prev, b.fresh)
        if verdict == STALE:
            b.stale += 1
            return False
        if verdict == GAP:
            b.gaps += 1
            self._invalidate(b, ts_recv, out)
            return False
        if verdict == RESET:
            b.clear()
        if bids:
            _apply_side(b.bids, b.bid_px, bids, scale)
        if asks:
            _apply_side(b.asks, b.ask_px, asks, scale)
        b.last_id = last
        b.fresh = False
        if len(b.bid_px) > self.max_levels or len(b.ask_px) > self.max_levels:
            _trim(b, self.max_levels)
        if checksum is not None and self.checksum is not None and self.checksum(b) != checksum:
            b.checksum_failures += 1
            self._invalidate(b, ts_recv, out)
            return False
        return True

    def _check(self, b: Book, ts_recv: int, out: list) -> bool:
        """Invalidate a crossed book; return whether it may be published."""
        if b.bid_px and b.ask_px and b.bid_px[-1] >= b.ask_px[0]:
            b.crossed += 1
            self._invalidate(b, ts_recv, out)
            return False
        return True

    def _publish(self, b: Book, ts_ex: int, ts_recv: int, out: list, force_depth: bool = False) -> None:
        top = b.best()
        if top is None:
            return
        flags = self.flags
        if top != b.top:
            b.top = top
            bid, bq, ask, aq = top
            out.append((Kind.BOOK_TOP, self.venue, 0, flags, b.iid, ts_ex, ts_recv,
                        bid, bq, bid * bq + ask * aq, ask, aq))
        if self.bands:
            now = self.clock()
            if force_depth or now - b.depth_ns >= self.depth_interval_ns:
                b.depth_ns = now
                mid, rows = b.depth_usd(self.bands)
                for band, bid_usd, ask_usd in rows:
                    out.append((Kind.BOOK_DEPTH, self.venue, 0, flags, b.iid, ts_ex, ts_recv,
                                mid, band, bid_usd + ask_usd, bid_usd, ask_usd))

    def _invalidate(self, b: Book, ts_ns: int, out: list) -> None:
        b.state = BUFFERING
        b.resyncs += 1
        b.clear()
        b.buffer.clear()
        b.fresh = True
        out.append((Kind.CONTROL, self.venue, 0, self.flags, b.iid, ts_ns, ts_ns,
                    0.0, 0.0, 0.0, float(Control.BOOK_INVALID), float(b.resyncs)))
        self._request(b)

    def _request_interval(self, b: Book) -> int:
        return min(self.request_timeout_ns << min(max(b.attempts - 1, 0), 20), self.max_request_interval_ns)

    def _buffer(self, b: Book, d: tuple) -> None:
        if self.source == "rest":
            if len(b.buffer) >= self.max_buffer:
                b.buffer.popleft()
                b.buffer_overflows += 1
            b.buffer.append(d)
        if b.requested_ns < 0 or self.clock() - b.requested_ns >= self._request_interval(b):
            self._request(b)

    def _request(self, b: Book) -> None:
        if self.source == "push":
            return
        b.requested_ns = self.clock()
        b.attempts += 1
        b.requests += 1
        if self.on_resync is not None:
            self.on_resync(b.symbol)
        else:
            self.requests.add(b.symbol)


def attach(parser, venue_module, depth_levels: int = 20, **kwargs) -> BookSet | None:
    """Give ``parser`` a :class:`BookSet` built from the venue module's ``BOOK_RULE`` and
    ``BOOK_SOURCE``; return it, or None when the venue keeps no books."""
    if not hasattr(venue_module, "BOOK_SOURCE"):
        return None
    books = BookSet(venue_module.VENUE, getattr(venue_module, "BOOK_RULE", None), source=venue_module.BOOK_SOURCE,
                    depth=depth_levels, flags=getattr(parser, "flags", 0), **kwargs)
    parser.books = books
    return books
