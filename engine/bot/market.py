"""Read-only view of the engine's live market state for the bot and ``undertow top``.

Joins the instrument registry (venue, symbol, market type, asset) with the
seqlocked state table rows, and resolves what a user typed (``btc``,
``BTCUSDT``, ``BTC-USDT``, ``BTC/USDT``, ``BTC_USDT``, ``BTC-USDT-SWAP``) to a
canonical asset. Nothing here calls the network.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from engine.instruments import Market, canonical_asset
from engine.record import VENUE_NAMES

__all__ = ["MarketView", "InstrumentState", "parse_symbol", "QUOTES"]

QUOTES = ("USDT", "USDC", "USD", "FDUSD", "BUSD")
_SUFFIXES = ("-SWAP", "_UMCBL", "_DMCBL", "-PERP", "PERP")
_SYMBOL_RE = re.compile(r"^[A-Za-z0-9._/\-]{1,32}$")


def parse_symbol(text: str) -> str | None:
    """The base asset a user meant, or None when the text cannot be a symbol."""
    if not text or not _SYMBOL_RE.match(text):
        return None
    s = text.upper()
    for suf in _SUFFIXES:
        if s.endswith(suf) and len(s) > len(suf):
            s = s[: -len(suf)]
    parts = [p for p in re.split(r"[-_/]", s) if p]
    if not parts:
        return None
    base = parts[0]
    if len(parts) == 1:
        for q in QUOTES:
            if base.endswith(q) and len(base) > len(q):
                base = base[: -len(q)]
                break
    return canonical_asset(base)[0] or None


@dataclass(frozen=True)
class InstrumentState:
    """One instrument's identity and its latest state-table row."""

    id: int
    venue: str
    symbol: str
    asset: str
    market: str          # perp | inverse | spot | future
    quote: str
    row: dict

    @property
    def stable_margined(self) -> bool:
        return self.market in ("perp", "spot")


class MarketView:
    """The registry joined with the state table; every read is a consistent row copy."""

    def __init__(self, registry, table):
        self.registry = registry
        self.table = table

    def assets(self) -> list[str]:
        """Every canonical asset the engine has an instrument for, sorted."""
        reg = self.registry
        return sorted({reg.asset_name(i) for i in range(reg.n_assets)})

    def resolve(self, text: str) -> str | None:
        """Canonical asset for user input, or None when the engine does not watch it."""
        base = parse_symbol(text)
        if base is None or self.registry.asset_id(base) is None:
            return None
        return base

    def asset_row(self, asset: str) -> dict | None:
        aid = self.registry.asset_id(asset)
        if aid is None or aid >= self.table.max_assets:
            return None
        return self.table.read_asset(aid)

    def instruments(self, asset: str | None = None) -> list[InstrumentState]:
        """Instruments (of ``asset``, or all) with their rows; rows never written are skipped."""
        out = []
        for ins in self.registry.all():
            if asset is not None and ins.asset != asset:
                continue
            if ins.id >= self.table.max_instruments:
                continue
            row = self.table.read_instrument(ins.id)
            if not row["updated_ns"]:
                continue
            out.append(InstrumentState(ins.id, VENUE_NAMES.get(ins.venue, str(ins.venue)), ins.symbol, ins.asset,
                                       Market.NAMES.get(ins.market, "?"), ins.quote, row))
        return out
