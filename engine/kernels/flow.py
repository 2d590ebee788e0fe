"""Trade-flow building blocks shared by the volume, delta/CVD and whale kernels.

* **Keys.** Each trade updates up to two keys: its instrument and an
  aggregated key (the asset across venues, optionally split spot / perp).
  :class:`FlowKeys` maps instrument ids to both (``-1``: not tracked, e.g. an
  asset another worker owns) and grows with the registry.
* **Buckets.** Rolling sums use the rings of :mod:`windows` with 5 s buckets;
  a key's windows are evaluated when its first trade of a new bucket arrives,
  over the buckets that are complete (so the result does not depend on how
  records were batched, and a spike is seen at most one bucket after it shows).
* **Aligned history.** The asset's own baseline for a window of ``W`` is the
  series of past aligned windows ``[k W, (k+1) W)`` (zeros for empty ones),
  kept in a small ring per key and window; :func:`trimmed_median` and
  :func:`median_mad` summarise it when it rolls over.
* **Trade sizes.** A decayed log-histogram of USD trade sizes per key
  (10 bins per decade, $1 .. $10^10, decay per trade) answers high quantiles
  (:func:`size_quantile`) in O(bins) with no sorting.
* **Events.** Kernels write :data:`EVENT_DTYPE` rows; the detector turns
  them into signals.
"""
from __future__ import annotations

import math

import numpy as np
from numba import njit

from ..instruments import Market
from ..record import VENUE_NAMES

__all__ = ["BUCKET_NS", "EVENT_DTYPE", "NVALS", "FlowKeys", "AlignedHistory", "SizeHistogram", "valid_trade",
           "hist_track", "trimmed_median", "median_mad", "size_add", "size_quantile", "dynamic_size", "grow", "bucket_counts",
           "C_UNKNOWN", "C_INVALID", "C_LATE", "N_COUNTERS", "trade_count", "drain", "trade_key", "event_head"]

BUCKET_NS = 5_000_000_000
TRADE = 1                   # Kind.TRADE (numba needs a plain constant)
NVALS = 8
EVENT_DTYPE = np.dtype([
    ("kind", np.uint8), ("level", np.int8), ("prev", np.int8), ("window", np.int8),
    ("key", np.int32), ("rec", np.int32), ("ts", np.int64), ("vals", np.float64, (NVALS,)),
])
EMPTY = np.int64(-(1 << 62))
C_UNKNOWN, C_INVALID, C_LATE = 0, 1, 2   # counters: foreign instrument, bad values, too late for a window
N_COUNTERS = 3

SIZE_LOG_MIN = 0.0          # $1
SIZE_BINS_PER_DECADE = 10
SIZE_BINS = 100             # up to $10^10
RENORM_AT = 1e150


def bucket_counts(windows_s: list[float], what: str) -> np.ndarray:
    """5 s bucket counts of ``windows_s`` (ascending); raise ValueError naming ``what`` if not multiples of 5 s."""
    out = []
    for w in windows_s:
        k = w * 1e9 / BUCKET_NS
        if w <= 0 or abs(k - round(k)) > 1e-9:
            raise ValueError(f"{what}: windows must be positive multiples of {BUCKET_NS / 1e9:g} s, got {w}")
        out.append(int(round(k)))
    if out != sorted(set(out)):
        raise ValueError(f"{what}: windows must be strictly increasing, got {windows_s}")
    return np.array(out, dtype=np.int64)


class FlowKeys:
    """Instrument -> key maps for a detector: per instrument and/or aggregated per asset (and market).

    Keys ``0 .. n_inst-1`` are instruments when ``per_instrument``; aggregated
    keys follow, one per asset, or two (perp, spot) when ``split_markets``.
    Futures and inverse perps count as perp.
    """

    def __init__(self, registry, runner, per_instrument: bool, split_markets: bool):
        self.registry, self.runner = registry, runner
        self.per_instrument, self.split = per_instrument, split_markets
        self.n_inst = self.n_assets = -1
        self.n_keys = 0
        self.inst_key = np.zeros(0, dtype=np.int64)
        self.inst_akey = np.zeros(0, dtype=np.int64)
        self.key_asset: list[str] = []
        self.key_inst: list[int] = []      # instrument id of a per-instrument key, -1 for aggregated keys
        self.key_market: list[str] = []
        self.refresh()

    def refresh(self) -> bool:
        """Follow the registry (through the runner, which refreshed it first); return whether it grew."""
        r = self.runner
        n_inst = len(r.inst_asset)
        n_assets = len(r.owned)
        if n_inst == self.n_inst and n_assets == self.n_assets:
            return False
        markets = self.registry.rows["market"][:n_inst].astype(np.int64)
        spot = (markets == Market.SPOT).astype(np.int64)
        base = n_inst if self.per_instrument else 0
        per_asset = 2 if self.split else 1
        owned_inst = r.owned[r.inst_asset] if n_inst else np.zeros(0, dtype=np.bool_)
        self.inst_key = np.where(owned_inst & self.per_instrument, np.arange(n_inst), -1).astype(np.int64)
        akey = base + r.inst_asset * per_asset + (spot if self.split else 0)
        self.inst_akey = np.where(owned_inst, akey, -1).astype(np.int64)
        names = r.asset_names
        self.key_asset = [names[a] for a in r.inst_asset] if self.per_instrument else []
        self.key_inst = list(range(n_inst)) if self.per_instrument else []
        self.key_market = [("spot" if s else "perp") for s in spot] if self.per_instrument else []
        for a in range(n_assets):
            for m in range(per_asset):
                self.key_asset.append(names[a])
                self.key_inst.append(-1)
                self.key_market.append(("spot" if m else "perp") if self.split else "")
        self.n_keys = base + n_assets * per_asset
        self.n_inst, self.n_assets = n_inst, n_assets
        return True

    def where(self, key: int) -> tuple[str, str]:
        """(venue name, native symbol) of a per-instrument key, ("", "") for an aggregated one."""
        iid = self.key_inst[key]
        if iid < 0:
            return "", ""
        inst = self.registry.get(iid)
        return VENUE_NAMES.get(inst.venue, str(inst.venue)), inst.symbol

    def asset_keys(self, asset: str) -> list[int]:
        """Aggregated keys of ``asset`` (perp first when split)."""
        return [k for k in range(self.n_keys) if self.key_inst[k] < 0 and self.key_asset[k] == asset]


def grow(arr: np.ndarray, n: int, fill=0) -> np.ndarray:
    """``arr`` with its first axis grown to ``n`` rows (new rows = ``fill``)."""
    if len(arr) >= n:
        return arr
    out = np.full((n, *arr.shape[1:]), fill, dtype=arr.dtype)
    out[: len(arr)] = arr
    return out


class AlignedHistory:
    """Past aligned-window values per key and window (see the module doc)."""

    def __init__(self, n_windows: int, length: int):
        self.nw, self.length = n_windows, length
        self.cur_idx = np.zeros((0, n_windows), dtype=np.int64)
        self.cur_val = np.zeros((0, n_windows))
        self.vals = np.zeros((0, n_windows, length))
        self.count = np.zeros((0, n_windows), dtype=np.int64)

    def grow(self, n_keys: int) -> None:
        self.cur_idx = grow(self.cur_idx, n_keys, EMPTY)
        self.cur_val = grow(self.cur_val, n_keys)
        self.vals = grow(self.vals, n_keys)
        self.count = grow(self.count, n_keys)

    def as_tuple(self):
        return self.cur_idx, self.cur_val, self.vals, self.count


class SizeHistogram:
    """Decayed log-histograms of trade sizes per key."""

    def __init__(self):
        self.hist = np.zeros((0, SIZE_BINS))
        # [scale of the next trade, total weight, highest bin ever filled (where quantile scans start)]
        self.weights = np.zeros((0, 3))
        self.count = np.zeros(0, dtype=np.int64)  # trades seen

    def grow(self, n_keys: int) -> None:
        old = len(self.weights)
        self.hist = grow(self.hist, n_keys)
        self.weights = grow(self.weights, n_keys)
        self.weights[old:, 0] = 1.0
        self.count = grow(self.count, n_keys)

    def as_tuple(self):
        return self.hist, self.weights, self.count


def drain(call, records: np.ndarray, events: np.ndarray) -> list[np.ndarray]:
    """Run ``call(records, start) -> (next, n_events)`` over the whole batch; return copies of its events."""
    out = []
    i, n = 0, len(records)
    while i < n:
        i, n_ev = call(records, i)
        if n_ev:
            out.append(events[:n_ev].copy())
    return out


def trade_count(records: np.ndarray) -> int:
    """Number of trades in a batch (the cheap early-out of every flow detector)."""
    return int(np.count_nonzero(records["kind"] == TRADE))


@njit(cache=True, inline="always")
def valid_trade(rec):
    """True for a trade with finite positive price, qty and notional and a taker side."""
    usd = rec["notional"]
    q = rec["qty"]
    s = rec["side"]
    return (usd > 0.0 and usd < np.inf and q > 0.0 and q < np.inf and rec["price"] > 0.0
            and rec["price"] < np.inf and (s == 1 or s == -1))


@njit(cache=True, inline="always")
def trade_key(rec, inst_akey, counters):
    """Aggregated key of a usable trade, else -1: not a trade, an asset another worker owns, or (counted)
    an instrument past the maps (``C_UNKNOWN``) or a trade failing :func:`valid_trade` (``C_INVALID``)."""
    if rec["kind"] != TRADE:
        return -1
    iid = rec["instrument"]
    if iid >= inst_akey.shape[0]:
        counters[C_UNKNOWN] += 1
        return -1
    ak = inst_akey[iid]
    if ak < 0:
        return -1
    if not valid_trade(rec):
        counters[C_INVALID] += 1
        return -1
    return ak


@njit(cache=True, inline="always")
def event_head(ev, kind, level, prev, window, key, rec, ts):
    """Fill the header of the :data:`EVENT_DTYPE` row ``ev`` (the caller writes ``vals``)."""
    ev["kind"] = kind
    ev["level"] = level
    ev["prev"] = prev
    ev["window"] = window
    ev["key"] = key
    ev["rec"] = rec
    ev["ts"] = ts


@njit(cache=True)
def hist_track(hist, key, w, idx, value, length):
    """Add ``value`` to the aligned window ``idx`` of ``key`` and window ``w``.

    A later ``idx`` pushes the current value (then zeros for skipped windows,
    at most ``length``) into the history and returns 1; an ``idx`` older than
    the current window is too late to count and returns -1; else 0.
    """
    cur_idx, cur_val, vals, count = hist
    c = cur_idx[key, w]
    if idx == c:
        cur_val[key, w] += value
        return 0
    if c != EMPTY and idx < c:
        return -1
    if c != EMPTY:
        pushes = min(idx - c, length)
        for j in range(pushes):
            v = cur_val[key, w] if j == 0 else 0.0
            vals[key, w, count[key, w] % length] = v
            count[key, w] += 1
    cur_idx[key, w] = idx
    cur_val[key, w] = value
    return 1 if c != EMPTY else 0


@njit(cache=True)
def trimmed_median(values, trim):
    """Median of ``values`` after dropping ``floor(trim * n)`` from each end."""
    s = np.sort(values)
    n = s.shape[0]
    cut = int(math.floor(trim * n))
    lo, hi = cut, n - cut
    if hi <= lo:
        lo, hi = 0, n
    m = hi - lo
    mid = lo + m // 2
    return s[mid] if m % 2 else 0.5 * (s[mid - 1] + s[mid])


@njit(cache=True)
def median_mad(values):
    """(median, median absolute deviation) of ``values``."""
    med = trimmed_median(values, 0.0)
    return med, trimmed_median(np.abs(values - med), 0.0)


@njit(cache=True, inline="always")
def _size_bin(usd):
    b = int(math.floor((math.log10(usd) - SIZE_LOG_MIN) * SIZE_BINS_PER_DECADE))
    return min(max(b, 0), SIZE_BINS - 1)


@njit(cache=True)
def size_add(sizes, key, usd, decay):
    """Add one trade of ``usd`` to ``key``'s histogram; older trades weigh ``decay`` per trade less."""
    hist, weights, count = sizes
    scale = weights[key, 0]
    b = _size_bin(usd)
    hist[key, b] += scale
    weights[key, 1] += scale
    if b > weights[key, 2]:
        weights[key, 2] = b
    scale /= decay
    if scale > RENORM_AT:
        hist[key, :] /= scale
        weights[key, 1] /= scale
        scale = 1.0
    weights[key, 0] = scale
    count[key] += 1


@njit(cache=True)
def dynamic_size(sizes, key, q, min_trades, fallback, floor):
    """The ``q`` quantile of ``key``'s trade sizes once it has ``min_trades``, else ``fallback``; at least ``floor``."""
    if sizes[2][key] < min_trades:
        return max(fallback, floor)
    return max(size_quantile(sizes, key, q), floor)


@njit(cache=True)
def size_quantile(sizes, key, q):
    """The ``q`` quantile of ``key``'s trade sizes in USD (log-interpolated inside a bin); 0 if empty."""
    hist, weights, count = sizes
    total = weights[key, 1]
    if total <= 0.0:
        return 0.0
    target = (1.0 - q) * total
    acc = 0.0
    for b in range(int(weights[key, 2]), -1, -1):    # bins above the highest ever filled hold exactly 0
        h = hist[key, b]
        if h > 0.0 and acc + h >= target:
            pos = (target - acc) / h           # share of this bin above the quantile
            return 10.0 ** (SIZE_LOG_MIN + (b + 1 - pos) / SIZE_BINS_PER_DECADE)
        acc += h
    return 10.0 ** SIZE_LOG_MIN
