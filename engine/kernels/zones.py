"""Liquidation-zone model: leveraged positions reconstructed from open-interest flow, binned by liquidation price.

Per instrument (venue + symbol) the kernel keeps the USD of modelled long and
short positions in log-spaced bins of *liquidation* price (one grid per
asset, centred on the asset's first price, so instruments of an asset add up
bin by bin), with a variance per bin for the uncertainty band:

* OI rises by ``dq`` base units: ``dq x entry`` USD of new positions at the
  interval's traded VWAP (else the last price); long share
  ``s = 0.5 + taker_weight x (buy - sell) / (buy + sell) + funding_weight x clip(funding / funding_scale)``
  (``funding``: the venue's rate restated per ``detectors.funding``'s common interval when given),
  clipped to ``[split_clip, 1 - split_clip]``; spread over the leverage mix
  ``(L_j, w_j)``; a long's liquidation price is ``entry x (1 - 1/L + mm)``,
  a short's ``entry x (1 + 1/L - mm)`` (``mm`` = maintenance margin rate).
  Each addition adds ``(usd x split_uncertainty x w_j)^2`` to both sides' bin
  variance (the split error moves USD between the sides).
* The first OI reading (once the instrument has a price) is the OI opened before the model started: with
  ``seed_open_interest`` it enters the map as if opened at that price, split evenly (a prior that fades as
  positions close and new ones open); without it those positions stay unmodelled.
* OI falls: every bin of the instrument is scaled by ``OI_new / OI_old``
  (variance by its square): positions closed proportionally.
* Price (trade or mark) passes a bin: a long bin whose whole price range is
  above the price, or a short bin wholly below it, is liquidated and emptied.

Every ``eval_interval_s`` of stream time per asset the kernel sums the
asset's instruments, finds the nearest *large* zone on each side (a zone is
``zone_bins`` adjacent bins; large = at or above the ``large_quantile`` of
that side's non-empty zones and ``min_zone_usd``), its distance, the USD that
would be force-traded between price and the zone's far edge ("fuel"), the
resting book depth over the same distance (BOOK_DEPTH bands, linearly
interpolated; beyond the widest band scaled in proportion), and emits an
event when a side enters *approach*: distance <= ``approach_sigmas x sigma``
with ``sigma`` the EWMA 1 s return volatility over ``horizon_s`` (it leaves
approach past 1.5 x that). The model only knows the OI it saw change: the
share of OI it explains is reported as ``coverage``.

:meth:`ZoneModel.asset_map` ranks the bins by ``expected_usd``: a bin's USD times the probability that
price touches it within ``horizon_s`` (:func:`reach_probability`, driftless, from the same volatility), the
USD expected to be force-traded there over the horizon, which the backtest scores.
"""
from __future__ import annotations

import math

import numpy as np
from numba import njit

from ..record import Kind

__all__ = ["ZoneModel", "ZONE_EVENT_DTYPE", "Z", "resolve_mix", "liquidation_price", "reach_probability"]

MAX_BANDS = 8
K_TRADE, K_MARK, K_OI, K_DEPTH = Kind.TRADE, Kind.MARK, Kind.OPEN_INTEREST, Kind.BOOK_DEPTH   # numba reads plain globals
NAN = float("nan")

# per-instrument scalars
I_OI, I_BUY, I_SELL, I_VNUM, I_VQTY, I_PRICE, I_FUND, I_HI, I_LO, I_MM, I_DROPPED, I_ADDED, I_FMULT = range(13)
NI = 13
# per-asset scalars
(A_ANCHOR, A_NEXT_TICK, A_SAMPLE_TS, A_SAMPLE_P, A_EWVAR, A_NSAMPLES, A_ON_LONG, A_ON_SHORT, A_PRICE,
 A_WSUM) = range(10)
NA = 10


# per-asset output row (latest evaluation); a side block per side: long (zone below price), short (above)
O_TS, O_PRICE, O_SIGMA, O_THRESHOLD, O_MODEL_USD, O_COVERAGE, O_LONG, O_SHORT = 0, 1, 2, 3, 4, 5, 6, 15
S_ZONE_PRICE, S_ZONE_USD, S_ZONE_BAND, S_DISTANCE, S_FUEL_USD, S_DEPTH_USD, S_RATIO, S_LARGE_USD, S_SIDE_USD = range(9)
O_NCOL = 24


class Z:
    """Column names of the per-asset output row, for Python readers."""

    TS, PRICE, SIGMA, THRESHOLD, MODEL_USD, COVERAGE, LONG, SHORT = O_TS, O_PRICE, O_SIGMA, O_THRESHOLD, \
        O_MODEL_USD, O_COVERAGE, O_LONG, O_SHORT
    ZONE_PRICE, ZONE_USD, ZONE_BAND, DISTANCE, FUEL_USD, DEPTH_USD, RATIO, LARGE_USD, SIDE_USD = range(9)
    NCOL = O_NCOL


ZONE_EVENT_DTYPE = np.dtype([
    ("asset", np.int64), ("side", np.int64), ("ts_exchange", np.int64), ("ts_recv", np.int64),
    ("price", np.float64), ("zone_price", np.float64), ("zone_usd", np.float64), ("zone_band", np.float64),
    ("distance", np.float64), ("threshold", np.float64), ("fuel_usd", np.float64), ("depth_usd", np.float64),
    ("ratio", np.float64), ("coverage", np.float64),
])

# parameter vector
(P_LW, P_NB, P_TW, P_FW, P_FSCALE, P_CLIP, P_SIGMA_S, P_INTERVAL, P_HALFLIFE, P_HORIZON, P_APPROACH, P_QUANT,
 P_MINZONE, P_ZB, P_MINSAMPLES, P_SEED) = range(16)
NPARAM = 16


def liquidation_price(entry: float, leverage: float, mm: float, long: bool) -> float:
    """Liquidation price of an isolated position opened at ``entry`` (maintenance margin rate ``mm``)."""
    return entry * (1.0 - 1.0 / leverage + mm) if long else entry * (1.0 + 1.0 / leverage - mm)


def resolve_mix(table: dict, venue: str, asset: str):
    """The entry of ``table`` for ``venue:ASSET``, else ``venue``, else ``ASSET``, else ``"*"``."""
    for key in (f"{venue}:{asset}", venue, asset, "*"):
        if key in table:
            return table[key]
    raise KeyError("*")


def reach_probability(prices: np.ndarray, price: float, sigma_1s: float, horizon_s: float) -> np.ndarray:
    """Probability that a driftless log-price with 1 s volatility ``sigma_1s``, now at ``price``, touches each
    of ``prices`` within ``horizon_s`` (reflection principle: ``2 (1 - Phi(d / (sigma sqrt(h))))``, ``d`` the log
    distance); NaN everywhere when the volatility or the price is unknown."""
    p = np.asarray(prices, dtype=np.float64)
    s = sigma_1s * math.sqrt(horizon_s) if horizon_s > 0 else NAN
    if not (s > 0.0 and price > 0.0):
        return np.full(p.shape, NAN)
    d = np.abs(np.log(p / price))
    return np.array([math.erfc(x / (s * math.sqrt(2.0))) if x == x else NAN for x in d.ravel()]).reshape(p.shape)


@njit(cache=True)
def _bin(price, anchor, lw, nb):
    return int(math.floor((math.log(price) - anchor) / lw)) + nb // 2


@njit(cache=True)
def _add(maps, ist, k, usd, entry, s, sig, lev, levw, anchor, lw, nb):
    mm = ist[k, I_MM]
    for j in range(lev.shape[1]):
        w = levw[k, j]
        if w <= 0.0:
            continue
        L = lev[k, j]
        var = (usd * sig * w) ** 2
        for side in range(2):
            liq = entry * (1.0 - 1.0 / L + mm) if side == 0 else entry * (1.0 + 1.0 / L - mm)
            part = usd * w * (s if side == 0 else 1.0 - s)
            if liq <= 0.0:
                ist[k, I_DROPPED] += part
                continue
            i = _bin(liq, anchor, lw, nb)
            if i < 0 or i >= nb:
                ist[k, I_DROPPED] += part
                continue
            maps[k, side, i] += part
            maps[k, 2 + side, i] += var
            if side == 0:
                if i > ist[k, I_HI]:
                    ist[k, I_HI] = i
            elif i < ist[k, I_LO]:
                ist[k, I_LO] = i
    ist[k, I_ADDED] += usd


@njit(cache=True)
def _cross(maps, ist, k, price, anchor, lw, nb):
    ip = _bin(price, anchor, lw, nb)
    hi = int(ist[k, I_HI])
    if hi > ip:   # long bins wholly above the price are liquidated
        for i in range(max(ip + 1, 0), min(hi, nb - 1) + 1):
            maps[k, 0, i] = 0.0
            maps[k, 2, i] = 0.0
        ist[k, I_HI] = min(ip, nb - 1)
    lo = int(ist[k, I_LO])
    if lo < ip:   # short bins wholly below it
        for i in range(max(lo, 0), min(ip, nb)):
            maps[k, 1, i] = 0.0
            maps[k, 3, i] = 0.0
        ist[k, I_LO] = max(ip, 0)


@njit(cache=True)
def _depth(depth, k, d, col):
    """USD resting within relative distance ``d`` on one side (col 1 bid, 2 ask) of instrument ``k``."""
    b_lo, u_lo = 0.0, 0.0
    b_hi, u_hi = 0.0, -1.0
    b_max, u_max = 0.0, 0.0
    for j in range(depth.shape[1]):
        b = depth[k, j, 0]
        if b <= 0.0:
            continue
        u = depth[k, j, col]
        if b > b_max:
            b_max, u_max = b, u
        if b <= d and b > b_lo:
            b_lo, u_lo = b, u
        if b >= d and (u_hi < 0.0 or b < b_hi):
            b_hi, u_hi = b, u
    if b_max <= 0.0:
        return 0.0
    if u_hi < 0.0:
        return u_max * d / b_max
    if b_hi <= b_lo:
        return u_hi
    return u_lo + (u_hi - u_lo) * (d - b_lo) / (b_hi - b_lo)


@njit(cache=True)
def _evaluate(a, ts_ex, ts_recv, maps, ist, ast, depth, inst_asset, n_inst, out, events, n_ev, prm, agg, zbuf):
    nb = int(prm[P_NB])
    lw = prm[P_LW]
    zb = int(prm[P_ZB])
    price = ast[a, A_PRICE]
    anchor = ast[a, A_ANCHOR]
    agg[:, :] = 0.0
    oi_usd = 0.0
    for k in range(n_inst):
        if inst_asset[k] != a:
            continue
        for c in range(4):
            for i in range(nb):
                agg[c, i] += maps[k, c, i]
        if ist[k, I_OI] > 0.0 and ist[k, I_PRICE] > 0.0:
            oi_usd += ist[k, I_OI] * ist[k, I_PRICE]
    ip = _bin(price, anchor, lw, nb)
    model = 0.0
    for i in range(nb):
        model += agg[0, i] + agg[1, i]
    sigma = NAN
    if ast[a, A_NSAMPLES] >= prm[P_MINSAMPLES]:
        sigma = math.sqrt(ast[a, A_EWVAR] / ast[a, A_WSUM] * prm[P_HORIZON])
    thr = prm[P_APPROACH] * sigma
    row = out[a]
    row[O_TS] = ts_recv
    row[O_PRICE] = price
    row[O_SIGMA] = sigma
    row[O_THRESHOLD] = thr
    row[O_MODEL_USD] = model
    # each model dollar is one side of one contract: OI counts each contract once
    row[O_COVERAGE] = 0.5 * model / oi_usd if oi_usd > 0.0 else NAN
    ng = nb // zb
    for side in range(2):
        base = O_LONG if side == 0 else O_SHORT
        # zones of this side between the grid edge and the price
        n = 0
        side_usd = 0.0
        for g in range(ng):
            lo_i, hi_i = g * zb, g * zb + zb - 1
            if (side == 0 and lo_i > ip) or (side == 1 and hi_i < ip):
                continue
            u = 0.0
            for i in range(lo_i, hi_i + 1):
                u += agg[side, i]
            side_usd += u
            if u > 0.0:
                zbuf[n] = u
                n += 1
        large = prm[P_MINZONE]
        if n > 0:
            srt = np.sort(zbuf[:n])
            q = srt[int(prm[P_QUANT] * (n - 1))]
            if q > large:
                large = q
        found = -1
        if side == 0:
            g = min(ip // zb, ng - 1)
            while g >= 0:
                u = 0.0
                for i in range(g * zb, g * zb + zb):
                    u += agg[0, i]
                if u >= large and u > 0.0:
                    found = g
                    break
                g -= 1
        else:
            g = max(ip // zb, 0)
            while g < ng:
                u = 0.0
                for i in range(g * zb, g * zb + zb):
                    u += agg[1, i]
                if u >= large and u > 0.0:
                    found = g
                    break
                g += 1
        row[base + S_LARGE_USD] = large
        row[base + S_SIDE_USD] = side_usd
        if found < 0:
            for c in range(S_ZONE_PRICE, S_RATIO + 1):
                row[base + c] = NAN
            ast[a, A_ON_LONG + side] = 0.0
            continue
        usd, var, pnum = 0.0, 0.0, 0.0
        for i in range(found * zb, found * zb + zb):
            u = agg[side, i]
            usd += u
            var += agg[2 + side, i]
            pnum += u * math.exp(anchor + (i - nb // 2 + 0.5) * lw)
        zp = pnum / usd
        dist = (price - zp) / price if side == 0 else (zp - price) / price
        if dist < 0.0:
            dist = 0.0
        fuel = 0.0
        if side == 0:
            for i in range(found * zb, min(ip, nb - 1) + 1):
                fuel += agg[0, i]
            far = math.exp(anchor + (found * zb - nb // 2) * lw)
        else:
            for i in range(max(ip, 0), found * zb + zb):
                fuel += agg[1, i]
            far = math.exp(anchor + (found * zb + zb - nb // 2) * lw)
        span = abs(price - far) / price
        dep = 0.0
        for k in range(n_inst):
            if inst_asset[k] == a:
                dep += _depth(depth, k, span, 1 if side == 0 else 2)
        row[base + S_ZONE_PRICE] = zp
        row[base + S_ZONE_USD] = usd
        row[base + S_ZONE_BAND] = math.sqrt(var)
        row[base + S_DISTANCE] = dist
        row[base + S_FUEL_USD] = fuel
        row[base + S_DEPTH_USD] = dep
        row[base + S_RATIO] = fuel / dep if dep > 0.0 else NAN
        on = ast[a, A_ON_LONG + side]
        if thr == thr:   # sigma known
            if on == 0.0 and dist <= thr:
                ast[a, A_ON_LONG + side] = 1.0
                if n_ev[0] < len(events):
                    e = events[n_ev[0]]
                    e["asset"] = a
                    e["side"] = 1 if side == 0 else -1
                    e["ts_exchange"] = ts_ex
                    e["ts_recv"] = ts_recv
                    e["price"] = price
                    e["zone_price"] = zp
                    e["zone_usd"] = usd
                    e["zone_band"] = math.sqrt(var)
                    e["distance"] = dist
                    e["threshold"] = thr
                    e["fuel_usd"] = fuel
                    e["depth_usd"] = dep
                    e["ratio"] = fuel / dep if dep > 0.0 else NAN
                    e["coverage"] = row[O_COVERAGE]
                n_ev[0] += 1
            elif on == 1.0 and dist > 1.5 * thr:
                ast[a, A_ON_LONG + side] = 0.0


@njit(cache=True)
def zones_kernel(recs, inst_asset, owned, maps, ist, ast, lev, levw, depth, out, events, n_ev, prm, agg, zbuf):
    """Run the model over one batch of records (stream order); events go to ``events[:n_ev[0]]``."""
    nb = int(prm[P_NB])
    lw = prm[P_LW]
    n_inst = len(inst_asset)
    for r in range(len(recs)):
        rec = recs[r]
        k = rec["instrument"]
        if k >= n_inst:
            continue
        a = inst_asset[k]
        if not owned[a]:
            continue
        kind = rec["kind"]
        price = rec["price"]
        ts = rec["ts_recv"]
        priced = False
        if kind == K_TRADE and price > 0.0 and rec["qty"] > 0.0:
            if rec["side"] > 0:
                ist[k, I_BUY] += rec["notional"]
            else:
                ist[k, I_SELL] += rec["notional"]
            ist[k, I_VNUM] += rec["notional"]
            ist[k, I_VQTY] += rec["qty"]
            priced = True
        elif kind == K_MARK and price > 0.0:
            ist[k, I_FUND] = rec["aux"] * ist[k, I_FMULT]   # per common interval: venues quote 1 h / 8 h rates
            priced = True
        elif kind == K_DEPTH and rec["qty"] > 0.0:
            band = rec["qty"]
            slot = -1
            for j in range(depth.shape[1]):
                if depth[k, j, 0] == band or (slot < 0 and depth[k, j, 0] <= 0.0):
                    slot = j
                    if depth[k, j, 0] == band:
                        break
            if slot >= 0:
                depth[k, slot, 0] = band
                depth[k, slot, 1] = rec["aux"]
                depth[k, slot, 2] = rec["aux2"]
        if priced:
            if ast[a, A_ANCHOR] != ast[a, A_ANCHOR]:
                ast[a, A_ANCHOR] = math.log(price)
            ist[k, I_PRICE] = price
            ast[a, A_PRICE] = price
            _cross(maps, ist, k, price, ast[a, A_ANCHOR], lw, nb)
            dt = ts - ast[a, A_SAMPLE_TS]
            if dt >= 1e9:
                if ast[a, A_SAMPLE_P] > 0.0:
                    dt_s = dt / 1e9
                    x = math.log(price / ast[a, A_SAMPLE_P]) ** 2 / dt_s
                    alpha = 1.0 - 0.5 ** (dt_s / prm[P_HALFLIFE])
                    ast[a, A_EWVAR] += alpha * (x - ast[a, A_EWVAR])
                    ast[a, A_WSUM] += alpha * (1.0 - ast[a, A_WSUM])   # bias correction of the zero start
                    ast[a, A_NSAMPLES] += 1.0
                ast[a, A_SAMPLE_TS] = ts
                ast[a, A_SAMPLE_P] = price
        if kind == K_OI and rec["qty"] > 0.0:
            q = rec["qty"]
            prev = ist[k, I_OI]
            anchor = ast[a, A_ANCHOR]
            ready = anchor == anchor and ist[k, I_PRICE] > 0.0   # else the first reading waits for a price
            if ready and prev <= 0.0 and prm[P_SEED] > 0.0:
                # the OI open before the model started: entered at unknown prices, taken at the current one,
                # split evenly (a prior, replaced as positions close and new ones open)
                px = ist[k, I_PRICE]
                _add(maps, ist, k, q * px, px, 0.5, prm[P_SIGMA_S], lev, levw, anchor, lw, nb)
            elif ready and prev > 0.0:
                if q > prev:
                    entry = ist[k, I_VNUM] / ist[k, I_VQTY] if ist[k, I_VQTY] > 0.0 else ist[k, I_PRICE]
                    if entry <= 0.0:
                        entry = price
                    flow = ist[k, I_BUY] + ist[k, I_SELL]
                    imb = (ist[k, I_BUY] - ist[k, I_SELL]) / flow if flow > 0.0 else 0.0
                    f = ist[k, I_FUND] / prm[P_FSCALE]
                    f = min(1.0, max(-1.0, f))
                    s = 0.5 + prm[P_TW] * imb + prm[P_FW] * f
                    s = min(1.0 - prm[P_CLIP], max(prm[P_CLIP], s))
                    if entry > 0.0:
                        _add(maps, ist, k, (q - prev) * entry, entry, s, prm[P_SIGMA_S], lev, levw, anchor, lw, nb)
                else:
                    f = q / prev
                    for c in range(4):
                        m = f if c < 2 else f * f
                        for i in range(nb):
                            maps[k, c, i] *= m
            if ready:
                ist[k, I_OI] = q
            ist[k, I_BUY] = 0.0
            ist[k, I_SELL] = 0.0
            ist[k, I_VNUM] = 0.0
            ist[k, I_VQTY] = 0.0
        if ts >= ast[a, A_NEXT_TICK] and ast[a, A_PRICE] > 0.0:
            iv = prm[P_INTERVAL]
            ast[a, A_NEXT_TICK] = (ts // iv + 1) * iv
            _evaluate(a, rec["ts_exchange"], ts, maps, ist, ast, depth, inst_asset, n_inst, out, events, n_ev, prm,
                      agg, zbuf)


class ZoneModel:
    """State and parameters of the zone kernel for a set of instruments and assets (grows as they appear)."""

    def __init__(self, cfg, events_capacity: int = 4096, funding_cfg=None):
        self.cfg = cfg
        self.funding_cfg = funding_cfg     # detectors.funding: venue rates restated per its common interval
        self.nb = int(cfg.bins)
        self.nl = max(len(m) for m in cfg.leverage.values())
        self.prm = np.zeros(NPARAM)
        self.prm[[P_LW, P_NB, P_TW, P_FW, P_FSCALE, P_CLIP, P_SIGMA_S, P_INTERVAL, P_HALFLIFE, P_HORIZON, P_APPROACH,
                  P_QUANT, P_MINZONE, P_ZB, P_MINSAMPLES, P_SEED]] = [
            math.log1p(cfg.bin_width), self.nb, cfg.taker_weight, cfg.funding_weight, cfg.funding_scale,
            cfg.split_clip, cfg.split_uncertainty, cfg.eval_interval_s * 1e9, cfg.vol_halflife_s, cfg.horizon_s,
            cfg.approach_sigmas, cfg.large_quantile, cfg.min_zone_usd, cfg.zone_bins, 30.0,
            float(cfg.seed_open_interest)]
        self.inst_asset = np.zeros(0, dtype=np.int64)
        self.owned = np.zeros(0, dtype=np.bool_)
        self.maps = np.zeros((0, 4, self.nb))
        self.ist = np.zeros((0, NI))
        self.ast = np.zeros((0, NA))
        self.lev = np.zeros((0, self.nl))
        self.levw = np.zeros((0, self.nl))
        self.depth = np.zeros((0, MAX_BANDS, 3))
        self.out = np.zeros((0, Z.NCOL))
        self.events = np.zeros(events_capacity, dtype=ZONE_EVENT_DTYPE)
        self.n_ev = np.zeros(1, dtype=np.int64)
        self.agg = np.zeros((4, self.nb))
        self.zbuf = np.zeros(self.nb)
        self.events_dropped = 0

    def resize(self, inst_meta: list[tuple[str, str, int]], n_assets: int, owned: np.ndarray | None = None) -> None:
        """Track instruments ``[(venue, asset, asset_id), ...]`` (by id order) and ``n_assets`` assets."""
        n_old, n = len(self.inst_asset), len(inst_meta)
        if n > n_old:
            grow = n - n_old
            self.maps = np.concatenate([self.maps, np.zeros((grow, 4, self.nb))])
            ist = np.zeros((grow, NI))
            ist[:, I_HI] = -1
            ist[:, I_LO] = self.nb
            ist[:, I_FMULT] = 1.0
            lev, levw = np.full((grow, self.nl), 2.0), np.zeros((grow, self.nl))
            for j, (venue, asset, _) in enumerate(inst_meta[n_old:]):
                mix = resolve_mix(self.cfg.leverage, venue, asset)
                total = sum(p[1] for p in mix)
                for m, (L, w) in enumerate(mix):
                    lev[j, m], levw[j, m] = L, w / total
                ist[j, I_MM] = resolve_mix(self.cfg.maintenance, venue, asset)
                if self.funding_cfg is not None:
                    from engine.detectors.funding import per_common_interval
                    ist[j, I_FMULT] = per_common_interval(self.funding_cfg, venue, 1.0)
            self.ist = np.concatenate([self.ist, ist])
            self.lev = np.concatenate([self.lev, lev])
            self.levw = np.concatenate([self.levw, levw])
            self.depth = np.concatenate([self.depth, np.zeros((grow, MAX_BANDS, 3))])
        self.inst_asset = np.array([m[2] for m in inst_meta], dtype=np.int64)
        na_old = len(self.ast)
        if n_assets > na_old:
            ast = np.zeros((n_assets - na_old, NA))
            ast[:, A_ANCHOR] = np.nan
            self.ast = np.concatenate([self.ast, ast])
            out = np.full((n_assets - na_old, Z.NCOL), np.nan)
            self.out = np.concatenate([self.out, out])
        self.owned = np.ones(len(self.ast), dtype=np.bool_) if owned is None else np.asarray(owned[:len(self.ast)],
                                                                                              dtype=np.bool_)

    def run(self, recs: np.ndarray) -> np.ndarray:
        """Feed one batch; return the approach events it produced (a copy)."""
        self.n_ev[0] = 0
        if len(recs) and len(self.inst_asset):
            zones_kernel(recs, self.inst_asset, self.owned, self.maps, self.ist, self.ast, self.lev, self.levw,
                         self.depth, self.out, self.events, self.n_ev, self.prm, self.agg, self.zbuf)
        n = int(self.n_ev[0])
        if n > len(self.events):
            self.events_dropped += n - len(self.events)
            n = len(self.events)
        return self.events[:n].copy()

    def bin_prices(self, a: int) -> np.ndarray:
        """Centre price of every bin of asset ``a``'s grid (NaN before its first price)."""
        lw = self.prm[P_LW]
        return np.exp(self.ast[a, A_ANCHOR] + (np.arange(self.nb) - self.nb // 2 + 0.5) * lw)

    def sigma_1s(self, a: int) -> float:
        """Asset ``a``'s EWMA volatility of 1 s log returns (NaN until enough samples)."""
        st = self.ast[a]
        if st[A_NSAMPLES] < self.prm[P_MINSAMPLES] or not st[A_WSUM] > 0.0:
            return NAN
        return math.sqrt(st[A_EWVAR] / st[A_WSUM])

    def asset_map(self, a: int) -> dict[str, np.ndarray]:
        """Asset ``a``'s map summed over its instruments: bin prices, long/short USD and their 1-sigma bands, the
        probability that price reaches each bin within ``horizon_s`` (``reach``, NaN before the volatility is
        known) and ``expected_usd``: the bin's USD times ``reach`` (times 1 while it is unknown), the USD
        expected to be liquidated there within the horizon, which is how the model ranks its bins."""
        sel = self.inst_asset == a
        m = self.maps[sel].sum(axis=0) if sel.any() else np.zeros((4, self.nb))
        prices = self.bin_prices(a)
        reach = reach_probability(prices, float(self.ast[a, A_PRICE]), self.sigma_1s(a), self.cfg.horizon_s)
        usd = m[0] + m[1]
        return {"price": prices, "long_usd": m[0], "short_usd": m[1],
                "long_band": np.sqrt(m[2]), "short_band": np.sqrt(m[3]), "reach": reach,
                "expected_usd": usd * np.where(np.isfinite(reach), reach, 1.0)}
