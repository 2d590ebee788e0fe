"""One-minute candles built from the trade stream, with taker buy/sell volume.

A :class:`CandleStore` keeps, per (asset, market class), a circular buffer of
1-minute candles indexed by ``minute % capacity``; a slot whose start time is
not the minute asked for is empty. Volumes split by the *taker* side of each
trade, so delta and CVD are real aggressor flow. Candles of any timeframe
are aggregated from the 1-minute ones on demand. At start the store can be
bootstrapped from venue kline REST (Binance USD-M ``/fapi/v1/klines`` and
spot ``/api/v3/klines`` carry the taker-buy volume too; the bot actor runs
one pass per market); a candle already built from trades is never
overwritten by a kline. The other venues' klines (each venue module's
``kline_request`` / ``parse_klines``) fill the assets Binance does not list;
they carry no taker split. Each minute says whether its split is known
(``SPLIT`` 1 or 0; ``MINUTES`` 1): minutes built from trades and Binance
klines know it, other venues' klines do not and hold no taker buy or sell
volume (trades folded into such a minute later add volume but no split, as
the kline's part stays unknown). Aggregated candles sum both columns, so a
candle says from how many of its minutes its taker flow comes
(:func:`split_coverage`): delta and CVD over minutes without a split are
unknown, not zero.
"""
from __future__ import annotations

import json
import re

import numpy as np

__all__ = ["CandleStore", "COLS", "T", "O", "H", "L", "C", "V", "BUY", "SELL", "USD", "N", "SPLIT", "MINUTES",
           "split_coverage",
           "parse_timeframe", "TIMEFRAMES", "aggregate", "binance_klines_to_candles", "fetch_binance_klines",
           "kline_weight", "KLINE_PATH", "MINUTE_MS", "venue_klines_to_candles", "fetch_venue_klines"]

# start ms, OHLC, base volume, taker buy/sell base, USD, trades, minutes with the taker split known, minutes
T, O, H, L, C, V, BUY, SELL, USD, N, SPLIT, MINUTES = range(12)
COLS = 12
MINUTE_MS = 60_000

TIMEFRAMES = {"1m": 1, "3m": 3, "5m": 5, "15m": 15, "30m": 30, "1h": 60, "2h": 120, "4h": 240, "6h": 360,
              "12h": 720, "1d": 1440}
_TF_RE = re.compile(r"^(\d+)([mhd])$")


def parse_timeframe(text: str) -> int | None:
    """Minutes of a timeframe such as ``15m``, ``1h``, ``1d`` (the ones in TIMEFRAMES), or None."""
    m = _TF_RE.match(text.strip().lower())
    if not m:
        return None
    minutes = int(m.group(1)) * {"m": 1, "h": 60, "d": 1440}[m.group(2)]
    return minutes if minutes in TIMEFRAMES.values() else None


def aggregate(one_minute: np.ndarray, tf_minutes: int) -> np.ndarray:
    """Aggregate sorted 1-minute candles into ``tf_minutes`` candles aligned to UTC multiples."""
    if tf_minutes == 1 or not len(one_minute):
        return one_minute.copy()
    bucket = (one_minute[:, T] // (tf_minutes * MINUTE_MS)).astype(np.int64)
    starts = np.flatnonzero(np.r_[True, bucket[1:] != bucket[:-1]])
    ends = np.r_[starts[1:], len(one_minute)] - 1
    out = np.empty((len(starts), COLS))
    out[:, T] = bucket[starts] * tf_minutes * MINUTE_MS
    out[:, O] = one_minute[starts, O]
    out[:, H] = np.maximum.reduceat(one_minute[:, H], starts)
    out[:, L] = np.minimum.reduceat(one_minute[:, L], starts)
    out[:, C] = one_minute[ends, C]
    for col in (V, BUY, SELL, USD, N, SPLIT, MINUTES):
        out[:, col] = np.add.reduceat(one_minute[:, col], starts)
    return out


def split_coverage(candles: np.ndarray) -> tuple[int, int]:
    """(minutes whose taker buy/sell split is known, minutes) held by ``candles`` of any timeframe."""
    return int(candles[:, SPLIT].sum()), int(candles[:, MINUTES].sum())


class CandleStore:
    """1-minute candles per (asset, market class) for the last ``capacity`` minutes."""

    def __init__(self, capacity_minutes: int = 5760):
        self.capacity = int(capacity_minutes)
        self._series: dict[tuple[str, str], np.ndarray] = {}
        self.trades = 0
        self.too_old = 0          # trades older than the buffer reaches: counted, not stored
        self.rejected = 0         # non-finite or non-positive price/qty

    def keys(self) -> list[tuple[str, str]]:
        return list(self._series)

    def _buf(self, key: tuple[str, str]) -> np.ndarray:
        buf = self._series.get(key)
        if buf is None:
            buf = self._series[key] = np.zeros((self.capacity, COLS))
            buf[:, T] = -1
        return buf

    def add_trades(self, key: tuple[str, str], ts_ns: np.ndarray, price: np.ndarray, qty: np.ndarray,
                   side: np.ndarray, usd: np.ndarray) -> None:
        """Fold trades (taker ``side`` +1 buy / -1 sell) of one series into its candles."""
        ok = np.isfinite(price) & np.isfinite(qty) & (price > 0) & (qty > 0)
        self.rejected += int((~ok).sum())
        if not ok.all():
            ts_ns, price, qty, side, usd = ts_ns[ok], price[ok], qty[ok], side[ok], usd[ok]
        if not len(ts_ns):
            return
        order = np.argsort(ts_ns, kind="stable")
        ts_ns, price, qty, side, usd = ts_ns[order], price[order], qty[order], side[order], usd[order]
        minute = ts_ns // (MINUTE_MS * 1_000_000)
        buf = self._buf(key)
        newest = int(minute[-1])
        fresh = minute > newest - self.capacity
        self.too_old += int((~fresh).sum())
        starts = np.flatnonzero(np.r_[True, minute[1:] != minute[:-1]])
        ends = np.r_[starts[1:], len(minute)]
        for s, e in zip(starts.tolist(), ends.tolist()):
            if not fresh[s]:
                continue
            m = int(minute[s])
            row = buf[m % self.capacity]
            p, q, sd = price[s:e], qty[s:e], side[s:e]
            if row[T] != m * MINUTE_MS:
                row[:] = 0.0
                row[T], row[O], row[H], row[L] = m * MINUTE_MS, p[0], p.max(), p.min()
                row[SPLIT] = row[MINUTES] = 1.0
            else:
                row[H], row[L] = max(row[H], p.max()), min(row[L], p.min())
            row[C] = p[-1]
            row[V] += q.sum()
            if row[SPLIT]:   # a kline minute without a split stays without one: its kline part is unknown
                row[BUY] += q[sd > 0].sum()
                row[SELL] += q[sd < 0].sum()
            row[USD] += usd[s:e].sum()
            row[N] += e - s
        self.trades += int(fresh.sum())

    def load(self, key: tuple[str, str], candles: np.ndarray) -> int:
        """Store bootstrap candles (1-minute, from klines) into empty slots; return how many were stored."""
        buf = self._buf(key)
        stored = 0
        for c in candles:
            m = int(c[T]) // MINUTE_MS
            slot = buf[m % self.capacity]
            if slot[T] == c[T] or (slot[T] > c[T]):
                continue          # built from trades already, or a newer minute holds the slot
            slot[:] = c
            stored += 1
        return stored

    def one_minute(self, key: tuple[str, str], since_ms: int | None = None,
                   until_ms: int | None = None) -> np.ndarray:
        """The stored 1-minute candles of ``key`` in [since_ms, until_ms], oldest first."""
        buf = self._series.get(key)
        if buf is None:
            return np.empty((0, COLS))
        rows = buf[buf[:, T] >= 0]
        if since_ms is not None:
            rows = rows[rows[:, T] >= since_ms]
        if until_ms is not None:
            rows = rows[rows[:, T] <= until_ms]
        return rows[np.argsort(rows[:, T], kind="stable")]

    def candles(self, key: tuple[str, str], tf_minutes: int, since_ms: int | None = None) -> np.ndarray:
        """Candles of ``tf_minutes`` (the newest may be in progress), oldest first."""
        return aggregate(self.one_minute(key, since_ms), tf_minutes)


# -- kline REST bootstrap ---------------------------------------------------
def binance_klines_to_candles(rows: list) -> np.ndarray:
    """Binance kline rows -> candles; rows that are not 12-field klines with numbers raise ValueError."""
    out = np.empty((len(rows), COLS))
    for i, r in enumerate(rows):
        if not isinstance(r, list) or len(r) < 11:
            raise ValueError(f"not a kline row: {r!r:.80}")
        vol, buy = float(r[5]), float(r[9])
        out[i] = (float(r[0]), float(r[1]), float(r[2]), float(r[3]), float(r[4]), vol, buy, vol - buy,
                  float(r[7]), float(r[8]), 1.0, 1.0)
    if len(out) and not np.isfinite(out).all():
        raise ValueError("kline rows carry non-finite numbers")
    return out


KLINE_PATH = "/fapi/v1/klines"


def kline_weight(limit: int) -> int:
    """Binance's request weight of a kline request for ``limit`` rows."""
    return 1 if limit < 100 else 2 if limit < 500 else 5 if limit <= 1000 else 10


async def fetch_binance_klines(get, symbol: str, minutes: int, now_ms: int, page: int = 1000, path: str = KLINE_PATH,
                               weight=kline_weight) -> np.ndarray:
    """The 1-minute klines of a Binance symbol opening in the ``minutes`` before ``now_ms``: USD-M by default,
    spot with ``path``/``weight`` of :mod:`engine.venues.binance_spot` (same rows, at most 1000 a page).

    ``get(path, params, weight) -> bytes`` makes the request (``RestPoller.get_retrying``: weight budget,
    retries and counted failures; it raises ``RestError``). A body that is not kline rows raises ValueError.
    """
    start = now_ms - minutes * MINUTE_MS
    parts = []
    while start < now_ms:
        body = await get(path, {"symbol": symbol, "interval": "1m", "startTime": start,
                                "endTime": now_ms - 1, "limit": page}, weight(page))
        rows = json.loads(body)
        if not isinstance(rows, list):
            raise ValueError(f"kline reply is not a list: {body[:80]!r}")
        if not rows:
            break
        parts.append(binance_klines_to_candles(rows))
        start = int(rows[-1][0]) + MINUTE_MS
        if len(rows) < page:
            break
    return np.concatenate(parts) if parts else np.empty((0, COLS))


def venue_klines_to_candles(rows: list[tuple]) -> np.ndarray:
    """A venue module's ``parse_klines`` rows (open ms, OHLC, base volume, quote volume, trades) -> candles
    without a taker split (``SPLIT`` 0); non-finite numbers or non-positive prices raise ValueError."""
    out = np.zeros((len(rows), COLS))
    for i, (t, o, h, lo, c, vol, quote, n) in enumerate(rows):
        out[i, [T, O, H, L, C, V, USD, N, MINUTES]] = (t, o, h, lo, c, vol, quote, n, 1.0)
    if len(out) and (not np.isfinite(out).all() or (out[:, O:C + 1] <= 0).any() or (out[:, [V, USD]] < 0).any()):
        raise ValueError("kline rows carry non-finite or negative numbers")
    return out


async def fetch_venue_klines(get, module, symbol: str, minutes: int, now_ms: int,
                             contract_size: float = 1.0) -> np.ndarray:
    """The 1-minute klines of ``symbol`` on the venue of ``module`` (one of :mod:`engine.venues`, with
    ``KLINE_PAGE``, ``kline_request`` and ``parse_klines``) opening in the ``minutes`` before ``now_ms``.

    Asked for in windows of ``KLINE_PAGE`` minutes (each venue orders and bounds its pages its own way, a window
    cannot overflow one); ``get`` as for :func:`fetch_binance_klines`. A body the venue parser rejects raises
    ValueError."""
    start = now_ms - minutes * MINUTE_MS
    start -= start % MINUTE_MS
    parts = []
    while start < now_ms:
        end = min(now_ms, start + module.KLINE_PAGE * MINUTE_MS)
        path, params, weight = module.kline_request(symbol, start, end)
        rows = module.parse_klines(await get(path, params, weight), contract_size)
        if rows is None:
            raise ValueError(f"{module.__name__} kline reply for {symbol} rejected by its parser")
        parts.append(venue_klines_to_candles([r for r in rows if start <= r[0] < end]))
        start = end
    return np.concatenate(parts) if parts else np.empty((0, COLS))
