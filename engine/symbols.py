"""Which symbols a venue's feed carries, and how often their open interest is polled.

A venue's ``symbols`` setting is an explicit list of native symbols, ``"all"``
(every trading perpetual margined in one of ``symbol_quotes``, across every
page of the instrument list) or ``"top:N"`` (the N such perpetuals with the
most 24 h USD volume). :func:`resolve` turns it into a :class:`Resolution`
through the venue module's REST contract (``EXCHANGE_INFO_REQUEST`` +
``parse_exchange_info`` + optional ``next_page``, ``TICKERS_REQUEST`` +
``parse_tickers``); when REST fails it logs and falls back to
``fallback_symbols``. :func:`register` maps the symbols to canonical assets
in the instrument registry.

Open interest is REST-polled in two tiers (:func:`oi_schedule`): the hot
symbols (top ``oi_hot_symbols`` by volume) every ``oi_poll_interval_s``, the
long tail every ``oi_tail_interval_s``; whatever the configuration says, the
planned weight stays within :data:`OI_BUDGET_SHARE` of the venue's per-minute
budget, leaving the rest for instrument lists, tickers and book snapshots
(the shared :class:`~engine.rest.WeightBudget` enforces the limit anyway).
"""
from __future__ import annotations

import logging
from types import ModuleType
from typing import NamedTuple, Sequence

from engine.config import SYMBOL_SELECTOR, VenueConfig
from engine.instruments import Market, Registry, canonical_asset
from engine.rest import RestPoller
from engine.venues import InstrumentInfo

__all__ = ["Selector", "parse_selector", "eligible", "rank", "Resolution", "resolve", "register",
           "OiSchedule", "oi_schedule", "OI_BUDGET_SHARE"]

log = logging.getLogger("undertow.symbols")

OI_BUDGET_SHARE = 0.75   # of the venue's REST weight per minute; the rest is for listings, tickers, snapshots
_QUOTES = ("USDT", "USDC", "USD")


class Selector(NamedTuple):
    """A parsed ``symbols`` setting: kind "list" (``symbols``), "all" or "top" (``n``)."""

    kind: str
    n: int = 0
    symbols: tuple[str, ...] = ()


def parse_selector(value: str | Sequence[str]) -> Selector:
    """Parse a ``symbols`` setting; raise ValueError for a string that is neither "all" nor "top:N"."""
    if not isinstance(value, str):
        return Selector("list", len(value), tuple(value))
    m = SYMBOL_SELECTOR.match(value)
    if m is None:
        raise ValueError(f'symbols must be a list, "all" or "top:N", got {value!r}')
    return Selector("all") if m.group(1) == "all" else Selector("top", int(m.group(2)))


def eligible(infos: Sequence[InstrumentInfo], quotes: Sequence[str],
             contract_type: str = "perpetual") -> list[InstrumentInfo]:
    """The trading instruments of ``contract_type`` (a spot venue passes "spot") margined in one of ``quotes``."""
    return [i for i in infos if i.contract_type == contract_type and i.status == "trading" and i.quote in quotes]


def rank(symbols: Sequence[str], volumes: dict[str, float]) -> list[str]:
    """``symbols`` by 24 h volume, largest first (unknown volume counts as 0; ties keep their order)."""
    order = {s: n for n, s in enumerate(symbols)}
    return sorted(symbols, key=lambda s: (-volumes.get(s, 0.0), order[s]))


class Resolution(NamedTuple):
    """What a venue's feed carries: ``symbols`` in priority order, with whatever metadata REST gave."""

    symbols: list[str]
    infos: dict[str, InstrumentInfo]   # symbol -> metadata ({} when the instrument list failed)
    volumes: dict[str, float]          # symbol -> 24 h USD volume ({} when not fetched or failed)
    source: str                        # "config" (explicit list), "rest" (selector resolved) or "fallback"


def _wants_volumes(sel: Selector, vcfg: VenueConfig, venue: ModuleType) -> bool:
    if sel.kind == "top":
        return True
    polls_oi = "oi" in vcfg.streams and getattr(venue, "oi_request", None) is not None
    return polls_oi and vcfg.oi_hot_symbols > 0 and (sel.kind == "all" or sel.n > vcfg.oi_hot_symbols)


async def resolve(vcfg: VenueConfig, venue: ModuleType, rest: RestPoller, name: str = "") -> Resolution:
    """Resolve ``vcfg.symbols`` for ``venue`` over ``rest``; never raises for REST failures."""
    name = name or getattr(venue, "__name__", "venue").rsplit(".", 1)[-1]
    sel = parse_selector(vcfg.symbols)
    listing = await rest.instruments()
    infos = {i.symbol: i for i in listing or ()}
    volumes = (await rest.tickers() if _wants_volumes(sel, vcfg, venue) else None) or {}
    if sel.kind == "list":
        if listing is not None:
            missing = [s for s in sel.symbols if s not in infos]
            if missing:
                log.warning("%s: configured symbols not in the instrument list: %s", name, ", ".join(missing))
        return Resolution(list(sel.symbols), infos, volumes, "config")
    if listing is None or (sel.kind == "top" and not volumes):
        log.warning("%s: cannot resolve symbols = %r (REST unavailable); using fallback_symbols %s",
                    name, vcfg.symbols, list(vcfg.fallback_symbols))
        return Resolution(list(vcfg.fallback_symbols), infos, volumes, "fallback")
    ranked = rank([i.symbol for i in eligible(listing, vcfg.symbol_quotes, getattr(venue, "CONTRACT_TYPE", "perpetual"))],
                  volumes)
    chosen = ranked[:sel.n] if sel.kind == "top" else ranked
    log.info("%s: symbols = %r resolved to %d instruments (of %d listed)", name, vcfg.symbols, len(chosen),
             len(listing))
    return Resolution(chosen, infos, volumes, "rest")


def register(registry: Registry, venue: ModuleType, symbols: Sequence[str],
             infos: dict[str, InstrumentInfo]) -> dict[str, int]:
    """Register ``symbols`` (metadata from ``infos`` where known); return symbol -> instrument id.

    A symbol the registry cannot hold (name too long, table full) is logged and left out.
    """
    ids: dict[str, int] = {}
    for symbol in symbols:
        info = infos.get(symbol)
        base = info.base if info else venue.base_from_symbol(symbol)
        asset, units = canonical_asset(base)
        if info:
            quote = info.quote
        else:
            rest_of_symbol = symbol[len(base):] if symbol.startswith(base) else symbol
            quote = next((q for q in _QUOTES if q in rest_of_symbol), getattr(venue, "DEFAULT_QUOTE", "USDT"))
        contract = (info.contract_size if info and info.contract_size > 0 else 1.0) * units
        market = getattr(venue, "MARKET", None)   # a spot venue module says Market.SPOT
        if market is None:
            market = Market.PERP_INVERSE if quote == "USD" else Market.PERP_LINEAR
        try:
            ids[symbol] = registry.add(venue.VENUE, symbol, asset, market, contract,
                                       info.tick_size if info else 0.0, quote)
        except (ValueError, RuntimeError) as exc:
            log.warning("cannot register %s: %s", symbol, exc)
    return ids


class OiSchedule(NamedTuple):
    """Open-interest polling plan of one venue."""

    hot: list[str]
    hot_interval_s: float
    tail: list[str]
    tail_interval_s: float
    weight_per_minute: float          # planned steady-state weight of both tiers

    def tiers(self) -> list[tuple[list[str], float]]:
        """(symbols, interval) per non-empty tier."""
        return [(s, i) for s, i in ((self.hot, self.hot_interval_s), (self.tail, self.tail_interval_s)) if s]


def oi_schedule(symbols: Sequence[str], volumes: dict[str, float], vcfg: VenueConfig, venue: ModuleType,
                budget_per_minute: float) -> OiSchedule:
    """Split ``symbols`` into hot and tail tiers and stretch their intervals to fit the weight budget.

    Planned weight/min = sum(request weights of a tier) * 60 / its interval, for both tiers, and is kept
    <= ``OI_BUDGET_SHARE * budget_per_minute``: only the tail slows down while the hot tier needs at most
    half of that share, else both intervals stretch by the same factor.
    """
    ordered = rank(list(symbols), volumes) if volumes else list(symbols)
    hot, tail = ordered[:vcfg.oi_hot_symbols], ordered[vcfg.oi_hot_symbols:]
    weight = lambda group: float(sum(venue.oi_request(s)[2] for s in group))
    hot_w, tail_w = weight(hot), weight(tail)
    hot_i, tail_i = vcfg.oi_poll_interval_s, vcfg.oi_tail_interval_s
    allowed = OI_BUDGET_SHARE * budget_per_minute
    rate = lambda w, i: w * 60.0 / i if w else 0.0
    total = rate(hot_w, hot_i) + rate(tail_w, tail_i)
    if total > allowed:
        if tail_w and rate(hot_w, hot_i) <= allowed / 2:
            tail_i = tail_w * 60.0 / (allowed - rate(hot_w, hot_i))
        else:   # scale both alike, so the hot tier stays the faster one
            hot_i *= total / allowed
            tail_i *= total / allowed
        log.info("open interest: %d hot every %.1fs, %d others every %.1fs (budget %.0f weight/min)",
                 len(hot), hot_i, len(tail), tail_i, budget_per_minute)
    return OiSchedule(hot, hot_i, tail, tail_i, rate(hot_w, hot_i) + rate(tail_w, tail_i))
