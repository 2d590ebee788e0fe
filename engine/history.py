"""Recorded history: daily segment files of normalized records and signals.

Layout under a history root::

    instruments.json                  instrument id -> venue, symbol, asset (ids of the recording)
    2026-02-13/records-binance.seg    chunks of RECORD_DTYPE rows (the ring's own dtype), compressed
    2026-02-13/records-binance.idx    one fixed-size entry per chunk: offset, counts, time range
    2026-02-13/signals.seg            chunks of msgpack [[ts_recv, topic, payload], ...], compressed
    2026-02-13/signals.idx

A day is the UTC day of a record's ``ts_recv`` (a signal's: when the recorder
received it). Each chunk starts with a 40-byte header (magic, codec, kind,
count, raw and compressed lengths, first/last ``ts_recv``, CRC32 of the
compressed bytes) so a segment is self-describing; the ``.idx`` sidecar repeats
the header with the chunk's offset so range reads seek straight to the chunks
that overlap, and is rebuilt by scanning the segment when it is missing or
shorter than the segment. A chunk whose CRC or length does not check out is
skipped and counted in :attr:`History.bad_chunks`, with the reason logged.

Compression: zstandard when the ``zstandard`` package is importable, else
zlib (standard library); the codec is stored per chunk, so a reader decodes
either. Retention: :meth:`HistoryWriter.prune` removes whole days older than
``retention_days``.
"""
from __future__ import annotations

import json
import logging
import os
import re
import shutil
import struct
import time
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import msgspec
import numpy as np

from .record import RECORD_DTYPE, Kind

__all__ = ["HistoryWriter", "History", "HistoryError", "InstrumentInfo", "CODEC", "day_of", "parse_span",
           "liquidation_totals", "open_interest_series"]

log = logging.getLogger("undertow.history")

try:  # optional: better ratio and speed than zlib
    import zstandard as _zstd
except ImportError:  # pragma: no cover - depends on the environment
    _zstd = None

CODEC_ZLIB, CODEC_ZSTD = 1, 2
CODEC = "zstd" if _zstd is not None else "zlib"
_CODEC_IDS = {"zlib": CODEC_ZLIB, "zstd": CODEC_ZSTD}

CHUNK_RECORDS, CHUNK_SIGNALS = 1, 2
_MAGIC = b"UTSG"
_HEADER = struct.Struct("<4sBBHIIIqqI")   # magic codec kind pad count raw_len comp_len ts_min ts_max crc
_INDEX = struct.Struct("<Q4sBBHIIIqqI")   # offset + the header
assert _HEADER.size == 40 and _INDEX.size == 48

_DAY_DIR = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_NS_PER_DAY = 86_400 * 10**9


class HistoryError(ValueError):
    """A history root or segment cannot be used (the message says which and why)."""


@dataclass(frozen=True)
class InstrumentInfo:
    """An instrument of the recording, keyed by the id its records carry."""

    id: int
    venue: int
    symbol: str
    asset: str


def day_of(ts_ns: int) -> str:
    """UTC day (``YYYY-MM-DD``) of a timestamp in ns since the epoch."""
    return time.strftime("%Y-%m-%d", time.gmtime(ts_ns // 10**9))


def _day_start_ns(day: str) -> int:
    return int(np.datetime64(day, "ns").astype(np.int64))


def parse_span(text: str) -> int:
    """``"24h"``, ``"7d"``, ``"30m"``, ``"90s"`` -> nanoseconds; ValueError if malformed."""
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*", text or "")
    if not m:
        raise ValueError(f"not a time span: {text!r} (use e.g. 30m, 24h, 7d)")
    unit = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}[m.group(2)]
    return int(float(m.group(1)) * unit * 10**9)


def _compress(raw: bytes, codec: int, level: int) -> bytes:
    if codec == CODEC_ZSTD:
        return _zstd.ZstdCompressor(level=level).compress(raw)
    return zlib.compress(raw, min(level, 9))


def _decompress(data: bytes, codec: int, raw_len: int) -> bytes:
    if codec == CODEC_ZSTD:
        if _zstd is None:
            raise HistoryError("chunk is zstd-compressed but the zstandard package is not installed")
        return _zstd.ZstdDecompressor().decompress(data, max_output_size=raw_len)
    if codec == CODEC_ZLIB:
        return zlib.decompress(data)
    raise HistoryError(f"unknown codec id {codec}")


class _Segment:
    """Append-only segment file plus its index sidecar."""

    def __init__(self, path: Path):
        self.path = path
        self.idx_path = path.with_suffix(".idx")

    def append(self, kind: int, codec: int, level: int, raw: bytes, count: int, ts_min: int, ts_max: int) -> None:
        comp = _compress(raw, codec, level)
        crc = zlib.crc32(comp)
        header = _HEADER.pack(_MAGIC, codec, kind, 0, count, len(raw), len(comp), ts_min, ts_max, crc)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path, "ab") as f:
            offset = f.tell()
            f.write(header + comp)
            f.flush()
        with open(self.idx_path, "ab") as f:
            f.write(struct.pack("<Q", offset) + header)

    def entries(self) -> list[tuple]:
        """Index entries (offset, magic, codec, kind, pad, count, raw_len, comp_len, ts_min, ts_max, crc)."""
        try:
            size = self.path.stat().st_size
        except FileNotFoundError:
            return []
        out = []
        if self.idx_path.exists():
            data = self.idx_path.read_bytes()
            n = len(data) // _INDEX.size
            out = [_INDEX.unpack_from(data, i * _INDEX.size) for i in range(n)]
        end = out[-1][0] + _HEADER.size + out[-1][7] if out else 0
        if end < size:  # index behind the segment (crash between the two writes): scan the rest
            out += self._scan(end, size)
        return out

    def _scan(self, offset: int, size: int) -> list[tuple]:
        out = []
        with open(self.path, "rb") as f:
            while offset + _HEADER.size <= size:
                f.seek(offset)
                h = _HEADER.unpack(f.read(_HEADER.size))
                if h[0] != _MAGIC:
                    log.error("%s: no chunk header at byte %d; the rest of the segment is ignored", self.path, offset)
                    break
                out.append((offset, *h))
                offset += _HEADER.size + h[6]
        return out


class HistoryWriter:
    """Buffer records (per venue) and signals, and append them as compressed chunks to daily segments."""

    def __init__(self, root: str | os.PathLike, codec: str = "auto", level: int = 3,
                 chunk_records: int = 65536, chunk_signals: int = 4096):
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        name = CODEC if codec == "auto" else codec
        if name not in _CODEC_IDS:
            raise HistoryError(f"codec must be auto, zlib or zstd, not {codec!r}")
        if name == "zstd" and _zstd is None:
            raise HistoryError("codec zstd asked for but the zstandard package is not installed")
        self.codec = _CODEC_IDS[name]
        self.level = level
        self.chunk_records = chunk_records
        self.chunk_signals = chunk_signals
        self._records: dict[str, list[np.ndarray]] = {}
        self._n_records: dict[str, int] = {}
        self._signals: list[tuple[int, str, bytes]] = []
        self.written_records = 0
        self.written_signals = 0
        self.chunks = 0
        self._instruments: dict[int, InstrumentInfo] = {}

    # -- input ------------------------------------------------------------
    def add_records(self, venue: str, recs: np.ndarray) -> None:
        """Buffer a batch of records from ``venue``'s ring (copied: ring views are reused)."""
        if not len(recs):
            return
        self._records.setdefault(venue, []).append(np.array(recs, dtype=RECORD_DTYPE, copy=True))
        n = self._n_records.get(venue, 0) + len(recs)
        self._n_records[venue] = n
        if n >= self.chunk_records:
            self._flush_venue(venue)

    def add_signal(self, ts_recv: int, topic: str, payload: bytes) -> None:
        """Buffer one signal as received from the bus (raw msgpack payload)."""
        self._signals.append((ts_recv, topic, payload))
        if len(self._signals) >= self.chunk_signals:
            self._flush_signals()

    def set_instruments(self, infos: list[InstrumentInfo]) -> None:
        """Record the instrument table (rewritten atomically when it has grown)."""
        if len(infos) == len(self._instruments):
            return
        self._instruments = {i.id: i for i in infos}
        tmp = self.root / "instruments.json.tmp"
        tmp.write_text(json.dumps([[i.id, i.venue, i.symbol, i.asset] for i in infos]))
        tmp.replace(self.root / "instruments.json")

    # -- output -----------------------------------------------------------
    def flush(self) -> None:
        """Write every buffered record and signal."""
        for venue in list(self._records):
            self._flush_venue(venue)
        self._flush_signals()

    def _flush_venue(self, venue: str) -> None:
        parts = self._records.pop(venue, [])
        self._n_records.pop(venue, None)
        if not parts:
            return
        recs = np.concatenate(parts)
        days = (recs["ts_recv"] // _NS_PER_DAY).astype(np.int64)
        for d in np.unique(days):  # a batch that straddles midnight goes to two days
            part = recs[days == d]
            ts = part["ts_recv"]
            seg = _Segment(self.root / day_of(int(d) * _NS_PER_DAY) / f"records-{venue}.seg")
            seg.append(CHUNK_RECORDS, self.codec, self.level, part.tobytes(), len(part), int(ts.min()), int(ts.max()))
            self.chunks += 1
        self.written_records += len(recs)

    def _flush_signals(self) -> None:
        sigs, self._signals = self._signals, []
        if not sigs:
            return
        by_day: dict[str, list] = {}
        for s in sigs:
            by_day.setdefault(day_of(s[0]), []).append(s)
        for day, rows in by_day.items():
            raw = msgspec.msgpack.encode([[t, topic, payload] for t, topic, payload in rows])
            ts = [r[0] for r in rows]
            _Segment(self.root / day / "signals.seg").append(CHUNK_SIGNALS, self.codec, self.level, raw, len(rows),
                                                              min(ts), max(ts))
            self.chunks += 1
        self.written_signals += len(sigs)

    def prune(self, retention_days: float, now_ns: int | None = None) -> list[str]:
        """Remove whole days that ended more than ``retention_days`` ago; return the removed days."""
        now_ns = time.time_ns() if now_ns is None else now_ns
        cutoff = now_ns - int(retention_days * _NS_PER_DAY)
        removed = []
        for d in sorted(p.name for p in self.root.iterdir() if p.is_dir() and _DAY_DIR.match(p.name)):
            if _day_start_ns(d) + _NS_PER_DAY <= cutoff:
                shutil.rmtree(self.root / d, ignore_errors=True)
                removed.append(d)
        return removed

    def close(self) -> None:
        self.flush()


class History:
    """Read a history root: records and signals over a time range, fast through the chunk index."""

    def __init__(self, root: str | os.PathLike):
        self.root = Path(root)
        if not self.root.is_dir():
            raise HistoryError(f"{self.root}: no such history directory")
        self.bad_chunks = 0

    def days(self) -> list[str]:
        return sorted(p.name for p in self.root.iterdir() if p.is_dir() and _DAY_DIR.match(p.name))

    def venues(self) -> list[str]:
        """Venues that have records in any day."""
        return sorted({p.stem[len("records-"):] for d in self.days() for p in (self.root / d).glob("records-*.seg")})

    def instruments(self) -> dict[int, InstrumentInfo]:
        f = self.root / "instruments.json"
        if not f.exists():
            return {}
        try:
            rows = json.loads(f.read_text())
        except json.JSONDecodeError as exc:
            raise HistoryError(f"{f}: not valid JSON: {exc}") from None
        return {int(r[0]): InstrumentInfo(int(r[0]), int(r[1]), str(r[2]), str(r[3])) for r in rows}

    def _days_in(self, t0: int | None, t1: int | None) -> list[str]:
        out = []
        for d in self.days():
            start = _day_start_ns(d)
            if (t1 is None or start <= t1) and (t0 is None or start + _NS_PER_DAY > t0):
                out.append(d)
        return out

    def _chunks(self, seg: _Segment, t0: int | None, t1: int | None) -> Iterator[tuple[tuple, bytes]]:
        entries = [e for e in seg.entries() if (t1 is None or e[8] <= t1) and (t0 is None or e[9] >= t0)]
        if not entries:
            return
        with open(seg.path, "rb") as f:
            for e in entries:
                offset, magic, codec, kind, _, count, raw_len, comp_len, _, _, crc = e
                f.seek(offset + _HEADER.size)
                comp = f.read(comp_len)
                if magic != _MAGIC or len(comp) != comp_len or zlib.crc32(comp) != crc:
                    self.bad_chunks += 1
                    log.error("%s: chunk at byte %d is truncated or corrupt (CRC/length); skipped", seg.path, offset)
                    continue
                try:
                    raw = _decompress(comp, codec, raw_len)
                except (zlib.error, HistoryError, Exception) as exc:  # zstd raises its own error type
                    self.bad_chunks += 1
                    log.error("%s: chunk at byte %d does not decompress: %s; skipped", seg.path, offset, exc)
                    continue
                yield e, raw

    def count_records(self, t0: int | None = None, t1: int | None = None, venues: list[str] | None = None) -> int:
        """Records in chunks overlapping [t0, t1] (from the index alone: an upper bound of :meth:`records`)."""
        n = 0
        for d in self._days_in(t0, t1):
            for p in sorted((self.root / d).glob("records-*.seg")):
                if venues is None or p.stem[len("records-"):] in venues:
                    n += sum(e[5] for e in _Segment(p).entries()
                             if (t1 is None or e[8] <= t1) and (t0 is None or e[9] >= t0))
        return n

    def iter_records(self, t0: int | None = None, t1: int | None = None,
                     venues: list[str] | None = None) -> Iterator[tuple[str, np.ndarray]]:
        """``(venue, records)`` chunk by chunk, day by day; records with ``t0 <= ts_recv <= t1``."""
        for d in self._days_in(t0, t1):
            for p in sorted((self.root / d).glob("records-*.seg")):
                venue = p.stem[len("records-"):]
                if venues is not None and venue not in venues:
                    continue
                for e, raw in self._chunks(_Segment(p), t0, t1):
                    if len(raw) != e[5] * RECORD_DTYPE.itemsize:
                        self.bad_chunks += 1
                        log.error("%s: chunk at byte %d holds %d bytes for %d records; skipped", p, e[0], len(raw), e[5])
                        continue
                    recs = np.frombuffer(raw, dtype=RECORD_DTYPE)
                    if t0 is not None or t1 is not None:
                        ts = recs["ts_recv"]
                        keep = np.ones(len(recs), dtype=bool)
                        if t0 is not None:
                            keep &= ts >= t0
                        if t1 is not None:
                            keep &= ts <= t1
                        recs = recs[keep]
                    if len(recs):
                        yield venue, recs

    def records(self, t0: int | None = None, t1: int | None = None, venues: list[str] | None = None,
                kinds: tuple[int, ...] | None = None, instruments: set[int] | None = None) -> np.ndarray:
        """Every matching record of every venue, merged in ``ts_recv`` order (stable within a venue)."""
        parts = []
        for _, recs in self.iter_records(t0, t1, venues):
            keep = np.ones(len(recs), dtype=bool)
            if kinds is not None:
                keep &= np.isin(recs["kind"], kinds)
            if instruments is not None:
                keep &= np.isin(recs["instrument"], list(instruments))
            parts.append(recs[keep])
        if not parts:
            return np.zeros(0, dtype=RECORD_DTYPE)
        out = np.concatenate(parts)
        return out[np.argsort(out["ts_recv"], kind="stable")]

    def signals(self, t0: int | None = None, t1: int | None = None,
                topic_prefix: str = "") -> list[tuple[int, str, bytes]]:
        """``(ts_recv, topic, payload)`` of recorded signals in time order, filtered by topic prefix."""
        out = []
        for d in self._days_in(t0, t1):
            for e, raw in self._chunks(_Segment(self.root / d / "signals.seg"), t0, t1):
                try:
                    rows = msgspec.msgpack.decode(raw)
                except msgspec.DecodeError as exc:
                    self.bad_chunks += 1
                    log.error("%s/signals.seg: chunk at byte %d is not msgpack: %s; skipped", d, e[0], exc)
                    continue
                for ts, topic, payload in rows:
                    if (t0 is None or ts >= t0) and (t1 is None or ts <= t1) and topic.startswith(topic_prefix):
                        out.append((ts, topic, payload))
        out.sort(key=lambda r: r[0])
        return out

    def instrument_ids(self, symbol_or_asset: str) -> set[int]:
        """Ids whose native symbol or canonical asset is ``symbol_or_asset`` (case-insensitive)."""
        key = symbol_or_asset.upper()
        return {i.id for i in self.instruments().values() if i.symbol.upper() == key or i.asset.upper() == key}


def liquidation_totals(hist: History, symbol_or_asset: str, since_ns: int, until_ns: int | None = None) -> dict:
    """``/liquidations SYMBOL 24h``: per venue, long/short USD and counts over the range."""
    from .record import VENUE_NAMES
    ids = hist.instrument_ids(symbol_or_asset)
    recs = hist.records(since_ns, until_ns, kinds=(Kind.LIQUIDATION,), instruments=ids) if ids else \
        np.zeros(0, dtype=RECORD_DTYPE)
    out: dict[str, dict[str, float]] = {}
    for v in np.unique(recs["venue"]).tolist():
        r = recs[recs["venue"] == v]
        longs, shorts = r[r["side"] > 0], r[r["side"] < 0]
        out[VENUE_NAMES.get(v, str(v))] = {"long_usd": float(longs["notional"].sum()), "long_n": len(longs),
                                          "short_usd": float(shorts["notional"].sum()), "short_n": len(shorts)}
    return out


def open_interest_series(hist: History, symbol_or_asset: str, since_ns: int,
                         until_ns: int | None = None) -> dict[str, np.ndarray]:
    """``/oi SYMBOL 7d``: per venue, an array of (ts_exchange, oi base, oi USD) rows."""
    from .record import VENUE_NAMES
    ids = hist.instrument_ids(symbol_or_asset)
    if not ids:
        return {}
    recs = hist.records(since_ns, until_ns, kinds=(Kind.OPEN_INTEREST,), instruments=ids)
    return {VENUE_NAMES.get(v, str(v)): np.column_stack([r["ts_exchange"].astype(np.float64), r["qty"], r["notional"]])
            for v in np.unique(recs["venue"]).tolist() for r in [recs[recs["venue"] == v]]}
