"""Plain-Python references for the numba kernels (slow, obvious, independent of the ring code)."""
from __future__ import annotations

import math

from engine.kernels import cascade as K
from engine.kernels import columns as C
from engine.kernels.velocity import BUCKET_NS, HOUR_BUCKET_NS, HOUR_BUCKETS
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

    def add(self, ts: int, side: int, usd: float) -> None:
        vals = [0.0, 1.0, 0.0, usd] if side < 0 else [1.0, 0.0, usd, 0.0]
        self.fine.add(ts, vals)
        self.hour.add(ts, vals)

    def row(self, now: int) -> dict[int, float]:
        lay = self.layout
        out = {}
        sums = [self.fine.sums(now, int(k)) for k in lay.widths]
        for c in range(4):
            out[C.CASCADE_SUMS + c] = sums[lay.slots[0]][c]
            out[C.MINUTE_SUMS + c] = sums[lay.slots[1]][c]
            out[C.HOUR_SUMS + c] = self.hour.sums(now, 60)[c]
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


def ref_score(count, usd_s, accel, mult, single, min_count, velocity_on=True):
    """(score, factors) of the first cascade score."""
    f_count = K.W_COUNT * min(count / (2 * min_count), 1.0)
    f_vel = f_acc = 0.0
    if velocity_on and single > 0:
        f_vel = K.W_VELOCITY * min(usd_s / (K.VEL_SAT * single), 1.0)
        f_acc = K.W_ACCEL * min(max(accel / (K.ACCEL_SAT * single), 0.0), 1.0)
    base = f_count + f_vel + f_acc
    score = base * mult
    f_reg = base * (mult - 1)
    if score > 10:
        k = 10 / score
        f_count, f_vel, f_acc = f_count * k, f_vel * k, f_acc * k
        f_reg = 10 - f_count - f_vel - f_acc
        score = 10.0
    return score, (f_count, f_vel, f_acc, f_reg)


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
