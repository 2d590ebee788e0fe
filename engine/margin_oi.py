"""Open interest of the coin-margined (inverse) and USDC-margined perpetuals of the main assets.

A venue's feed streams the perpetuals of its ``symbols`` setting (USDT-margined by
default). :class:`MarginOiPoller` adds, for each asset of ``[margin_oi] assets``,
the venue's other margin types from :data:`MARKETS`: it discovers the contracts
from their listing endpoint, registers them (inverse ones as
:attr:`Market.PERP_INVERSE`, quoted in ``USD``; USDC ones as linear perps quoted in
``USDC``; :attr:`Instrument.settle` then names the margin currency) and polls
their open interest over REST under the venue's shared
:class:`~engine.rest.WeightBudget`, writing ordinary OPEN_INTEREST records.

Units (:class:`Unit`) say how a venue's OI answer becomes base quantity and USD:
``BASE`` answers are base coin (times the listing's size: 1 on every venue so far), valued at the
asset's last streamed price on the venue; ``USD_CONTRACTS`` answers count contracts of the listing's own size in USD
(Binance COIN-M ``contractSize``: 100 for BTCUSD_PERP, 10 for the others; Bybit
inverse: 1 USD), so USD = contracts x size and base = USD / price; ``CONVERTED``
answers carry base and USD already (OKX ``oiCcy``/``oiUsd``, Gate inverse converted
at the mark in its body). A poll that cannot be converted for want of a price is
counted (``margin_oi_no_price``), never written with a made-up size or price.

Hyperliquid margins every perp in USDC, so the feed's own OI is already
stablecoin-margined and there is nothing to add; Gate has no USDC-settled perps.
"""
from __future__ import annotations

import asyncio
import logging
import time
from enum import Enum
from types import SimpleNamespace
from typing import Callable, NamedTuple, Sequence

from engine.instruments import Market, Registry, canonical_asset
from engine.record import Kind
from engine.rest import RestError, RestPoller
from engine.venues import InstrumentInfo, Outcome
from engine.venues import binance, bitget, bybit, gate, okx

__all__ = ["Unit", "MarginMarket", "MARKETS", "MARGIN_OI_BUDGET_SHARE", "Contract", "select", "to_base",
           "poll_interval", "streamed_price", "MarginOiPoller", "coverage"]

log = logging.getLogger("undertow.margin_oi")

MARGIN_OI_BUDGET_SHARE = 0.05   # of the venue's REST weight per minute (the main OI tiers plan within 0.75)
_MAX = 1e15


class Unit(Enum):
    """What the quantity of a venue's OI answer counts."""

    BASE = "base"                    # contracts of the listing's size in base units (1: the venue counts base coin)
    USD_CONTRACTS = "usd_contracts"  # contracts worth the listing's contract size in USD each
    CONVERTED = "converted"          # the parser already gave base quantity and USD


class MarginMarket(NamedTuple):
    """One margin type of one venue: where its contracts are listed and how their OI is read."""

    margin: str                                  # "coin" (inverse, coin-margined) or "usdc"
    quote: str                                   # the listing's quote of these contracts: "USD" or "USDC"
    listing: tuple[str, dict, int]               # (path, params, weight) of the instrument list
    parse_listing: Callable[[bytes], list[InstrumentInfo] | None]
    oi_request: Callable[[str], tuple[str, dict, int]]
    parse_oi: Callable                           # a venue ``parse_open_interest``
    unit: Unit
    live_rest_url: str = ""                      # its own live host (Binance COIN-M), else the venue's
    next_page: Callable | None = None            # paginated listing (Bybit)


def _bybit_oi(category: str) -> Callable[[str], tuple[str, dict, int]]:
    return lambda symbol: ("/v5/market/open-interest", {"category": category, "symbol": symbol,
                                                        "intervalTime": "5min", "limit": "1"}, 1)


def _bitget_oi(product: str) -> Callable[[str], tuple[str, dict, int]]:
    return lambda symbol: ("/api/v2/mix/market/open-interest", {"symbol": symbol, "productType": product}, 1)


def _bitget_listing(product: str) -> tuple[str, dict, int]:
    return "/api/v2/mix/market/contracts", {"productType": product}, 1


MARKETS: dict[str, tuple[MarginMarket, ...]] = {
    "binance": (
        MarginMarket("coin", "USD", ("/dapi/v1/exchangeInfo", {}, 1), binance.parse_exchange_info,
                     lambda s: ("/dapi/v1/openInterest", {"symbol": s}, 1), binance.parse_open_interest,
                     Unit.USD_CONTRACTS, live_rest_url="https://dapi.binance.com"),
        MarginMarket("usdc", "USDC", binance.EXCHANGE_INFO_REQUEST, binance.parse_exchange_info,
                     binance.oi_request, binance.parse_open_interest, Unit.BASE),
    ),
    "bybit": (
        MarginMarket("coin", "USD", ("/v5/market/instruments-info", {"category": "inverse", "limit": "1000"}, 1),
                     bybit.parse_exchange_info, _bybit_oi("inverse"), bybit.parse_open_interest,
                     Unit.USD_CONTRACTS, next_page=bybit.next_page),
        MarginMarket("usdc", "USDC", bybit.EXCHANGE_INFO_REQUEST, bybit.parse_exchange_info,
                     _bybit_oi("linear"), bybit.parse_open_interest, Unit.BASE, next_page=bybit.next_page),
    ),
    "okx": (
        MarginMarket("coin", "USD", okx.EXCHANGE_INFO_REQUEST, okx.parse_exchange_info, okx.oi_request,
                     okx.parse_open_interest, Unit.CONVERTED),
        MarginMarket("usdc", "USDC", okx.EXCHANGE_INFO_REQUEST, okx.parse_exchange_info, okx.oi_request,
                     okx.parse_open_interest, Unit.CONVERTED),
    ),
    "gate": (
        MarginMarket("coin", "USD", ("/futures/btc/contracts", {}, 1), gate.parse_exchange_info,
                     lambda s: (f"/futures/btc/contracts/{s}", {}, 1), gate.parse_open_interest, Unit.CONVERTED),
    ),
    "bitget": (
        MarginMarket("coin", "USD", _bitget_listing("COIN-FUTURES"), bitget.parse_exchange_info,
                     _bitget_oi("COIN-FUTURES"), bitget.parse_open_interest, Unit.BASE),
        MarginMarket("usdc", "USDC", _bitget_listing("USDC-FUTURES"), bitget.parse_exchange_info,
                     _bitget_oi("USDC-FUTURES"), bitget.parse_open_interest, Unit.BASE),
    ),
    "hyperliquid": (),   # every perp margins in USDC: the feed's own OI is stablecoin-margined already
}


class Contract(NamedTuple):
    """A contract the poller follows."""

    symbol: str
    asset: str
    market: MarginMarket
    contract_size: float     # from the listing: base per contract (linear) or USD per contract (inverse)


def select(infos: Sequence[InstrumentInfo], market: MarginMarket, assets: Sequence[str]) -> list[Contract]:
    """The trading perpetuals of ``market`` (by its quote) whose canonical asset is in ``assets``."""
    wanted = {a.upper() for a in assets}
    out = []
    for i in infos:
        if i.contract_type != "perpetual" or i.status != "trading" or i.quote != market.quote:
            continue
        asset, units = canonical_asset(i.base)
        if asset in wanted and i.contract_size > 0.0:
            out.append(Contract(i.symbol, asset, market, i.contract_size * (units if market.quote != "USD" else 1.0)))
    return out


def to_base(rec: tuple, contract: Contract, ref_price: float) -> tuple | None:
    """``rec`` (an OPEN_INTEREST tuple from the venue parser) in base units and USD, or None without a price.

    The price is the one in the record when the parser had one (a mark in the body), else ``ref_price``.
    """
    price = rec[7] if rec[7] > 0.0 else ref_price
    unit, raw = contract.market.unit, rec[8]
    if unit is Unit.CONVERTED:
        return rec if rec[9] > 0.0 or raw == 0.0 else None
    if not 0.0 < price < _MAX:
        return None
    if unit is Unit.USD_CONTRACTS:
        usd = raw * contract.contract_size
        qty = usd / price
    else:
        qty = raw * contract.contract_size
        usd = qty * price
    return rec[:7] + (price, qty, usd) + rec[10:]


def streamed_price(registry: Registry, ids: dict[str, int], last_price: dict[int, float]) -> Callable[[str], float]:
    """``asset -> last price`` over the feed's own instruments (``ids``; ``last_price`` by instrument id), 0 if none."""
    def price_of(asset: str) -> float:
        aid = registry.asset_id(asset)
        for iid in ids.values():
            if int(registry.rows[iid]["asset"]) == aid and last_price.get(iid, 0.0) > 0.0:
                return last_price[iid]
        return 0.0
    return price_of


def poll_interval(contracts: Sequence[Contract], interval_s: float, budget_per_minute: float) -> float:
    """``interval_s``, stretched so one round of polls stays within :data:`MARGIN_OI_BUDGET_SHARE` of the budget."""
    weight = sum(c.market.oi_request(c.symbol)[2] for c in contracts)
    allowed = MARGIN_OI_BUDGET_SHARE * budget_per_minute
    return max(interval_s, weight * 60.0 / allowed) if weight else interval_s


def coverage(venue: str) -> str:
    """Which margin types beyond the feed's own perps ``venue`` adds (for /oi and logs)."""
    markets = MARKETS.get(venue, ())
    return ", ".join("coin-margined" if m.margin == "coin" else "USDC" for m in markets) or "none"


class MarginOiPoller:
    """Discover a venue's coin- and USDC-margined contracts of ``assets`` and poll their OI into ``write``.

    ``rest`` is the feed's poller (its budget is shared; a market with its own live host gets a
    poller of its own on the same budget). ``price_of(asset)`` is the asset's last streamed price
    on the venue (0 when none yet); ``skip`` holds symbols the feed carries itself.
    """

    def __init__(self, venue_name: str, venue, rest: RestPoller, registry: Registry, assets: Sequence[str],
                 interval_s: float, budget_per_minute: float, price_of: Callable[[str], float],
                 write: Callable[[list], object], skip: Callable[[str], bool] = lambda s: False,
                 retry_s: float = 60.0):
        self.venue_name = venue_name
        self.venue = venue
        self.rest = rest
        self.registry = registry
        self.assets = list(assets)
        self.interval_s = interval_s
        self.budget_per_minute = budget_per_minute
        self.price_of = price_of
        self.write = write
        self.skip = skip
        self.retry_s = retry_s
        self.markets = MARKETS.get(venue_name, ())
        self.contracts: list[Contract] = []
        self.ids: dict[str, int] = {}
        self.interval = interval_s
        self._pollers: dict[str, RestPoller] = {}
        self.n = {"margin_oi_contracts": 0, "margin_oi_polls": 0, "margin_oi_records": 0, "margin_oi_errors": 0,
                  "margin_oi_no_price": 0, "margin_oi_malformed": 0}

    def counters(self) -> dict[str, float]:
        """Counters for the feed actor's published stats."""
        self.n["margin_oi_contracts"] = len(self.contracts)
        return {**self.n, "margin_oi_interval_s": self.interval}

    def _poller(self, market: MarginMarket) -> RestPoller:
        """The REST poller for ``market``: the feed's, or one on the market's own live host with the same budget."""
        base = self.rest.base_url
        if market.live_rest_url and base in ("", self.venue.DEFAULT_REST_URL.rstrip("/")):
            base = market.live_rest_url   # a configured rest_url (the simulator) serves every path itself
        if base == self.rest.base_url:
            return self.rest
        if base not in self._pollers:
            self._pollers[base] = RestPoller(self.venue, base, self.rest.budget, client=self.rest.client)
        return self._pollers[base]

    async def discover(self) -> list[Contract]:
        """Fetch each market's listing (each distinct listing once) and register the contracts of ``assets``."""
        found: list[Contract] = []
        listings: dict[tuple, list[InstrumentInfo] | None] = {}
        for m in self.markets:
            poller = self._poller(m)
            key = (poller.base_url, m.listing[0], tuple(sorted(m.listing[1].items())))
            if key not in listings:
                view = SimpleNamespace(EXCHANGE_INFO_REQUEST=m.listing, parse_exchange_info=m.parse_listing,
                                       next_page=m.next_page, REST_METHOD=getattr(self.venue, "REST_METHOD", "GET"),
                                       REST_HEADERS=getattr(self.venue, "REST_HEADERS", {}))
                lister = RestPoller(view, poller.base_url, poller.budget, client=poller.client)
                listings[key] = await lister.instruments()
                self.n["margin_oi_errors"] += lister.errors
            if listings[key] is None:
                log.warning("%s: %s-margined listing unavailable", self.venue_name, m.margin)
                continue
            found += [c for c in select(listings[key], m, self.assets) if not self.skip(c.symbol)]
        for c in found:
            market = Market.PERP_INVERSE if c.market.quote == "USD" else Market.PERP_LINEAR
            try:
                self.ids[c.symbol] = self.registry.add(self.venue.VENUE, c.symbol, c.asset, market,
                                                       c.contract_size, 0.0, c.market.quote)
            except (ValueError, RuntimeError) as exc:
                log.warning("%s: cannot register %s: %s", self.venue_name, c.symbol, exc)
        return [c for c in found if c.symbol in self.ids]

    async def poll_once(self, contract: Contract) -> None:
        """Poll one contract's OI and write it converted; failures are counted, never raised."""
        m = contract.market
        path, params, weight = m.oi_request(contract.symbol)
        self.n["margin_oi_polls"] += 1
        try:
            body = await self._poller(m).get(path, params, weight)
        except RestError as exc:
            self.n["margin_oi_errors"] += 1
            log.debug("%s margin OI %s: %s", self.venue_name, contract.symbol, exc)
            return
        ref = self.price_of(contract.asset)
        out: list = []
        outcome = m.parse_oi(body, self.ids.get, time.time_ns(), ref, out)
        if outcome == Outcome.MALFORMED:
            self.n["margin_oi_malformed"] += 1
            return
        recs = [r for r in (to_base(r, contract, ref) for r in out if r[0] == Kind.OPEN_INTEREST) if r is not None]
        if len(recs) < len(out) or (outcome == Outcome.PARSED and not out):
            self.n["margin_oi_no_price"] += 1
        if recs:
            self.n["margin_oi_records"] += len(recs)
            self.write(recs)

    async def run(self, stopping: Callable[[], bool]) -> None:
        """Discover (again every ``retry_s`` while nothing is found), then poll every contract once per interval."""
        if not self.markets or not self.assets:
            return
        while not stopping() and not self.contracts:
            self.contracts = await self.discover()
            if not self.contracts:
                await asyncio.sleep(self.retry_s)
        if not self.contracts:
            return
        self.interval = poll_interval(self.contracts, self.interval_s, self.budget_per_minute)
        log.info("%s: margin OI of %s every %.1fs", self.venue_name,
                 ", ".join(c.symbol for c in self.contracts), self.interval)
        step = self.interval / len(self.contracts)
        loop = asyncio.get_running_loop()
        next_at = loop.time()
        while not stopping():
            for c in self.contracts:
                if stopping():
                    return
                await asyncio.sleep(max(0.0, next_at - loop.time()))
                next_at = max(next_at + step, loop.time())
                if not self.skip(c.symbol):   # the feed may have taken it into its own selection since
                    await self.poll_once(c)
