"""Plain-Python references for the numba kernels (slow, obvious, independent of the ring code)."""
from __future__ import annotations

import math

import msgspec

from engine.kernels import cascade as K
from engine.kernels import columns as C
from engine.kernels.velocity import BUCKET_NS, DAY_BUCKET_NS, DAY_BUCKETS, HOUR_BUCKET_NS, HOUR_BUCKETS
from engine.kernels.volatility import MIN_OBS, NORMAL, SECONDS_PER_YEAR


class RefBuckets:
    """Events per key with the ring's acceptance rule (refuse buckets older than head - n_buckets)."""

    def __init__(self, width_ns: int, n_buckets: int):
        self.width, self.n = width_ns, n_buckets
        self.head = None
        self.events: list[tuple[int, list[float]]] = []

    def add(self, ts: int, values: list[float]) -> None:
        b = ts // self.width
        if self.head is not None and b <= self.head - self.n:
            return
        self.head = b if self.head is None else max(self.head, b)
        self.events.append((b, values))

    def sums(self, now_ts: int, k: int, channels: int = 4) -> list[float]:
        now = now_ts // self.width
        out = [0.0] * channels
        if self.head is None:
            return out
        for b, vals in self.events:
            if now - k < b <= now and b > self.head - self.n:
                out = [o + v for o, v in zip(out, vals)]
        return out


class RefVelocity:
    """Reference velocity row of one key."""

    def __init__(self, layout):
        self.layout = layout
        self.fine = RefBuckets(BUCKET_NS, layout.n_buckets)
        self.hour = RefBuckets(HOUR_BUCKET_NS, HOUR_BUCKETS)
        self.day = RefBuckets(DAY_BUCKET_NS, DAY_BUCKETS)

    def add(self, ts: int, side: int, usd: float, whale: bool = False) -> None:
        vals = [0.0, 1.0, 0.0, usd] if side < 0 else [1.0, 0.0, usd, 0.0]
        self.fine.add(ts, vals)
        self.hour.add(ts, vals)
        self.day.add(ts, vals + (vals if whale else [0.0] * 4))

    def row(self, now: int) -> dict[int, float]:
        lay = self.layout
        out = {}
        sums = [self.fine.sums(now, int(k)) for k in lay.widths]
        for c in range(4):
            out[C.CASCADE_SUMS + c] = sums[lay.slots[0]][c]
            out[C.MINUTE_SUMS + c] = sums[lay.slots[1]][c]
            out[C.M5_SUMS + c] = self.hour.sums(now, 5)[c]
            out[C.M15_SUMS + c] = self.hour.sums(now, 15)[c]
            out[C.HOUR_SUMS + c] = self.hour.sums(now, 60)[c]
            out[C.H4_SUMS + c] = self.day.sums(now, 16, 8)[c]
            out[C.DAY_SUMS + c] = self.day.sums(now, 96, 8)[c]
            out[C.WHALE_DAY + c] = self.day.sums(now, 96, 8)[c + 4]
        ws = list(lay.windows_s)
        vel = []
        for k, w in enumerate(ws):
            s = sums[lay.slots[2 + k]]
            out[C.VEL_N + k] = (s[0] + s[1]) / w
            vel.append((s[2] + s[3]) / w)
            out[C.VEL_USD + k] = vel[-1]
        acc = [(vel[k] - vel[k + 1]) / ((ws[k + 1] - ws[k]) / 2) for k in range(len(ws) - 1)]
        for k, a in enumerate(acc):
            out[C.ACCEL + k] = a
        out[C.ACCEL_HEAD] = acc[min(1, len(acc) - 1)] if acc else 0.0
        return out


def ref_realized_vol(trades: list[tuple[int, float]], windows: list[int]) -> tuple[list[float], int]:
    """(rv per window, observed seconds) from time-ordered (ts, price) trades of one instrument."""
    trades = [(t, p) for t, p in trades if p > 0 and math.isfinite(p)]
    if not trades:
        return [0.0] * len(windows), 0
    first = trades[0][0] // 1_000_000_000
    cur = trades[-1][0] // 1_000_000_000
    close: dict[int, float] = {}
    for t, p in trades:
        close[t // 1_000_000_000] = p
    r2 = {}
    prev = trades[0][1]
    for s in range(first, cur):
        c = close.get(s, prev)
        r2[s] = math.log(c / prev) ** 2
        prev = c
    closed = cur - first
    out = []
    for w in windows:
        n = min(w, closed)
        total = sum(r2.get(s, 0.0) for s in range(cur - w, cur))
        out.append(math.sqrt(total * SECONDS_PER_YEAR / n) if n > 0 else 0.0)
    return out, min(windows[-1], closed)


def ref_regime(rv: float, obs: float, bounds: list[float]) -> int:
    if obs < MIN_OBS:
        return NORMAL
    return sum(1 for b in bounds if rv >= b)


def ref_heat(arrivals_ns: list[int], now_ns: int, tau_s: float, mu: float, prior: float) -> tuple[float, float]:
    """(heat, intensity/s) from the full arrival history, summed directly (no recursion)."""
    e = sum(math.exp(-(now_ns - t) / (tau_s * 1e9)) for t in arrivals_ns if t <= now_ns)
    e += sum(1.0 for t in arrivals_ns if t > now_ns)   # late-after-now arrivals count undecayed
    return max(0.0, (e - tau_s * mu) / (e + prior)), e / tau_s


def ref_score(count, usd_s, accel, heat, x, regime, mult, single, cfg, velocity_on=True, lead=(0.0, 0.0),
              normal=(0.0, 0.0)):
    """(score, contributions in FACTOR_COLUMNS order + burst + regime) of the weighted cascade score.

    ``x`` = (volume, oi, funding) factor inputs, ``lead`` = (fuel, depth_thinning) inputs, ``normal`` = the
    asset's normal (liquidations/s, USD/s) the relative speed is judged against.
    """
    def unit(v):
        return min(max(v, 0.0), 1.0)
    rel = cfg.relative_speed
    f_vel = unit(count / max(2 * cfg.min_count, rel * normal[0] * cfg.window_s))
    f_acc = unit(heat)
    if velocity_on and single > 0:
        f_vel = max(f_vel, unit(usd_s / max(K.VEL_SAT * single, rel * normal[1])))
        f_acc = max(f_acc, unit(accel / (K.ACCEL_SAT * single)))
    factors = dict(velocity=f_vel, acceleration=f_acc, volume=unit(x[0]), oi=unit(x[1]), funding=unit(x[2]),
                   volatility=unit(regime / 4), fuel=unit(lead[0]), depth_thinning=unit(lead[1]))
    weights = {**msgspec.structs.asdict(cfg.lead_weights), **cfg.weights}
    contrib = [10 * weights[k] * factors[k] for k in C.FACTOR_COLUMNS]
    base = sum(contrib)
    boost, b_acc, b_vel = cfg.burst_boost
    boosted = base * boost if f_acc >= b_acc and f_vel >= b_vel and count >= cfg.min_count else base
    burst = boosted - base
    score = boosted * mult
    reg = score - boosted
    if score > 10:
        k = 10 / score
        contrib = [c * k for c in contrib]
        burst *= k
        score = 10.0
        reg = 10 - sum(contrib) - burst
    return score, (*contrib, burst, reg)


def ref_levels(scores, levels, hysteresis):
    """Level after each score, starting from NONE."""
    level, out = 0, []
    for s in scores:
        while level < 3 and s >= levels[level]:
            level += 1
        while level > 0 and s < levels[level - 1] - hysteresis:
            level -= 1
        out.append(level)
    return out
