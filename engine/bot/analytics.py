"""Indicators behind the bot's answers, on candle arrays of :mod:`.candles`.

The ladders and thresholds are the existing bot's (volume spike levels,
funding pressure labels, control/momentum/activity, sentiment score); the
inputs differ where it guessed: delta and CVD come from taker volume, and a
volume spike judges the last *closed* candle against the baseline it prints.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..flow_leader import leading_market, taker_delta_usd as _taker_delta_usd
from .candles import BUY, C, H, L, O, SELL, SPLIT, T, V, split_coverage
from .fmt import NA

__all__ = ["atr", "rsi", "VolumeSpike", "volume_spike", "spike_level", "CvdResult", "cvd", "funding_pressure",
           "FundingFigure", "funding_figure", "venue_funding_text", "asset_funding_pct",
           "split_note", "control_label", "momentum_label", "activity_label", "sentiment", "slope", "session_factor", "leading_market",
           "taker_delta_usd"]

SPIKE_LEVELS = ((500.0, "EXTREME", "🔥🔥🔥"), (300.0, "HIGH", "🔥🔥"), (150.0, "MODERATE", "🔥"),
                (50.0, "LOW", "📈"))


def atr(c: np.ndarray, n: int) -> float:
    """Mean true range of the last ``n`` candles (NaN without two candles)."""
    if len(c) < 2:
        return math.nan
    c = c[-(n + 1):]
    prev = c[:-1, C]
    tr = np.maximum(c[1:, H] - c[1:, L], np.maximum(abs(c[1:, H] - prev), abs(c[1:, L] - prev)))
    return float(tr.mean())


def rsi(closes: np.ndarray, n: int = 14) -> float:
    """Wilder's RSI (NaN without ``n + 1`` closes)."""
    if len(closes) < n + 1:
        return math.nan
    d = np.diff(closes)
    up, down = np.clip(d, 0, None), np.clip(-d, 0, None)
    au, ad = up[:n].mean(), down[:n].mean()
    for u, dn in zip(up[n:], down[n:]):
        au, ad = (au * (n - 1) + u) / n, (ad * (n - 1) + dn) / n
    return 100.0 if ad == 0 else 100.0 - 100.0 / (1.0 + au / ad)


def slope(y: np.ndarray) -> float:
    """Least-squares slope of ``y`` against its index (0 for fewer than 2 points)."""
    if len(y) < 2:
        return 0.0
    x = np.arange(len(y), dtype=float)
    return float(np.polyfit(x, y, 1)[0])


def taker_delta_usd(c: np.ndarray) -> float:
    """Taker buy minus sell volume of candles, valued at each candle's close (USD)."""
    return _taker_delta_usd(c[:, BUY], c[:, SELL], c[:, C]) if len(c) else 0.0


def session_factor(hour: int, weekday: int) -> float:
    """The existing bot's baseline factor by UTC hour (00-08 x0.8, 08-16 x1.0, 16-24 x1.2), x0.7 at weekends."""
    f = 0.8 if hour < 8 else 1.0 if hour < 16 else 1.2
    return f * 0.7 if weekday >= 5 else f


def spike_level(pct: float) -> tuple[str, str]:
    for bound, name, emoji in SPIKE_LEVELS:
        if pct >= bound:
            return name, emoji
    return "NORMAL", "😴"


@dataclass(frozen=True)
class VolumeSpike:
    current: float        # base volume of the judged (last closed) candle
    baseline: float       # session-adjusted trimmed median the % is against
    pct: float
    level: str
    emoji: str
    usd: float
    candles: int          # baseline candles used
    in_progress: float    # the running candle's volume, pro-rated to a full candle

    @property
    def significant(self) -> bool:
        return self.level in ("EXTREME", "HIGH", "MODERATE")


def volume_spike(c: np.ndarray, tf_minutes: int, now_ms: int, hour: int, weekday: int,
                 lookback: int = 96) -> VolumeSpike | None:
    """Judge the last closed candle against the trimmed median of up to ``lookback`` before it."""
    tf_ms = tf_minutes * 60_000
    closed = c[c[:, T] + tf_ms <= now_ms]
    if len(closed) < 2:
        return None
    cur, base = closed[-1], closed[-(lookback + 1):-1, V]
    trim = int(len(base) * 0.05)
    trimmed = np.sort(base)[trim: len(base) - trim] if trim else base
    baseline = float(np.median(trimmed)) * session_factor(hour, weekday)
    pct = (cur[V] - baseline) / baseline * 100.0 if baseline > 0 else math.nan
    level, emoji = spike_level(pct) if math.isfinite(pct) else ("NORMAL", "😴")
    running = c[c[:, T] + tf_ms > now_ms]
    prorated = math.nan
    if len(running):
        elapsed = max(now_ms - running[-1, T], 60_000)
        prorated = float(running[-1, V] * tf_ms / elapsed)
    return VolumeSpike(float(cur[V]), baseline, pct, level, emoji, float(cur[V] * cur[C]), len(base), prorated)


@dataclass(frozen=True)
class CvdResult:
    current: float        # cumulative taker delta over the window, base units
    change: float         # last - first point
    trend: str            # BULLISH | BEARISH | NEUTRAL
    divergence: bool
    price_trend: str
    candles: int          # candles with a known taker split: the curve's
    span_minutes: int
    split_minutes: int = 0   # minutes whose taker split is known, of
    minutes: int = 0         # the minutes the candles hold


def cvd(c: np.ndarray, tf_minutes: int) -> CvdResult | None:
    """Cumulative taker delta (buy - sell base volume) over the candles with a known taker split; candles
    without one (other venues' klines) are left out, not counted as zero flow. None below 2 such candles."""
    k, n = split_coverage(c)
    c = c[c[:, SPLIT] > 0]
    if len(c) < 2:
        return None
    curve = np.cumsum(c[:, BUY] - c[:, SELL])
    s10 = slope(curve[-10:])
    trend = "BULLISH" if s10 > 0 else "BEARISH" if s10 < 0 else "NEUTRAL"
    div = np.sign(slope(c[-20:, C])) * np.sign(slope(curve[-20:])) < 0
    price_trend = "BULLISH" if c[-1, C] > c[0, C] else "BEARISH" if c[-1, C] < c[0, C] else "NEUTRAL"
    return CvdResult(float(curve[-1]), float(curve[-1] - curve[0]), trend, bool(div), price_trend, len(c),
                     len(c) * tf_minutes, k, n)


def split_note(c: np.ndarray) -> str:
    """``""`` when every minute of candles ``c`` has its taker split, else `` (from k of n min)``."""
    k, n = split_coverage(c)
    return "" if k == n else f" (from {k} of {n} min)"


FUNDING_LABELS = ((0.01, "🔥 LONG SQUEEZE", "Longs pay heavily: crowded long side"),
                  (0.005, "🟡 LONG PRESSURE", "Longs pay: long side leaning"))
FUNDING_LABELS_NEG = ((-0.01, "❄️ SHORT SQUEEZE", "Shorts pay heavily: crowded short side"),
                      (-0.005, "🟢 SHORT PRESSURE", "Shorts pay: short side leaning"))


def funding_pressure(pct: float) -> tuple[str, str]:
    """(label, remark) for a funding rate in % per period (the existing bot's ladder)."""
    if abs(pct) < 0.001:
        return "⚪ NEUTRAL", "Funding near zero: no side pays"
    for bound, label, remark in FUNDING_LABELS:
        if pct > bound:
            return label, remark
    for bound, label, remark in FUNDING_LABELS_NEG:
        if pct < bound:
            return label, remark
    return "⚪ BALANCED", "Funding within normal range"


@dataclass(frozen=True)
class FundingFigure:
    """One venue's funding as the bot shows it: its own quote, and restated per the common interval."""
    pct: float            # the venue's raw rate, % per its own interval
    interval_h: float     # that interval
    common_pct: float     # % per detectors.funding.common_interval_h: what labels, averages and years use
    annual_pct: float


def funding_figure(fcfg, venue: str, rate: float) -> FundingFigure:
    """:class:`FundingFigure` of ``venue``'s raw ``rate`` (fraction) under ``detectors.funding`` ``fcfg``."""
    from engine.detectors.funding import per_common_interval, venue_interval_h
    common = per_common_interval(fcfg, venue, rate) * 100.0
    return FundingFigure(rate * 100.0, venue_interval_h(fcfg, venue), common,
                         common * 24.0 * 365.0 / fcfg.common_interval_h)


def venue_funding_text(fcfg, ins) -> str:
    """A venue's own funding quote, ``+0.0100%``, with ``per 1 h`` when its interval is not the common one;
    ``n/a`` before its first mark."""
    if not ins.row["mark"]:
        return NA
    f = funding_figure(fcfg, ins.venue, ins.row["funding"])
    return f"{f.pct:+.4f}%" + ("" if f.interval_h == fcfg.common_interval_h else f" per {f.interval_h:g} h")


def asset_funding_pct(fcfg, instruments) -> float:
    """An asset's funding, % per common interval: the simple mean of its venues' normalised rates (the funding
    detector's level), over the perpetuals that reported a mark; NaN without one."""
    rates = [funding_figure(fcfg, i.venue, i.row["funding"]).common_pct for i in instruments
             if i.market != "spot" and i.row["mark"]]
    return sum(rates) / len(rates) if rates else math.nan


def control_label(buy: float, sell: float) -> str:
    """BUYERS / SELLERS / BALANCED by taker buy share (>= 65 %, <= 35 %)."""
    total = buy + sell
    if total <= 0:
        return "n/a"
    share = buy / total * 100.0
    name = "🟢 BUYERS" if share >= 65 else "🔴 SELLERS" if share <= 35 else "⚪ BALANCED"
    return f"{name} ({max(share, 100 - share):.0f}% pressure)"


def momentum_label(d15: float, v15: float, d24: float, v24: float) -> str:
    if v15 <= 0 or v24 <= 0 or d24 == 0:
        return "n/a"
    r = abs(d15 / v15) / abs(d24 / v24)
    return "ACCELERATING" if r > 1.5 else "DECELERATING" if r < 0.5 else "STEADY"


def activity_label(v15: float, v24: float) -> str:
    if v24 <= 0:
        return "n/a"
    r = v15 / (v24 / 96.0)
    name = ("EXTREME" if r > 3 else "HIGH" if r > 2 else "ABOVE AVG" if r > 1.5 else "LOW" if r < 0.5
            else "NORMAL")
    return f"{name} ({r:.1f}x)"


def sentiment(change_24h: float, spike: VolumeSpike | None, cv: CvdResult | None, rsi14: float) -> tuple[int, str]:
    """The existing bot's four-component score (x10, %) and its verdict; unknown components add 0."""
    s = 0
    if math.isfinite(change_24h):
        s += (3 if change_24h > 5 else 2 if change_24h > 2 else 1 if change_24h > 0 else -1 if change_24h > -2
              else -2 if change_24h > -5 else -3)
    if spike is not None:
        s += 2 if spike.level == "EXTREME" else 1 if spike.level in ("HIGH", "MODERATE") else 0
    if cv is not None:
        s += 2 if cv.trend == "BULLISH" else -2 if cv.trend == "BEARISH" else 0
        s -= 1 if cv.divergence else 0
    if math.isfinite(rsi14):
        s += -1 if rsi14 > 70 else 1 if rsi14 < 30 else 1 if rsi14 > 50 else -1
    pct = s * 10
    verdict = "🟢 BULLS IN CONTROL" if pct > 30 else "🔴 BEARS IN CONTROL" if pct < -30 else "⚪ NEUTRAL"
    return pct, verdict
