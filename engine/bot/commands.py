"""The bot's commands as pure handlers: engine state and history in, reply text (HTML) out.

Every command is registered once in :data:`COMMANDS` (name, menu text, help
section, example, whether it changes state); the command menu and the help
card are generated from it. :func:`dispatch` parses a message, checks the
arguments and returns a :class:`Reply`, never raising for bad input.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Callable

import numpy as np

from . import analytics as A
from . import fmt as F
from .accuracy import cmd_accuracy
from .candles import BUY, C, SELL, T, TIMEFRAMES, USD, V, parse_timeframe
from .history import History
from .market import MarketView
from .prefs import SUBSCRIBE_KINDS, Prefs, parse_duration
from .profile import PROFILE_TIMEFRAMES, tpo, verdict, volume_profile, vwap

__all__ = ["Reply", "BotContext", "Command", "COMMANDS", "dispatch", "help_card", "menu", "UNAUTHORIZED",
           "GENERIC_ERROR"]

UNAUTHORIZED = "❌ Unauthorized access"
GENERIC_ERROR = "❌ An error occurred. Please try again later."
DAY_MS = 86_400_000


@dataclass(frozen=True)
class Reply:
    text: str
    parse_mode: str = "HTML"
    photo: bytes | None = None       # a PNG sent with ``text`` as its caption (/zones, /chart)


@dataclass
class BotContext:
    """What the handlers read: live state, history, per-chat prefs, config and the actor table."""

    market: MarketView
    history: History
    prefs: Prefs
    cfg: object
    actors: Callable[[], list[dict]] = list     # actor table snapshot (engine/actor_table.py)
    now: Callable[[], float] = time.time
    chat_id: int = 0
    spot_tickers: object = None                 # engine.bot.spot_tickers.SpotTickers (/top10 spot), when followed


@dataclass(frozen=True)
class Command:
    name: str
    description: str
    section: str
    handler: Callable
    usage: str = ""
    admin: bool = False          # changes state: admin user ids only


class ArgError(Exception):
    """A user error; the message is the reply."""


# -- helpers ------------------------------------------------------------------
def _asset(ctx: BotContext, text: str | None, usage: str) -> str:
    if not text:
        raise ArgError(f"❌ Please provide a symbol. Example: <code>{usage}</code>")
    asset = ctx.market.resolve(text)
    if asset is None:
        watched = ctx.market.assets()
        shown = ", ".join(watched[:20]) + (f" and {len(watched) - 20} more" if len(watched) > 20 else "")
        raise ArgError(f"❌ Unknown symbol <b>{F.esc(text)}</b>. Undertow watches: {shown or 'nothing yet'}.\n"
                       f"Symbols may be written BTC, BTCUSDT, BTC-USDT or BTC/USDT.")
    return asset


def _tf(text: str | None, default: str) -> tuple[str, int]:
    label = (text or default).lower()
    minutes = parse_timeframe(label)
    if minutes is None:
        raise ArgError(f"❌ Unknown timeframe <b>{F.esc(text)}</b>. Use one of: {', '.join(TIMEFRAMES)}.")
    return label, minutes


def _key(ctx: BotContext, asset: str, market: str | None = None) -> tuple[str, str]:
    """The candle series to answer from: ``market`` ("spot"/"perp") when asked, else perp (every venue watched
    is a derivative), spot if only spot."""
    if market is not None:
        return asset, market
    keys = ctx.history.candles.keys()
    return (asset, "perp") if (asset, "perp") in keys or (asset, "spot") not in keys else (asset, "spot")


MARKET_WORDS = {"spot": "spot", "perp": "perp", "perps": "perp"}


def _split_market(args: list[str]) -> tuple[list[str], str | None]:
    """``args`` without a trailing market word (``spot``/``perp``/``perps``), and that market (None if absent)."""
    if len(args) > 1 and args[-1].lower() in MARKET_WORDS:
        return args[:-1], MARKET_WORDS[args[-1].lower()]
    return args, None


def _now_ms(ctx: BotContext) -> int:
    return int(ctx.now() * 1000)


def _primary(instruments):
    """The reference instrument of an asset: Binance if watched, else the one with the largest OI."""
    if not instruments:
        return None
    for ins in instruments:
        if ins.venue == "binance":
            return ins
    return max(instruments, key=lambda i: i.row["oi_usd"])


def _window(c: np.ndarray, since_ms: int) -> np.ndarray:
    return c[c[:, T] >= since_ms]


def _change(c1m: np.ndarray, minutes: int, now_ms: int) -> tuple[float, float]:
    """(% change, $ change) of the last close against the close ``minutes`` ago; NaN if history is shorter."""
    if not len(c1m):
        return math.nan, math.nan
    ref = c1m[c1m[:, T] <= now_ms - minutes * 60_000]
    if not len(ref) or ref[-1, T] < now_ms - (minutes + 5) * 60_000:
        return math.nan, math.nan
    last, base = c1m[-1, C], ref[-1, C]
    return (last / base - 1.0) * 100.0, last - base


def _delta_line(label: str, c: np.ndarray, px: float) -> str:
    if not len(c) or c[:, V].sum() <= 0:
        return f"📈 {label}: {F.NA}"
    buy, sell = c[:, BUY].sum(), c[:, SELL].sum()
    d = buy - sell
    share = buy / (buy + sell) * 100 if buy + sell > 0 else math.nan
    dot = "🟢" if d > 0 else "🔴" if d < 0 else "⚪"
    return (f"📈 {label}: {F.b(f'{dot} {F.signed(d, 2)} ({F.usd(d * px)})')} | "
            f"L/S: {share:.0f}%/{100 - share:.0f}% (taker)")


# -- /start, /help --------------------------------------------------------------
SECTIONS = ("🎯 Comprehensive Analysis", "💰 Price Commands", "📊 Volume Intelligence", "🚨 Proactive Alerts",
            "🛡️ Risk", "📋 Other")


def help_card(ctx: BotContext | None = None, args: list[str] | None = None) -> str:
    lines = [F.b("🚀 Undertow: Crypto Trading Assistant"), ""]
    for sec in SECTIONS:
        cmds = [c for c in COMMANDS if c.section == sec]
        if not cmds:
            continue
        lines.append(F.b(sec))
        lines += [f"/{c.name}{(' ' + F.esc(c.usage)) if c.usage else ''} - {F.esc(c.description)}"
                  + (" (admin)" if c.admin else "") for c in cmds]
        lines.append("")
    lines += [F.b("Examples"), "<code>/price BTC</code>  <code>/volume ETH 1h</code>  <code>/cvd SOL</code>  "
              "<code>/profile BTC</code>  <code>/mute ETH 2h</code>",
              "Account commands (/balance, /positions, /pnl) are out of scope: Undertow holds no exchange keys."]
    return "\n".join(lines)


# -- /price -----------------------------------------------------------------------
def _market_block(ctx: BotContext, asset: str, cls: str, now_ms: int) -> tuple[list[str], dict]:
    c1 = ctx.history.candles.one_minute((asset, cls), now_ms - DAY_MS - 10 * 60_000)
    instruments = [i for i in ctx.market.instruments(asset) if (i.market == "spot") == (cls == "spot")]
    prim = _primary(instruments)
    px = prim.row["price"] if prim and prim.row["price"] > 0 else (c1[-1, C] if len(c1) else math.nan)
    if not len(c1) and prim is None:
        return [f"{F.NA}: no {cls} market of {asset} is watched"], {}
    ch24, d24 = _change(c1, 1440, now_ms)
    ch15, d15 = _change(c1, 15, now_ms)
    c24 = _window(c1, now_ms - DAY_MS)
    cur15 = _window(c1, (now_ms // 900_000) * 900_000)
    last15 = _window(c1, now_ms - 15 * 60_000)
    from .candles import aggregate
    atr24 = A.atr(aggregate(c24, 240), 6)
    atr15 = A.atr(aggregate(c24, 15), 7)
    v24, u24 = c24[:, V].sum(), c24[:, USD].sum()
    v15, u15 = cur15[:, V].sum(), cur15[:, USD].sum()
    dot = "🟢" if F.known(ch15) and ch15 >= 0 else "🔴"
    lines = [
        f"💰 Price: {F.b(F.price(px))} | {F.pct(ch24)} | {F.usd(d24)} | ATR: {F.num(atr24)}",
        f"{dot} Price Change 15m: {F.b(F.pct(ch15))} | {F.usd(d15)} | ATR: {F.num(atr15)}",
        f"📊 Volume 24h: {F.b(f'{F.num(v24, 0)} {asset} ({F.usd(u24)})')}",
        f"📊 Volume 15m: {F.b(f'{F.num(v15)} {asset} ({F.usd(u15)})')}",
        _delta_line("Delta 24h", c24, px),
        _delta_line("Delta 15m", last15, px),
    ]
    flows = {"b24": c24[:, BUY].sum(), "s24": c24[:, SELL].sum(), "b15": last15[:, BUY].sum(),
             "s15": last15[:, SELL].sum(), "v24": v24, "v15": v15}
    if cls == "perp" and instruments:
        lines += _oi_funding_lines(ctx, asset, instruments, prim, px)
    return lines, flows


def _oi_funding_lines(ctx, asset, instruments, prim, px) -> list[str]:
    oi = sum(i.row["oi"] for i in instruments)
    oi_usd = sum(i.row["oi_usd"] for i in instruments)
    now_ns = int(ctx.now() * 1e9)
    lines = [f"📈 OI: {F.b(f'{F.num(oi, 0)} {asset} ({F.usd(oi_usd)})')} "
             f"({sum(i.row['oi'] > 0 for i in instruments)} venues)" if oi > 0 else f"📈 OI: {F.NA}"]
    for label, secs in (("24h", 86400), ("15m", 900)):
        past = [ctx.history.oi_ago(i.venue, i.symbol, secs, now_ns) for i in instruments if i.row["oi"] > 0]
        if oi > 0 and past and all(p is not None for p in past):
            d = oi - sum(p[0] for p in past)
            value = f"{F.signed(d)} {asset} ({F.usd(d * px, 1)}) | {F.pct(d / oi * 100)}"
            lines.append(f"📊 OI Change {label}: {F.b(value)}")
        else:
            lines.append(f"📊 OI Change {label}: {F.NA} (history shorter than {label})")
    lines += _funding_lines(ctx, prim)
    return lines


def _next_reset_s(ctx: BotContext, ins) -> float:
    nxt = ctx.history.next_funding_ms.get((ins.venue, ins.symbol))
    now = ctx.now()
    if nxt:
        return nxt / 1000.0 - now
    hour = datetime.fromtimestamp(now, timezone.utc)
    secs = hour.hour * 3600 + hour.minute * 60 + hour.second
    return (8 * 3600 - secs % (8 * 3600)) % (8 * 3600)


def _funding_lines(ctx: BotContext, ins) -> list[str]:
    if ins is None or not ins.row["mark"]:
        return [f"💸 Funding: {F.NA}"]
    rate = ins.row["funding"] * 100.0
    label, remark = A.funding_pressure(rate)
    return [f"💸 Funding: {rate:+.4f}% ({rate * 1095:+.2f}% annually, 8 h periods) [{ins.venue}]",
            f"⏰ Resets in: {F.countdown(_next_reset_s(ctx, ins))} | {label}",
            f"🎯 Strategy: {remark}"]


def cmd_price(ctx: BotContext, args: list[str]) -> str:
    asset = _asset(ctx, args[0] if args else None, "/price BTC-USDT")
    now_ms = _now_ms(ctx)
    out = [F.b(f"📊 {asset}") + " (every watched venue)", ""]
    flows = {}
    for cls, title in (("spot", "🏪 SPOT"), ("perp", "⚡ PERPETUALS")):
        lines, fl = _market_block(ctx, asset, cls, now_ms)
        out += [F.b(title)] + lines + [""]
        flows = fl or flows
    out.append(F.b("🧠 MARKET INTELLIGENCE"))
    if flows:
        mom = A.momentum_label(flows["b15"] - flows["s15"], flows["b15"] + flows["s15"],
                               flows["b24"] - flows["s24"], flows["b24"] + flows["s24"])
        out.append(f"💪 24H Control: {A.control_label(flows['b24'], flows['s24'])} | Momentum: {mom}")
        out.append(f"⚡ 15M Control: {A.control_label(flows['b15'], flows['s15'])} | "
                   f"Activity: {A.activity_label(flows['v15'], flows['v24'])}")
    else:
        out.append(F.NA)
    out += ["", F.footer(ctx.now())]
    return "\n".join(out)


# -- /top10 -----------------------------------------------------------------------
def cmd_top10(ctx: BotContext, args: list[str]) -> str:
    if not args:
        raise ArgError("❌ Please specify market type. Use: <code>/top10 spot</code> or <code>/top10 perps</code>")
    kind = args[0].lower()
    if kind not in ("spot", "perps", "perp"):
        raise ArgError("❌ Invalid market type. Use: <code>/top10 spot</code> or <code>/top10 perps</code>")
    cls = "spot" if kind == "spot" else "perp"
    if cls == "spot" and ctx.spot_tickers is not None and ctx.spot_tickers.tickers:
        return _top10_spot_tickers(ctx)
    now_ms = _now_ms(ctx)
    rows = []
    for asset, c in ctx.history.candles.keys():
        if c != cls:
            continue
        c1 = ctx.history.candles.one_minute((asset, cls), now_ms - DAY_MS - 10 * 60_000)
        c24 = _window(c1, now_ms - DAY_MS)
        if len(c24):
            rows.append((c24[:, USD].sum(), asset, c1, c24))
    rows.sort(reverse=True)
    title = "SPOT" if cls == "spot" else "PERPS"
    if not rows:
        return f"🏆 {F.b(f'TOP 10 {title} MARKETS')}\n\n{F.NA}: no {cls} trades seen yet"
    out = [F.b(f"🏆 TOP 10 {title} MARKETS") + " (by 24 h USD volume on the watched venues)", ""]
    for k, (u24, asset, c1, c24) in enumerate(rows[:10], 1):
        ch, _ = _change(c1, 1440, now_ms)
        dot = "🟢" if F.known(ch) and ch >= 0 else "🔴" if F.known(ch) else "⚪"
        out += [f"{F.b(f'{k}.')} {asset} {dot} {F.pct(ch)}", f"💰 Price: {F.price(c1[-1, C])}",
                f"📊 Vol: {F.num(c24[:, V].sum(), 0)} {asset} ({F.usd(u24)})"]
        if cls == "perp":
            ins = ctx.market.instruments(asset)
            oi, oi_usd = sum(i.row["oi"] for i in ins), sum(i.row["oi_usd"] for i in ins)
            out.append(f"📈 OI: {F.num(oi, 0)} {asset} ({F.usd(oi_usd)})" if oi > 0 else f"📈 OI: {F.NA}")
            prim = _primary(ins)
            out.append(f"💸 Funding: {prim.row['funding'] * 100:+.4f}%" if prim and prim.row["mark"]
                       else f"💸 Funding: {F.NA}")
        out.append("")
    out.append(f"🕐 Updated: {F.hms(ctx.now())} UTC")
    return "\n".join(out)


def _top10_spot_tickers(ctx: BotContext) -> str:
    """/top10 spot from the Binance all-market mini-ticker: every plain */USDT pair, watched or not."""
    top = ctx.spot_tickers.top(10)
    out = [F.b("🏆 TOP 10 SPOT MARKETS") + " (by 24 h USD volume, Binance spot */USDT, all-market mini-ticker)", ""]
    for k, (_, base, t) in enumerate(top, 1):
        dot = "🟢" if t.change_pct >= 0 else "🔴"
        out += [f"{F.b(f'{k}.')} {base} {dot} {F.pct(t.change_pct)}", f"💰 Price: {F.price(t.last)}",
                f"📊 Vol: {F.num(t.base_volume, 0)} {base} ({F.usd(t.quote_volume)})", ""]
    age = ctx.spot_tickers.age_s(ctx.now())
    out.append(f"🕐 Updated: {F.hms(ctx.now())} UTC (tickers {age:.0f} s old)")
    return "\n".join(out)


# -- /volume, /volscan ------------------------------------------------------------
def _spike(ctx: BotContext, asset: str, tf_min: int, market: str | None = None):
    now_ms = _now_ms(ctx)
    c = ctx.history.candles.candles(_key(ctx, asset, market), tf_min, now_ms - 98 * tf_min * 60_000)
    dt = datetime.fromtimestamp(now_ms / 1000, timezone.utc)
    return A.volume_spike(c, tf_min, now_ms, dt.hour, dt.weekday()), len(c)


def cmd_volume(ctx: BotContext, args: list[str]) -> str:
    args, market = _split_market(args)
    asset = _asset(ctx, args[0] if args else None, "/volume BTC-USDT 15m")
    tf, tf_min = _tf(args[1] if len(args) > 1 else None, "15m")
    s, n = _spike(ctx, asset, tf_min, market)
    if s is None:
        raise ArgError(f"❌ Not enough {tf} history for {asset} yet ({n} candles; a closed candle and a "
                       f"baseline are needed).")
    analysis = ("Significant volume activity detected!" if s.significant else
                "Volume above normal" if s.level == "LOW" else "Normal volume levels")
    return "\n".join([
        F.b(f"📊 VOLUME ANALYSIS - {asset}"), "",
        f"{s.emoji} {F.b('Spike Level')}: {s.level}",
        f"📈 {F.b('Volume Change')}: {F.pct(s.pct, 1)} (last closed {tf} candle)",
        f"⏰ {F.b('Timeframe')}: {tf}", "",
        f"📊 {F.b('Current Volume')}: {F.num(s.current, 2)} {asset}",
        f"💰 {F.b('USD Value')}: {F.usd(s.usd, 1)}",
        f"📊 {F.b('Baseline Volume')}: {F.num(s.baseline, 2)} {asset} (trimmed median of {s.candles} candles, "
        f"session-adjusted)",
        f"⏳ {F.b('Running candle')}: {F.num(s.in_progress, 2)} {asset} pro-rated", "",
        f"🔍 {F.b('Analysis')}: {analysis}", "", F.footer(ctx.now())])


def cmd_volscan(ctx: BotContext, args: list[str]) -> str:
    try:
        threshold = float(args[0].rstrip("%")) if args else 200.0
    except ValueError:
        raise ArgError(f"❌ Threshold must be a number. Usage: <code>/volscan 200 15m</code> "
                       f"(got {F.esc(args[0])})") from None
    tf, tf_min = _tf(args[1] if len(args) > 1 else None, "15m")
    hits = []
    assets = sorted({a for a, _ in ctx.history.candles.keys()})
    for asset in assets:
        s, _ = _spike(ctx, asset, tf_min)
        if s is not None and F.known(s.pct) and s.pct >= threshold:
            hits.append((s.pct, asset, s))
    if not hits:
        return f"😴 No volume spikes &gt;{threshold:g}% found in {tf} timeframe ({len(assets)} assets scanned)"
    hits.sort(reverse=True)
    out = [F.b("🔍 VOLUME SPIKES DETECTED"), "", f"📊 Threshold: {threshold:g}%", f"⏰ Timeframe: {tf}",
           f"🎯 Found: {len(hits)} of {len(assets)} assets", ""]
    for k, (p, asset, s) in enumerate(hits[:5], 1):
        out += [f"{F.b(f'{k}.')} {asset} {s.emoji}", f"📈 Spike: {F.pct(p, 0)}", f"💰 Volume: {F.usd(s.usd, 1)}", ""]
    if len(hits) > 5:
        out.append(f"… and {len(hits) - 5} more spikes")
    out.append(F.footer(ctx.now()))
    return "\n".join(out)


# -- /cvd -------------------------------------------------------------------------------
def _led_by_line(ctx: BotContext, asset: str, since_ms: int) -> list[str]:
    """Which market led the taker flow since ``since_ms``, when both spot and perp of ``asset`` are watched."""
    keys = ctx.history.candles.keys()
    if (asset, "spot") not in keys or (asset, "perp") not in keys:
        return []
    spot, perp = (A.taker_delta_usd(ctx.history.candles.one_minute((asset, m), since_ms)) for m in ("spot", "perp"))
    led = A.leading_market(spot, perp)
    label = {"spot": "SPOT-LED 🏪", "perp": "PERP-LED ⚡"}.get(led, "NEUTRAL")
    return [f"🧭 {F.b('Flow Leader')}: {label} (taker delta spot {F.usd(spot)}, perp {F.usd(perp)})"]


def cmd_cvd(ctx: BotContext, args: list[str]) -> str:
    args, market = _split_market(args)
    asset = _asset(ctx, args[0] if args else None, "/cvd BTC-USDT 1h")
    tf, tf_min = _tf(args[1] if len(args) > 1 else None, "1h")
    now_ms = _now_ms(ctx)
    c = ctx.history.candles.candles(_key(ctx, asset, market), tf_min, now_ms - 96 * tf_min * 60_000)[-96:]
    r = A.cvd(c, tf_min)
    if r is None:
        raise ArgError(f"❌ Not enough {tf} history for {asset} yet ({len(c)} candles).")
    icon = {"BULLISH": "🟢📈", "BEARISH": "🔴📉"}.get(r.trend, "⚪➡️")
    div = "⚠️ " + F.b("DIVERGENCE DETECTED") if r.divergence else "✅ No divergence"
    return "\n".join([
        F.b(f"📈 CVD ANALYSIS - {asset}"), "",
        f"{icon} {F.b('CVD Trend')}: {r.trend}",
        f"💹 {F.b('Current CVD')}: {F.signed(r.current, 2)} {asset}",
        f"📊 {F.b(f'Change ({F.span(r.span_minutes)}, {r.candles} candles)')}: {F.signed(r.change, 2)} {asset}",
        f"⏰ {F.b('Timeframe')}: {tf}", "",
        f"🔍 {F.b('Price vs CVD')}: {div}",
        f"📊 {F.b('Price Trend')}: {r.price_trend}",
        *_led_by_line(ctx, asset, int(c[0, T])), "",
        f"💡 {F.b('What is CVD?')}",
        "• Cumulative Volume Delta: taker buys minus taker sells, trade by trade",
        "• Rising CVD: aggressive buyers; falling CVD: aggressive sellers",
        "• Divergence: price and CVD slopes (20 candles) disagree", "", F.footer(ctx.now())])


# -- /analysis ----------------------------------------------------------------------------
ANALYSIS_CANDLES = {15: 96, 60: 72, 240: 42, 1440: 20}
SESSIONS = (("New York", 13, 22), ("Asia-Pacific", 22, 6), ("London", 6, 13))


def _session(hour: int) -> str:
    for name, start, end in SESSIONS:
        length = (end - start) % 24
        n = (hour - start) % 24
        if n < length:
            return f"{name} Trading: Hour {n + 1}/{length} ⏰"
    return F.NA


def cmd_analysis(ctx: BotContext, args: list[str]) -> str:
    asset = _asset(ctx, args[0] if args else None, "/analysis BTC 15m")
    tf, tf_min = _tf(args[1] if len(args) > 1 else None, "15m")
    now_ms = _now_ms(ctx)
    key = _key(ctx, asset)
    n = ANALYSIS_CANDLES.get(tf_min, 100)
    c = ctx.history.candles.candles(key, tf_min, now_ms - n * tf_min * 60_000)[-n:]
    if len(c) < 2:
        raise ArgError(f"❌ Not enough {tf} history for {asset} yet ({len(c)} candles).")
    c1 = ctx.history.candles.one_minute(key, now_ms - DAY_MS - 10 * 60_000)
    ch24, _ = _change(c1, 1440, now_ms)
    spike, _ = _spike(ctx, asset, tf_min)
    cv = A.cvd(c, tf_min)
    r14 = A.rsi(c[:, C])
    vw = vwap(c)
    atr14 = A.atr(c, 14)
    closes = c[-20:, C]
    bb_mid, bb_sd = float(closes.mean()), float(closes.std())
    rets = np.diff(np.log(c[-25:, C])) if len(c) > 2 else np.array([])
    vol = float(rets.std() * 100) if len(rets) > 1 else math.nan
    score, control = A.sentiment(ch24, spike, cv, r14)
    aggression = ("HIGH" if spike and spike.significant and cv and abs(cv.change) > 0 and abs(cv.change) * c[-1, C]
                  > 1e6 else "MODERATE" if spike and spike.level in ("HIGH", "EXTREME") else "LOW")
    ins = ctx.market.instruments(asset)
    oi_usd = sum(i.row["oi_usd"] for i in ins)
    prim = _primary(ins)
    dt = datetime.fromtimestamp(now_ms / 1000, timezone.utc)
    day = _window(c1, (now_ms // DAY_MS) * DAY_MS)
    delta_last = c[-1, BUY] - c[-1, SELL]
    px = c[-1, C]
    vol_line = (f"{spike.emoji} {spike.level} {F.num(spike.current, 0)} {asset} ({F.pct(spike.pct, 0)}, "
                f"{F.usd(spike.usd, 1)})" if spike else F.NA)
    cvd_line = (f"{'🟢📈' if cv.trend == 'BULLISH' else '🔴📉' if cv.trend == 'BEARISH' else '⚪➡️'} {cv.trend} "
                f"{F.signed(cv.change, 0)} {asset} ({F.usd(cv.change * px, 1)})" if cv else F.NA)
    out = [F.b(f"🎯 MARKET ANALYSIS - {asset} ({tf})"), "",
           f"• PRICE: {F.price(px)} {'🟢' if F.known(ch24) and ch24 >= 0 else '🔴'} {F.pct(ch24, 1)} (24 h)",
           f"• VOLUME: {vol_line}",
           f"• CVD: {cvd_line}",
           f"• DELTA (last {tf} candle, taker): {F.signed(delta_last, 2)} {asset} ({F.usd(delta_last * px)})", "",
           F.b("📊 SESSION SNAPSHOT:"), f"• {_session(dt.hour)}", "",
           F.b("📅 DAILY CONTEXT:"),
           f"• Day volume so far (since 00:00 UTC): {F.num(day[:, V].sum(), 0)} {asset} ({F.usd(day[:, USD].sum())})",
           f"• Day range: {F.price(day[:, 2].max()) if len(day) else F.NA} - "
           f"{F.price(day[:, 3].min()) if len(day) else F.NA}", "",
           F.b("📈 OI:") + f" {F.usd(oi_usd)}" if oi_usd > 0 else F.b("📈 OI:") + f" {F.NA}",
           F.b("💸 Funding:") + (f" {prim.row['funding'] * 100:+.4f}% [{prim.venue}]" if prim and prim.row["mark"]
                                else f" {F.NA}"),
           F.b("🧠 Smart Money:") + f" {F.NA} (no venue long/short-ratio feed yet)",
           F.b("👥 All Participants:") + f" {F.NA}", "",
           F.b("📊 TECHNICAL:"),
           f"• RSI(14): {F.num(r14, 1)}",
           f"• VWAP ({len(c)} candles): {F.price(vw)}",
           f"• ATR(14): {F.num(atr14)}",
           f"• Bollinger 20/2: {F.price(bb_mid - 2 * bb_sd)} - {F.price(bb_mid + 2 * bb_sd)}",
           f"• Volatility (24 returns): {F.num(vol)}%", "",
           F.b("🎯 MARKET CONTROL:"),
           f"• {control} (score {score:+d}%)",
           f"• Aggression: {aggression}", "", F.footer(ctx.now())]
    return "\n".join(out)


def _funding_pct(ins) -> str:
    return f"{ins.row['funding'] * 100:+.4f}%" if ins.row["mark"] else F.NA


# -- /oi --------------------------------------------------------------------------------------
def _oi_by_venue(with_oi, asset: str) -> list[str]:
    """Per venue and in total: stablecoin-margined (USDT + USDC) | coin-margined OI, in base units and USD."""
    split: dict[str, list[float]] = {}   # venue -> [stable base, stable USD, coin base, coin USD]
    for i in with_oi:
        row = split.setdefault(i.venue, [0.0] * 4)
        k = 2 if i.market == "inverse" else 0
        row[k] += i.row["oi"]
        row[k + 1] += i.row["oi_usd"]
    total = [sum(r[k] for r in split.values()) for k in range(4)]
    side = lambda q, u: f"{F.num(q, 0)} {asset} ({F.usd(u)})" if u > 0 else F.NA   # noqa: E731
    ranked = sorted(split.items(), key=lambda item: -item[1][1] - item[1][3])
    return ([F.b("🏦 BY VENUE (stablecoin | coin-margined):")]
            + [f"• {v.title()}: {side(*r[:2])} | {side(*r[2:])}" for v, r in ranked]
            + [f"• Total: {side(*total[:2])} | {side(*total[2:])}"])


def _margin_coverage(ctx: BotContext, with_oi, enabled: list[str]) -> list[str]:
    """Which coin-margined and USDC contracts report, and which margin types each enabled venue follows."""
    from engine.margin_oi import MARKETS, coverage
    extra = [f"{i.venue.title()} {F.esc(i.symbol)}" for i in with_oi if i.market == "inverse" or i.quote == "USDC"]
    out = [f"• Coin-margined/USDC contracts reporting: {', '.join(extra) or 'none'}"]
    if ctx.cfg.margin_oi.enabled:
        follows = [f"{v} ({coverage(v) if MARKETS[v] else 'no other margin type listed'})"
                   for v in enabled if v in MARKETS]
        out.append(f"• Margin types followed: {'; '.join(follows)}")
    else:
        out.append("• Margin types followed: none ([margin_oi] is disabled)")
    return out


def cmd_oi(ctx: BotContext, args: list[str]) -> str:
    asset = _asset(ctx, args[0] if args else "BTC", "/oi BTC")
    ins = [i for i in ctx.market.instruments(asset) if i.market != "spot"]
    with_oi = [i for i in ins if i.row["oi_usd"] > 0]
    now_ns = int(ctx.now() * 1e9)
    from engine.supervisor import enabled_venues
    from engine.venues import load
    enabled = [v for v in enabled_venues(ctx.cfg)   # spot venues carry no open interest
               if hasattr(load(v), "oi_request") or getattr(load(v), "OI_STREAMED", False)]
    total_usd = sum(i.row["oi_usd"] for i in with_oi)
    if not with_oi:
        return (F.b(f"📊 OPEN INTEREST ANALYSIS - {asset}") + f"\n\n{F.NA}: no venue has reported OI for {asset} "
                f"yet (enabled: {', '.join(enabled)})")
    cats: dict[str, float] = {}
    for i in with_oi:
        cats["USD" if i.market == "inverse" else i.quote] = cats.get("USD" if i.market == "inverse" else i.quote,
                                                                     0.0) + i.row["oi_usd"]
    stable = sum(v for k, v in cats.items() if k != "USD")
    inverse = cats.get("USD", 0.0)
    share = lambda x: f"{x / total_usd * 100:.1f}%"   # noqa: E731
    out = [F.b(f"📊 OPEN INTEREST ANALYSIS - {asset}"), "", F.b("🔢 MARKET TYPE BREAKDOWN:"),
           f"• Total OI: {F.num(sum(i.row['oi'] for i in with_oi), 0)} {asset} ({F.usd(total_usd)})",
           f"• Stablecoin-Margined: {F.usd(stable)} | {share(stable)}"]
    out += [f"  - {k}: {F.usd(v)} ({share(v)})" for k, v in sorted(cats.items()) if k != "USD"]
    out += [f"• Coin-Margined (Inverse): {F.usd(inverse)} | {share(inverse)}", ""] + _oi_by_venue(with_oi, asset)
    out += ["", F.b("📈 TOP MARKETS:")]
    for k, i in enumerate(sorted(with_oi, key=lambda i: -i.row["oi_usd"])[:13], 1):
        vol, _ = ctx.history.volume_24h(i.id, now_ns)
        age = (now_ns - i.row["ts"]) / 1e9 if i.row["ts"] else math.nan
        out += [f"{k}. {i.venue.title()} {F.esc(i.symbol)}: {F.num(i.row['oi'], 0)} {asset} ({F.usd(i.row['oi_usd'])})"
                f" | {share(i.row['oi_usd'])} {'INVERSE' if i.market == 'inverse' else 'STABLE'}",
                f"   Funding: {_funding_pct(i)} | "
                f"Vol 24h: {F.num(vol, 0)} {asset} (stream) | age {F.num(age, 0)}s"]
    reporting = sorted({i.venue for i in with_oi})
    missing = [v for v in enabled if v not in reporting]
    out += ["", F.b("🏢 COVERAGE SUMMARY:"), f"• Exchanges: {len(reporting)} of {len(enabled)} enabled report OI "
            f"({', '.join(reporting)})" + (f"; missing: {', '.join(missing)}" if missing else ""),
            f"• Markets: {len(with_oi)} total"] + _margin_coverage(ctx, with_oi, enabled) + ["", F.footer(ctx.now())]
    return "\n".join(out)


# -- /profile ---------------------------------------------------------------------------------
def cmd_profile(ctx: BotContext, args: list[str]) -> str:
    want_tpo = [a for a in args if a.lower() == "tpo"]
    rest = [a for a in args if a.lower() != "tpo"]
    asset = _asset(ctx, rest[0] if rest else "BTC", "/profile BTC")
    now_ms = _now_ms(ctx)
    session = (now_ms // DAY_MS) * DAY_MS
    c1 = ctx.history.candles.one_minute(_key(ctx, asset), session)
    if not len(c1):
        raise ArgError(f"❌ No {asset} trades since 00:00 UTC yet.")
    px = c1[-1, C]
    out = [F.b(f"📊 MARKET PROFILE - {asset}"), f"💰 Current: {F.price(px)}",
           f"Session from 00:00 UTC ({len(c1)} one-minute candles, first included)", "─" * 30]
    in_vp = in_tpo = 0
    found = {}
    from .candles import aggregate
    for label, minutes, bins in PROFILE_TIMEFRAMES:
        c = aggregate(c1, minutes)
        vp, tp, vw = volume_profile(c, bins), tpo(c), vwap(c)
        name = "Daily" if label == "1d" else label.upper()
        out += ["", F.b(f"{name} Profile")]
        if vp is None:
            out.append(f"- {F.NA} (no volume)")
            continue
        found[label] = (vp, tp)
        in_vp += vp.contains(px)
        in_tpo += bool(tp and tp.contains(px))
        trunc = math.trunc((px - vw) / vw * 10000) / 100 if F.known(vw) and vw else math.nan
        arrow = "↑" if F.known(vw) and px >= vw else "↓"
        rows = [(vp.vah, f"- VAH: {F.price(vp.vah)} {'✅' if vp.contains(px) else '❌'}"),
                (vp.poc, f"- POC: {F.price(vp.poc)}"), (vp.val, f"- VAL: {F.price(vp.val)}"),
                (vw if F.known(vw) else -1, f"- VWAP ({'Daily' if label == '1d' else 'Session'}): {F.price(vw)} "
                                            f"{arrow} ({trunc:+.2f}%)")]
        out += [t for _, t in sorted(rows, key=lambda r: -r[0])]
        if tp and (label == "30m" or want_tpo):
            out.append(f"TPO: POC: {F.price(tp.poc)} | VAL: {F.price(tp.val)} | VAH: {F.price(tp.vah)}")
    label, reading, strategy = verdict(in_vp, in_tpo)
    out += ["─" * 30, F.b("📍 ANALYSIS"), f"• {F.b(label)}: {reading} (in VA: VP {in_vp}/6, TPO {in_tpo}/6)",
            f"• Strategy: {strategy}", "", F.b("📊 KEY LEVELS")]
    if "1h" in found:
        out.append(f"- 1H POC: {F.price(found['1h'][0].poc)} (High volume node)")
    if "4h" in found:
        out.append(f"- 4H VA: {F.price(found['4h'][0].val)} - {F.price(found['4h'][0].vah)}")
    if "1d" in found:
        out.append(f"- Daily POC: {F.price(found['1d'][0].poc)} (Major reference)")
    out += ["", F.footer(ctx.now())]
    return "\n".join(out)


# -- alerts, liquidations -----------------------------------------------------------------------
def _thresholds_lines(ctx: BotContext) -> list[str]:
    liq = ctx.cfg.detectors.liquidations.single_usd
    cas = ctx.cfg.detectors.cascade
    lines = [f"• {a}: {F.usd(v, 0)}+ liquidations" for a, v in liq.items() if a != "*"]
    lines.append(f"• others: {F.usd(liq['*'], 0)}+ liquidations")
    lines.append(f"• cascade: ≥ {cas.min_count} liquidations in {cas.window_s:g} s, score levels "
                 f"{'/'.join(f'{x:g}' for x in cas.levels)}")
    return lines


def cmd_alerts(ctx: BotContext, args: list[str]) -> str:
    sub = args[0].lower() if args else ""
    chat = ctx.prefs.chat(ctx.chat_id)
    if sub == "start":
        already = chat["alerts"]
        ctx.prefs.update(ctx.chat_id, alerts=True)
        return "\n".join([F.b("🚨 Proactive Alert Monitoring Started") + (" (was already on)" if already else ""),
                          "✅ Liquidation cascade detection activated", "✅ Liquidation alerts activated",
                          "You'll receive real-time alerts in this chat."])
    if sub == "stop":
        ctx.prefs.update(ctx.chat_id, alerts=False)
        return F.b("🛑 Proactive Alert Monitoring Stopped") + "\nReal-time alerts have been disabled for this chat."
    if sub == "recent":
        return cmd_liquidations(ctx, [])
    if sub not in ("", "status"):
        raise ArgError("❌ Unknown command. Use: start, stop, status, or recent")
    det = ctx.cfg.detectors
    on = chat["alerts"]
    run = lambda enabled: "✅ Running" if enabled and on else "❌ Stopped"   # noqa: E731
    out = [F.b("🚨 Proactive Alert System Status"), "",
           f"📉 {F.b('Liquidation Monitor')}: {run(det.liquidations.enabled)}",
           f"🌊 {F.b('Cascade Monitor')}: {run(det.cascade.enabled)}",
           f"📊 {F.b('OI Explosion Monitor')}: {F.NA} (OI detector not in this engine yet)" , ""]
    if sub == "status":
        now = ctx.now()
        mutes = {a: u for a, u in chat["mutes"].items() if u > now}
        last = ctx.history.liquidations[-1].ts_ns / 1e9 if ctx.history.liquidations else None
        out += [F.b("📊 Detailed Monitoring Status"),
                f"• Liquidations tracked: {len(ctx.history.liquidations)}"
                + (f", last {now - last:.0f}s ago" if last else ""),
                f"• Snoozed until {F.hms(chat['snooze'])} UTC" if chat["snooze"] > now else "• Not snoozed",
                f"• Muted: {', '.join(mutes) or 'none'}",
                f"• Subscriptions: {', '.join(chat['subs']) or 'everything'}", ""]
        out += [f"• {v}: {'✅' if ok else '❌'} connected" for v, ok in _venue_health(ctx).items()] + [""]
    out += [F.b("Commands:"), "/alerts start", "/alerts stop", "/alerts status", "/alerts recent", "",
            F.b("Thresholds:")] + _thresholds_lines(ctx)
    return "\n".join(out)


def _venue_health(ctx: BotContext) -> dict[str, bool]:
    rows = {r["name"]: r for r in ctx.actors()}
    timeout = ctx.cfg.supervisor.heartbeat_timeout_ms / 1000
    from engine.supervisor import enabled_venues
    return {v: bool(rows.get(f"feed:{v}")) and rows[f"feed:{v}"]["state"] == 2
            and rows[f"feed:{v}"]["heartbeat_age_s"] < timeout for v in enabled_venues(ctx.cfg)}


def cmd_liquidations(ctx: BotContext, args: list[str]) -> str:
    asset, window_s, count = None, 3600.0, 5
    for a in args:
        d = parse_duration(a)
        if d is not None:
            window_s = d
        elif a.isdigit():
            count = max(1, min(int(a), 50))
        else:
            asset = _asset(ctx, a, "/liquidations BTC 1h")
    now_ns = int(ctx.now() * 1e9)
    events = ctx.history.recent_liquidations(asset, now_ns - int(window_s * 1e9))
    scope = asset or "all assets"
    if not events:
        return f"📊 No recent liquidations tracked ({scope}, last {F.span(window_s / 60)})"
    longs = [e for e in events if e.side == "long"]
    shorts = [e for e in events if e.side == "short"]
    capped = sorted({e.venue for e in events if e.capped})
    ge = "≥ " if capped else ""
    from engine.supervisor import enabled_venues
    liq_venues = [v for v in enabled_venues(ctx.cfg) if "liquidations" in getattr(ctx.cfg.venues, v).streams]
    seen = sorted({e.venue for e in events})
    out = [F.b(f"📊 Recent Large Liquidations: {scope}, last {F.span(window_s / 60)}"),
           f"📉 Longs: {len(longs)} | {ge}{F.usd(sum(e.usd for e in longs))}",
           f"📈 Shorts: {len(shorts)} | {ge}{F.usd(sum(e.usd for e in shorts))}",
           f"🏦 Coverage: {len(seen)} venues with liquidations ({', '.join(seen)}) of {len(liq_venues)} streaming"]
    if capped:
        out.append(f"⚠️ Lower bounds: {', '.join(capped)} sample their liquidation streams (at most 1/symbol/s)")
    out.append("")
    for e in sorted(events, key=lambda e: -e.usd)[:count]:
        icon = "📉" if e.side == "long" else "📈"
        out.append(f"{icon} {F.b(F.esc(e.symbol))} {e.side.upper()} - ${e.usd:,.0f} at {F.hms(e.ts_ns / 1e9)} UTC "
                   f"({e.venue})")
    return "\n".join(out)


# -- new: funding, thresholds, risk, why ---------------------------------------------------------
def cmd_funding(ctx: BotContext, args: list[str]) -> str:
    asset = _asset(ctx, args[0] if args else None, "/funding BTC")
    ins = [i for i in ctx.market.instruments(asset) if i.market != "spot" and i.row["mark"]]
    if not ins:
        return f"💸 {F.b(f'FUNDING - {asset}')}\n\n{F.NA}: no venue has reported a funding rate yet"
    out = [F.b(f"💸 FUNDING - {asset}"), "Predicted rate for the coming settlement; last settled where known", ""]
    w = sum(i.row["oi_usd"] for i in ins)
    for i in sorted(ins, key=lambda i: -i.row["oi_usd"]):
        rate = i.row["funding"] * 100
        label, _ = A.funding_pressure(rate)
        settled = i.row.get("funding_settled", 0.0) * 100   # the last settlement's rate: NaN or 0 until known
        current = f" | last settled {settled:+.4f}%" if math.isfinite(settled) and settled else ""
        out.append(f"• {i.venue.title()} {F.esc(i.symbol)}: {rate:+.4f}% ({rate * 1095:+.2f}%/yr){current}"
                   f" | resets in {F.countdown(_next_reset_s(ctx, i))} | {label}")
    if w > 0:
        avg = sum(i.row["funding"] * i.row["oi_usd"] for i in ins) / w * 100
        out += ["", f"OI-weighted: {avg:+.4f}% ({avg * 1095:+.2f}%/yr) {A.funding_pressure(avg)[0]}"]
    out += ["", F.footer(ctx.now())]
    return "\n".join(out)


def _profile_of(asset: str):
    """The asset profile of engine.profiles when that module exists (built by another change), else None."""
    try:
        from engine import profiles  # noqa: F401
    except ImportError:
        return None
    getter = getattr(profiles, "profile_for", None) or getattr(profiles, "load_profile", None)
    try:
        return getter(asset) if getter else None
    except Exception:   # a profile that cannot be computed is reported as n/a
        return None


def cmd_thresholds(ctx: BotContext, args: list[str]) -> str:
    asset = _asset(ctx, args[0] if args else None, "/thresholds BTC")
    liq = ctx.cfg.detectors.liquidations
    single = liq.single_usd.get(asset, liq.single_usd["*"])
    cas = ctx.cfg.detectors.cascade
    prof = _profile_of(asset)
    out = [F.b(f"📐 THRESHOLDS - {asset}"), "",
           F.b("Asset profile:") + (f" {F.esc(prof)}" if prof is not None else
                                    f" {F.NA} (dynamic profiles not available in this engine; configured values)"),
           "", F.b("Liquidations:"),
           f"• single alert: {F.usd(single, 0)}" + ("" if asset in liq.single_usd else " (the * fallback)"),
           f"• large ≥ {F.usd(single * liq.large_multiple, 0)} | whale ≥ {F.usd(single * liq.whale_multiple, 0)} | "
           f"institutional ≥ {F.usd(single * liq.institutional_multiple, 0)}",
           "", F.b("Cascade:"),
           f"• window {cas.window_s:g} s, at least {cas.min_count} liquidations",
           f"• WATCH ≥ {cas.levels[0]:g}, WARNING ≥ {cas.levels[1]:g}, CRITICAL ≥ {cas.levels[2]:g} "
           f"(score 0-10, hysteresis {cas.hysteresis:g})",
           "", F.b("Volatility regimes (annualised):"),
           "• " + " | ".join(f"{n} < {b:.0%}" for n, b in zip(("dormant", "low", "normal", "high"),
                                                             ctx.cfg.detectors.volatility.regime_bounds))]
    return "\n".join(out)


def _risk_row(ctx: BotContext, asset: str) -> dict:
    row = ctx.market.asset_row(asset)
    if row is None or not row["updated_ns"]:
        raise ArgError(f"❌ No computed state for {asset} yet (the compute actor has not written its row).")
    return row


def cmd_risk(ctx: BotContext, args: list[str]) -> str:
    asset = _asset(ctx, args[0] if args else None, "/risk BTC")
    r = _risk_row(ctx, asset)
    comp = r.get("risk")
    liq = r["liq_cascade_window"]
    out = [F.b(f"🛡️ RISK - {asset}"), "",
           f"• Cascade score: {F.b(format(r['score'], '.2f') + '/10')} ({r['level']})",
           f"• Composite risk: {F.num(comp) + '/10' if F.known(comp) else F.NA + ' (composite risk score not in the state table yet)'}",
           f"• Volatility regime: {r['regime'] or F.NA}",
           f"• Liquidations in window: {liq['long_n'] + liq['short_n']:.0f} (longs {F.usd(liq['long_usd'])}, "
           f"shorts {F.usd(liq['short_usd'])})",
           f"• Last hour: longs {F.usd(r['liq_1h']['long_usd'])}, shorts {F.usd(r['liq_1h']['short_usd'])}",
           "", "Use /why " + asset + " for each factor.", "", F.footer(ctx.now())]
    return "\n".join(out)


def cmd_why(ctx: BotContext, args: list[str]) -> str:
    asset = _asset(ctx, args[0] if args else None, "/why BTC")
    r = _risk_row(ctx, asset)
    cas = ctx.cfg.detectors.cascade
    liq = r["liq_cascade_window"]
    n = liq["long_n"] + liq["short_n"]
    f = r["factors"]
    out = [F.b(f"❓ WHY - {asset}: score {r['score']:.2f}/10 ({r['level']})"), "",
           f"Liquidations in the window: {n:.0f} in {cas.window_s:g} s (a cascade needs {cas.min_count})", "",
           F.b("Contributions:")]
    inputs = {"velocity": "USD/s " + ", ".join(f"{k} {F.usd(v)}" for k, v in r["velocity_usd_s"].items()),
              "acceleration": f"{F.usd(r['acceleration_usd_s2'])}/s²",
              "regime": f"volatility regime {r['regime'] or F.NA}"}
    for name, value in sorted(f.items(), key=lambda kv: -kv[1]):
        out.append(f"• {name}: {value:+.2f} ({inputs.get(name, '')})")
    out += ["", f"Levels: WATCH ≥ {cas.levels[0]:g}, WARNING ≥ {cas.levels[1]:g}, CRITICAL ≥ {cas.levels[2]:g}",
            "Other factors (OI, funding, book depth, composite risk): " + F.NA + " until their detectors publish "
            "into the state table.", "", F.footer(ctx.now())]
    return "\n".join(out)


# -- state-changing: mute, snooze, subscriptions ---------------------------------------------------
def _duration(text: str | None, usage: str) -> float:
    d = parse_duration(text or "")
    if d is None:
        raise ArgError(f"❌ Bad duration <b>{F.esc(text or '')}</b>. Use e.g. 30m, 2h, 1d (max 30d). "
                       f"Usage: <code>{usage}</code>")
    return d


def cmd_mute(ctx: BotContext, args: list[str]) -> str:
    asset = _asset(ctx, args[0] if args else None, "/mute BTC 2h")
    d = _duration(args[1] if len(args) > 1 else None, "/mute BTC 2h")
    chat = ctx.prefs.chat(ctx.chat_id)
    until = ctx.now() + d
    ctx.prefs.update(ctx.chat_id, mutes={**chat["mutes"], asset: until})
    return f"🔇 {asset} alerts muted for {F.span(d / 60)} (until {F.hms(until)} UTC). /unmute {asset} to undo."


def cmd_unmute(ctx: BotContext, args: list[str]) -> str:
    asset = _asset(ctx, args[0] if args else None, "/unmute BTC")
    mutes = dict(ctx.prefs.chat(ctx.chat_id)["mutes"])
    was = mutes.pop(asset, 0) > ctx.now()
    ctx.prefs.update(ctx.chat_id, mutes=mutes)
    return f"🔔 {asset} alerts unmuted." if was else f"🔔 {asset} was not muted."


def cmd_snooze(ctx: BotContext, args: list[str]) -> str:
    if args and args[0].lower() == "off":
        ctx.prefs.update(ctx.chat_id, snooze=0.0)
        return "⏰ Snooze off: alerts resume."
    d = _duration(args[0] if args else None, "/snooze 1h")
    until = ctx.now() + d
    ctx.prefs.update(ctx.chat_id, snooze=until)
    return f"😴 All alerts snoozed for {F.span(d / 60)} (until {F.hms(until)} UTC). /snooze off to resume."


def _sub_target(ctx: BotContext, text: str | None, usage: str) -> str:
    if not text:
        raise ArgError(f"❌ Say what to subscribe to: a kind ({', '.join(SUBSCRIBE_KINDS)}) or a symbol. "
                       f"Usage: <code>{usage}</code>")
    if text.lower() in SUBSCRIBE_KINDS:
        return text.lower()
    return _asset(ctx, text, usage)


def cmd_subscribe(ctx: BotContext, args: list[str]) -> str:
    t = _sub_target(ctx, args[0] if args else None, "/subscribe cascade")
    subs = list(ctx.prefs.chat(ctx.chat_id)["subs"])
    if t not in subs:
        subs.append(t)
    ctx.prefs.update(ctx.chat_id, subs=subs)
    return f"✅ Subscribed to {t}. This chat now receives: {', '.join(subs)}."


def cmd_unsubscribe(ctx: BotContext, args: list[str]) -> str:
    if not args or args[0].lower() == "all":
        ctx.prefs.update(ctx.chat_id, subs=[])
        return "✅ Subscriptions cleared: this chat receives every alert kind again."
    t = _sub_target(ctx, args[0], "/unsubscribe cascade")
    subs = [s for s in ctx.prefs.chat(ctx.chat_id)["subs"] if s != t]
    ctx.prefs.update(ctx.chat_id, subs=subs)
    return f"✅ Unsubscribed from {t}. Receiving: {', '.join(subs) or 'everything'}."


# -- /status ---------------------------------------------------------------------------------------
def _coverage_line(c: dict | None) -> str:
    """A venue's coverage row of the state table in words ("" before compute wrote one)."""
    if c is None:
        return ""
    out = f" | connected {c['connected_share']:.0%}"
    if not c["liquidations_available"]:
        return out + ", no liquidation stream"
    out += f", {'≥ ' if c['capped'] else ''}{c['liquidations']:,.0f} liquidations"
    if c["capped"]:
        out += f" (capped stream: {c['saturation_share']:.0%} of slots saturated, ≤ {c['missed_high']:,.0f} missed)"
    return out


def cmd_status(ctx: BotContext, args: list[str]) -> str:
    now_ns = int(ctx.now() * 1e9)
    actors = ctx.actors()
    timeout = ctx.cfg.supervisor.heartbeat_timeout_ms / 1000
    out = [F.b("🩺 UNDERTOW STATUS"), "", F.b("Venues:")]
    health = _venue_health(ctx)
    instruments = ctx.market.instruments()
    cov = ctx.market.table.coverage()
    for v, ok in health.items():
        ins = [i for i in instruments if i.venue == v]
        lag = min(((now_ns - i.row["ts"]) / 1e9 for i in ins if i.row["ts"]), default=math.nan)
        last = f"last event {lag:.1f}s ago" if F.known(lag) else "no event yet"
        out.append(f"• {v}: {'✅' if ok else '❌'} {len(ins)} instruments | {last}{_coverage_line(cov.get(v))}")
    out += [f"Coverage: {sum(health.values())}/{len(health)} venues up", "", F.b("Actors:")]
    for a in actors:
        up = a["state"] == 2 and a["heartbeat_age_s"] < timeout
        uptime = (now_ns - a["started_ns"]) / 1e9 if a["started_ns"] else math.nan
        extra = ""
        cnt = a.get("counters", {})
        if cnt.get("records"):
            extra = f" | {cnt['records']:,.0f} records, {cnt.get('lost', 0):,.0f} lost"
        out.append(f"• {a['name']}: {'✅' if up else '❌'} up {F.span(uptime / 60) if F.known(uptime) else F.NA}, "
                   f"{a['restarts']} restarts{extra}")
    sigs = [s for s in ctx.history.signals if getattr(s, "ts_recv", 0) and getattr(s, "ts_published", 0)]
    if sigs:
        lat = sorted((s.ts_published - s.ts_recv) / 1e6 for s in sigs)
        out += ["", f"Latency frame→bus: p50 {lat[len(lat) // 2]:.1f} ms over the last {len(lat)} signals"]
    out += [f"Bot uptime: {F.span((now_ns - ctx.history.started_ns) / 6e10)}", "", F.footer(ctx.now())]
    return "\n".join(out)


def _history_image(ctx: BotContext, args: list[str], chart: str, usage: str) -> Reply:
    """A PNG of the asset from the recorder's history (engine/images.py), or why there is none."""
    from engine.images import heatmap_from_history
    asset = _asset(ctx, args[0] if args else "BTC", usage)
    hours = 24
    if len(args) > 1:
        _, minutes = _tf(args[1], "1d")
        hours = max(1, minutes // 60)
    rec = getattr(ctx.cfg, "recorder", None)
    if rec is None or not getattr(rec, "enabled", False):
        return Reply("n/a: the recorder is off ([recorder] enabled = false), so there is no history to draw.")
    try:
        png = heatmap_from_history(rec.root, asset, ctx.cfg.detectors.zones, hours * 3600 * 10**9, chart=chart)
    except (ValueError, OSError) as exc:
        return Reply(f"n/a: no recorded history for <b>{F.esc(asset)}</b> yet ({F.esc(str(exc))}).")
    what = ("Modelled liquidation zones (USD that would be force-traded per price bin; a model, not an order book)"
            if chart == "heatmap" else "CVD (real taker flow) and liquidations")
    return Reply(f"<b>{F.esc(asset)}</b>, last {hours} h: {what}", photo=png)


def cmd_zones(ctx: BotContext, args: list[str]) -> Reply:
    return _history_image(ctx, args, "heatmap", "/zones BTC [24h]")


def cmd_chart(ctx: BotContext, args: list[str]) -> Reply:
    return _history_image(ctx, args, "cvd", "/chart BTC [24h]")


COMMANDS: list[Command] = [
    Command("start", "🚀 Start the bot and see help", "📋 Other", help_card),
    Command("help", "📋 Show available commands", "📋 Other", help_card),
    Command("analysis", "🎯 Complete market analysis (/analysis BTC 15m)", "🎯 Comprehensive Analysis",
            cmd_analysis, "SYMBOL [tf=15m]"),
    Command("price", "💰 Spot + perp prices (e.g. /price BTC-USDT)", "💰 Price Commands", cmd_price, "SYMBOL"),
    Command("zones", "🗺 Liquidation-zone heatmap (/zones BTC 24h)", "🎯 Comprehensive Analysis", cmd_zones,
            "[SYMBOL] [window]"),
    Command("chart", "📈 CVD and liquidations chart (/chart BTC 24h)", "🎯 Comprehensive Analysis", cmd_chart,
            "[SYMBOL] [window]"),
    Command("top10", "🏆 Top 10 markets by 24 h volume (/top10 spot or /top10 perps)", "💰 Price Commands",
            cmd_top10, "spot|perps"),
    Command("funding", "💸 Funding per venue (/funding BTC)", "💰 Price Commands", cmd_funding, "SYMBOL"),
    Command("volume", "📊 Volume spike analysis (/volume BTC-USDT 15m)", "📊 Volume Intelligence", cmd_volume,
            "SYMBOL [tf=15m] [spot|perp]"),
    Command("cvd", "📈 Cumulative Volume Delta (/cvd BTC-USDT 1h)", "📊 Volume Intelligence", cmd_cvd,
            "SYMBOL [tf=1h] [spot|perp]"),
    Command("volscan", "🔍 Scan volume spikes (/volscan 200 15m)", "📊 Volume Intelligence", cmd_volscan,
            "[threshold=200] [tf=15m]"),
    Command("oi", "📊 Open Interest analysis (/oi BTC)", "📊 Volume Intelligence", cmd_oi, "[SYMBOL=BTC]"),
    Command("profile", "📊 Market Profile (VP & TPO) analysis", "📊 Volume Intelligence", cmd_profile,
            "[SYMBOL=BTC] [tpo]"),
    Command("alerts", "🚨 Proactive alert system control", "🚨 Proactive Alerts", cmd_alerts,
            "[start|stop|status|recent]"),
    Command("liquidations", "📉 Show recent large liquidations", "🚨 Proactive Alerts", cmd_liquidations,
            "[SYMBOL] [window=1h] [count=5]"),
    Command("mute", "🔇 Mute a symbol's alerts (/mute BTC 2h)", "🚨 Proactive Alerts", cmd_mute,
            "SYMBOL DURATION", admin=True),
    Command("unmute", "🔔 Unmute a symbol", "🚨 Proactive Alerts", cmd_unmute, "SYMBOL", admin=True),
    Command("snooze", "😴 Pause all alerts (/snooze 1h, /snooze off)", "🚨 Proactive Alerts", cmd_snooze,
            "DURATION|off", admin=True),
    Command("subscribe", "✅ Only receive a kind or symbol", "🚨 Proactive Alerts", cmd_subscribe, "KIND|SYMBOL",
            admin=True),
    Command("unsubscribe", "❎ Drop a subscription (all: receive everything)", "🚨 Proactive Alerts",
            cmd_unsubscribe, "[KIND|SYMBOL|all]", admin=True),
    Command("thresholds", "📐 Asset profile and alert thresholds", "🛡️ Risk", cmd_thresholds, "SYMBOL"),
    Command("risk", "🛡️ Cascade / risk score now", "🛡️ Risk", cmd_risk, "SYMBOL"),
    Command("why", "❓ What drives the score", "🛡️ Risk", cmd_why, "SYMBOL"),
    Command("accuracy", "📏 Measured accuracy of the warnings and zones (latest backtest)", "🛡️ Risk", cmd_accuracy),
    Command("status", "🩺 Venues, coverage, latency, uptime", "📋 Other", cmd_status),
]
BY_NAME = {c.name: c for c in COMMANDS}
# /alerts start|stop change state; the rest of /alerts is read-only
STATE_CHANGING_ALERTS = ("start", "stop")


def menu() -> list[tuple[str, str]]:
    """(command, description) pairs for setMyCommands."""
    return [(c.name, c.description) for c in COMMANDS]


def parse(text: str, bot_username: str = "") -> tuple[str, list[str]] | None:
    """('price', ['BTC']) from '/price BTC' or '/price@undertow_bot BTC'; None if not a command."""
    if not text or not text.startswith("/"):
        return None
    head, *args = text.split()
    name, _, target = head[1:].partition("@")
    if target and bot_username and target.lower() != bot_username.lower():
        return None
    return name.lower(), args


def changes_state(name: str, args: list[str]) -> bool:
    cmd = BY_NAME.get(name)
    if cmd is None:
        return False
    return cmd.admin or (name == "alerts" and bool(args) and args[0].lower() in STATE_CHANGING_ALERTS)


def dispatch(ctx: BotContext, name: str, args: list[str]) -> Reply:
    """Run command ``name``; argument errors become their helpful reply, unknown commands a pointer to /help."""
    cmd = BY_NAME.get(name)
    if cmd is None:
        return Reply(f"❓ Unknown command /{F.esc(name)}. Send /help for the list.")
    try:
        out = cmd.handler(ctx, args)
        return out if isinstance(out, Reply) else Reply(out)
    except ArgError as exc:
        return Reply(str(exc))
