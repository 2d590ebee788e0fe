"""The comprehensive-analysis commands: /analysis, and the /zones and /chart images."""
from __future__ import annotations

import math
from datetime import datetime, timezone

import numpy as np

from . import analytics as A
from . import fmt as F
from .candles import BUY, C, SELL, SPLIT, USD, V
from .context import (DAY_MS, ArgError, BotContext, Reply, _asset, _change, _key, _now_ms, _primary, _tf,
                      _window)
from .profile import vwap
from .volume_cmds import _spike


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
                f"{F.signed(cv.change, 0)} {asset} ({F.usd(cv.change * px, 1)}){A.split_note(c)}" if cv
                else F.NA if c[:, SPLIT].any() else f"{F.NA} (no taker split: venue klines)")
    delta_text = (f"{F.signed(delta_last, 2)} {asset} ({F.usd(delta_last * px)}){A.split_note(c[-1:])}"
                  if c[-1, SPLIT] else f"{F.NA} (no taker split: venue klines)")
    out = [F.b(f"🎯 MARKET ANALYSIS - {asset} ({tf})"), "",
           f"• PRICE: {F.price(px)} {'🟢' if F.known(ch24) and ch24 >= 0 else '🔴'} {F.pct(ch24, 1)} (24 h)",
           f"• VOLUME: {vol_line}",
           f"• CVD: {cvd_line}",
           f"• DELTA (last {tf} candle, taker): {delta_text}", "",
           F.b("📊 SESSION SNAPSHOT:"), f"• {_session(dt.hour)}", "",
           F.b("📅 DAILY CONTEXT:"),
           f"• Day volume so far (since 00:00 UTC): {F.num(day[:, V].sum(), 0)} {asset} ({F.usd(day[:, USD].sum())})",
           f"• Day range: {F.price(day[:, 2].max()) if len(day) else F.NA} - "
           f"{F.price(day[:, 3].min()) if len(day) else F.NA}", "",
           F.b("📈 OI:") + f" {F.usd(oi_usd)}" if oi_usd > 0 else F.b("📈 OI:") + f" {F.NA}",
           F.b("💸 Funding:") + (f" {A.venue_funding_text(ctx.cfg.detectors.funding, prim)} [{prim.venue}]"
                                if prim and prim.row["mark"] else f" {F.NA}"),
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


# -- /zones, /chart --------------------------------------------------------------------------------
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
        png = heatmap_from_history(rec.root, asset, ctx.cfg.detectors.zones, hours * 3600 * 10**9, chart=chart,
                                   funding_cfg=ctx.cfg.detectors.funding)
    except (ValueError, OSError) as exc:
        return Reply(f"n/a: no recorded history for <b>{F.esc(asset)}</b> yet ({F.esc(str(exc))}).")
    what = ("Modelled liquidation zones (USD that would be force-traded per price bin; a model, not an order book)"
            if chart == "heatmap" else "CVD (real taker flow) and liquidations")
    return Reply(f"<b>{F.esc(asset)}</b>, last {hours} h: {what}", photo=png)


def cmd_zones(ctx: BotContext, args: list[str]) -> Reply:
    return _history_image(ctx, args, "heatmap", "/zones BTC [24h]")


def cmd_chart(ctx: BotContext, args: list[str]) -> Reply:
    return _history_image(ctx, args, "cvd", "/chart BTC [24h]")
