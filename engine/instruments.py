"""Instrument registry shared by every process.

Maps (venue, native symbol) -> instrument id -> canonical asset, contract size
and tick size. It lives in one shared-memory segment; any process may add an
instrument while the engine runs (under an inter-process lock), and every
process sees it on its next lookup. Ids are dense row numbers, so they index
per-instrument tables directly.
"""
from __future__ import annotations

import re
from typing import NamedTuple

import numpy as np

from . import shm

__all__ = ["Registry", "Instrument", "Market", "canonical_asset", "registry_segment"]

MAGIC = 0x47455254574F5455  # "UTOWTREG"
VERSION = 1
HEADER = 64

INSTRUMENT_DTYPE = np.dtype([
    ("venue", np.uint8),
    ("market", np.uint8),
    ("asset", np.uint16),
    ("flags", np.uint32),
    ("symbol", "S32"),
    ("quote", "S8"),
    ("contract_size", np.float64),  # base units per contract (1 where sizes are already base)
    ("tick_size", np.float64),
])
assert INSTRUMENT_DTYPE.itemsize == 64
ASSET_DTYPE = np.dtype([("name", "S16")])

_W_MAGIC, _W_VERSION, _W_MAX_INSTR, _W_MAX_ASSETS, _W_N_INSTR, _W_N_ASSETS = range(6)


class Market:
    """Contract type of an instrument."""

    PERP_LINEAR = 0   # USDT/USDC margined perpetual
    PERP_INVERSE = 1  # coin-margined perpetual
    SPOT = 2
    FUTURE = 3
    NAMES = {0: "perp", 1: "inverse", 2: "spot", 3: "future"}


class Instrument(NamedTuple):
    id: int
    venue: int
    symbol: str
    asset: str
    asset_id: int
    market: int
    quote: str
    contract_size: float     # base units per contract; USD per contract for inverse (coin-margined) contracts
    tick_size: float

    @property
    def coin_margined(self) -> bool:
        """Whether margin is posted in the base coin (an inverse perpetual, quoted in USD)."""
        return self.market == Market.PERP_INVERSE

    @property
    def settle(self) -> str:
        """The margin (settlement) currency: the base asset of an inverse contract, else the quote (USDT, USDC)."""
        return self.asset if self.coin_margined else self.quote


_MULTIPLIER_PREFIX = re.compile(r"^(1000000|100000|10000|1000|100|k)(?=[A-Z])")


def canonical_asset(base: str) -> tuple[str, float]:
    """Return (asset, units) for a venue's base name: ``1000PEPE`` -> (``PEPE``, 1000); ``kPEPE`` -> (``PEPE``, 1000)."""
    m = _MULTIPLIER_PREFIX.match(base)
    if not m:
        return base.upper(), 1.0
    p = m.group(1)
    return base[len(p):].upper(), 1000.0 if p == "k" else float(p)


def registry_segment(namespace: str) -> str:
    """Segment name of the registry in ``namespace``."""
    return shm.segment_name(namespace, "registry", "instruments")


class Registry:
    """The shared instrument and asset table."""

    def __init__(self, segment, name: str):
        self._shm = segment
        self.name = name
        buf = segment.buf
        self._hdr = np.ndarray((HEADER // 8,), dtype=np.uint64, buffer=buf)
        if int(self._hdr[_W_MAGIC]) != MAGIC or int(self._hdr[_W_VERSION]) != VERSION:
            raise RuntimeError(f"{name}: not an instrument registry of version {VERSION}")
        self.max_instruments = int(self._hdr[_W_MAX_INSTR])
        self.max_assets = int(self._hdr[_W_MAX_ASSETS])
        self.rows = np.ndarray((self.max_instruments,), dtype=INSTRUMENT_DTYPE, buffer=buf, offset=HEADER)
        self.assets = np.ndarray((self.max_assets,), dtype=ASSET_DTYPE, buffer=buf,
                                 offset=HEADER + self.max_instruments * INSTRUMENT_DTYPE.itemsize)
        self._by_symbol: dict[tuple[int, str], int] = {}
        self._by_asset: dict[str, int] = {}
        self._seen_instr = 0
        self._seen_assets = 0

    @staticmethod
    def _size(max_instruments: int, max_assets: int) -> int:
        return HEADER + max_instruments * INSTRUMENT_DTYPE.itemsize + max_assets * ASSET_DTYPE.itemsize

    @classmethod
    def open(cls, name: str, max_instruments: int = 8192, max_assets: int = 2048) -> "Registry":
        """Attach to the registry ``name``, creating it if needed."""
        seg, _ = shm.open_or_create_stamped(
            name, cls._size(max_instruments, max_assets),
            {_W_VERSION: VERSION, _W_MAX_INSTR: max_instruments, _W_MAX_ASSETS: max_assets}, (_W_MAGIC, MAGIC))
        return cls(seg, name)

    @classmethod
    def attach(cls, name: str) -> "Registry":
        """Attach to an existing registry."""
        return cls(shm.attach(name), name)

    def close(self) -> None:
        self.rows = self.assets = self._hdr = None
        try:
            self._shm.close()
        except BufferError:  # pragma: no cover
            pass

    def __len__(self) -> int:
        return int(self._hdr[_W_N_INSTR])

    @property
    def n_assets(self) -> int:
        return int(self._hdr[_W_N_ASSETS])

    def _refresh(self) -> None:
        n = int(self._hdr[_W_N_INSTR])
        for i in range(self._seen_instr, n):
            r = self.rows[i]
            self._by_symbol[(int(r["venue"]), r["symbol"].decode())] = i
        self._seen_instr = n
        na = int(self._hdr[_W_N_ASSETS])
        for i in range(self._seen_assets, na):
            self._by_asset[self.assets[i]["name"].decode()] = i
        self._seen_assets = na

    def lookup(self, venue: int, symbol: str) -> int | None:
        """Id of (venue, symbol), or None."""
        iid = self._by_symbol.get((venue, symbol))
        if iid is None and self._seen_instr != int(self._hdr[_W_N_INSTR]):
            self._refresh()
            iid = self._by_symbol.get((venue, symbol))
        return iid

    def asset_id(self, asset: str) -> int | None:
        """Id of a canonical asset, or None."""
        aid = self._by_asset.get(asset)
        if aid is None and self._seen_assets != int(self._hdr[_W_N_ASSETS]):
            self._refresh()
            aid = self._by_asset.get(asset)
        return aid

    def add(self, venue: int, symbol: str, asset: str, market: int = Market.PERP_LINEAR,
            contract_size: float = 1.0, tick_size: float = 0.0, quote: str = "USDT") -> int:
        """Register an instrument (idempotent) and return its id."""
        iid = self.lookup(venue, symbol)
        if iid is not None:
            return iid
        if len(symbol.encode()) > 32 or len(asset.encode()) > 16:
            raise ValueError(f"symbol or asset name too long: {symbol!r} {asset!r}")
        with shm.locked(self.name):
            self._refresh()
            iid = self._by_symbol.get((venue, symbol))
            if iid is not None:
                return iid
            aid = self._by_asset.get(asset)
            if aid is None:
                aid = int(self._hdr[_W_N_ASSETS])
                if aid >= self.max_assets:
                    raise RuntimeError(f"{self.name}: asset table full ({self.max_assets})")
                self.assets[aid]["name"] = asset.encode()
                self._hdr[_W_N_ASSETS] = aid + 1
            iid = int(self._hdr[_W_N_INSTR])
            if iid >= self.max_instruments:
                raise RuntimeError(f"{self.name}: instrument table full ({self.max_instruments})")
            self.rows[iid] = (venue, market, aid, 0, symbol.encode(), quote.encode()[:8],
                              contract_size, tick_size)
            self._hdr[_W_N_INSTR] = iid + 1  # publish after the row is complete
            self._refresh()
            return iid

    def get(self, iid: int) -> Instrument:
        """The instrument with id ``iid``."""
        if not 0 <= iid < len(self):
            raise KeyError(iid)
        r = self.rows[iid]
        aid = int(r["asset"])
        return Instrument(iid, int(r["venue"]), r["symbol"].decode(), self.assets[aid]["name"].decode(), aid,
                          int(r["market"]), r["quote"].decode(), float(r["contract_size"]), float(r["tick_size"]))

    def asset_name(self, aid: int) -> str:
        return self.assets[aid]["name"].decode()

    def asset_of(self) -> np.ndarray:
        """Asset id per instrument id (a copy, for kernels)."""
        return self.rows["asset"][: len(self)].astype(np.int64)

    def venue_of(self) -> np.ndarray:
        """Venue id per instrument id (a copy)."""
        return self.rows["venue"][: len(self)].astype(np.int64)

    def all(self) -> list[Instrument]:
        return [self.get(i) for i in range(len(self))]
