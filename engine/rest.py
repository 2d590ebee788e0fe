"""Async REST polling under a per-venue request-weight budget.

:class:`WeightBudget` is a rolling-window limiter: the weight spent in any
``window_s`` (60 s) never exceeds ``weight_per_minute``, however many callers
share it, so every REST caller of one venue (instrument list, tickers, open
interest, book snapshots) uses ONE budget. A 429/418 reply blocks the whole
budget until its ``Retry-After`` (seconds or an HTTP date) has passed.

:class:`RestPoller` makes the calls: ``get`` raises :class:`RestError` (with
``retryable`` set for 5xx, timeouts and transport errors) and counts every
failure by class; :meth:`RestPoller.poll_open_interest` polls a list of
symbols, spread evenly over an interval, and simply tries a failed symbol
again on its next turn.
"""
from __future__ import annotations

import asyncio
import email.utils
import logging
import time
from collections import deque
from types import ModuleType
from typing import Awaitable, Callable

import httpx

from engine.venues import InstrumentInfo, Outcome

__all__ = ["WeightBudget", "RestPoller", "RestError", "retry_after_seconds"]

log = logging.getLogger("undertow.rest")

_DEFAULT_BAN_S = 60.0


class RestError(RuntimeError):
    """A REST request failed; ``status`` is the HTTP status (0: no response)."""

    def __init__(self, message: str, status: int = 0, retryable: bool = False):
        super().__init__(message)
        self.status = status
        self.retryable = retryable


class WeightBudget:
    """Request weight per rolling window (60 s), with a venue-wide ban window.

    ``clock`` and ``sleep`` are injectable so tests can run on virtual time.
    """

    def __init__(self, weight_per_minute: int, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], Awaitable] = asyncio.sleep, window_s: float = 60.0):
        self.limit = max(1, int(weight_per_minute))
        self.window_s = float(window_s)
        self.clock = clock
        self.sleep = sleep
        self.spent: deque[tuple[float, int]] = deque()   # (time, weight) inside the window, oldest first
        self.in_window = 0
        self.blocked_until = 0.0
        self.used = 0                                    # total weight ever spent
        self._queue: asyncio.Lock | None = None          # FIFO: a heavy request is not starved by light ones

    def _expire(self, now: float) -> None:
        spent = self.spent
        horizon = now - self.window_s
        while spent and spent[0][0] <= horizon:
            self.in_window -= spent.popleft()[1]

    def available(self) -> int:
        """Weight that may be spent right now (ignoring a ban)."""
        self._expire(self.clock())
        return self.limit - self.in_window

    def wait_time(self, weight: int) -> float:
        """Seconds until ``weight`` may be spent (0 if now). A weight above the limit waits for an empty window."""
        now = self.clock()
        self._expire(now)
        ban = max(0.0, self.blocked_until - now)
        excess = self.in_window + min(weight, self.limit) - self.limit
        if excess <= 0:
            return ban
        freed = 0
        for t, w in self.spent:
            freed += w
            if freed >= excess:
                return max(ban, t + self.window_s - now)
        return max(ban, self.window_s)  # unreachable: the whole window frees everything

    def spend(self, weight: int) -> None:
        """Record ``weight`` as spent now (callers check :meth:`wait_time` first)."""
        now = self.clock()
        self._expire(now)
        self.spent.append((now, weight))
        self.in_window += weight
        self.used += weight

    def block_for(self, seconds: float) -> None:
        """Stop every request for ``seconds`` (a 429/418 ``Retry-After``)."""
        self.blocked_until = max(self.blocked_until, self.clock() + seconds)

    async def acquire(self, weight: int) -> None:
        """Wait (first come, first served) until ``weight`` fits, then spend it."""
        if self._queue is None:
            self._queue = asyncio.Lock()
        async with self._queue:
            while (wait := self.wait_time(weight)) > 0:
                await self.sleep(wait)
            self.spend(weight)


def retry_after_seconds(value: str | None, default: float = _DEFAULT_BAN_S,
                        wall: Callable[[], float] = time.time) -> float:
    """``Retry-After`` as seconds from now: delta-seconds or an HTTP date; ``default`` when absent or bad."""
    if value is None:
        return default
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return default
    if when.tzinfo is None:   # RFC 9110 dates are GMT; a naive parse means no zone was given
        return default
    return max(0.0, when.timestamp() - wall())


class RestPoller:
    """REST calls of one venue under its shared budget: instrument metadata, tickers, open interest."""

    def __init__(self, venue_module: ModuleType, base_url: str, budget: WeightBudget,
                 client: httpx.AsyncClient | None = None, timeout_s: float = 10.0):
        self.venue = venue_module
        self.base_url = base_url.rstrip("/")
        self.budget = budget
        self.client = client or httpx.AsyncClient(timeout=timeout_s)
        self.post = getattr(venue_module, "REST_METHOD", "GET") == "POST"   # POST venues take params as a JSON body
        # sent on every request rather than set on the client: a client may be shared with another venue's poller
        self.headers: dict[str, str] = dict(getattr(venue_module, "REST_HEADERS", {}))
        self.requests = 0
        self.errors = 0            # every failed request, whatever the cause
        self.rate_limited = 0      # 429 / 418
        self.server_errors = 0     # 5xx
        self.timeouts = 0
        self.transport_errors = 0  # refused, reset, DNS ... (not timeouts)
        self.malformed = 0         # 2xx bodies the venue parser rejected

    def counters(self) -> dict[str, int]:
        """Counters for the feed actor's published stats (the actor table has room for few names)."""
        return {"rest_requests": self.requests, "rest_errors": self.errors, "rest_rate_limited": self.rate_limited,
                "rest_server_errors": self.server_errors, "rest_timeouts": self.timeouts,
                "rest_weight_used": self.budget.used}

    async def get(self, path: str, params: dict, weight: int) -> bytes:
        """GET (or the venue's ``REST_METHOD = "POST"`` with ``params`` as JSON) under the budget, with the
        venue's ``REST_HEADERS``; raise RestError on failure (429/418 also block the venue)."""
        await self.budget.acquire(weight)
        self.requests += 1
        try:
            if self.post:
                resp = await self.client.post(self.base_url + path, json=params, headers=self.headers)
            else:
                resp = await self.client.get(self.base_url + path, params=params, headers=self.headers)
        except httpx.TimeoutException as exc:
            self.errors += 1
            self.timeouts += 1
            raise RestError(f"GET {path}: timeout ({type(exc).__name__})", 0, True) from None
        except httpx.HTTPError as exc:
            self.errors += 1
            self.transport_errors += 1
            raise RestError(f"GET {path}: {exc!r}", 0, True) from None
        status = resp.status_code
        if status in (418, 429):
            self.errors += 1
            self.rate_limited += 1
            header = resp.headers.get("Retry-After")
            self.budget.block_for(retry_after_seconds(header))
            raise RestError(f"GET {path}: HTTP {status}, retry after {header}", status, True)
        if status >= 500:
            self.errors += 1
            self.server_errors += 1
            raise RestError(f"GET {path}: HTTP {status}", status, True)
        if status >= 400:
            self.errors += 1
            raise RestError(f"GET {path}: HTTP {status}", status, False)
        return resp.content

    async def get_retrying(self, path: str, params: dict, weight: int, attempts: int = 3,
                           backoff_s: float = 1.0) -> bytes:
        """:meth:`get`, trying a retryable failure again up to ``attempts`` times with doubling back-off."""
        for n in range(attempts):
            try:
                return await self.get(path, params, weight)
            except RestError as exc:
                if not exc.retryable or n == attempts - 1:
                    raise
                log.info("%s; retrying in %.1fs", exc, backoff_s * 2 ** n)
                await self.budget.sleep(backoff_s * 2 ** n)
        raise AssertionError("unreachable")

    async def instruments(self) -> list[InstrumentInfo] | None:
        """The venue's whole instrument list (every page), or None when it cannot be fetched or parsed."""
        path, params, weight = self.venue.EXCHANGE_INFO_REQUEST
        next_page = getattr(self.venue, "next_page", None)
        params = dict(params)
        out: list[InstrumentInfo] = []
        for _ in range(1000):   # a venue that paginates forever is a bug, not a listing
            try:
                body = await self.get_retrying(path, params, weight)
            except RestError as exc:
                log.warning("instrument list unavailable: %s", exc)
                return None
            infos = self.venue.parse_exchange_info(body)
            if infos is None:
                self.malformed += 1
                log.warning("instrument list: unusable body from %s", path)
                return None
            out.extend(infos)
            params = next_page(body, params) if next_page is not None else None
            if params is None:
                return out
        log.warning("instrument list: still paginating after 1000 pages; giving up")
        return None

    async def tickers(self) -> dict[str, float] | None:
        """24 h USD volume per native symbol, or None when unavailable (or the venue has no tickers)."""
        request = getattr(self.venue, "TICKERS_REQUEST", None)
        if request is None:
            return None
        path, params, weight = request
        try:
            body = await self.get_retrying(path, dict(params), weight)
        except RestError as exc:
            log.warning("24 h tickers unavailable: %s", exc)
            return None
        volumes = self.venue.parse_tickers(body)
        if volumes is None:
            self.malformed += 1
        return volumes

    async def poll_open_interest(self, symbols: list[str], interval_s: float, lookup: Callable[[str], int | None],
                                 ref_price: Callable[[int], float], write: Callable[[list], object],
                                 stopping: Callable[[], bool]) -> None:
        """Poll every symbol once per ``interval_s`` (spread evenly) until ``stopping()``.

        A failed poll is counted and not retried at once: the symbol comes round again next interval.
        """
        if not symbols:
            return
        step = interval_s / len(symbols)
        loop = asyncio.get_running_loop()
        next_at = loop.time()
        while not stopping():
            for symbol in symbols:
                if stopping():
                    return
                await asyncio.sleep(max(0.0, next_at - loop.time()))
                next_at = max(next_at + step, loop.time())
                path, params, weight = self.venue.oi_request(symbol)
                try:
                    body = await self.get(path, params, weight)
                except RestError as exc:
                    log.debug("open interest %s: %s", symbol, exc)
                    continue
                iid = lookup(symbol)
                out: list = []
                price = ref_price(iid) if iid is not None else 0.0
                if self.venue.parse_open_interest(body, lookup, time.time_ns(), price, out) == Outcome.MALFORMED:
                    self.malformed += 1
                if out:
                    write(out)

    async def aclose(self) -> None:
        await self.client.aclose()
