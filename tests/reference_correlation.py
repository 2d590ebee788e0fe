"""Plain-Python reference of :func:`engine.kernels.correlation.correlation_batch` (dicts, no rings, no numba).

It follows the documented rule record by record: a record that moves its instrument to a later
bucket closes, for each pair with that leg, every bucket both legs have passed; each closed bucket's
winsorised returns update the short and long moments and are judged on their own.
"""
from __future__ import annotations

import math

from engine.record import Kind
from tests.reference_positioning import EwRef, SampledRef, _ts


def _corr(m):
    if m["va"] <= 1e-30 or m["vb"] <= 1e-30:
        return None
    return max(-1.0, min(1.0, m["cov"] / math.sqrt(m["va"] * m["vb"])))


def _moments(m, x, y, alpha):
    if m["n"] == 0:
        m["ma"], m["mb"] = x, y
    else:
        dx, dy = x - m["ma"], y - m["mb"]
        m["ma"] += alpha * dx
        m["mb"] += alpha * dy
        m["va"] = (1 - alpha) * (m["va"] + alpha * dx * dx)
        m["vb"] = (1 - alpha) * (m["vb"] + alpha * dy * dy)
        m["cov"] = (1 - alpha) * (m["cov"] + alpha * dx * dy)
    m["n"] += 1


def winsorise_ref(scale: dict, leg: str, x: float, k: float, min_n: float, alpha: float) -> float:
    """Clip ``x`` at +-k x the leg's EW mean |return| once ``min_n`` returns were seen; then learn |x|."""
    n, s = scale["n"], scale[leg]
    if k > 0 and n >= min_n and s > 0:
        x = min(k * s, max(-k * s, x))
    w = alpha if alpha * (n + 1) > 1 else 1 / (n + 1)
    scale[leg] = s + w * (abs(x) - s)
    return x


def ref_correlation(recs, inst_asset, pairs, nb, res_ns, alpha_short, alpha_long, min_short, min_long, min_samples, z,
                    p_gap, p_gap_floor, min_long_corr, rearm, winsor_k, max_catchup, state=None):
    """Events ``(asset, pair, code, ts_exchange, ts_recv, short, long, gap, threshold)`` of ``recs`` and the state."""
    st = state or {"s": SampledRef(nb), "done": {}, "m": {}, "scale": {}, "gap": {}, "fired": {}}
    s = st["s"]
    events = []
    for r in recs:
        i = int(r["instrument"])
        if r["kind"] != Kind.MARK or i >= len(inst_asset):
            continue
        px = r["qty"] if r["qty"] > 0 else r["price"]
        if not (0 < px < math.inf):
            continue
        b = _ts(r) // res_ns
        before = s.head.get(i)
        if not s.put(i, b, math.log(px)) or before is None or s.head[i] == before:
            continue
        for p, (ia, ib) in enumerate(pairs):
            if i in (ia, ib) and ia in s.head and ib in s.head:
                _close(st, p, ia, ib, r, inst_asset, alpha_short, alpha_long, min_short, min_long, min_samples, z,
                       p_gap, p_gap_floor, min_long_corr, rearm, winsor_k, max_catchup, events)
    return events, st


def _close(st, p, ia, ib, r, inst_asset, alpha_short, alpha_long, min_short, min_long, min_samples, z, p_gap,
           p_gap_floor, min_long_corr, rearm, winsor_k, max_catchup, events):
    s = st["s"]
    closed = min(s.head[ia], s.head[ib]) - 1
    done = st["done"].get(p)
    if done is not None and closed <= done:
        return
    start = closed - max_catchup + 1 if done is None or closed - (done + 1) >= max_catchup else done + 1
    st["done"][p] = closed
    ms = st["m"].setdefault(p, [dict(n=0, ma=0.0, mb=0.0, va=0.0, vb=0.0, cov=0.0) for _ in range(2)])
    scale = st["scale"].setdefault(p, {"n": 0, "a": 0.0, "b": 0.0})
    for bkt in range(start, closed + 1):
        v = [s.get(ia, bkt), s.get(ia, bkt - 1), s.get(ib, bkt), s.get(ib, bkt - 1)]
        if None in v:
            continue
        ra = winsorise_ref(scale, "a", v[0] - v[1], winsor_k, min_short, alpha_long)
        rb = winsorise_ref(scale, "b", v[2] - v[3], winsor_k, min_short, alpha_long)
        scale["n"] += 1
        _moments(ms[0], ra, rb, alpha_short)
        _moments(ms[1], ra, rb, alpha_long)
        if ms[0]["n"] < min_short or ms[1]["n"] < min_long:
            continue
        cs, cl = _corr(ms[0]), _corr(ms[1])
        if cs is None or cl is None:
            continue
        gap = cl - cs
        ew = st["gap"].setdefault(p, EwRef())
        centre, thr = ew.threshold(min_samples, z, p_gap, p_gap_floor)
        d = gap - centre
        f = st["fired"].get(p, 0)
        if f == 0:
            if d >= thr and cl >= min_long_corr:
                st["fired"][p] = f = 1
                events.append((int(inst_asset[ia]), p, 1, int(r["ts_exchange"]), int(r["ts_recv"]), cs, cl, gap, thr))
        elif d < rearm * thr:
            st["fired"][p] = f = 0
        if f == 0:
            ew.add(gap, alpha_long)
