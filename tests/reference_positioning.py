"""Plain-Python references of the positioning kernels, a fake registry/runner, and a market-to-records feed.

The references keep their state in dicts and lists (no rings, no numba) and implement the
documented semantics of the kernels (:mod:`engine.kernels.open_interest`, ``funding`` and ``book``
over :mod:`engine.kernels.sampled`; correlation: tests/reference_correlation.py); the property tests compare them
with the kernels event by event.
"""
from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np

from engine.config import Config
from engine.detectors import DetectorContext
from engine.instruments import Market
from engine.record import RECORD_DTYPE, Flag, Kind, Venue
from engine.simulator.market import MarkBatch, SyntheticMarket

EPOCH_NS = 1_700_000_000 * 10**9


# ----------------------------------------------------------------- fake registry and runner

class FakeRegistry:
    """Just what the detectors read: ids, venues, markets, assets, symbols."""

    def __init__(self) -> None:
        self.rows: list = []
        self.assets: list[str] = []

    def add(self, venue: int, symbol: str, asset: str, market: int = Market.PERP_LINEAR) -> int:
        if asset not in self.assets:
            self.assets.append(asset)
        self.rows.append(SimpleNamespace(id=len(self.rows), venue=venue, symbol=symbol, asset=asset, market=market,
                                         asset_id=self.assets.index(asset)))
        return len(self.rows) - 1

    def get(self, iid: int):
        return self.rows[iid]

    def __len__(self) -> int:
        return len(self.rows)


class FakeRunner:
    """The runner attributes the detectors read, derived from a :class:`FakeRegistry`; every asset owned."""

    def __init__(self, reg: FakeRegistry, owned_filter=None) -> None:
        self.reg = reg
        self.owned_filter = owned_filter or (lambda a: True)
        self.refresh()

    def refresh(self) -> bool:
        self.inst_asset = np.array([r.asset_id for r in self.reg.rows], dtype=np.int64)
        self.asset_names = list(self.reg.assets)
        self.owned = np.array([self.owned_filter(a) for a in range(len(self.asset_names))], dtype=np.bool_)
        return True


def make_ctx(reg: FakeRegistry, cfg: Config | None = None) -> DetectorContext:
    return DetectorContext(cfg or Config(), reg, FakeRunner(reg))


def records(rows: list[tuple]) -> np.ndarray:
    """Records from ``(kind, venue, side, flags, iid, ts_exchange, ts_recv, price, qty, notional, aux, aux2)``."""
    out = np.zeros(len(rows), dtype=RECORD_DTYPE)
    for i, r in enumerate(rows):
        out[i] = r
    return out


# ----------------------------------------------------------------- the synthetic market as records

class MarketFeed:
    """Step a :class:`SyntheticMarket` and render, per venue, the records the positioning detectors read.

    Every second (each MarkBatch): MARK (mark, index, funding per the venue's interval), OPEN_INTEREST
    (base and USD at mark) and BOOK_DEPTH for ``bands`` from the market's book, per symbol and venue.
    """

    def __init__(self, market: SyntheticMarket, venues=(Venue.BINANCE, Venue.BYBIT), bands=(0.005, 0.01),
                 funding_hours=None) -> None:
        self.market = market
        self.reg = FakeRegistry()
        self.venues = venues
        self.bands = bands
        self.funding_hours = funding_hours or {}
        self.ids = {(v, s): self.reg.add(v, s, market.states[s].spec.base) for v in venues for s in market.symbols}

    def run(self, seconds: float) -> np.ndarray:
        """Advance ``seconds`` and return the records produced, in order."""
        rows: list[tuple] = []
        m = self.market
        for _ in range(int(round(seconds / 0.01))):
            for ev in m.step():
                if isinstance(ev, MarkBatch):
                    self._render(ev, rows)
        return records(rows)

    def _render(self, batch: MarkBatch, rows: list) -> None:
        ts = EPOCH_NS + int(round(batch.t * 1e9))
        m = self.market
        for u in batch.marks:
            oi = m.open_interest(u.symbol)
            _, bids, asks = m.book_snapshot(u.symbol, 200)
            mid = (bids[0][0] + asks[0][0]) / 2 if bids and asks else u.mark
            for v in self.venues:
                iid = self.ids[v, u.symbol]
                rate = u.funding_rate * self.funding_hours.get(v, 8.0) / 8.0
                rows.append((Kind.MARK, v, 0, Flag.SYNTHETIC, iid, ts, ts, u.mark, u.index, 0.0, rate, 0.0))
                rows.append((Kind.OPEN_INTEREST, v, 0, Flag.SYNTHETIC, iid, ts, ts, u.mark, oi, oi * u.mark, 0.0, 0.0))
                for band in self.bands:
                    lo, hi = mid * (1 - band), mid * (1 + band)
                    bid = sum(p * q for p, q in bids if p >= lo)
                    ask = sum(p * q for p, q in asks if p <= hi)
                    rows.append((Kind.BOOK_DEPTH, v, 0, Flag.SYNTHETIC, iid, ts, ts, mid, band, bid + ask, bid, ask))


# ----------------------------------------------------------------- shared reference pieces

class SampledRef:
    """Last value per bucket, forward-filled when the newest advances; ``nb`` or more behind the newest are gone."""

    def __init__(self, nb: int) -> None:
        self.nb = nb
        self.vals: dict = {}
        self.head: dict = {}

    def put(self, key, bucket, value) -> bool:
        h = self.head.get(key)
        if h is not None and bucket <= h - self.nb:
            return False
        vals = self.vals.setdefault(key, {})
        if h is not None and bucket > h:
            for bb in range(max(h + 1, bucket - self.nb + 1), bucket):
                vals[bb] = vals[h]
        if h is None or bucket > h:
            self.head[key] = bucket
        vals[bucket] = value
        return True

    def get(self, key, bucket):
        h = self.head.get(key)
        if h is None or bucket <= h - self.nb:
            return None
        return self.vals[key].get(min(bucket, h))


class EwRef:
    def __init__(self) -> None:
        self.n, self.mean, self.var = 0, 0.0, 0.0

    def add(self, x: float, alpha: float) -> None:
        if self.n == 0:
            self.mean, self.var = x, 0.0
        else:
            d = x - self.mean
            self.mean += alpha * d
            self.var = (1 - alpha) * (self.var + alpha * d * d)
        self.n += 1

    def threshold(self, min_samples, z, fallback, floor):
        if self.n < min_samples:
            return 0.0, fallback
        return self.mean, max(floor, z * math.sqrt(max(self.var, 0.0)))


def _ts(r) -> int:
    return r["ts_exchange"] if r["ts_exchange"] > 0 else r["ts_recv"]


# ----------------------------------------------------------------- open interest

def ref_oi(recs, inst_asset, inst_venue, fallback, floor, res_ns, window, nb, min_samples, z, alpha, min_oi_usd,
           min_venues, rearm, state=None):
    """Reference of :func:`oi_batch`; returns (events, state) with events (asset, key, code, v0, v1, v2, v3)."""
    st = state or {"s": SampledRef(nb), "ew": {}, "change": {}, "asset": {}}
    s, ew, change, astate = st["s"], st["ew"], st["change"], st["asset"]
    events = []
    for r in recs:
        if r["kind"] != Kind.OPEN_INTEREST or r["instrument"] >= len(inst_asset):
            continue
        usd = float(r["notional"])
        if not (0 < usd < math.inf):
            continue
        i, a = int(r["instrument"]), int(inst_asset[r["instrument"]])
        b = _ts(r) // res_ns
        h = s.head.get(i)

        def chg(k, bucket):
            now, then = s.get(k, bucket), s.get(k, bucket - window)
            return None if now is None or then is None or then <= 0 else now / then - 1

        if h is not None and b > h:
            c = chg(i, h)
            if c is not None:
                ew.setdefault(i, EwRef()).add(c, alpha)
        if not s.put(i, b, usd):
            continue
        c = chg(i, b)
        change[i] = 0.0 if c is None else c
        peers = [j for j in range(len(inst_asset)) if inst_asset[j] == a and j in s.head]
        rep = {int(inst_venue[j]) for j in peers}
        up, dn, up_keep, dn_keep = [], [], set(), set()
        for j in peers:
            centre, thr = ew.get(j, EwRef()).threshold(min_samples, z, fallback[a], floor[a])
            d = change[j] - centre
            if d >= thr:
                up.append((j, thr))
            elif d <= -thr:
                dn.append((j, thr))
            if d >= rearm * thr:
                up_keep.add(int(inst_venue[j]))
            elif d <= -rearm * thr:
                dn_keep.add(int(inst_venue[j]))
        need = min(min_venues, len(rep))
        cur = astate.get(a, 0)

        def fire(group, code):
            oi = sum(s.get(j, b) for j, _ in group)
            venues = {int(inst_venue[j]) for j, _ in group}
            if group and len(venues) >= need and oi >= min_oi_usd:
                astate[a] = code
                events.append((a, i, code, sum(change[j] for j, _ in group) / len(group),
                               sum(t for _, t in group) / len(group), oi, len(venues)))
                return True
            return False

        if cur == 0:
            fire(up, 1) or fire(dn, -1)
        elif cur == 1 and len(up_keep) < need:
            astate[a] = 0
        elif cur == -1 and len(dn_keep) < need:
            astate[a] = 0
    return events, st


# ----------------------------------------------------------------- funding

def _judge_ref(state, key, d, thr, rearm):
    """+1/-1 when firing, 0 otherwise; updates ``state[key]``."""
    s = state.get(key, 0)
    if s == 0:
        if d >= thr:
            state[key] = 1
            return 1
        if d <= -thr:
            state[key] = -1
            return -1
    elif abs(d) < rearm * thr or s * d < 0:
        state[key] = 0
    return 0


def ref_funding(recs, inst_asset, inst_venue, venue_scale, res_ns, mom_window, nb, min_samples, z, alpha,
                p_extreme, p_extreme_floor, p_mom, p_mom_floor, rearm, state=None):
    """Reference of :func:`funding_batch`."""
    st = state or {"rate": {}, "settled": {}, "next": {}, "s": SampledRef(nb), "lvl": {}, "mom": {}, "sp": {},
                   "spread": {}, "fired": {}}
    rate, settled, nxt, s, fired = st["rate"], st["settled"], st["next"], st["s"], st["fired"]
    lvl, mom, sp, spread = st["lvl"], st["mom"], st["sp"], st["spread"]
    events = []
    for r in recs:
        if r["kind"] != Kind.MARK or r["instrument"] >= len(inst_asset):
            continue
        i, a = int(r["instrument"]), int(inst_asset[r["instrument"]])
        scale = venue_scale[int(inst_venue[i]) & 31]
        x, sx, nt = float(r["aux"]) * scale, float(r["notional"]) * scale, float(r["aux2"])
        if not (abs(x) < 1.0 and abs(sx) < 1.0):
            continue
        if sx != 0.0:
            settled[i] = sx
        elif nt > nxt.get(i, 0.0) > 0.0 and i in rate:
            settled[i] = rate[i]
        nxt[i] = max(nxt.get(i, 0.0), nt)
        rate[i] = x
        peers = [j for j in range(len(inst_asset)) if inst_asset[j] == a and j in rate]
        level = sum(rate[j] for j in peers) / len(peers)
        gaps = [rate[j] - settled[j] for j in peers if j in settled]
        b = _ts(r) // res_ns
        h = s.head.get(a)
        if h is not None and b > h:
            lv, lv0 = s.get(a, h), s.get(a, h - mom_window)
            lvl.setdefault(a, EwRef()).add(lv, alpha)
            if lv0 is not None:
                mom.setdefault(a, EwRef()).add(lv - lv0, alpha)
            if spread.get(a) is not None:
                sp.setdefault(a, EwRef()).add(spread[a], alpha)
        if not s.put(a, b, level):
            continue
        spread[a] = sum(gaps) / len(gaps) if gaps else None
        centre, thr = lvl.get(a, EwRef()).threshold(min_samples, z, p_extreme[a], p_extreme_floor[a])
        sign = _judge_ref(fired, (a, 0), level - centre, thr, rearm)
        if sign:
            events.append((a, i, sign, level, thr, centre, level))
        if gaps:
            centre, thr = sp.get(a, EwRef()).threshold(min_samples, z, p_mom[a], p_mom_floor[a])
            sign = _judge_ref(fired, (a, 1), spread[a] - centre, thr, rearm)
            if sign:
                events.append((a, i, 3 * sign, spread[a], thr, centre, level))
            continue
        lv0 = s.get(a, b - mom_window)
        if lv0 is not None:
            centre, thr = mom.get(a, EwRef()).threshold(min_samples, z, p_mom[a], p_mom_floor[a])
            sign = _judge_ref(fired, (a, 1), level - lv0 - centre, thr, rearm)
            if sign:
                events.append((a, i, 2 * sign, level - lv0, thr, centre, level))
    return events, st


# ----------------------------------------------------------------- book

def ref_book(recs, inst_asset, band, band_tol, min_samples, z, alpha, p_imb, p_imb_floor, imb_rearm, persist_ns,
             base_tau_ns,
             min_base_n, collapse_ratio, collapse_persist_ns, rearm_ratio, state=None):
    """Reference of :func:`book_batch`."""
    st = state if state is not None else {}
    events = []
    for r in recs:
        kind = int(r["kind"])
        if kind not in (Kind.BOOK_DEPTH, Kind.BOOK_TOP) or r["instrument"] >= len(inst_asset):
            continue
        i, a = int(r["instrument"]), int(inst_asset[r["instrument"]])
        b = st.setdefault(i, {"ew": EwRef(), "run_sign": 0.0, "since": 0.0, "fired": 0.0, "base": 0.0, "base_n": 0,
                              "last": 0.0, "collapsed": False, "low_since": 0.0, "has_depth": False})
        if kind == Kind.BOOK_DEPTH:
            if abs(r["qty"] - band) > band_tol:
                continue
            bid, ask = float(r["aux"]), float(r["aux2"])
            b["has_depth"] = True
        else:
            if b["has_depth"]:
                continue
            bid, ask = float(r["price"] * r["qty"]), float(r["aux"] * r["aux2"])
        if not (bid >= 0 and ask >= 0 and 0 < bid + ask < math.inf):
            continue
        ts = _ts(r)
        depth = bid + ask
        imb = (bid - ask) / depth
        dt = ts - b["last"] if b["last"] > 0 else 0
        b["last"] = float(ts)
        centre, thr = b["ew"].threshold(min_samples, z, p_imb[a], p_imb_floor[a])
        d = imb - centre
        sign = 1.0 if d >= thr else (-1.0 if d <= -thr else 0.0)
        if b["fired"]:
            if b["fired"] * d < imb_rearm * thr:
                b["fired"], b["run_sign"], b["since"] = 0.0, 0.0, 0.0
        elif sign == 0.0 or sign != b["run_sign"]:
            b["run_sign"] = sign
            b["since"] = float(ts) if sign else 0.0
        elif ts - b["since"] >= persist_ns:
            b["fired"] = sign
            events.append((a, i, 1 if sign > 0 else -1, imb, thr, bid, ask))
        b["ew"].add(imb, alpha)
        base = b["base"]
        ratio = depth / base if base > 0 else 1.0
        if b["collapsed"]:
            if ratio >= rearm_ratio:
                b["collapsed"], b["low_since"] = False, 0.0
        elif b["base_n"] >= min_base_n and ratio <= collapse_ratio:
            if b["low_since"] == 0.0:
                b["low_since"] = float(ts)
            if ts - b["low_since"] >= collapse_persist_ns:
                b["collapsed"] = True
                events.append((a, i, 2, depth, base, ratio, imb))
        else:
            b["low_since"] = 0.0
            w = 1 - math.exp(-dt / base_tau_ns) if base > 0 else 1.0
            b["base"] = base + w * (depth - base)
            b["base_n"] += 1
    return events, st


# ----------------------------------------------------------------- correlation

def run_batches(det, recs: np.ndarray, batch: int = 1000) -> tuple[list, list[tuple]]:
    """Run ``recs`` through ``det`` ``batch`` records at a time: (signals, the raw kernel events behind them)."""
    sigs, raw = [], []
    for k in range(0, len(recs), batch):
        out = det.run(recs[k:k + batch])
        sigs += out
        raw += [tuple(e) for e in det.last_events[:len(out)]]
    return sigs, raw


def calm_feed(seconds: float, seed: int = 5, rate: float = 40.0) -> tuple[np.ndarray, FakeRegistry]:
    """Records of a calm synthetic run (no cascades, no high-vol regime) and its registry.

    Built once per process and cached on disk (``/tmp``), since every positioning test file replays it.
    """
    import os
    import tempfile
    key = (float(seconds), seed, float(rate))
    if key in _CALM:
        return _CALM[key]
    m = SyntheticMarket(("BTCUSDT", "ETHUSDT", "SOLUSDT"), seed=seed, rate=rate, cascade_every_s=0.0)
    m.script("calm", duration=seconds + 1.0)
    feed = MarketFeed(m)
    path = os.path.join(tempfile.gettempdir(), f"undertow-calm-v1-{seconds:g}-{seed}-{rate:g}.npy")
    try:
        recs = np.load(path)
    except (OSError, ValueError):
        recs = feed.run(seconds)
        tmp = f"{path}.{os.getpid()}.npy"
        np.save(tmp, recs)
        os.replace(tmp, path)
    _CALM[key] = (recs, feed.reg)
    return _CALM[key]


_CALM: dict = {}
CALM_S = 1200.0     # the calm replay of the default run; the soak tests replay an hour
