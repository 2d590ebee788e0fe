"""Plain-Python references for the trade-flow kernels (volume, delta/CVD, whales), and a registry stand-in.

Slow and obvious: every bucket is a list of events (:class:`RefBuckets`),
histories are Python lists, medians come from ``sorted``.
"""
from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np

from engine.instruments import INSTRUMENT_DTYPE, Instrument, Market
from engine.kernels.flow import BUCKET_NS, SIZE_BINS, SIZE_BINS_PER_DECADE, SIZE_LOG_MIN, RENORM_AT
from engine.kernels.windows import ring_pow2
from engine.kernels import cvd as KC
from engine.kernels import volume as KV
from engine.kernels import whales as KW
from engine.record import Kind
from tests.reference_kernels import RefBuckets

MAD = 1.4826


class FakeRegistry:
    """Just what the flow detectors read from the registry: markets, names, ``get``."""

    def __init__(self, instruments: list[tuple[int, str, str, int]]):   # (venue, symbol, asset, market)
        self.assets: list[str] = []
        self.rows = np.zeros(len(instruments), dtype=INSTRUMENT_DTYPE)
        self.items = []
        for i, (venue, symbol, asset, market) in enumerate(instruments):
            if asset not in self.assets:
                self.assets.append(asset)
            aid = self.assets.index(asset)
            self.rows[i] = (venue, market, aid, 0, symbol.encode(), b"USDT", 1.0, 0.0)
            self.items.append(Instrument(i, venue, symbol, asset, aid, market, "USDT", 1.0, 0.0))

    def __len__(self):
        return len(self.items)

    @property
    def n_assets(self):
        return len(self.assets)

    def get(self, iid):
        return self.items[iid]

    def asset_name(self, aid):
        return self.assets[aid]

    def asset_of(self):
        return np.array([it.asset_id for it in self.items], dtype=np.int64)

    def runner(self):
        """A stand-in for the BatchRunner fields the detectors read (one worker owning every asset)."""
        return SimpleNamespace(inst_asset=self.asset_of(), owned=np.ones(self.n_assets, dtype=np.bool_),
                               asset_names=list(self.assets))


def valid(rec) -> bool:
    vals = (rec["notional"], rec["qty"], rec["price"])
    return all(0 < v < math.inf for v in vals) and rec["side"] in (1, -1)


def ts_of(rec) -> int:
    return int(rec["ts_exchange"]) if rec["ts_exchange"] > 0 else int(rec["ts_recv"])


def trimmed_median(values: list[float], trim: float) -> float:
    s = sorted(values)
    cut = math.floor(trim * len(s))
    if len(s) - 2 * cut <= 0:
        cut = 0
    s = s[cut:len(s) - cut]
    m = len(s)
    return s[m // 2] if m % 2 else 0.5 * (s[m // 2 - 1] + s[m // 2])


class Aligned:
    """Aligned-window history of one (key, window)."""

    def __init__(self, length: int):
        self.length = length
        self.idx = None
        self.val = 0.0
        self.past: list[float] = []

    def track(self, idx: int, value: float) -> int:
        if idx == self.idx:
            self.val += value
            return 0
        if self.idx is not None and idx < self.idx:
            return -1
        rolled = self.idx is not None
        if rolled:
            for j in range(min(idx - self.idx, self.length)):
                self.past.append(self.val if j == 0 else 0.0)
        self.idx, self.val = idx, value
        return 1 if rolled else 0

    def recent(self) -> list[float]:
        return self.past[-self.length:]


class Sizes:
    """Decayed trade-size histogram of one key."""

    def __init__(self):
        self.hist = [0.0] * SIZE_BINS
        self.scale, self.total, self.count = 1.0, 0.0, 0

    def add(self, usd: float, decay: float) -> None:
        b = min(max(math.floor((math.log10(usd) - SIZE_LOG_MIN) * SIZE_BINS_PER_DECADE), 0), SIZE_BINS - 1)
        self.hist[b] += self.scale
        self.total += self.scale
        self.scale /= decay
        if self.scale > RENORM_AT:
            self.hist = [h / self.scale for h in self.hist]
            self.total /= self.scale
            self.scale = 1.0
        self.count += 1

    def quantile(self, q: float) -> float:
        if self.total <= 0:
            return 0.0
        target, acc = (1 - q) * self.total, 0.0
        for b in reversed(range(SIZE_BINS)):
            h = self.hist[b]
            if h > 0 and acc + h >= target:
                return 10.0 ** (SIZE_LOG_MIN + (b + 1 - (target - acc) / h) / SIZE_BINS_PER_DECADE)
            acc += h
        return 10.0 ** SIZE_LOG_MIN

    def threshold(self, q, min_trades, fallback, floor) -> float:
        return max(fallback, floor) if self.count < min_trades else max(self.quantile(q), floor)


class RefFlow:
    """Common walk over trades: keys, validity, buckets, evaluation when a key enters a new bucket."""

    channels = 1

    def __init__(self, reg: FakeRegistry, widths: list[int], per_instrument: bool, split: bool):
        self.reg, self.widths = reg, widths
        self.nb = ring_pow2(widths[-1] + 1)
        self.n_inst = len(reg)
        self.per_instrument, self.split = per_instrument, split
        self.buckets: dict[int, RefBuckets] = {}
        self.events: list[tuple] = []
        self.counters = [0, 0, 0]

    def keys_of(self, iid: int) -> list[int]:
        it = self.reg.get(iid)
        base = self.n_inst if self.per_instrument else 0
        akey = base + (it.asset_id * 2 + (it.market == Market.SPOT) if self.split else it.asset_id)
        return ([iid] if self.per_instrument else []) + [akey]

    def sums(self, k: int, now_b: int) -> list[list[float]]:
        rb = self.buckets[k]
        return [rb.sums(now_b * BUCKET_NS, w, self.channels) for w in self.widths]

    def bucket(self, k: int, i: int, ts: int, values: list[float]) -> bool:
        """Evaluate ``k`` if ``ts`` opens a new bucket, then add ``values``; False if too late for the ring."""
        rb = self.buckets.setdefault(k, RefBuckets(BUCKET_NS, self.nb))
        b = ts // BUCKET_NS
        if rb.head is not None and b > rb.head:
            self.evaluate(k, b - 1, i)
        if rb.head is not None and b <= rb.head - self.nb:
            self.counters[2] += 1
            return False
        rb.add(ts, values)
        return True

    def feed(self, recs) -> None:
        for i, rec in enumerate(recs):
            if rec["kind"] != Kind.TRADE:
                continue
            if rec["instrument"] >= self.n_inst:
                self.counters[0] += 1
                continue
            if not valid(rec):
                self.counters[1] += 1
                continue
            self.trade(i, rec, ts_of(rec))


class RefVolume(RefFlow):
    channels = 4

    def __init__(self, reg, vcfg, wcfg):
        self.cfg, self.w = vcfg, wcfg
        super().__init__(reg, [int(w // 5) for w in vcfg.windows_s], True, False)
        self.hist: dict[tuple[int, int], Aligned] = {}
        self.baseline: dict[tuple[int, int], float] = {}
        self.sizes: dict[int, Sizes] = {}
        self.rows: dict[tuple[int, int], list[float]] = {}
        self.levels: dict[tuple[int, int], int] = {}
        self.thr = 0.0

    def trade(self, i, rec, ts):
        keys = self.keys_of(int(rec["instrument"]))
        ak = keys[-1]
        sz = self.sizes.setdefault(ak, Sizes())
        fb = self.w.fallback_usd.get(self.reg.get(int(rec["instrument"])).asset, self.w.fallback_usd["*"])
        self.thr = sz.threshold(self.w.whale_quantile, self.w.min_trades, fb, self.w.min_usd)
        sz.add(rec["notional"], 0.5 ** (1 / self.w.half_life_trades))
        usd = float(rec["notional"])
        vals = [usd, usd if rec["side"] > 0 else 0.0, usd if usd >= self.thr else 0.0, 1.0]
        for k in keys:
            if not self.bucket(k, i, ts, vals):
                continue
            for w, width in enumerate(self.widths):
                h = self.hist.setdefault((k, w), Aligned(self.cfg.baseline_windows))
                if h.track(ts // (width * BUCKET_NS), usd) == 1:
                    past = h.recent()
                    self.baseline[k, w] = (trimmed_median(past, self.cfg.trim)
                                           if len(past) >= self.cfg.min_history else -1.0)

    def evaluate(self, k, now_b, i):
        for w, s in enumerate(self.sums(k, now_b)):
            usd = s[0]
            base = self.baseline.get((k, w), -1.0)
            lv, pct, eff = 0, 0.0, -1.0
            if base >= 0:
                eff = max(base, self.cfg.min_baseline_usd_per_min * self.widths[w] * 5 / 60)
                pct = (usd - eff) / eff * 100
                lv = sum(pct >= x for x in self.cfg.levels_pct)
            row = [usd, eff, pct, s[1] / usd if usd > 0 else 0.5, s[2] / usd if usd > 0 else 0.0, s[3], self.thr,
                   lv]
            self.rows[k, w] = row
            prev = self.levels.get((k, w), 0)
            self.levels[k, w] = lv
            if lv >= KV.LEVELS.index(self.cfg.publish_level) and lv > prev:
                self.events.append((KV.EV_SPIKE, k, i, w, lv, prev, row))


class RefCvd(RefFlow):
    channels = 2

    def __init__(self, reg, cfg):
        self.cfg = cfg
        super().__init__(reg, [int(w // 5) for w in cfg.windows_s], True, True)
        self.pw = cfg.windows_s.index(cfg.pressure_window_s)
        self.session: dict[int, int] = {}
        self.cvd: dict[int, list[float]] = {}
        self.hist: dict[int, Aligned] = {}
        self.stat: dict[int, tuple[float, float]] = {}
        self.state: dict[int, dict] = {}

    def floor(self, k):
        asset = self.reg.assets[(k - self.n_inst) // 2] if k >= self.n_inst else self.reg.get(k).asset
        return self.cfg.min_pressure_usd.get(asset, self.cfg.min_pressure_usd["*"])

    def trade(self, i, rec, ts):
        side, usd = int(rec["side"]), float(rec["notional"])
        sess = (ts - int(self.cfg.session_offset_s * 1e9)) // int(self.cfg.session_period_s * 1e9)
        for k in self.keys_of(int(rec["instrument"])):
            if k not in self.session or sess > self.session[k]:
                self.session[k] = sess
                self.cvd[k] = [0.0, 0.0]
            if sess == self.session[k]:
                self.cvd[k][0] += side * usd
                self.cvd[k][1] += side * float(rec["qty"])
            if not self.bucket(k, i, ts, [usd, 0.0] if side > 0 else [0.0, usd]):
                continue
            h = self.hist.setdefault(k, Aligned(self.cfg.history_windows))
            if h.track(ts // (self.widths[self.pw] * BUCKET_NS), side * usd) == 1:
                past = h.recent()
                if len(past) >= self.cfg.min_history:
                    med = trimmed_median(past, 0.0)
                    self.stat[k] = (med, MAD * trimmed_median([abs(x - med) for x in past], 0.0))

    def evaluate(self, k, now_b, i):
        secs = [w * 5.0 for w in self.widths]
        win = []
        for buy, sell in self.sums(k, now_b):
            win.append({"delta": buy - sell, "total": buy + sell, "share": buy / (buy + sell) if buy + sell else 0.5,
                        "ratio": (buy + 1) / (sell + 1)})
        for w in range(len(win)):
            win[w]["accel"] = ((win[w]["delta"] / secs[w] - win[w + 1]["delta"] / secs[w + 1])
                               / ((secs[w + 1] - secs[w]) / 2) if w + 1 < len(win) else 0.0)
        r = win[self.pw]
        fallback = k not in self.stat
        z, direction = 0.0, 0
        if not fallback:
            med, scale = self.stat[k]
            z = (r["delta"] - med) / max(scale, 1.0)
        if abs(r["delta"]) >= self.floor(k):
            if fallback:
                fb = self.cfg.fallback_buy_share
                direction = 1 if r["share"] >= fb else -1 if r["share"] <= 1 - fb else 0
            else:
                direction = 1 if z >= self.cfg.pressure_z else -1 if z <= -self.cfg.pressure_z else 0
        prev = self.state.get(k, {}).get("pressure", 0)
        self.state[k] = {"z": z, "pressure": direction, "win": win}
        if direction and direction != prev:
            self.events.append((KC.EV_PRESSURE, k, i, self.pw, direction, prev,
                                [r["delta"], z, r["share"], r["ratio"], self.cvd[k][0], r["accel"], r["total"],
                                 float(fallback)]))


class RefWhales(RefFlow):
    channels = 5

    def __init__(self, reg, cfg):
        self.cfg = cfg
        super().__init__(reg, [int(cfg.mix_window_s // 5)], False, False)
        self.sizes: dict[int, Sizes] = {}
        self.mix: dict[int, list[float]] = {}

    def trade(self, i, rec, ts):
        c = self.cfg
        (k,) = self.keys_of(int(rec["instrument"]))
        sz = self.sizes.setdefault(k, Sizes())
        fb = c.fallback_usd.get(self.reg.assets[k], c.fallback_usd["*"])
        thr = sz.threshold(c.whale_quantile, c.min_trades, fb, c.min_usd)
        large = sz.threshold(c.large_quantile, c.min_trades, fb * c.large_fallback_ratio,
                             c.min_usd * c.large_fallback_ratio)
        row = self.mix.setdefault(k, [0.0] * KW.M_SIZE)
        row[KW.M_WHALE_USD], row[KW.M_LARGE_USD] = thr, large
        row[KW.M_FALLBACK] = float(sz.count < c.min_trades)
        sz.add(float(rec["notional"]), 0.5 ** (1 / c.half_life_trades))
        usd = float(rec["notional"])
        if usd >= thr:
            self.events.append((KW.EV_WHALE, k, i, 0, int(rec["side"]), 0,
                                [usd, thr, usd / thr, large, row[KW.M_FALLBACK], float(rec["price"]),
                                 float(rec["qty"]), 0.0]))
        is_large = usd >= large
        buy = rec["side"] > 0
        self.bucket(k, i, ts, [usd, usd if is_large else 0.0, usd if is_large and buy else 0.0,
                               usd if is_large and not buy else 0.0, 1.0])

    def evaluate(self, k, now_b, i):
        c = self.cfg
        usd, large, lb, ls, n = self.sums(k, now_b)[0]
        row = self.mix[k]
        row[KW.M_USD], row[KW.M_TRADES] = usd, n
        share = large / usd if usd > 0 else 0.0
        net = (lb - ls) / large if large > 0 else 0.0
        row[KW.M_LARGE_SHARE], row[KW.M_LARGE_NET] = share, net
        if n < c.mix_min_trades or usd <= 0:
            cls = KW.NONE
        elif share >= c.institutional_share and net >= c.institutional_net:
            cls = KW.ACCUMULATION
        elif share >= c.institutional_share and net <= -c.institutional_net:
            cls = KW.DISTRIBUTION
        elif share <= c.retail_share:
            cls = KW.RETAIL
        else:
            cls = KW.MIXED
        prev = int(row[KW.M_CLASS])
        row[KW.M_CLASS] = cls
        if cls != prev and cls in (KW.ACCUMULATION, KW.DISTRIBUTION):
            self.events.append((KW.EV_MIX, k, i, 0, cls, prev, list(row)))


# -- shared test inputs -------------------------------------------------------------------------------
T0 = 1_700_000_000_000_000_000
INSTRUMENTS = [(1, "BTCUSDT", "BTC", Market.PERP_LINEAR), (2, "BTCUSDT", "BTC", Market.PERP_LINEAR),
               (1, "BTCUSDT.S", "BTC", Market.SPOT), (1, "ETHUSDT", "ETH", Market.PERP_LINEAR)]


def config_with(**tables):
    """The default Config with ``detectors.<name>`` fields replaced: ``config_with(volume={"trim": 0.1})``."""
    import msgspec

    from engine.config import Config
    cfg = Config()
    det = cfg.detectors
    for name, fields in tables.items():
        det = msgspec.structs.replace(det, **{name: msgspec.structs.replace(getattr(det, name), **fields)})
    return msgspec.structs.replace(cfg, detectors=det)


def detector(cls, cfg, reg: FakeRegistry | None = None):
    """A flow detector over ``reg`` (default :data:`INSTRUMENTS`) owning every asset."""
    from engine.detectors import DetectorContext
    reg = reg or FakeRegistry(INSTRUMENTS)
    return cls(DetectorContext(cfg, reg, reg.runner())), reg


def raw_events(det, recs) -> list[tuple]:
    """Run ``recs`` through a detector's kernel; events as (kind, key, rec, window, level, prev, vals)."""
    from engine.kernels import flow
    if det.keys.refresh():
        det._grow()
    out = []
    for batch in flow.drain(det._call, recs, det.events):
        for ev in batch:
            out.append((int(ev["kind"]), int(ev["key"]), int(ev["rec"]), int(ev["window"]), int(ev["level"]),
                        int(ev["prev"]), ev["vals"].tolist()))
    return out


def assert_events_match(got: list[tuple], want: list[tuple]) -> None:
    assert [e[:6] for e in got] == [e[:6] for e in want]
    for g, w in zip(got, want):
        assert_values_match(g[6], w[6], (g, w))


def assert_values_match(got, want, context=None) -> None:
    """Element-wise equal up to float noise (relative 1e-9, absolute 1e-6 scaled by the value)."""
    import pytest
    got, want = list(got), list(want)
    assert len(got) == len(want), (got, want)
    for a, b in zip(got, want):
        assert a == pytest.approx(b, rel=1e-9, abs=1e-6 * (1 + abs(b))), context or (got, want)


def kernel_vs_reference(det, ref, events: list[tuple]) -> np.ndarray:
    """Feed the records of ``events`` to the detector's kernel and to ``ref``; assert the same events and
    bad-input counters; return the records."""
    recs = records_from(events)
    got = raw_events(det, recs)
    ref.feed(recs)
    assert_events_match(got, ref.events)
    assert det.counters.tolist() == ref.counters
    return recs


def records_from(events: list[tuple]) -> np.ndarray:
    """Records from (gap_ns, kind, instrument, side, notional) tuples; price 100, qty = notional / 100."""
    from engine.record import empty_records
    recs = empty_records(len(events))
    t = T0
    for i, (gap, kind, iid, side, usd) in enumerate(events):
        t += gap
        recs[i] = (kind, 1, side, 0, iid, t, t + 1000, 100.0, usd / 100.0, usd, 0.0, 0.0)
    return recs


def calm_stream(hours: float, rate_per_s: float = 20.0, seed: int = 5, n_inst: int = len(INSTRUMENTS)) -> np.ndarray:
    """Calm synthetic trading: Poisson arrivals per instrument, log-normal sizes (median $2k), 50/50 taker sides."""
    from engine.record import empty_records
    rng = np.random.default_rng(seed)
    n = int(hours * 3600 * rate_per_s * n_inst)
    recs = empty_records(n)
    recs["kind"] = Kind.TRADE
    recs["venue"] = 1
    recs["instrument"] = rng.integers(0, n_inst, n)
    recs["ts_exchange"] = T0 + np.cumsum(rng.exponential(1e9 / (rate_per_s * n_inst), n)).astype(np.int64)
    recs["ts_recv"] = recs["ts_exchange"] + 2_000_000
    recs["side"] = rng.choice([1, -1], n)
    recs["price"] = 100.0
    recs["notional"] = rng.lognormal(math.log(2000.0), 1.2, n)
    recs["qty"] = recs["notional"] / 100.0
    return recs


def market_records(events, symbols: list[str], t0: int = T0) -> np.ndarray:
    """Records of the synthetic market's trades (instrument = index of the symbol in ``symbols``)."""
    from engine.record import empty_records
    from engine.simulator.market import Trade
    trades = [e for e in events if isinstance(e, Trade) and e.symbol in symbols]
    recs = empty_records(len(trades))
    for i, e in enumerate(trades):
        ts = t0 + int(e.t * 1e9)
        recs[i] = (Kind.TRADE, 15, 1 if e.taker_buy else -1, 0, symbols.index(e.symbol), ts, ts + 1_000_000,
                   e.price, e.qty, e.price * e.qty, 0.0, 0.0)
    return recs


def stream_strategy(n_inst: int = len(INSTRUMENTS), max_size: int = 150):
    """Hypothesis: random trade streams with late events, gaps, other kinds, bad values and foreign instruments."""
    from hypothesis import strategies as st
    gaps = st.one_of(st.integers(0, 3 * 10**9), st.integers(0, 3 * 10**9), st.integers(-8 * 10**9, 0),
                     st.integers(5, 200).map(lambda s: s * 10**9), st.integers(1, 30).map(lambda h: h * 3600 * 10**9))
    usd = st.one_of(st.floats(1.0, 1e7, allow_nan=False), st.sampled_from([float("nan"), -5.0, 0.0, 2e6]))
    kind = st.sampled_from([Kind.TRADE] * 8 + [Kind.BOOK_TOP, Kind.LIQUIDATION])
    inst = st.one_of(st.integers(0, n_inst - 1), st.just(n_inst + 3))
    side = st.sampled_from([1, 1, -1, -1, 0])
    return st.lists(st.tuples(gaps, kind, inst, side, usd), max_size=max_size)
