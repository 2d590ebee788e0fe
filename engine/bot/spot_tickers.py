"""Every Binance spot pair's rolling 24 h statistics, from the all-market mini-ticker stream, for ``/top10 spot``.

The feed actors carry only the watched symbols; ``/top10 spot`` ranks the whole spot market like the
existing bot did (every ``*/USDT`` pair but stablecoins, fiat and leveraged tokens). :class:`SpotTickers`
keeps the latest :class:`~engine.venues.binance_spot.SpotTicker` per pair. :meth:`SpotTickers.feed`
builds a one-socket :class:`~engine.wsfeed.WsFeed` on ``!miniTicker@arr`` (reconnects, back-off and
stale-stream handling as every feed) that fills it through the venue's own parser; frames emit no records.
"""
from __future__ import annotations

import time
from typing import NamedTuple

import msgspec

from engine.venues import Outcome, binance_spot
from engine.venues.binance_spot import SpotTicker, is_plain_spot_pair
from engine.wsfeed import WsFeed

__all__ = ["SpotTickers", "RankedTicker"]


class RankedTicker(NamedTuple):
    """One ranked pair."""

    symbol: str
    base: str
    ticker: SpotTicker


class SpotTickers:
    """The latest mini-ticker of every spot pair (filled by :meth:`feed`, or by :meth:`ingest` from frames)."""

    def __init__(self) -> None:
        self.parser = binance_spot.Parser(lambda symbol: None)   # no instruments: tickers only, no records
        self.trading: frozenset[str] | None = None   # pairs open to spot trading, once a listing was read

    def set_listing(self, infos) -> None:
        """Keep only pairs the exchange lists as trading spot pairs (``binance_spot.parse_exchange_info``)."""
        self.trading = frozenset(i.symbol for i in infos if i.contract_type == "spot" and i.status == "trading")

    @property
    def tickers(self) -> dict[str, SpotTicker]:
        return self.parser.tickers

    def ingest(self, payload: bytes) -> bool:
        """Fold one raw or combined mini-ticker frame in; False if the frame was not usable (counted by the parser)."""
        outcome, _ = self.parser.parse(payload, time.time_ns(), [])
        return outcome == Outcome.PARSED

    def age_s(self, now_s: float | None = None) -> float:
        """Seconds since the newest ticker's event time (inf before the first frame)."""
        if not self.tickers:
            return float("inf")
        newest = max(t.ts_ms for t in self.tickers.values())
        return (now_s if now_s is not None else time.time()) - newest / 1000.0

    def top(self, n: int = 10, quote: str = "USDT") -> list[RankedTicker]:
        """The ``n`` plain ``*/quote`` pairs with the most 24 h quote volume, largest first."""
        listed = self.trading
        pairs = [(s, s[: -len(quote)], t) for s, t in self.tickers.items()
                 if s.endswith(quote) and len(s) > len(quote) and (listed is None or s in listed)]
        bases = {b for _, b, _ in pairs}
        plain = [RankedTicker(*p) for p in pairs if is_plain_spot_pair(p[1], bases)]
        plain.sort(key=lambda r: -r.ticker.quote_volume)
        return plain[:n]

    def feed(self, vcfg) -> WsFeed:
        """A one-socket feed of ``!miniTicker@arr`` on ``vcfg``'s (``[venues.binance_spot]``) endpoint."""
        only_tickers = msgspec.structs.replace(vcfg, symbols=[], streams=["tickers"])
        return WsFeed(binance_spot, binance_spot.plan(only_tickers), self.parser, lambda records: None,
                      reconnect_initial_s=vcfg.reconnect_initial_s, reconnect_max_s=vcfg.reconnect_max_s,
                      stale_after_s=vcfg.stale_after_s, rotate_after_s=vcfg.rotate_after_s)
