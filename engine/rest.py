"""Async REST polling under a per-venue request-weight budget.

:class:`WeightBudget` is a token bucket refilled continuously at
``weight_per_minute``; a 429/418 reply with ``Retry-After`` blocks every
request of the venue until then. :class:`RestPoller` fetches instrument
metadata once and polls open interest per symbol every ``oi_poll_interval_s``.
"""
from __future__ import annotations

import asyncio
import logging
import time
from types import ModuleType
from typing import Callable

import httpx

from engine.venues import InstrumentInfo, Outcome

__all__ = ["WeightBudget", "RestPoller", "RestError"]

log = logging.getLogger("undertow.rest")


class RestError(RuntimeError):
    """A REST request failed (transport error or non-2xx status)."""


class WeightBudget:
    """Token bucket of request weight per minute, with a venue-wide ban window."""

    def __init__(self, weight_per_minute: int, clock: Callable[[], float] = time.monotonic):
        self.capacity = float(max(1, weight_per_minute))
        self.rate = self.capacity / 60.0
        self.tokens = self.capacity
        self.clock = clock
        self.updated = clock()
        self.blocked_until = 0.0
        self.used = 0

    def _refill(self) -> float:
        now = self.clock()
        self.tokens = min(self.capacity, self.tokens + (now - self.updated) * self.rate)
        self.updated = now
        return now

    def wait_time(self, weight: int) -> float:
        """Seconds until ``weight`` may be spent (0 if now)."""
        now = self._refill()
        ban = max(0.0, self.blocked_until - now)
        short = max(0.0, weight - self.tokens) / self.rate
        return max(ban, short)

    def spend(self, weight: int) -> None:
        self._refill()
        self.tokens -= weight
        self.used += weight

    def block_for(self, seconds: float) -> None:
        """Stop every request for ``seconds`` (a 429/418 ``Retry-After``)."""
        self.blocked_until = max(self.blocked_until, self.clock() + seconds)

    async def acquire(self, weight: int) -> None:
        while (wait := self.wait_time(weight)) > 0:
            await asyncio.sleep(wait)
        self.spend(weight)


def _retry_after(resp: httpx.Response, default: float) -> float:
    try:
        return max(0.0, float(resp.headers.get("Retry-After", default)))
    except ValueError:
        return default


class RestPoller:
    """REST calls of one venue: instrument metadata and open-interest polling."""

    def __init__(self, venue_module: ModuleType, base_url: str, budget: WeightBudget,
                 client: httpx.AsyncClient | None = None, timeout_s: float = 10.0):
        self.venue = venue_module
        self.base_url = base_url.rstrip("/")
        self.budget = budget
        self.client = client or httpx.AsyncClient(timeout=timeout_s)
        self.errors = 0
        self.requests = 0

    async def get(self, path: str, params: dict, weight: int) -> bytes:
        """GET under the budget; raise RestError on failure (429/418 also block the venue)."""
        await self.budget.acquire(weight)
        self.requests += 1
        try:
            resp = await self.client.get(self.base_url + path, params=params)
        except httpx.HTTPError as exc:
            self.errors += 1
            raise RestError(f"GET {path}: {exc!r}") from None
        if resp.status_code in (418, 429):
            self.errors += 1
            self.budget.block_for(_retry_after(resp, 60.0))
            raise RestError(f"GET {path}: HTTP {resp.status_code}, retry after {resp.headers.get('Retry-After')}")
        if resp.status_code >= 400:
            self.errors += 1
            raise RestError(f"GET {path}: HTTP {resp.status_code}")
        return resp.content

    async def instruments(self) -> list[InstrumentInfo] | None:
        """The venue's instrument list, or None when it cannot be fetched or parsed."""
        path, params, weight = self.venue.EXCHANGE_INFO_REQUEST
        try:
            body = await self.get(path, params, weight)
        except RestError as exc:
            log.warning("instrument metadata unavailable: %s", exc)
            return None
        infos = self.venue.parse_exchange_info(body)
        if infos is None:
            self.errors += 1
        return infos

    async def poll_open_interest(self, symbols: list[str], interval_s: float, lookup: Callable[[str], int | None],
                                 ref_price: Callable[[int], float], write: Callable[[list], object],
                                 stopping: Callable[[], bool]) -> None:
        """Poll every symbol once per ``interval_s`` (spread evenly) until ``stopping()``."""
        step = interval_s / max(1, len(symbols))
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
                    self.errors += 1
                if out:
                    write(out)

    async def aclose(self) -> None:
        await self.client.aclose()
